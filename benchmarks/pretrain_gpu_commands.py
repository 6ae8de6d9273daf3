"""The ``prend`` commands ``benchmarks/pretrain_gpu.py`` runs: the run's :class:`Options`, the ``prend collect``,
``prend pretrain`` and ``prend probe`` command lines built from them, which flags the installed prend has, and the
merging of separate probe runs' figures.

Part of ``benchmarks/pretrain_gpu.py`` (the entry point), split out by concept.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pretrain_gpu_budget import BUDGET_S, PROBE_S

PROBE_GAMES = ("boxing", "riverraid")
PROBE_FRAMES_PER_GAME = 36_000
PROBE_NUM_ENVS = 16
"""16 streams of 2,250 frames a game: whole episodes past the first screen (docs/pretraining.md section 3, "The
probe set"); the old 8 streams of 1,500 moved a state-probe figure by up to 0.09 with the probe seed."""
PROBE_SEED = 1


# -------------------------------------------------------------------------------------------------- prend
def pretrain_games() -> tuple[str, ...]:
    """prend's default collection games, with Boxing added if they lack it and Riverraid taken out if they have it.

    Atari-PB's split keeps Boxing among the pre-training games and Riverraid out; the probe measures both.
    """
    from prend.pretrain.collect import DEFAULT_COLLECT_GAMES

    games = tuple(g for g in DEFAULT_COLLECT_GAMES if g != "riverraid")
    return games if "boxing" in games else (*games, "boxing")


def prend_features() -> dict[str, Any]:
    """Which of the flags this script uses the installed prend has (they were added by parallel work).

    ``collect_ram``: ``prend collect --ram``; ``probe_state``: ``prend probe --state``; ``probe_classic_flag``:
    ``prend probe --no-classic``; ``objectives``: the values ``prend pretrain --objective`` accepts (``None``
    when they are not a ``Literal``).
    """
    from prend.pretrain.collect import CollectConfig
    from prend.pretrain.probe import ProbeConfig
    from prend.pretrain.trainer import PretrainConfig

    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    try:
        hint = typing.get_type_hints(PretrainConfig)["objective"]
        objectives = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None
    except Exception:  # an annotation that does not resolve here: let prend pretrain judge the value
        objectives = None
    probe_fields = names(ProbeConfig)
    return {"collect_ram": "ram" in names(CollectConfig), "probe_state": "state" in probe_fields,
            "probe_classic_flag": "classic" in probe_fields, "objectives": list(objectives) if objectives else None}


def frames_in(root: Path) -> int:
    """Frames stored in a ``prend collect`` directory (0 when it has no manifest)."""
    from prend.pretrain.collect import disk_usage, read_manifest

    if not (root / "manifest.json").is_file():
        return 0
    return int(disk_usage(read_manifest(root))["frames"])


def shown(command: Sequence[str]) -> str:
    """A command as a person would type it: ``prend ...`` for the interpreter running ``prend.cli``.

    Example:
        >>> shown(["/usr/bin/python3", "-m", "prend.cli", "probe", "a b.pt"])
        "prend probe 'a b.pt'"
    """
    args = list(command)
    if args[1:3] == ["-m", "prend.cli"]:
        args = ["prend", *args[3:]]
    return shlex.join(args)


# ------------------------------------------------------------------------------------------------ options
@dataclasses.dataclass
class Options:
    """What ``run`` does (the shell script's options, paths absolute)."""

    out: Path
    work: Path
    budget_s: float = BUDGET_S
    objective: str = "siammae"
    arch: str = "resnet18"
    width: float = 0.5
    batch_size: int = 512
    frames_per_game: int = 15_000
    num_envs: int = 16
    data: Path | None = None
    probe_data: Path | None = None
    probe_s: float = PROBE_S
    seed: int = 0
    device: str = "cuda"
    gpu: str = "?"
    pretrain_args: list[str] = dataclasses.field(default_factory=list)

    def frames_dir(self) -> Path:
        return self.data if self.data is not None else self.work / "frames"

    def probe_dir(self) -> Path:
        return self.probe_data if self.probe_data is not None else self.work / "probe_frames"


def prend_cli() -> list[str]:
    """How ``prend`` is started: this interpreter with ``-m prend.cli`` (no installed console script needed)."""
    return [sys.executable, "-m", "prend.cli"]


def collect_command(opts: Options, features: dict[str, Any]) -> list[str]:
    """``prend collect`` of the pre-training frames: the default games plus Boxing, never Riverraid."""
    return [*prend_cli(), "collect", "--out", str(opts.frames_dir()), "--games", *pretrain_games(),
            "--frames-per-game", str(opts.frames_per_game), "--num-envs", str(opts.num_envs),
            "--seed", str(opts.seed), "--no-progress"]


def probe_collect_command(opts: Options, features: dict[str, Any]) -> list[str]:
    """``prend collect`` of the held-out probe frames (docs/pretraining.md's set, with the RAM when prend can)."""
    command = [*prend_cli(), "collect", "--out", str(opts.probe_dir()), "--games", *PROBE_GAMES,
               "--frames-per-game", str(PROBE_FRAMES_PER_GAME), "--num-envs", str(PROBE_NUM_ENVS),
               "--seed", str(PROBE_SEED), "--no-progress"]
    return command + (["--ram"] if features["collect_ram"] else [])


def pretrain_command(opts: Options, run_dir: Path, steps: int, save_every_: int, log_every: int = 10,
                     max_frames_per_game: int | None = None) -> list[str]:
    """``prend pretrain`` on ``opts.device``; the probe is run separately (with ``--state``, in its own time)."""
    command = [*prend_cli(), "pretrain", "--objective", opts.objective, "--data", str(opts.frames_dir()),
               "--out", str(run_dir), "--arch", opts.arch, "--width", str(opts.width),
               "--batch-size", str(opts.batch_size), "--steps", str(steps), "--save-every", str(save_every_),
               "--log-every", str(log_every), "--device", opts.device, "--seed", str(opts.seed),
               "--probe-data", "None", "--no-progress"]
    if max_frames_per_game is not None:
        command += ["--max-frames-per-game", str(max_frames_per_game)]
    return command + list(opts.pretrain_args)


def probe_command(opts: Options, checkpoint: Path, out_json: Path, state: bool = False,
                  classic: bool = True) -> list[str]:
    """``prend probe`` of the exported backbone against its random-init twin on the probe frames.

    ``state`` adds ``--state`` (the RAM state probe), ``classic=False`` adds ``--no-classic`` (only that).
    """
    command = [*prend_cli(), "probe", str(checkpoint), "--data", str(opts.probe_dir()), "--out", str(out_json),
               "--device", opts.device, "--no-progress"]
    return command + (["--state"] if state else []) + ([] if classic else ["--no-classic"])


def probe_plan(opts: Options, checkpoint: Path, features: dict[str, Any]) -> list[tuple[str, list[str], Path]]:
    """``(name, command, JSON path)`` of the probes to run side by side.

    Both probes' classifiers are fitted on the CPU, one process each: with ``--no-classic`` in prend, the
    classic probe (temporal coherence, action and reward probes) and the state probe run as two processes, so
    a state probe that outlasts the budget does not cost the classic figures; else one ``--state`` probe (or a
    plain one when prend has no ``--state``).
    """
    work = opts.work
    if features.get("probe_state") and features.get("probe_classic_flag"):
        return [("probe", probe_command(opts, checkpoint, work / "probe-classic.json"), work / "probe-classic.json"),
                ("probe-state", probe_command(opts, checkpoint, work / "probe-state.json", state=True, classic=False),
                 work / "probe-state.json")]
    state = bool(features.get("probe_state"))
    return [("probe", probe_command(opts, checkpoint, work / "probe-classic.json", state=state),
             work / "probe-classic.json")]


def merge_figures(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One ``probe.json`` from the figures of separate probe runs (as one ``prend probe --state`` writes it).

    Example:
        >>> merge_figures([{"action_probe": 1, "details": {"frames": 9, "pool": 6}},
        ...                {"state_probe": 2, "details": {"frames": 9}}])
        {'action_probe': 1, 'state_probe': 2, 'details': {'frames': 9, 'pool': 6}}
    """
    merged: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for figures in parts:
        merged.update({k: v for k, v in figures.items() if k != "details"})
        details.update(figures.get("details", {}))
    merged["details"] = details
    return merged
