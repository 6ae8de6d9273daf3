"""``prend eval RUN...``: play a run's checkpoint for N games and write its scores to ``RUN/eval.json``.

Two protocols:

``run``
    the run's own environment protocol (its sticky actions, episode cap, no-op starts...), so the scores
    are those the training curve's ``charts/score_mean_100`` estimates, for the final policy alone.
``standard``
    Machado et al. (2018)'s recommendation for Atari: sticky actions 0.25, no no-op starts, the full game up
    to 108,000 emulator frames (27,000 agent steps at frame skip 4). The action set, frame skip and stack
    stay the run's: the policy was trained on them.

The policy samples its actions (``greedy``: takes the most probable one). ``policy="random"`` plays
uniformly random actions over the run's action set instead, under the same protocol: random play's score and
spread where the runs are played, which a published random score (no-op starts, other caps) is not; it needs
only the run's ``config.json``, so it also serves runs committed without their checkpoint. Each setting has
its own file: ``eval.json`` (run protocol, sampled actions), ``eval-greedy.json``, ``eval-standard.json``,
``eval-standard-greedy.json``, ``eval-random.json``, ``eval-standard-random.json``. Each holds every finished
game's score and length, their statistics and the human-normalised score of their mean
(:mod:`prend.experiments.scores`).

Parallel environments would favour short games if the first N to end were kept; here env i plays a fixed
quota of the N games (N // envs, one more for the first N % envs envs) and games past its quota are not
counted. The file is rewritten atomically after every step in which a counted game ended, so an interrupted
evaluation continues from the games it finished (games in progress are replayed from a new start). A file
made from an older checkpoint (training has gone on since) is replaced. ``prend eval`` takes the run's
``.eval.lock``, not training's ``.lock``: it can evaluate a run that is still training (its checkpoint is
replaced atomically, so it reads a whole one), and a second ``prend eval`` on the same run refuses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from prend import __version__
from prend.checkpoint import atomic_write
from prend.config import EnvConfig, TrainConfig, load_config_file
from prend.envs.games import resolve_atari_game
from prend.envs.vector import make_env
from prend.errors import PrendError
from prend.experiments.execution import prend_command
from prend.experiments.scores import SCORE_SOURCE, human_normalized, reference_scores
from prend.rundir import CHECKPOINT, CONFIG, EVAL_LOCK, RunDir, RunLock, describe_holder
from prend.train import TrainedAgent, load_agent

Protocol = Literal["run", "standard"]
Policy = Literal["trained", "random"]

STANDARD_FRAMES = 108_000
"""Emulator frames of the standard protocol's game cap (30 minutes at 60 Hz; Machado et al. 2018)."""
STANDARD_STICKY = 0.25
"""Sticky-action probability of the standard protocol (Machado et al. 2018)."""
EVAL_FILES = ("eval.json", "eval-greedy.json", "eval-standard.json", "eval-standard-greedy.json")
"""The evaluation files of a run's trained policy, one per (protocol, greedy) setting."""
RANDOM_FILES = ("eval-random.json", "eval-standard-random.json")
"""The files of random play under a run's protocol, one per protocol."""


def eval_file_name(protocol: Protocol, greedy: bool, policy: Policy = "trained") -> str:
    """The file of one evaluation setting.

    Example:
        >>> eval_file_name("run", False), eval_file_name("standard", True), eval_file_name("run", False, "random")
        ('eval.json', 'eval-standard-greedy.json', 'eval-random.json')
    """
    return ("eval" + ("-standard" if protocol == "standard" else "") + ("-greedy" if greedy else "")
            + ("-random" if policy == "random" else "") + ".json")


