"""``prend train``: build a run from flags, a config file or a preset, or resume one; write its run directory.

A run directory holds ``config.json`` (the resolved config), ``metrics.jsonl`` (one record per
iteration), ``tb/`` (TensorBoard events), ``checkpoint.pt`` (everything needed to resume),
``diagnostics.npz`` (per-iteration frames and probe-set rewards for ``prend diagnose``) and
``run_info.json`` (what each start and resume ran with: versions, machine, command line and, for PreND,
the backbone weights file with its sha256), and ``.lock``, held while a ``prend train`` owns it.
:class:`prend.rundir.RunDir` owns that layout and writes the files; the guarantees are listed in
docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import tyro
from tqdm import tqdm

from prend import __version__
from prend.agent.perf import cpu_info
from prend.agent.ppo import first_nonfinite
from prend.agent.trainer import Trainer
from prend.checkpoint import FORMAT, checkpoint_config, load_checkpoint, read_checkpoint_config, sha256_file
from prend.clihelp import cli, pop_flag
from prend.config import (
    TrainConfig,
    config_from_dict,
    config_to_dict,
    read_config_file,
)
from prend.envs.games import protocol_defaults, resolve_atari_game
from prend.errors import PrendError, TrainingDiverged
from prend.intrinsic.base import DistillationReward
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.methods import resolve_method
from prend.intrinsic.pretrained import backbone_weights_file
from prend.metrics import MetricsLogger, truncate_metrics
from prend.nets.policy import make_policy
from prend.recorders import DiagnosticsRecorder
from prend.rundir import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    RAW_MEAN,
    SCORE,
    STEPS_PER_SECOND,
    TENSORBOARD,
    RunDir,
    RunLock,
    clear_unfinished_start,
    config_differences,
    prepare_out_dir,
    remove_temp_files,
)
from prend.signals import Interrupted, StopFlag

DESCRIPTION = """Train PPO with two value heads and an intrinsic reward (RND, RND+LR or PreND) on an Atari game.

Extra flags, handled before the ones below:
  --preset {rnd-original,prend-paper,ppo-atari}  start from a preset's defaults (see docs/hyperparameters.md)
  --config FILE                        start from a JSON/TOML file of fields (nested tables or dotted)
  --resume DIR                         continue the run in DIR from its checkpoint; only --total-steps (to
                                       extend the budget) and how it computes may be given with it:
                                       --torch-threads, --memory-format, --micro-batch, --env-threads, --device

