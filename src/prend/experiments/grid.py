"""``--grid``: the config fields a sweep varies, named as ``prend train`` flags, and their typed values.

A grid key names a :class:`~prend.config.TrainConfig` field by its flag (``predictor-lr-scale``), its field
(``predictor_lr_scale``) or its dotted path (``intrinsic.predictor_lr_scale``); a value is typed as the field's
own parser would type it (:func:`prend.config.config_from_dict` checks it). The fields a sweep sets itself
(method, game, seed, output) cannot be varied here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from prend.config import TrainConfig, config_from_dict
from prend.errors import PrendError

SWEEP_OWNED_FLAGS = ("--method", "--game", "--seed", "--out", "--resume")
"""Train flags the sweep sets itself for every run (as config fields)."""
SWEEP_OWNED_FIELDS = ("intrinsic.method", "env.game", "run.seed", "run.out")
"""The config fields of :data:`SWEEP_OWNED_FLAGS`."""


def flag_name(key: str) -> str:
    """The train flag of a field (tyro's name for it): ``intrinsic.predictor_lr_scale`` -> ``--predictor-lr-scale``."""
    return "--" + key.split(".")[-1].strip().lstrip("-").replace("_", "-")


def field_path(key: str) -> str:
    """The dotted :class:`~prend.config.TrainConfig` field a ``--grid`` key names (by flag, field or dotted name).

    Example:
        >>> field_path("predictor-lr-scale"), field_path("ppo.norm_adv"), field_path("--num-envs")
        ('intrinsic.predictor_lr_scale', 'ppo.norm_adv', 'env.num_envs')
    """
    name = key.strip().lstrip("-").replace("-", "_")
    default = TrainConfig()
    sections = {f.name: {g.name for g in dataclasses.fields(getattr(default, f.name))}
                for f in dataclasses.fields(default) if dataclasses.is_dataclass(getattr(default, f.name))}
    section, dot, leaf = name.rpartition(".")
    found = [f"{s}.{leaf}" for s, names in sections.items() if leaf in names and (not dot or s == section)]
    if len(found) != 1:
        raise PrendError(f"--grid names no config field '{key}'",
                         "name a `prend train` flag, e.g. --grid predictor-lr-scale=0.01,0.1")
    return found[0]


def nested_field(path: str, value: Any) -> dict[str, Any]:
    """The nested table that sets one dotted field: ``("ppo.norm_adv", True)`` -> ``{"ppo": {"norm_adv": True}}``."""
    section, _, leaf = path.partition(".")
    return {section: {leaf: value}}


def merged_fields(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Nested tables of config fields, ``over``'s winning."""
    out = dict(base)
    for key, value in over.items():
        both_tables = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged_fields(out[key], value) if both_tables else value
    return out


def field_value(path: str, text: str) -> Any:
    """The value of config field ``path`` that ``text`` (as typed on a command line) stands for.

    Example:
        >>> [field_value(*args) for args in [("ppo.norm_adv", "True"), ("intrinsic.predictor_lr_scale", "1"),
        ...                                  ("intrinsic.target_norm", "none"), ("ppo.max_grad_norm", "None")]]
        [True, 1, 'none', None]
    """
    low = text.strip().lower()
    candidates: list[Any] = [low == "true"] if low in ("true", "false") else []
    candidates += [None] if low in ("none", "null") else []
    for convert in (int, float):
        try:
            candidates.append(convert(text))
        except ValueError:
            pass
    candidates.append(text.strip())
    for value in candidates:  # the first the field's type takes (config_from_dict checks it as a file's value)
        try:
            config_from_dict(nested_field(path, value))
            return value
        except PrendError as err:
            error = err
    problem = str(error).removesuffix(": fix its value in the config file")
    raise PrendError(f"bad --grid value: {problem}", "pass a value of the field's type")


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid`` entry: a config field and the values the sweep gives it."""

    field: str
    """The dotted config field, e.g. ``intrinsic.predictor_lr_scale``."""
    values: tuple[str, ...]
    """The values as given (they name the runs)."""
    name: str
    """The field as runs are named after it, e.g. ``predictor-lr-scale``."""

    @property
    def flag(self) -> str:
        """The ``prend train`` flag of the field (a train flag must not set it too)."""
        return "--" + self.name


def parse_grid(entries: tuple[str, ...] | list[str]) -> list[GridAxis]:
    """``["predictor-lr-scale=0.01,0.1"]`` -> one :class:`GridAxis` per entry.

    Example:
        >>> for axis in parse_grid(["intrinsic.predictor_lr_scale=0.01,0.1", "norm-adv=true,false"]):
        ...     print(axis.field, axis.values, axis.flag)
        intrinsic.predictor_lr_scale ('0.01', '0.1') --predictor-lr-scale
        ppo.norm_adv ('true', 'false') --norm-adv
    """
    grid = []
    for entry in entries:
        key, sep, values = entry.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise PrendError(f"bad --grid entry '{entry}'",
                             "write FIELD=V1,V2, e.g. --grid predictor-lr-scale=0.01,0.1")
        flag = flag_name(key)
        if flag in SWEEP_OWNED_FLAGS:
            raise PrendError(f"--grid cannot vary {flag[2:]}", "use --methods, --games and --seeds")
        path = field_path(key)
        if path in SWEEP_OWNED_FIELDS:
            raise PrendError(f"--grid cannot vary {path}", "use --methods, --games and --seeds")
        grid.append(GridAxis(path, tuple(v.strip() for v in values.split(",") if v.strip()), flag[2:]))
    return grid