def eval_env_config(env: EnvConfig, protocol: Protocol, num_envs: int) -> EnvConfig:
    """The environment protocol of an evaluation: the run's, or the standard one on top of it (Atari only)."""
    if protocol == "standard":
        if resolve_atari_game(env.game) is None:
            raise PrendError(f"--protocol standard is the Atari protocol of Machado et al. (2018); "
                             f"'{env.game}' is not an Atari game", "evaluate it with --protocol run")
        env = dataclasses.replace(env, sticky_action_prob=STANDARD_STICKY, noop_max=0,
                                  max_episode_steps=STANDARD_FRAMES // env.frame_skip)
    return dataclasses.replace(env, num_envs=num_envs, game_kwargs=dict(env.game_kwargs))


def quotas(episodes: int, num_envs: int) -> np.ndarray:
    """Games each env plays: ``episodes`` split as evenly as possible over at most ``num_envs`` envs.

    Example:
        >>> quotas(10, 4).tolist(), quotas(2, 8).tolist()
        ([3, 3, 2, 2], [1, 1])
    """
    envs = max(1, min(num_envs, episodes))
    return np.array([episodes // envs + (i < episodes % envs) for i in range(envs)], dtype=np.int64)


def score_statistics(scores: list[float], game: str) -> dict[str, Any]:
    """Mean, sample sd (ddof 1; ``None`` for one game), median, min, max, games and HNS of the mean.

    Example:
        >>> stats = score_statistics([1.0, 2.0, 6.0], "Boxing")
        >>> stats["mean"], stats["sd"], stats["median"], round(stats["hns"], 4)
        (3.0, 2.6457513110645907, 2.0, 0.2417)
    """
    values = np.asarray(scores, dtype=np.float64)
    if len(values) == 0:
        return {"games": 0, "mean": None, "sd": None, "median": None, "min": None, "max": None, "hns": None}
    mean = float(values.mean())
    hns = human_normalized(game, mean)
    return {"games": int(len(values)), "mean": mean, "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
            "median": float(np.median(values)), "min": float(values.min()), "max": float(values.max()),
            "hns": None if math.isnan(hns) else hns}


def play_games(agent: TrainedAgent | None, env_cfg: EnvConfig, episodes: int, greedy: bool, seed: int,
               on_games: Callable[[list[tuple[float, int]]], None] | None = None) -> list[tuple[float, int]]:
    """Play ``episodes`` counted games with the agent's policy; returns (raw score, agent steps) of each.

    ``agent`` ``None`` plays uniformly random actions over the env's action set. Env i of the vector plays
    the first ``quotas(...)[i]`` games it finishes; ``on_games`` gets each step's newly counted games (for
    saving as they come). Envs are reset with ``seed`` (env i: ``seed + i``) and actions sampled from a
    generator seeded with ``seed``.
    """
    quota = quotas(episodes, env_cfg.num_envs)
    env = make_env(dataclasses.replace(env_cfg, num_envs=len(quota)))
    generator = torch.Generator().manual_seed(seed)
    counted = np.zeros(len(quota), dtype=np.int64)
    games: list[tuple[float, int]] = []
    try:
        obs = env.reset(seed)
        state = None if agent is None else agent.policy.initial_state(len(quota))
        first = torch.ones(len(quota), dtype=torch.bool)
        while (counted < quota).any():
            if agent is None:
                actions = torch.randint(env.num_actions, (len(quota),), generator=generator)
            else:
                with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=agent.config.ppo.bf16):
                    out = agent.policy(torch.from_numpy(obs)[None], state, first[None])
                logits = out.logits[0].float()
                actions = logits.argmax(-1) if greedy else torch.multinomial(
                    torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
                state = out.state
            step = env.step(actions.numpy())
            new = []
            for i, game in zip(np.flatnonzero(step.episode_end), step.finished, strict=True):
                if counted[i] < quota[i]:
                    counted[i] += 1
                    new.append(game)
            if new:
                games += new
                if on_games is not None:
                    on_games(new)
            obs, first = step.obs, torch.from_numpy(step.done)
    finally:
        env.close()
    return games


@dataclasses.dataclass
class EvalSettings:
    """How ``prend eval`` plays each run."""

    episodes: int = 30
    protocol: Protocol = "run"
    greedy: bool = False
    num_envs: int = 8
    seed: int = 0
    policy: Policy = "trained"


def find_eval_runs(paths: list[Path], need_checkpoint: bool = True) -> list[Path]:
    """The run directories named by ``paths``.

    Each path is a run, or a directory searched for runs with a checkpoint (without ``need_checkpoint``: for
    runs with a config).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if RunDir(path).config_path.is_file():
            found.append(path)
        elif not path.is_dir():
            raise PrendError(f"no run directory '{path}'", "pass a directory written by `prend train` or `prend sweep`")
        else:
            marker = CHECKPOINT if need_checkpoint else CONFIG
            runs = sorted(p.parent for p in path.rglob(marker) if (p.parent / CONFIG).is_file())
            if not runs:
                raise PrendError(f"no run with a {'checkpoint' if need_checkpoint else CONFIG} under '{path}'",
                                 "pass a run directory or a sweep directory whose runs have trained")
            found += runs
    return list(dict.fromkeys(found))


def read_eval(run_dir: Path, name: str = "eval.json") -> dict[str, Any] | None:
    """A run's evaluation file, or ``None`` when it has none (or it is unreadable)."""
    try:
        record = json.loads((Path(run_dir) / name).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def eval_complete(run_dir: Path, episodes: int, name: str = "eval.json") -> bool:
    """Whether a run's evaluation file is complete with at least ``episodes`` games.

    A sweep re-evaluates every run it trains further, so it asks this only of runs it left alone.
    """
    record = read_eval(run_dir, name)
    return bool(record and record.get("complete") and len(record.get("scores", [])) >= episodes)


def random_play(runs: list[tuple[str, Path]]) -> list[dict[str, Any]]:
    """Random play's complete records among ``(game, run_dir)`` pairs: one row per game and protocol.

    Runs of one game under one protocol play the same random games (the evaluation seed is shared), so the
    first run's record stands for them all; a game whose runs differ in protocol gets a row per protocol.
    """
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for game, run_dir in runs:
        for name in RANDOM_FILES:
            record = read_eval(run_dir, name)
            if not (record and record.get("complete")):
                continue
            key = (game, name, *(record.get(k) for k in ("sticky_action_prob", "max_episode_steps", "noop_max")))
            ref = reference_scores(game)
            rows.setdefault(key, {"game": game, "setting": name, "run": str(run_dir), **record["statistics"],
                                  "sticky_action_prob": record.get("sticky_action_prob"),
                                  "published_random": None if ref is None else ref[0]})
    return list(rows.values())


def _write(path: Path, record: dict[str, Any]) -> None:
    atomic_write(path, lambda handle: handle.write((json.dumps(record, indent=2) + "\n").encode()))


def evaluate_run(run_dir: Path, settings: EvalSettings, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate one run (or continue its evaluation); returns the written record."""
    run_dir = Path(run_dir)
    if not RunDir(run_dir).config_path.is_file():
        raise PrendError(f"'{run_dir}' is not a run directory (no {CONFIG})",
                         "pass a directory written by `prend train`")
    try:
        lock = RunLock(run_dir, EVAL_LOCK).acquire()
    except PrendError:
        who = describe_holder(run_dir, EVAL_LOCK) or "another process"
        raise PrendError(f"run '{run_dir}' is being evaluated by {who}",
                         "wait for that evaluation to finish; it writes the same file") from None
    try:
        for tmp in run_dir.glob(".eval*.json.*.tmp"):  # left by an interrupted write; nobody else writes them
            tmp.unlink(missing_ok=True)
        return _evaluate_locked(run_dir, settings, echo)
    finally:
        lock.release()


def _evaluate_locked(run_dir: Path, settings: EvalSettings, echo: Callable[[str], None]) -> dict[str, Any]:
    agent = None if settings.policy == "random" else load_agent(run_dir)
    cfg: TrainConfig = load_config_file(RunDir(run_dir).config_path) if agent is None else agent.config
    env_cfg = eval_env_config(cfg.env, settings.protocol, settings.num_envs)
    training = describe_holder(run_dir)
    if training and agent is not None:
        echo(f"note: '{run_dir}' is still training ({training}); evaluating its checkpoint at step "
             f"{agent.global_step:,}")
    path = run_dir / eval_file_name(settings.protocol, settings.greedy, settings.policy)
    setting = {"protocol": settings.protocol, "greedy": settings.greedy, "seed": settings.seed,
               "checkpoint_step": None if agent is None else agent.global_step,
               "sticky_action_prob": env_cfg.sticky_action_prob, "max_episode_steps": env_cfg.max_episode_steps,
               "noop_max": env_cfg.noop_max, "policy": settings.policy}
    record = read_eval(path.parent, path.name)
    # Files written before random play existed hold no "policy": theirs is the trained one.
    if record is not None and {k: record.get(k, "trained" if k == "policy" else None) for k in setting} != setting:
        echo(f"note: {path} was made with other settings or an older checkpoint (step "
             f"{record.get('checkpoint_step')}); evaluating anew")
        record = None
    ref = reference_scores(cfg.env.game)
    if record is None:
        record = {**setting, "game": cfg.env.game, "method": cfg.intrinsic.method, "run_seed": cfg.run.seed,
                  "scores": [], "lengths": [],
                  "reference": None if ref is None else {"random": ref[0], "human": ref[1], "source": SCORE_SOURCE}}
    done = len(record["scores"])

    def save(complete: bool) -> None:
        record.update(episodes=max(settings.episodes, len(record["scores"])), complete=complete,
                      statistics=score_statistics(record["scores"], cfg.env.game),
                      capped=sum(n >= env_cfg.max_episode_steps for n in record["lengths"]),
                      prend=__version__, time=datetime.now(UTC).isoformat(timespec="seconds"))
        _write(path, record)

    def add(games: list[tuple[float, int]]) -> None:
        record["scores"] += [score for score, _ in games]
        record["lengths"] += [length for _, length in games]
        save(complete=False)

    if done < settings.episodes:
        if done:
            echo(f"{run_dir}: continuing from {done} of {settings.episodes} games ({path.name})")
        # A continuation starts from other env seeds than the first part: its games are new games.
        play_games(agent, env_cfg, settings.episodes - done, settings.greedy, settings.seed + 1_000_003 * done, add)
    save(complete=True)
    echo(summary_line(run_dir, record))
    return record


def summary_line(run_dir: Path, record: dict[str, Any]) -> str:
    """One line of an evaluation: games, mean ± sd, median, min/max, HNS (or why none), setting."""
    s = record["statistics"]
    sd = f" ± {s['sd']:.4g}" if s["sd"] is not None else ""
    hns = f"HNS {s['hns']:.3f}" if s["hns"] is not None else f"no human/random reference for '{record['game']}'"
    capped = f", {record['capped']} cut at the cap" if record.get("capped") else ""
    if record.get("policy") == "random":
        policy = "uniformly random actions"
    else:
        policy = (f"{'greedy' if record['greedy'] else 'sampled'} actions, "
                  f"checkpoint step {record['checkpoint_step']:,}")
    return (f"{run_dir}: {s['games']} games{capped}: score {s['mean']:.4g}{sd} (median {s['median']:.4g}, "
            f"min {s['min']:.4g}, max {s['max']:.4g}); {hns} [{record['protocol']} protocol, {policy}]")


def evaluate(paths: list[Path], settings: EvalSettings, torch_threads: int = 0,
             echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Evaluate every run ``paths`` name, one after another; bad settings are refused before any game."""
    if settings.episodes < 1:
        raise PrendError(f"--episodes must be at least 1, got {settings.episodes}", "pass e.g. --episodes 30")
    if settings.num_envs < 1:
        raise PrendError(f"--num-envs must be at least 1, got {settings.num_envs}", "pass e.g. --num-envs 8")
    if settings.policy == "random" and settings.greedy:
        raise PrendError("--greedy takes the trained policy's most probable action; --policy random has no policy",
                         "drop --greedy")
    runs = find_eval_runs(paths, need_checkpoint=settings.policy == "trained")
    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    return [evaluate_run(run, settings, echo) for run in runs]


def eval_in_subprocess(run_dir: Path, episodes: int, threads: int, log: Path,
                       pythonpath: tuple[str, ...] = ()) -> dict[str, Any]:
    """``prend eval RUN --episodes N`` as a child process logging to ``log`` (``prend sweep --eval-episodes``).

    Started as a sweep's runs are (:func:`prend.experiments.execution.prend_command`, ``pythonpath`` first on
    its ``PYTHONPATH``): it resolves the run's method, so it must find a plug-in where the sweep did. Never
    raises: the result says ``evaluated`` or ``eval failed`` with the exit code.
    """
    command = prend_command("eval", str(run_dir), "--episodes", str(episodes), "--torch-threads", str(threads))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    with open(log, "a") as handle:
        handle.write(f"\n=== {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n")
        handle.flush()
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False).returncode
    return {"eval": "evaluated" if code == 0 else "eval failed", "eval_returncode": code}
