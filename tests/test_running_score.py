"""The two scores of metrics.jsonl: this iteration's games (often null) and the running last-100 mean (every row)."""

import math

import numpy as np
import pytest

from prend.agent.trainer import Trainer
from prend.cli import main
from prend.metrics import read_metrics
from prend.train import parse_train_args


def test_running_score_is_in_every_row_once_a_game_has_ended(tmp_path, tiny_args):
    # Games capped at 20 agent steps, 16 steps per iteration and no random-agent steps before training (no
    # probe set): games end at steps 20, 40, 60, 80, 100, so iterations 1 (steps 1-16) and 6 (81-96) end none.
    out = tmp_path / "run"
    args = [*tiny_args, "--method", "none", "--max-episode-steps", "20", "--probe-size", "0", "--total-steps", "224",
            "--out", str(out)]
    assert main(["train", *args]) == 0
    records = read_metrics(out / "metrics.jsonl")
    ended = [r["charts/episodes"] for r in records]
    assert ended == [0, 2, 4, 6, 8, 8, 10]  # 2 envs
    per_iteration = [r["charts/episode_score_mean"] for r in records]
    running = [r["charts/score_mean_100"] for r in records]
    assert math.isnan(per_iteration[0]) and math.isnan(running[0])  # no game has ended yet
    assert math.isnan(per_iteration[5]) and not math.isnan(running[5])
    assert all(not math.isnan(x) for x in running[1:])
    # Under 100 games, the running score is the mean of every game so far: sum of (iteration mean x games).
    total, games = 0.0, 0
    for record, before in zip(records[1:], ended, strict=False):
        n = record["charts/episodes"] - before
        if n:
            total += record["charts/episode_score_mean"] * n
            games += n
        assert record["charts/score_mean_100"] == pytest.approx(total / games)


def test_running_score_is_the_mean_of_the_last_100_games(tiny_args):
    cfg, _ = parse_train_args([*tiny_args, "--method", "none"])
    trainer = Trainer(cfg)
    try:
        times = (0.0, 1.0, 2.0, 3.0)
        first = trainer._record([(float(s), 10) for s in range(60)], {}, {}, {}, times)  # scores 0..59
        assert first["charts/score_mean_100"] == pytest.approx(29.5)
        assert first["charts/episode_score_mean"] == pytest.approx(29.5)
        quiet = trainer._record([], {}, {}, {}, times)
        assert math.isnan(quiet["charts/episode_score_mean"]) and quiet["charts/score_mean_100"] == pytest.approx(29.5)
        last = trainer._record([(float(s), 10) for s in range(60, 120)], {}, {}, {}, times)  # 120 games in all
        assert last["charts/episode_score_mean"] == pytest.approx(89.5)
        assert last["charts/score_mean_100"] == pytest.approx(np.mean(np.arange(20, 120)))  # games 20..119: 69.5
        assert last["charts/episodes"] == 120
    finally:
        trainer.close()
