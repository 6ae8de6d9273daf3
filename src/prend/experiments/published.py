"""Published Atari learning curves to draw beside prend's runs: Dopamine's DQN, Rainbow and IQN.

Source: google/dopamine's baselines data (``baselines/atari/data/<game>.json``; the commit is in the table's
``source``), 60 games. Each agent's curve is the mean over its seeds (5 for these three agents) of the mean
return of the training games of each 1M-frame iteration (250k agent steps), for the first 50 iterations.
Dopamine trains with sticky actions (0.25) on full games and its own agent settings (its
``baselines/atari/README.md``); these are *training* scores of value-based agents, comparable to prend's
running training score in protocol, not in algorithm. ``scripts/import_dopamine_curves.py`` regenerates the
table from a Dopamine checkout.

A value is placed at the frame count that ends its iteration, so it lines up with prend's trailing mean of
the last 100 games, and :func:`published_at` reads it as the budget table reads a run: the first iteration
that ends at or past the budget.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

from prend.envs.games import resolve_atari_game
from prend.errors import PrendError

PUBLISHED_CHOICES = ("none", "dopamine")
"""Values of ``prend report --published``."""


class PublishedCurve(NamedTuple):
    """One agent's published curve on one game."""

    agent: str
    """E.g. ``Dopamine DQN``."""
    seeds: int
    """Seeds its mean is over."""
    frames: list[int]
    """Emulator frames at the end of each iteration."""
    scores: list[float]
    """Mean training return of each iteration, averaged over the seeds."""


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads(resources.files("prend.experiments").joinpath("data/dopamine_atari.json").read_text())


def published_source(source: str = "dopamine") -> str | None:
    """One-line citation of ``source``'s table, written into reports; ``None`` for ``"none"``.

    Raises:
        PrendError: ``source`` is not one of :data:`PUBLISHED_CHOICES`.
    """
    if source not in PUBLISHED_CHOICES:
        raise PrendError(f"--published must be one of {', '.join(PUBLISHED_CHOICES)}, got '{source}'",
                         "pass --published dopamine")
    return None if source == "none" else _table()["source"]


def published_curves(game: str, source: str = "dopamine") -> list[PublishedCurve]:
    """``source``'s curves of a game given in any form ``prend train`` accepts; empty for a game it lacks.

    ``source="none"`` gives none, so callers pass ``prend report --published`` through unchanged.

    Example:
        >>> [(c.agent, c.seeds, c.frames[:2], c.scores[:2]) for c in published_curves("ALE/Boxing-v5")][0]
        ('Dopamine DQN', 5, [1000000, 2000000], [-3.35, -14.81])
        >>> published_curves("DeepSea-10")
        []
    """
    if published_source(source) is None:
        return []
    rom = resolve_atari_game(game)
    table = _table()
    step = int(table["frames_per_iteration"])
    curves = table["games"].get(rom, {}) if rom else {}
    return [PublishedCurve(f"Dopamine {agent}", int(curve["seeds"]),
                           [step * (i + 1) for i in range(len(curve["scores"]))], list(curve["scores"]))
            for agent, curve in curves.items()]


def published_at(curve: PublishedCurve, frames: int) -> float:
    """The curve's value at the first iteration that ends at or past ``frames``; NaN beyond its last.

    Example:
        >>> curve = PublishedCurve("x", 5, [1_000_000, 2_000_000], [1.0, 2.0])
        >>> published_at(curve, 200_000), published_at(curve, 1_000_000), published_at(curve, 1_000_001)
        (1.0, 1.0, 2.0)
        >>> published_at(curve, 2_000_001)
        nan
    """
    for end, score in zip(curve.frames, curve.scores, strict=True):
        if end >= frames:
            return float(score)
    return math.nan
