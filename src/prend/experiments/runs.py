"""Finding run directories, reading them, and naming the groups runs are compared in.

A run directory is what ``prend train`` writes (``config.json``, ``metrics.jsonl``, ``diagnostics.npz``,
``checkpoint.pt``...), read here only through :class:`prend.rundir.RunDir`. Runs are grouped by game and
by a *label*: the method, plus every config field whose value differs between the runs given (the seed, the
output path and the thread counts excepted), e.g. ``rnd-lr predictor_lr_scale=0.1`` when a sweep varied the
predictor's learning-rate scale. A run's label starts with its method's name and leaves out fields the
method ignores (:meth:`prend.intrinsic.methods.IntrinsicMethod.unused_fields`: RND's shared optimizer has no
``predictor_lr_scale``, the shipped backbone no ``backbone_width``). A sweep that changes one field at a time
around a base (``--grid-mode each``) is labelled by the field each run changes, its base runs by the method
alone (``prend``, ``prend feature_norm=True``, ...).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from prend.config import config_from_dict
from prend.envs.games import resolve_atari_game
from prend.errors import PrendError
from prend.intrinsic.methods import PLUGIN_ORDER, IntrinsicMethod, method_by_name, resolve_method
from prend.rundir import BOOKKEEPING_FIELDS, CONFIG, FRAMES, METRICS, SCORE, Diagnostics, RunDir, flatten

IGNORED_FIELDS = BOOKKEEPING_FIELDS | {"run.seed", "env.game", "intrinsic.method"}
"""Config fields that never distinguish groups: seeds are what a group averages over, game and method are
named by themselves, the rest is bookkeeping (:data:`prend.rundir.BOOKKEEPING_FIELDS`)."""


@dataclass
class Run:
    """One run directory, read lazily."""

    path: Path
    config: dict[str, Any]
    label: str = ""
    """The group label (set by :func:`label_runs`)."""
    name: str = ""
    """A short unique name for file names (set by :func:`label_runs`)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def game(self) -> str:
        """The game as configured (e.g. ``Boxing``)."""
        return str(self.config["env"]["game"])

    @property
    def game_key(self) -> str:
        """A canonical game name (``Boxing`` for ``boxing``, ``ALE/Boxing-v5``...), so spellings agree."""
        rom = resolve_atari_game(self.game)
        return "".join(part.capitalize() for part in rom.split("_")) if rom else self.game

    @property
    def method(self) -> str:
        """The method as configured: ``rnd``, ``rnd-lr``, ``prend``, ``none``, or a plug-in's name or spec."""
        return str(self.config["intrinsic"]["method"])

    @cached_property
    def declaration(self) -> IntrinsicMethod:
        """The method's declaration (a stand-in named as configured when a plug-in cannot be imported here)."""
        return resolve_method(self.method, strict=False)

    @property
    def seed(self) -> int:
        """The run's seed."""
        return int(self.config["run"]["seed"])

    @property
    def total_steps(self) -> int:
        """The configured budget in agent steps."""
        return int(self.config["run"]["total_steps"])

    @property
    def rundir(self) -> RunDir:
        """The run directory's files."""
        return RunDir(self.path)

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (NaN for null)."""
        return self.rundir.metrics()

    @property
    def frames(self) -> int:
        """Emulator frames the run has trained for (its last record's)."""
        return int(self.metrics[-1].get(FRAMES, 0))

    def series(self, key: str) -> np.ndarray:
        """One metric over iterations (NaN where a record lacks it)."""
        return np.array([float(r.get(key, math.nan)) for r in self.metrics], dtype=np.float64)

    @cached_property
    def diagnostics(self) -> Diagnostics | None:
        """The run's ``diagnostics.npz``, or ``None`` if it has none."""
        return self.rundir.diagnostics()


def load_run(path: str | Path) -> Run:
    """Read a run directory; :class:`PrendError` if it is not one or has no metrics yet."""
    path = Path(path)
    if not path.is_dir():
        raise PrendError(f"'{path}' is not a directory", "pass a run directory written by `prend train`")
    if not RunDir(path).is_run():
        raise PrendError(f"'{path}' is not a run directory (no {CONFIG} and {METRICS})",
                         "pass a directory written by `prend train` (or a sweep directory holding some)")
    try:
        run = Run(path, RunDir(path).config())
        _ = run.game, run.method, run.seed
        records = run.metrics
    except (ValueError, KeyError, TypeError) as err:
        raise PrendError(f"run directory '{path}' cannot be read ({err})",
                         "it was not written by this prend version, or a file was cut short") from None
    if not records:
        raise PrendError(f"run '{path}' has no metrics yet ({METRICS} is empty)",
                         "let it train for at least one iteration")
    return run


def find_runs(paths: list[Path], allow_empty: bool = False) -> list[Run]:
    """The runs named by ``paths``: each a run directory, or a directory searched recursively for them.

    A run directory reached twice (named and also under a named directory, or named twice) is read once.

    Args:
        paths: run directories or directories holding them (e.g. a sweep directory).
        allow_empty: within a searched directory, skip runs with no metrics yet instead of failing (a sweep
            still in progress); a run directory named directly must always have metrics.
    """
    runs: list[Run] = []
    read: set[Path] = set()

    def first_time(run_dir: Path) -> bool:
        key = run_dir.resolve()
        if key in read:
            return False
        read.add(key)
        return True

    for path in paths:
        path = Path(path)
        if RunDir(path).config_path.is_file():
            if first_time(path):
                runs.append(load_run(path))
            continue
        if not path.is_dir():
            raise PrendError(f"'{path}' does not exist", "pass a run directory or a sweep directory")
        found = sorted(p.parent for p in path.rglob(METRICS) if RunDir(p.parent).is_run())
        if not found:
            raise PrendError(f"no run directories under '{path}'",
                             "pass a directory written by `prend train` or `prend sweep`")
        for run_dir in filter(first_time, found):
            try:
                runs.append(load_run(run_dir))
            except PrendError:
                if not allow_empty:
                    raise
    if not runs:
        raise PrendError("none of the runs has metrics yet", "let them train for at least one iteration")
    return label_runs(runs)


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def varying_fields(runs: list[Run]) -> list[str]:
    """Config fields (dotted) whose values differ between runs, other than :data:`IGNORED_FIELDS`."""
    flats = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flats) - IGNORED_FIELDS)
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


