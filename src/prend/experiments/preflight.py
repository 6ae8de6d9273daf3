"""What ``prend sweep`` checks before any run starts: its games, and each plug-in's builder on each distinct input.

Each plug-in method's builder is built once per distinct intrinsic config, intrinsic discount and game.

A problem found here stops the sweep with one line and exit code 2 before a run directory is written, where
inside the runs it would fail every run of that method, each with its own log to read.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import gymnasium as gym
import torch

from prend.config import config_from_dict
from prend.envs.games import resolve_atari_game, unknown_game_error
from prend.errors import PrendError
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.methods import BUILTIN_METHODS, resolve_method


def check_game(game: str) -> None:
    """Raise the one-line unknown-game error for a name that is neither an Atari game nor a registered env."""
    if resolve_atari_game(game) is None and game not in gym.registry:
        raise unknown_game_error(game)


def plugin_modules(methods: Iterable[str]) -> list[str]:
    """The modules a sweep's runs import to find its plug-in methods: the one named, and its builder's."""
    modules = []
    for spec in methods:
        if spec in BUILTIN_METHODS:
            continue
        if ":" in spec:
            modules.append(spec.partition(":")[0])
        modules.append(getattr(resolve_method(spec).build, "__module__", None) or "")
    return [m for m in dict.fromkeys(modules) if m]


def check_builders(configs: Iterable[dict[str, Any]]) -> None:
    """Build each plug-in method's reward once per distinct input, with the config of a run of it, for one env.

    ``configs`` are the resolved configs (:func:`prend.config.config_to_dict`) of the runs to start or resume.
    A builder sees ``(cfg.intrinsic, num_envs, gamma_int, rom)``: it is built once for each distinct intrinsic
    config, intrinsic discount and ROM among them (seeds repeat none of these), so a builder that fails for one
    game or one ``--grid`` value stops the sweep before any run starts. A builder that returns no
    ``DistillationReward`` is the one-line error ``prend train`` gives; one that raises prints its traceback (to
    stderr, as ``prend train`` leaves it) and then stops the sweep in one line naming the method, the line that
    raised, the game and the intrinsic fields in which this config differs from the method's first. The
    built-in methods are not built: their builders are prend's own, and PreND's loads a backbone (seconds).
    """
    seen: set[tuple[str, float, str | None]] = set()
    first: dict[str, dict[str, Any]] = {}
    for data in configs:
        cfg = config_from_dict(data)
        method = cfg.intrinsic.method
        rom = resolve_atari_game(cfg.env.game)
        key = (repr(cfg.intrinsic), cfg.ppo.gamma_int, rom)
        if method in BUILTIN_METHODS or key in seen:
            continue
        seen.add(key)
        fields = dataclasses.asdict(cfg.intrinsic)
        reference = first.setdefault(method, fields)
        # One environment: the reward's normalisers are per env, and the check should cost next to nothing.
        # Its own RNG stream, so the check does not move this process's seeds.
        with torch.random.fork_rng(devices=[]):
            try:
                make_intrinsic(cfg.intrinsic, 1, cfg.ppo.gamma_int, rom)
            except PrendError:
                raise
            except Exception as err:  # noqa: BLE001 - a user's builder can fail in any way; its traceback is kept
                traceback.print_exc(file=sys.stderr)
                frames = traceback.extract_tb(err.__traceback__)
                where = f" at {frames[-1].filename}, line {frames[-1].lineno}" if frames else ""
                differ = [f"{k}={v}" for k, v in fields.items() if reference.get(k) != v]
                run = ", ".join([f"game {cfg.env.game}", *differ])
                raise PrendError(f"--methods {method}: its builder raised {type(err).__name__}{where} for {run} "
                                 f"({err}; the traceback is above)",
                                 "fix it and run the sweep again; no run was started") from None
