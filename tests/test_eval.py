"""`prend eval`: scores against hand-worked Deep Sea returns and numpy, fair parallel games, resume, locks, errors."""

import json
import shutil

import numpy as np
import pytest
import torch

from prend.checkpoint import atomic_torch_save
from prend.cli import main
from prend.config import EnvConfig
from prend.errors import PrendError
from prend.experiments.evaluate import (
    EvalSettings,
    eval_env_config,
    evaluate,
    evaluate_run,
    play_games,
    quotas,
    score_statistics,
)
from prend.rundir import EVAL_LOCK, RunLock
from prend.train import load_agent

SIZE = 4
# Deep Sea without the per-cell action mapping: action 1 is "right" in every cell (bsuite's debug mode), so a
# policy that always plays 1 earns exactly 1 - 0.01 = 0.99 per game and one that always plays 0 earns 0.
DEEP_SEA = ["--game", "prend/DeepSea-v0", "--game-kwargs", "size", str(SIZE), "randomize_actions", "False",
            "--method", "none", "--num-envs", "2", "--num-steps", "8", "--total-steps", "16", "--probe-every", "0",
            "--no-tensorboard", "--no-progress", "--torch-threads", "1", "--micro-batch", "64",
            "--memory-format", "contiguous"]


@pytest.fixture(scope="module")
def deep_sea_run(tmp_path_factory):
    """A one-iteration plain-PPO Deep Sea run whose policy is then set to always play action 1 ("right")."""
    out = tmp_path_factory.mktemp("eval") / "run"
    assert main(["train", *DEEP_SEA, "--out", str(out)]) == 0
    _set_policy(out, favoured=1)
    return out