def _unused_intrinsic_fields(run: Run) -> frozenset[str]:
    """The intrinsic fields a run's method ignores with its saved config (none if the config does not parse)."""
    try:
        return run.declaration.unused_fields(config_from_dict(run.config).intrinsic)
    except PrendError:  # a config from another prend version: label by every varying field
        return frozenset()


def _one_at_a_time_base(runs: list[Run], fields: list[str]) -> dict[str, str] | None:
    """The base values of a one-factor-at-a-time design over ``fields``, or None if ``runs`` are not one.

    A design is one-factor-at-a-time (``prend sweep --grid-mode each``) when at least two fields vary, each has
    one value held by more than half of the runs (the base), no run differs from the base in more than one
    field, and some run differs from it. Values are compared as JSON.
    """
    if len(fields) < 2:
        return None
    flats = [{k: json.dumps(flatten(r.config).get(k), sort_keys=True) for k in fields} for r in runs]
    base = {}
    for k in fields:
        values = [f[k] for f in flats]
        top = max(set(values), key=values.count)
        if 2 * values.count(top) <= len(values):
            return None
        base[k] = top
    changes = [sum(f[k] != base[k] for k in fields) for f in flats]
    if max(changes) != 1:  # a run changing two fields is no such design; nor are runs that all share one config
        return None
    return base


def _explained_by_preset(runs: list[Run], fields: list[str], unused: dict[int, set[str]]) -> set[str]:
    """The varying fields that the ``preset`` field explains: within each preset's runs they take one value.

    Runs from two presets (``ppo-atari`` and ``rnd-original``) differ in a dozen fields; naming the preset says
    all of them. A field that also varies within one preset's runs (a flag given on top) is not explained.
    Runs that ignore a field (:func:`_unused_intrinsic_fields`) do not count for it.
    """
    if "preset" not in fields:
        return set()
    flats = [(flatten(r.config), r) for r in runs]
    explained = set()
    for k in fields:
        if k == "preset":
            continue
        values: dict[str, set[str]] = {}
        for flat, run in flats:
            if k not in unused[id(run)]:
                values.setdefault(str(flat.get("preset")), set()).add(json.dumps(flat.get(k), sort_keys=True))
        if all(len(v) == 1 for v in values.values()):
            explained.add(k)
    return explained