Flags given explicitly override the preset and the file."""


RESUME_FIELDS = {"--torch-threads": "run.torch_threads", "--memory-format": "run.memory_format",
                 "--micro-batch": "run.micro_batch", "--env-threads": "env.env_threads", "--device": "run.device"}
"""The flags ``--resume`` takes besides ``--total-steps``, and the config fields they set: where and how fast the
run computes, not what it learns (a resume on a GPU, on more cores, or with the speed choices of an earlier start
pinned: the trainer times them anew at every start and resume, and the update's micro-batches change float
rounding, docs/performance.md). Each holds from this resume on: the checkpoints it writes keep it."""
RESUME_FLAGS = tuple(RESUME_FIELDS)


def parse_train_args(argv: list[str], prog: str = "prend train",
                     fields: dict[str, Any] | None = None) -> tuple[TrainConfig, Path | None]:
    """Turn command-line arguments into a config and, for ``--resume``, the run directory.

    ``fields`` (a nested table of config fields) takes the place of a ``--config`` file's: what a file
    holding them would give is what this gives, which is how ``prend sweep`` resolves the config its run's
    ``--config`` file will give.
    """
    argv = list(argv)
    resume = pop_flag(argv, "--resume")
    if resume is not None:
        total = pop_flag(argv, "--total-steps")
        unexpected = [arg for arg in argv if arg.startswith("--") and arg.split("=", 1)[0] not in RESUME_FLAGS]
        if unexpected:
            raise PrendError(f"unexpected flags with --resume: {' '.join(unexpected)}",
                             "a resumed run uses its saved config; only --total-steps and how it computes ("
                             + ", ".join(RESUME_FLAGS) + ") may be given")
        run_dir = Path(resume)
        cfg = config_from_dict(read_checkpoint_config(RunDir(run_dir).checkpoint_path))
        if argv:
            cfg = cli(TrainConfig, argv, prog, default=cfg, description=DESCRIPTION,
                      config=(tyro.conf.OmitArgPrefixes,)).validate()
        if total is not None:
            cfg.run.total_steps = _positive_int(total, "--total-steps")
        resolve_method(cfg.intrinsic.method)  # a plug-in no longer importable: one line, before the run is locked
        return cfg, run_dir
    config_file = pop_flag(argv, "--config")
    preset = pop_flag(argv, "--preset")
    if config_file is not None and fields is not None:
        raise ValueError("pass either --config or fields")
    file_fields = read_config_file(config_file) if config_file else dict(fields or {})
    # Layers, lowest first: the preset (--preset, else the file's, else rnd-original), the file's fields, flags.
    base = config_from_dict(file_fields | ({"preset": preset} if preset else {}))
    base = _with_game_defaults(base, pop_flag(list(argv), "--game") or base.env.game, file_fields)
    cfg = cli(TrainConfig, argv, prog, default=base, description=DESCRIPTION, config=(tyro.conf.OmitArgPrefixes,))
    resolve_method(cfg.intrinsic.method)  # an unknown method, from a flag, a file or a sweep: one line, here
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
    """``runs/<game>-<method>-s<seed>``, by the method's name (a plug-in's own, not the string that finds it)."""
    game = resolve_atari_game(cfg.env.game) or cfg.env.game.replace("/", "_")
    name = resolve_method(cfg.intrinsic.method).name.replace(":", "_")
    return Path("runs") / f"{game}-{name}-s{cfg.run.seed}"


PACKAGE_DIR = Path(__file__).resolve().parent
"""The folder prend's modules are imported from."""


