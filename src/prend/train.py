"""``prend train``: build a run from flags, a config file or a preset, or resume one; write its run directory.

A run directory holds ``config.json`` (the resolved config), ``metrics.jsonl`` (one record per
iteration), ``tb/`` (TensorBoard events), ``checkpoint.pt`` (everything needed to resume),
``diagnostics.npz`` (per-iteration frames and probe-set rewards for ``prend diagnose``) and
``run_info.json`` (what each start and resume ran with: versions, machine, command line and, for PreND,
the backbone weights file with its sha256).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from prend import __version__
from prend.agent.perf import cpu_info
from prend.agent.trainer import Trainer, write_json
from prend.checkpoint import FORMAT, atomic_torch_save, atomic_write, load_checkpoint, sha256_file
from prend.clihelp import cli
from prend.config import (
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config_file,
    preset_config,
    read_config_file,
)
from prend.envs.games import protocol_defaults, resolve_atari_game
from prend.errors import PrendError
from prend.metrics import MetricsLogger

CHECKPOINT = "checkpoint.pt"
RUN_INFO = "run_info.json"

DESCRIPTION = """Train PPO with two value heads and an intrinsic reward (RND, RND+LR or PreND) on an Atari game.

Extra flags, handled before the ones below:
  --preset {rnd-original,prend-paper,ppo-atari}  start from a preset's defaults (see docs/hyperparameters.md)
  --config FILE                        start from a JSON/TOML file of fields (nested tables or dotted)
  --resume DIR                         continue the run in DIR from its checkpoint (only --total-steps may
                                       be given with it, to extend the budget)

Flags given explicitly override the preset and the file."""


def _pop_flag(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag:
            if i + 1 >= len(argv):
                raise PrendError(f"{flag} needs a value")
            value = argv[i + 1]
            del argv[i:i + 2]
            return value
        if arg.startswith(flag + "="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None


def parse_train_args(argv: list[str], prog: str = "prend train") -> tuple[TrainConfig, Path | None]:
    """Turn command-line arguments into a config and, for ``--resume``, the run directory."""
    argv = list(argv)
    resume = _pop_flag(argv, "--resume")
    if resume is not None:
        total = _pop_flag(argv, "--total-steps")
        if argv:
            raise PrendError(f"unexpected flags with --resume: {' '.join(argv)}",
                             "a resumed run uses its saved config; only --total-steps may be given")
        run_dir = Path(resume)
        state = load_checkpoint(run_dir / CHECKPOINT)
        cfg = config_from_dict(json.loads(state["config"]))
        if total is not None:
            cfg.run.total_steps = _positive_int(total, "--total-steps")
        return cfg, run_dir
    config_file = _pop_flag(argv, "--config")
    preset = _pop_flag(argv, "--preset")
    base = load_config_file(config_file) if config_file else preset_config(preset or "rnd-original")
    if config_file and preset:
        base = config_from_dict(config_to_dict(base) | {"preset": preset})
    base = _with_game_defaults(base, _pop_flag(list(argv), "--game") or base.env.game,
                               read_config_file(config_file) if config_file else {})
    cfg = cli(TrainConfig, argv, prog, default=base, description=DESCRIPTION, config=(tyro.conf.OmitArgPrefixes,))
    return cfg.validate(), None


def _with_game_defaults(base: TrainConfig, game: str, file_fields: dict[str, Any]) -> TrainConfig:
    """``base`` with the protocol fields ``game`` sets differently (:data:`prend.envs.games.PROTOCOL_DEFAULTS`).

    They replace the preset's values but not those a config file sets; flags are applied after this.
    """
    defaults = protocol_defaults(game)
    file_env = file_fields.get("env", {})
    defaults = {k: v for k, v in defaults.items() if not (isinstance(file_env, dict) and k in file_env)}
    return config_from_dict({"env": defaults}, base) if defaults else base


def _positive_int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise PrendError(f"{flag} must be a positive integer, got '{text}'", f"pass e.g. {flag} 100000")
    return value


def default_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<game>-<method>-s<seed>``."""
    game = resolve_atari_game(cfg.env.game) or cfg.env.game.replace("/", "_")
    return Path("runs") / f"{game}-{cfg.intrinsic.method}-s{cfg.run.seed}"