def label_runs(runs: list[Run]) -> list[Run]:
    """Set each run's group ``label`` and unique ``name``; returns the runs sorted by game, label, seed.

    The label is the method plus every varying field's value, except that fields a varying ``preset`` explains
    are named by the preset alone (:func:`_explained_by_preset`: ``rnd preset=ppo-atari``, not the dozen
    fields that preset changes), and in a one-factor-at-a-time design (:func:`_one_at_a_time_base`, per
    method) a label names only the field a run changes and the base runs carry the method alone, e.g.
    ``prend`` and ``prend feature_norm=True``.
    """
    fields = varying_fields(runs)
    unused = {id(r): {f"intrinsic.{name}" for name in _unused_intrinsic_fields(r)} for r in runs}
    explained = _explained_by_preset(runs, fields, unused)
    fields = [k for k in fields if k not in explained]
    bases: dict[str, dict[str, str] | None] = {}
    for method in {r.method for r in runs}:
        same = [r for r in runs if r.method == method]
        used = [k for k in fields if not all(k in unused[id(r)] for r in same)]
        bases[method] = _one_at_a_time_base(same, used)
    for run in runs:
        flat = flatten(run.config)
        base = bases[run.method]
        shown = [k for k in fields if k not in unused[id(run)]
                 and (base is None or (k in base and json.dumps(flat.get(k), sort_keys=True) != base[k]))]
        run.label = " ".join([run.declaration.name] + [f"{k.split('.')[-1]}={_format(flat.get(k))}" for k in shown])
    rank = {label: i for i, label in enumerate(method_order([r.label for r in runs]))}
    runs.sort(key=lambda r: (r.game_key, rank[r.label], r.seed, str(r.path)))
    seen: dict[str, int] = {}
    for run in runs:
        base = f"{run.game_key}-{run.label.replace(' ', '-').replace('=', '')}-s{run.seed}"
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in base)
        seen[base] = seen.get(base, 0) + 1
        run.name = base if seen[base] == 1 else f"{base}-{seen[base]}"
    return runs


def final_score(run: Run) -> float:
    """The score at a run's last iteration (NaN if no game has ended yet)."""
    return float(run.series(SCORE)[-1])


def group_runs(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs keyed by (game, label), in the order of :func:`label_runs`."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.game_key, run.label), []).append(run)
    return groups


def repeated_seeds(runs: list[Run]) -> list[dict[str, Any]]:
    """Per (game, group) and seed trained by more than one run: the runs' paths.

    Each run counts as one sample of its group, so two runs of one seed (a rerun beside the run it repeats, the
    same run copied to two folders) make the group look like more seeds than it has.
    """
    out = []
    for (game, label), members in group_runs(runs).items():
        by_seed: dict[int, list[Run]] = {}
        for run in members:
            by_seed.setdefault(run.seed, []).append(run)
        out += [{"game": game, "label": label, "seed": seed, "paths": [str(r.path) for r in same]}
                for seed, same in by_seed.items() if len(same) > 1]
    return out


def method_order(labels: list[str]) -> list[str]:
    """Labels by their method's :attr:`~prend.intrinsic.methods.IntrinsicMethod.order`, then alphabetically.

    Built-ins sort rnd, rnd-lr, prend, then plug-ins (those resolved in this process by their own order, others
    at :data:`~prend.intrinsic.methods.PLUGIN_ORDER`), then none.

    Example:
        >>> method_order(["none", "prend", "my-bonus", "rnd-lr", "rnd"])
        ['rnd', 'rnd-lr', 'prend', 'my-bonus', 'none']
    """
    def rank(label: str) -> tuple[int, str]:
        method = method_by_name(label.split(" ")[0])
        return (PLUGIN_ORDER if method is None else method.order), label

    return sorted(set(labels), key=rank)