def source_commit(package_dir: Path = PACKAGE_DIR) -> str | None:
    """The git commit of the checkout prend runs from (``+dirty`` when its tracked files differ from it).

    ``None`` when the package is not a tracked part of a git checkout (an installed wheel, even one inside
    some other repository), or git is missing or slow.
    """

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(package_dir), *args], capture_output=True, text=True, timeout=10)

    try:
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return None
        commit = git("rev-parse", "HEAD").stdout.strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def run_info(cfg: TrainConfig, perf: dict[str, Any] | None = None) -> dict[str, Any]:
    """What this process runs with: time, versions, code commit, machine, command line and the backbone.

    ``commit`` is :func:`source_commit`: the git commit of the checkout prend runs from, or ``None``.

    The backbone entry, for a method that reads ``intrinsic.backbone`` (PreND), names the weights file
    :func:`prend.intrinsic.pretrained.backbone_weights_file` resolves and its sha256, so a result can say which
    backbone made it even after the shipped one is replaced.
    ``cpu`` names the CPU and its vector extensions; ``perf`` is the trainer's speed choices
    (:func:`prend.agent.perf.choose_perf`), made anew at every start and resume.
    """
    info: dict[str, Any] = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "prend": __version__,
                            "commit": source_commit(), "python": platform.python_version()}
    for package in ("torch", "ale-py", "gymnasium", "numpy"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    info |= {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": cpu_info(), "argv": sys.argv[1:]}
    if perf is not None:
        info["perf"] = perf
    if resolve_method(cfg.intrinsic.method).reads("backbone", cfg.intrinsic):
        weights = backbone_weights_file(cfg.intrinsic)
        info["backbone"] = {"name": cfg.intrinsic.backbone, "weights": None if weights is None else str(weights),
                            "sha256": sha256_file(weights) if weights is not None and weights.is_file() else None}
    return info


def record_run_info(run_dir: Path, cfg: TrainConfig, resumed: bool, perf: dict[str, Any] | None = None) -> None:
    """Write ``run_info.json`` at a start; append this process's entry to its ``resumed`` list on a resume."""
    run = RunDir(run_dir)
    record: dict[str, Any] = {"started": None, "resumed": []}
    if resumed:
        record = run.run_info() or record  # None: a run from before run_info.json, or an unreadable one
        record.setdefault("resumed", []).append(run_info(cfg, perf))
    else:
        record["started"] = run_info(cfg, perf)
    run.write_run_info(record)


def save_run_state(trainer: Trainer, run_dir: Path) -> None:
    """Write the checkpoint and the diagnostics file, each atomically, after checking the state is finite.

    A state holding NaN or inf raises :class:`TrainingDiverged` instead, so the last good checkpoint stays.
    """
    state = trainer.state_dict()
    bad = first_nonfinite(_named_tensors(state, ("policy", "intrinsic")))
    if bad is not None:
        raise TrainingDiverged(f"non-finite {bad} in the state to checkpoint")
    run = RunDir(run_dir)
    run.write_checkpoint({"format": FORMAT, "version": __version__, **state})
    recorders = [cb for cb in trainer.callbacks if isinstance(cb, DiagnosticsRecorder)]
    if recorders:
        run.write_diagnostics(recorders[0].arrays())


def _named_tensors(state: Any, keys: tuple[str, ...] | None = None, prefix: str = ""):
    """``(dotted name, tensor)`` of every tensor in a nested state dict (only the top-level ``keys`` if given)."""
    if isinstance(state, torch.Tensor):
        yield prefix.rstrip("."), state
    elif isinstance(state, dict):
        for key, value in state.items():
            if keys is None or key in keys:
                yield from _named_tensors(value, None, f"{prefix}{key}.")


CONFIG_RESUME_IGNORED = frozenset({"run.total_steps", "run.out", *RESUME_FIELDS.values()})
"""Fields of ``config.json`` that may differ from the checkpoint's config (a resume extends the budget, a run
directory may be moved, and a resume may change how it computes: :data:`RESUME_FIELDS`)."""


def _check_config_file(run_dir: Path, saved: dict[str, Any]) -> None:
    """Refuse a resume whose ``config.json`` was edited: the checkpoint's config is what the run trains with."""
    run = RunDir(run_dir)
    path = run.config_path
    try:
        on_disk = run.config_file()
    except FileNotFoundError:
        return  # rewritten from the checkpoint below
    except (OSError, ValueError) as err:
        raise PrendError(f"'{path}' cannot be read ({err})",
                         "delete it: a resume rewrites it from the checkpoint") from None
    differ = config_differences(on_disk if isinstance(on_disk, dict) else {}, saved, CONFIG_RESUME_IGNORED)
    if differ:
        shown = ", ".join(f"{k} ({json.dumps(theirs)} in {CONFIG}, {json.dumps(ours)} in the checkpoint)"
                          for k, theirs, ours in differ[:3])
        shown += f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise PrendError(f"'{path}' was edited and disagrees with the checkpoint: {shown}",
                         f"a run keeps the config it started with: undo the edit (or delete {CONFIG}) to resume, "
                         "or start a new run with another --out")


def train(cfg: TrainConfig, resume_dir: Path | None = None) -> Path:
    """Run (or continue) training; returns the run directory.

    The run directory is checked and locked before any set-up, and stays locked until this returns; a
    second ``prend train`` on it fails at once (see :mod:`prend.rundir`). SIGINT/SIGTERM during set-up stop
    at once (nothing to save yet); during training they stop after the current iteration, with a checkpoint,
    and a second one stops at once (:mod:`prend.signals`). Both exit with ``128 + signal`` (130, 143).
    """
    run_dir = Path(resume_dir if resume_dir is not None else cfg.run.out or default_run_dir(cfg))
    run = RunDir(run_dir)
    if resume_dir is not None:
        if not run.checkpoint_path.is_file():
            raise PrendError(f"no checkpoint at '{run.checkpoint_path}'",
                             "pass the run directory of a run that wrote one")
        created = False
    else:
        created = not run_dir.exists()
        prepare_out_dir(run_dir)
    lock = RunLock(run_dir).acquire()
    with StopFlag("stopping after this iteration (checkpointing)...", deferring=False) as stop:
        try:
            return _train_locked(cfg, run_dir, resume_dir is not None, stop)
        except Interrupted as sig:
            print(f"\nstopped by {sig.name} during {'training' if stop.deferring else 'set-up'}; "
                  + (f"continue with: prend train --resume {run_dir}" if run.has_checkpoint()
                     else "no checkpoint was written: run the same command again"), file=sys.stderr)
            raise SystemExit(128 + sig.signum) from None
        except BaseException:
            if created and not run.config_path.exists():  # failed before writing anything: leave no trace
                lock.release()
                run.lock_path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    run_dir.rmdir()
            raise
        finally:
            lock.release()


def _train_locked(cfg: TrainConfig, run_dir: Path, resume: bool, stop: StopFlag) -> Path:
    """:func:`train` with the run directory locked."""
    run = RunDir(run_dir)
    remove_temp_files(run_dir)
    if resume:
        state = load_checkpoint(run.checkpoint_path)
        saved = checkpoint_config(state, run.checkpoint_path)
        _check_config_file(run_dir, saved)
        bad = first_nonfinite(_named_tensors(state, ("policy", "intrinsic")))
        if bad is not None:
            raise PrendError(f"checkpoint in '{run_dir}' holds non-finite values ({bad})",
                             "it was written before prend checked for NaN; start a new run with another --out")
        trainer = Trainer(cfg, callbacks=[DiagnosticsRecorder()])
        try:
            trainer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            trainer.close()
            raise _mismatch_error(run_dir, state, err) from None
        del state
        trainer.restart_envs()
        note = truncate_metrics(run.metrics_path, trainer.iteration).message(run.metrics_path)
        if note:
            print(note, file=sys.stderr)
        run.write_config(config_to_dict(cfg))
        record_run_info(run_dir, cfg, resumed=True, perf=trainer.perf)
    else:
        if run.has_checkpoint():
            raise PrendError(f"run directory '{run_dir}' already holds a run",
                             f"continue it with --resume {run_dir}, or pass another --out")
        if clear_unfinished_start(run_dir):
            print(f"note: '{run_dir}' held a start that never reached its first checkpoint; starting afresh",
                  file=sys.stderr)
        trainer = Trainer(cfg, callbacks=[DiagnosticsRecorder()])
        cfg.run.out = run_dir
        run.write_config(config_to_dict(cfg))
        record_run_info(run_dir, cfg, resumed=False, perf=trainer.perf)
    try:
        if not resume:
            trainer.start()
        logger = MetricsLogger(run.metrics_path, run.tensorboard_dir if cfg.run.tensorboard else None,
                               resume_iteration=trainer.iteration if resume else None, resume_step=trainer.global_step)
    except BaseException:
        trainer.close()
        raise
    logger.add_text("config", "```\n" + json.dumps(config_to_dict(cfg), indent=2) + "\n```")
    progress = _progress(cfg, trainer.global_step)
    stop.defer()
    try:
        while trainer.global_step < cfg.run.total_steps and stop.raised is None:
            try:
                record = trainer.train_iteration()
            except TrainingDiverged as err:
                raise _diverged(err, trainer.iteration + 1, run_dir) from None
            logger.log(record)
            if progress is not None:
                progress.update(cfg.batch_size)
                progress.set_postfix_str(_postfix(record))
            if trainer.iteration % cfg.run.checkpoint_every == 0:
                _checkpoint(trainer, run_dir, logger)
        _checkpoint(trainer, run_dir, logger)
    finally:
        if progress is not None:
            progress.close()
        logger.close()
        trainer.close()
    if stop.raised is not None:
        print(f"stopped at step {trainer.global_step}; continue with: prend train --resume {run_dir}", file=sys.stderr)
        raise SystemExit(128 + stop.raised)
    return run_dir


def _checkpoint(trainer: Trainer, run_dir: Path, logger: MetricsLogger) -> None:
    logger.sync()  # every record the checkpoint counts is on disk before it
    try:
        save_run_state(trainer, run_dir)
    except TrainingDiverged as err:
        raise _diverged(err, trainer.iteration, run_dir) from None


def _diverged(err: TrainingDiverged, iteration: int, run_dir: Path) -> TrainingDiverged:
    try:
        last = load_checkpoint(RunDir(run_dir).checkpoint_path)["iteration"]
        kept = f"its last good checkpoint (iteration {last}) is kept"
    except PrendError:
        kept = "no checkpoint was written"
    return TrainingDiverged(f"training diverged at iteration {iteration}: {err}; the run stopped and {kept}",
                            "lower --learning-rate or --predictor-lr-scale, or set --max-grad-norm, in a new run")


def _mismatch_error(run_dir: Path, state: dict[str, Any], err: Exception) -> PrendError:
    """Why a checkpoint does not load into the networks its config builds, blaming a version only when they differ."""
    first_line = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    written_by = state.get("version")
    if written_by != __version__:
        return PrendError(f"checkpoint in '{run_dir}' was written by prend {written_by} and does not load into "
                          f"prend {__version__} ({first_line})",
                          f"resume it with prend {written_by}, or start a new run")
    return PrendError(f"checkpoint in '{run_dir}' does not match its config ({first_line})",
                      "the file was modified after prend wrote it; restore it from a copy or start a new run")


def _progress(cfg: TrainConfig, initial: int):
    if not cfg.run.progress:
        return None
    return tqdm(total=cfg.run.total_steps, initial=min(initial, cfg.run.total_steps), unit="step",
                unit_scale=True, dynamic_ncols=True, desc=f"{resolve_method(cfg.intrinsic.method).name} {cfg.env.game}")


def _postfix(record: dict) -> str:
    score = record.get(SCORE, float("nan"))
    parts = [f"sps={record[STEPS_PER_SECOND]:.0f}", f"score={score:.1f}"]
    if RAW_MEAN in record:
        parts.append(f"r_int={record[RAW_MEAN]:.3g}")
    return " ".join(parts)


@dataclass
class TrainedAgent:
    """What a run's checkpoint holds for playing: the policy, the reward module, the config and the counters."""

    policy: torch.nn.Module
    """The trained policy, in eval mode, without gradients."""
    intrinsic: DistillationReward | None
    """The intrinsic-reward module with its trained predictor and normalisers (``None`` for plain PPO, or when
    not asked for)."""
    config: TrainConfig
    global_step: int
    """Agent steps the checkpoint had trained for."""
    iteration: int


def load_agent(run_dir: str | Path, intrinsic: bool = False) -> TrainedAgent:
    """A run's trained agent from its checkpoint (:class:`PrendError` when it has none or it is unreadable).

    With ``intrinsic``, the reward module is built as the trainer builds it and loaded with the checkpoint's
    state, so it computes the same rewards the run's last iteration would have.
    """
    run = RunDir(run_dir)
    if not run.checkpoint_path.is_file():
        raise PrendError(f"run '{run.path}' has no checkpoint yet",
                         "let it train to its first checkpoint (every --checkpoint-every iterations), "
                         "or pass another run directory")
    state = load_checkpoint(run.checkpoint_path)
    cfg = config_from_dict(checkpoint_config(state, run.checkpoint_path))
    num_actions = state["policy"]["heads.logits.weight"].shape[0]
    policy = make_policy(cfg.ppo.policy, cfg.env.frame_stack, num_actions,
                         intrinsic_head=resolve_method(cfg.intrinsic.method).intrinsic_head)
    policy.load_state_dict(state["policy"])
    module = None
    if intrinsic and resolve_method(cfg.intrinsic.method).intrinsic_head:
        module = make_intrinsic(cfg.intrinsic, cfg.env.num_envs, cfg.ppo.gamma_int, resolve_atari_game(cfg.env.game))
        module.load_state_dict(state["intrinsic"])
        module.eval().requires_grad_(False)
    return TrainedAgent(policy.eval().requires_grad_(False), module, cfg, int(state["global_step"]),
                        int(state["iteration"]))


def load_policy(run_dir: str | Path):
    """The trained policy of a run (eval mode) and the run's config, from its checkpoint.

    Example use: ``policy, cfg = load_policy("runs/boxing-rnd-s1")``, then
    ``policy(obs_uint8[None], state, first[None]).logits`` for observations of ``cfg.env.game``.
    """
    agent = load_agent(run_dir)
    return agent.policy, agent.config


def train_command(argv: list[str], prog: str = "prend train") -> int:
    """``prend train``: parse, train, say where the results are."""
    cfg, resume_dir = parse_train_args(argv, prog)
    run_dir = train(cfg, resume_dir)
    print(f"done: {cfg.run.total_steps} agent steps; results in {run_dir}/ "
          f"({METRICS}, {TENSORBOARD}/ for TensorBoard, {CHECKPOINT})")
    return 0