def run_info(cfg: TrainConfig, perf: dict[str, Any] | None = None) -> dict[str, Any]:
    """What this process runs with: time, versions, machine, command line and PreND's backbone weights.

    The backbone entry names the weights file :func:`prend.intrinsic.prend.backbone_weights_file` resolves
    and its sha256, so a result can say which backbone made it even after the shipped one is replaced.
    ``cpu`` names the CPU and its vector extensions; ``perf`` is the trainer's speed choices
    (:func:`prend.agent.perf.choose_perf`), made anew at every start and resume.
    """
    from importlib import metadata

    from prend.intrinsic.prend import backbone_weights_file

    info: dict[str, Any] = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "prend": __version__,
                            "python": platform.python_version()}
    for package in ("torch", "ale-py", "gymnasium", "numpy"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    info |= {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": cpu_info(), "argv": sys.argv[1:]}
    if perf is not None:
        info["perf"] = perf
    if cfg.intrinsic.method == "prend":
        weights = backbone_weights_file(cfg.intrinsic)
        info["backbone"] = {"name": cfg.intrinsic.backbone, "weights": None if weights is None else str(weights),
                            "sha256": sha256_file(weights) if weights is not None and weights.is_file() else None}
    return info


def record_run_info(run_dir: Path, cfg: TrainConfig, resumed: bool, perf: dict[str, Any] | None = None) -> None:
    """Write ``run_info.json`` at a start; append this process's entry to its ``resumed`` list on a resume."""
    path = run_dir / RUN_INFO
    record: dict[str, Any] = {"started": None, "resumed": []}
    if resumed:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # a run from before run_info.json, or an unreadable one: keep going
            pass
        record.setdefault("resumed", []).append(run_info(cfg, perf))
    else:
        record["started"] = run_info(cfg, perf)
    atomic_write(path, lambda handle: handle.write((json.dumps(record, indent=2) + "\n").encode()))


def save_run_state(trainer: Trainer, run_dir: Path) -> None:
    """Write the checkpoint and the diagnostics file, each atomically."""
    atomic_torch_save({"format": FORMAT, "version": __version__, **trainer.state_dict()}, run_dir / CHECKPOINT)
    arrays = trainer.diagnostics_arrays()
    atomic_write(run_dir / "diagnostics.npz", lambda handle: np.savez_compressed(handle, **arrays))


def train(cfg: TrainConfig, resume_dir: Path | None = None) -> Path:
    """Run (or continue) training; returns the run directory."""
    if resume_dir is not None:
        run_dir = resume_dir
        state = load_checkpoint(run_dir / CHECKPOINT)
        trainer = Trainer(cfg)
        try:
            trainer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            trainer.close()
            first_line = str(err).strip().splitlines()[0][:160]
            raise PrendError(f"checkpoint in '{run_dir}' does not match its config ({first_line})",
                             "it was written by another prend version; start a new run") from None
        trainer.restart_envs()
        record_run_info(run_dir, cfg, resumed=True, perf=trainer.perf)
    else:
        run_dir = cfg.run.out or default_run_dir(cfg)
        if (run_dir / CHECKPOINT).exists():
            raise PrendError(f"run directory '{run_dir}' already holds a run",
                             f"continue it with --resume {run_dir}, or pass another --out")
        trainer = Trainer(cfg)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.run.out = run_dir
        write_json(run_dir / "config.json", config_to_dict(cfg))
        record_run_info(run_dir, cfg, resumed=False, perf=trainer.perf)
        trainer.start()
    logger = MetricsLogger(run_dir, resume_iteration=trainer.iteration if resume_dir else None,
                           resume_step=trainer.global_step, tensorboard=cfg.run.tensorboard)
    logger.add_text("config", "```\n" + json.dumps(config_to_dict(cfg), indent=2) + "\n```")
    stop = _StopFlag()
    progress = _progress(cfg, trainer.global_step)
    try:
        while trainer.global_step < cfg.run.total_steps and not stop.requested:
            record = trainer.train_iteration()
            logger.log(record)
            if progress is not None:
                progress.update(cfg.batch_size)
                progress.set_postfix_str(_postfix(record))
            if trainer.iteration % cfg.run.checkpoint_every == 0:
                save_run_state(trainer, run_dir)
        save_run_state(trainer, run_dir)
    finally:
        stop.restore()
        if progress is not None:
            progress.close()
        logger.close()
        trainer.close()
    if stop.requested:
        print(f"stopped at step {trainer.global_step}; continue with: prend train --resume {run_dir}", file=sys.stderr)
        raise SystemExit(130)
    return run_dir


def _progress(cfg: TrainConfig, initial: int):
    if not cfg.run.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.run.total_steps, initial=min(initial, cfg.run.total_steps), unit="step",
                unit_scale=True, dynamic_ncols=True, desc=f"{cfg.intrinsic.method} {cfg.env.game}")


def _postfix(record: dict) -> str:
    score = record.get("charts/score_mean_100", float("nan"))
    parts = [f"sps={record['charts/steps_per_second']:.0f}", f"score={score:.1f}"]
    if "intrinsic/raw_mean" in record:
        parts.append(f"r_int={record['intrinsic/raw_mean']:.3g}")
    return " ".join(parts)


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to stop after the current iteration (a second SIGINT stops at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this iteration (checkpointing)...", file=sys.stderr)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def load_policy(run_dir: str | Path):
    """The trained policy of a run (eval mode) and the run's config, from its checkpoint.

    Example use: ``policy, cfg = load_policy("runs/boxing-rnd-s1")``, then
    ``policy(obs_uint8[None], state, first[None]).logits`` for observations of ``cfg.env.game``.
    """
    from prend.nets.policy import make_policy

    state = load_checkpoint(Path(run_dir) / CHECKPOINT)
    cfg = config_from_dict(json.loads(state["config"]))
    num_actions = state["policy"]["heads.logits.weight"].shape[0]
    policy = make_policy(cfg.ppo.policy, cfg.env.frame_stack, num_actions,
                         intrinsic_head=cfg.intrinsic.method != "none")
    policy.load_state_dict(state["policy"])
    return policy.eval().requires_grad_(False), cfg


def train_command(argv: list[str], prog: str = "prend train") -> int:
    """``prend train``: parse, train, say where the results are."""
    cfg, resume_dir = parse_train_args(argv, prog)
    run_dir = train(cfg, resume_dir)
    print(f"done: {cfg.run.total_steps} agent steps; results in {run_dir}/ "
          f"(metrics.jsonl, tb/ for TensorBoard, checkpoint.pt)")
    return 0