def _set_policy(run, favoured: int) -> None:
    """Make the run's policy choose ``favoured`` with probability ~1 - e^-40, whatever it sees."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    weight, bias = state["policy"]["heads.logits.weight"], state["policy"]["heads.logits.bias"]
    weight.zero_()
    bias.fill_(-20.0)
    bias[favoured] = 20.0
    atomic_torch_save(state, run / "checkpoint.pt")


@pytest.fixture
def run_copy(deep_sea_run, tmp_path):
    return shutil.copytree(deep_sea_run, tmp_path / "run")


def test_score_statistics_match_numpy_and_hand_worked_hns():
    scores = [3.0, -1.0, 7.0, 0.5, 2.5]
    stats = score_statistics(scores, "Boxing")
    assert stats["games"] == 5
    assert stats["mean"] == pytest.approx(np.mean(scores))
    assert stats["sd"] == pytest.approx(np.std(scores, ddof=1))
    assert stats["median"] == 2.5 and stats["min"] == -1.0 and stats["max"] == 7.0
    # Boxing: random 0.1, human 12.1 (DQN Zoo); mean 2.4 -> (2.4 - 0.1) / 12.0
    assert stats["hns"] == pytest.approx(2.3 / 12.0)
    # Pong: random -20.7, human 14.6; a mean of -3.05 is exactly half way
    assert score_statistics([-3.05], "Pong")["hns"] == pytest.approx(0.5)
    assert score_statistics([-3.05], "Pong")["sd"] is None
    assert score_statistics([1.0], "prend/DeepSea-v0")["hns"] is None


def test_quotas_split_the_games_evenly_over_the_envs():
    for episodes, envs in [(30, 8), (7, 3), (2, 8), (1, 1), (16, 8)]:
        q = quotas(episodes, envs)
        assert q.sum() == episodes and len(q) == min(episodes, envs) and q.max() - q.min() <= 1


def test_standard_protocol_is_machado_et_al_on_the_runs_action_set():
    run_env = EnvConfig(game="Breakout", sticky_action_prob=0.0, noop_max=30, max_episode_steps=4500,
                        full_action_space=False, frame_skip=4)
    std = eval_env_config(run_env, "standard", num_envs=3)
    assert (std.sticky_action_prob, std.noop_max, std.max_episode_steps, std.num_envs) == (0.25, 0, 27_000, 3)
    assert not std.full_action_space and std.frame_skip == 4
    assert eval_env_config(run_env, "run", num_envs=3) == EnvConfig(**{**vars(run_env), "num_envs": 3})
    with pytest.raises(PrendError, match="not an Atari game"):
        eval_env_config(EnvConfig(game="prend/DeepSea-v0"), "standard", 1)


def test_eval_scores_the_hand_worked_deep_sea_return(run_copy, capsys):
    assert main(["eval", str(run_copy), "--episodes", "7", "--num-envs", "3"]) == 0
    record = json.loads((run_copy / "eval.json").read_text())
    assert record["complete"] and record["statistics"]["games"] == 7
    assert record["lengths"] == [SIZE] * 7  # every Deep Sea game lasts N steps
    assert record["scores"] == pytest.approx([0.99] * 7, abs=1e-6)
    assert record["statistics"]["hns"] is None and record["reference"] is None
    out = capsys.readouterr().out
    assert "7 games" in out and "no human/random reference" in out
    _set_policy(run_copy, favoured=0)  # always left: never a right move, never the treasure
    assert main(["eval", str(run_copy), "--episodes", "4", "--greedy"]) == 0
    greedy = json.loads((run_copy / "eval-greedy.json").read_text())
    assert greedy["scores"] == [0.0] * 4 and greedy["greedy"]


def test_parallel_envs_count_each_envs_quota_of_games(deep_sea_run):
    agent = load_agent(deep_sea_run)
    env_cfg = eval_env_config(agent.config.env, "run", num_envs=3)
    batches = []
    games = play_games(agent, env_cfg, 7, greedy=True, seed=0, on_games=batches.append)
    # 3 envs finish a game at every 4th step together: quotas 3, 2, 2 -> 3 + 3 + 1 games in three batches
    assert [len(b) for b in batches] == [3, 3, 1] and len(games) == 7


def test_interrupted_eval_continues_from_its_saved_games(run_copy, monkeypatch):
    calls = {"n": 0}
    original = play_games

    def interrupted(agent, env_cfg, episodes, greedy, seed, on_games):
        def stop_after_two_batches(games):
            on_games(games)
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt

        return original(agent, env_cfg, episodes, greedy, seed, stop_after_two_batches)

    monkeypatch.setattr("prend.experiments.evaluate.play_games", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate([run_copy], EvalSettings(episodes=10, num_envs=2), echo=lambda line: None)
    partial = json.loads((run_copy / "eval.json").read_text())
    assert not partial["complete"] and len(partial["scores"]) == 4
    monkeypatch.setattr("prend.experiments.evaluate.play_games", original)
    lines = []
    record = evaluate_run(run_copy, EvalSettings(episodes=10, num_envs=2), echo=lines.append)
    assert record["complete"] and len(record["scores"]) == 10 and len(record["lengths"]) == 10
    assert "continuing from 4 of 10 games" in lines[0]
    assert not list(run_copy.glob(".eval*.tmp"))


def test_eval_of_another_checkpoint_starts_afresh(run_copy):
    evaluate_run(run_copy, EvalSettings(episodes=2, num_envs=2), echo=lambda line: None)
    path = run_copy / "eval.json"
    record = json.loads(path.read_text())
    record |= {"checkpoint_step": 8, "scores": [5.0] * 2}  # as if made before the run trained on
    path.write_text(json.dumps(record))
    lines = []
    fresh = evaluate_run(run_copy, EvalSettings(episodes=2, num_envs=2), echo=lines.append)
    assert "older checkpoint" in lines[0] and fresh["checkpoint_step"] == 16
    assert fresh["scores"] == pytest.approx([0.99, 0.99], abs=1e-6)


def test_eval_refuses_a_run_another_eval_holds_and_reads_one_that_trains(run_copy):
    with RunLock(run_copy, EVAL_LOCK):
        with pytest.raises(PrendError, match=r"being evaluated by pid \d+"):
            evaluate_run(run_copy, EvalSettings(episodes=1), echo=lambda line: None)
    lines = []
    with RunLock(run_copy):  # what `prend train` holds while it trains
        record = evaluate_run(run_copy, EvalSettings(episodes=1), echo=lines.append)
    assert "still training" in lines[0] and record["complete"]


def test_random_play_takes_each_action_with_equal_chance_and_needs_no_checkpoint(run_copy, capsys):
    (run_copy / "checkpoint.pt").unlink()  # random play reads only the run's config
    assert main(["eval", str(run_copy), "--policy", "random", "--episodes", "400"]) == 0
    assert not (run_copy / "eval.json").exists()
    record = json.loads((run_copy / "eval-random.json").read_text())
    assert record["policy"] == "random" and record["checkpoint_step"] is None and record["complete"]
    assert record["lengths"] == [SIZE] * 400
    # Action 1 is "right" (bsuite's debug mode): a game of k right moves scores -0.01 k / SIZE, plus 1 for the
    # treasure, which only k = SIZE reaches. Uniform actions make k Binomial(SIZE, 1/2) in every game.
    scores = np.array(record["scores"])
    k = np.where(scores > 0.5, SIZE, np.rint(-scores / (0.01 / SIZE))).astype(int)
    assert np.allclose(scores, -0.01 * k / SIZE + (k == SIZE), atol=1e-6)
    expected = 400 * np.array([1, 4, 6, 4, 1]) / 16
    counts = np.bincount(k, minlength=SIZE + 1)
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected * (1 - expected / 400))), counts
    assert "uniformly random actions" in capsys.readouterr().out


@pytest.mark.parametrize("args, problem", [
    (["{missing}"], "no run directory"),
    (["{nockpt}"], "has no checkpoint yet"),
    (["{run}", "--protocol", "standard"], "not an Atari game"),
    (["{run}", "--episodes", "0"], "--episodes must be at least 1"),
    (["{run}", "--policy", "random", "--greedy"], "--policy random has no policy"),
])
def test_eval_bad_input_is_one_line_and_exit_code_2(deep_sea_run, tmp_path, capsys, args, problem):
    nockpt = tmp_path / "nockpt"
    nockpt.mkdir()
    shutil.copy(deep_sea_run / "config.json", nockpt / "config.json")
    paths = {"missing": tmp_path / "nope", "nockpt": nockpt, "run": deep_sea_run}
    assert main(["eval", *[a.format(**paths) for a in args]]) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and len(err.splitlines()) == 1


def _synthetic_run(root, seed, eval_mean, complete=True):
    """A run directory with one metrics record and an eval.json whose games average ``eval_mean``."""
    from prend.config import config_to_dict
    from prend.train import parse_train_args

    cfg, _ = parse_train_args(["--game", "Boxing", "--method", "rnd", "--seed", str(seed), "--total-steps", "32"])
    run = root / f"Boxing-rnd-s{seed}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config_to_dict(cfg)))
    (run / "metrics.jsonl").write_text(json.dumps({"iteration": 1, "charts/global_step": 32, "charts/frames": 128,
                                                   "charts/score_mean_100": 0.0}) + "\n")
    scores = [eval_mean - 1.0, eval_mean + 1.0]
    (run / "eval.json").write_text(json.dumps({"complete": complete, "checkpoint_step": 32, "scores": scores,
                                               "statistics": score_statistics(scores, "Boxing")}))
    return run


def test_report_shows_eval_iqm_over_seeds(tmp_path):
    from prend.experiments.report import write_report

    for seed, mean in enumerate([1.0, 2.0, 3.0, 100.0], start=1):
        _synthetic_run(tmp_path, seed, mean)
    _synthetic_run(tmp_path, 5, -50.0, complete=False)  # interrupted: not counted
    path = write_report(tmp_path, reps=2000)
    (row,) = json.loads((tmp_path / "report.json").read_text())["evaluation"]
    assert row["seeds"] == [1, 2, 3, 4] and row["scores"] == [1.0, 2.0, 3.0, 100.0]
    assert row["iqm"]["value"] == pytest.approx(2.5)  # sorted 1, 2, 3, 100: the middle two
    assert row["iqm"]["low"] <= 2.5 <= row["iqm"]["high"]
    assert row["hns_iqm"]["value"] == pytest.approx((2.5 - 0.1) / 12.0)
    text = path.read_text()
    assert "## Evaluation scores (`prend eval`)" in text
    # seed 5's evaluation was interrupted and it has no checkpoint: listed as one that cannot be evaluated
    (missing,) = json.loads((tmp_path / "report.json").read_text())["not_evaluated"]
    assert missing["run"].endswith("-s5") and missing["checkpoint"] is False
    assert f"without one (not kept), so they cannot be evaluated: {missing['run']}" in text


def test_report_lists_the_runs_still_to_evaluate_apart_from_those_that_cannot_be(tmp_path):
    from prend.experiments.report import write_report

    _synthetic_run(tmp_path, 1, 1.0)
    for seed in (2, 3):
        run = _synthetic_run(tmp_path, seed, 1.0)
        (run / "eval.json").unlink()
    (tmp_path / "Boxing-rnd-s2" / "checkpoint.pt").write_bytes(b"")  # only its existence is read
    text = write_report(tmp_path, reps=200).read_text()
    listed = json.loads((tmp_path / "report.json").read_text())["not_evaluated"]
    missing = {m["run"][-2:]: m["checkpoint"] for m in listed}
    assert missing == {"s2": True, "s3": False}
    assert "Not evaluated (eval.json): 2 of the runs." in text
    assert "with a checkpoint (`prend eval RUN_DIR` evaluates them): Boxing-rnd-s2" in text


def test_report_shows_random_play_once_per_game_and_protocol(tmp_path):
    from prend.experiments.report import write_report

    for seed, sticky in ((1, 0.25), (2, 0.25), (3, 0.0)):
        run = _synthetic_run(tmp_path, seed, 5.0)
        scores = [-2.0, 0.0, 1.0] if sticky else [4.0, 6.0]
        (run / "eval-random.json").write_text(json.dumps({
            "complete": True, "policy": "random", "checkpoint_step": None, "sticky_action_prob": sticky,
            "max_episode_steps": 27_000, "noop_max": 0, "scores": scores,
            "statistics": score_statistics(scores, "Boxing")}))
    text = write_report(tmp_path, reps=200).read_text()
    rows = json.loads((tmp_path / "report.json").read_text())["random_play"]
    # seeds 1 and 2 share a protocol, so their (identical) random games are one row; seed 3's is another
    assert [(r["sticky_action_prob"], r["mean"], r["games"]) for r in rows] == [(0.25, pytest.approx(-1 / 3), 3),
                                                                                (0.0, 5.0, 2)]
    assert all(r["published_random"] == pytest.approx(0.1) for r in rows)
    assert "## Random play under the runs' protocol" in text
    assert "| Boxing | eval-random.json | 0.25 | 3 | -0.333 ± 1.53 (0) | 0.1 |" in text


def test_sweep_evaluates_each_run_when_it_finishes_and_finished_runs_it_skips(tmp_path):
    from prend.experiments.sweep import SweepConfig, run_sweep

    flags = DEEP_SEA[2:DEEP_SEA.index("--method")] + DEEP_SEA[DEEP_SEA.index("--method") + 2:]
    cfg = SweepConfig(out=tmp_path / "sweep", methods="none", games="prend/DeepSea-v0", seeds="1", eval_episodes=3,
                      workers=1, threads_per_run=1)
    lines = []
    (result,) = run_sweep(cfg, flags, echo=lines.append)
    run = tmp_path / "sweep" / "prend_DeepSea-v0-none-s1"
    record = json.loads((run / "eval.json").read_text())
    assert result["state"] == "finished" and result["eval"] == "evaluated"
    assert record["complete"] and record["lengths"] == [SIZE] * 3 and record["checkpoint_step"] == 16
    (run / "eval.json").unlink()
    (again,) = run_sweep(cfg, flags, echo=lines.append)
    assert again["state"] == "skipped" and again["eval"] == "evaluated" and (run / "eval.json").is_file()
    assert (run / "train.log").read_text().count(" eval ") == 2  # both evaluations logged their command
