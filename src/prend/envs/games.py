"""Game names: resolving user input to an ALE ROM, and Atari-PB's game ids."""

from __future__ import annotations

import difflib
import re
import warnings

import gymnasium as gym
from ale_py import roms

from prend.errors import PrendError

ATARI_PB_PRETRAIN_GAMES: tuple[str, ...] = (
    "air_raid", "amidar", "asteroids", "atlantis", "bank_heist", "battle_zone", "berzerk", "bowling",
    "boxing", "breakout", "carnival", "centipede", "chopper_command", "crazy_climber", "demon_attack",
    "double_dunk", "elevator_action", "enduro", "fishing_derby", "freeway", "frostbite", "gopher",
    "gravitar", "hero", "ice_hockey", "jamesbond", "kangaroo", "krull", "kung_fu_master",
    "montezuma_revenge", "ms_pacman", "name_this_game", "phoenix", "pitfall", "private_eye", "qbert",
    "road_runner", "robotank", "skiing", "solaris", "space_invaders", "star_gunner", "tennis",
    "time_pilot", "tutankham", "up_n_down", "video_pinball", "wizard_of_wor", "yars_revenge", "zaxxon",
)
"""The 50 in-distribution games Atari-PB pre-trains on (configs/dataloader/pretrain.yaml)."""

ATARI_PB_NEAR_OOD_GAMES: tuple[str, ...] = (
    "alien", "assault", "asterix", "beam_rider", "journey_escape", "pong", "pooyan", "riverraid",
    "seaquest", "venture",
)
"""Atari-PB's 10 near-out-of-distribution games (never pre-trained on)."""

ATARI_PB_GAMES: tuple[str, ...] = tuple(sorted(ATARI_PB_PRETRAIN_GAMES + ATARI_PB_NEAR_OOD_GAMES))
"""Atari-PB's sorted 60-game list; a game's id is its index here (its ``PRETRAIN_GAME_LIST``)."""

OUTSIDE_ATARI_PB_GAME_ID = 0
"""Id used for a game outside Atari-PB's 60: the neck's embedding row 0 (``air_raid``'s, Atari-PB's
default index). The embedding of a randomly initialised neck has no meaning per game, so any fixed row
serves; a pre-trained neck would need the game's own row."""


def atari_pb_game_id(rom: str | None) -> int:
    """Atari-PB's id of an Atari game, named as ``--game`` takes it (``boxing``, ``Boxing``, ``ALE/Boxing-v5``).

    ``None`` (a game that is not Atari, such as Deep Sea) and an ALE ROM outside Atari-PB's 60 get
    :data:`OUTSIDE_ATARI_PB_GAME_ID`; a name that is no ALE ROM at all is a one-line
    :class:`~prend.errors.PrendError` rather than silently that id.

    Example:
        >>> atari_pb_game_id("boxing"), atari_pb_game_id("Boxing"), atari_pb_game_id("riverraid")
        (12, 12, 43)
        >>> atari_pb_game_id(None), atari_pb_game_id("adventure")
        (0, 0)
    """
    if rom is None:
        return OUTSIDE_ATARI_PB_GAME_ID
    resolved = resolve_atari_game(rom) if rom else None
    if resolved is None:
        raise PrendError(f"rom {rom!r} is not an Atari game", "pass an ALE ROM name such as 'boxing' (`prend "
                         "games` lists them), or None for a game that is not Atari")
    return ATARI_PB_GAMES.index(resolved) if resolved in ATARI_PB_GAMES else OUTSIDE_ATARI_PB_GAME_ID


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return name.lower().replace("-", "_")


def _camel(rom: str) -> str:
    return "".join(part.capitalize() for part in rom.split("_"))


def ale_env_id(rom: str) -> str:
    """Gymnasium's id of an ALE ROM's v5 env.

    Example:
        >>> ale_env_id("montezuma_revenge")
        'ALE/MontezumaRevenge-v5'
    """
    return f"ALE/{_camel(rom)}-v5"


def ale_rom_ids() -> list[str]:
    """All ROM names ale-py ships."""
    return sorted(roms.get_all_rom_ids())


def resolve_atari_game(name: str) -> str | None:
    """The ALE ROM name for ``Boxing``, ``boxing``, ``ALE/Boxing-v5``, ``BoxingNoFrameskip-v4`` etc.

    Returns ``None`` when ``name`` is not an Atari game.

    Example:
        >>> resolve_atari_game("ALE/MsPacman-v5"), resolve_atari_game("boxing"), resolve_atari_game("CartPole-v1")
        ('ms_pacman', 'boxing', None)
    """
    base = name.split("/")[-1]
    base = re.sub(r"-v\d+$", "", base)
    base = re.sub(r"(NoFrameskip|Deterministic)$", "", base)
    rom = _snake(base)
    return rom if rom in ale_rom_ids() else None


def unknown_game_error(name: str) -> PrendError:
    """The error for a game that is neither an ALE ROM nor a registered gymnasium id, with close matches."""
    candidates = [_camel(r) for r in ale_rom_ids()] + list(gym.registry.keys())
    key = re.sub(r"-v\d+$", "", name.split("/")[-1])
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    close += [c for c in candidates if key.lower() and key.lower() in c.lower() and c not in close][:3]
    hint = f"did you mean {', '.join(repr(c) for c in close[:3])}?" if close else (
        "pass an Atari game such as 'Boxing' (see `prend games`)"
    )
    return PrendError(f"unknown game '{name}'", hint)


PROTOCOL_DEFAULTS: dict[str, dict[str, object]] = {
    "prend/DeepSea-v0": {
        "frame_skip": 1,            # one step is one row: skipping would jump rows the agent must choose in
        "sticky_action_prob": 0.0,  # bsuite's DeepSea is deterministic; a repeated action is a wrong turn
        "noop_max": 0,              # a no-op is a move
        "clip_reward": False,       # sign(-0.01/N) = -1 per right move would make the goal a net loss
        "life_loss_done": False,
        "fire_reset": False,
        "full_action_space": False,
    },
}
"""Environment-protocol fields (``EnvConfig``) a game sets differently from the Atari defaults. They replace
the preset's values; a config file and explicit flags still override them (docs/hyperparameters.md)."""


def protocol_defaults(game: str) -> dict[str, object]:
    """The ``EnvConfig`` fields ``game`` overrides (empty for Atari games and unlisted envs).

    Example:
        >>> protocol_defaults("prend/DeepSea-v0")["clip_reward"], protocol_defaults("Boxing")
        (False, {})
    """
    return dict(PROTOCOL_DEFAULTS.get(game, {}))


def image_env_ids() -> list[str]:
    """Registered gymnasium ids (other than ALE's) of RGB-image envs with discrete actions, which prend can train on.

    Each registered env is built once to read its spaces; ids whose packages are missing are skipped.
    """
    found = []
    for env_id, spec in sorted(gym.registry.items()):
        if "ale_py" in str(spec.entry_point):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env = gym.make(env_id)
        except Exception:  # noqa: BLE001 - a missing optional dependency (box2d, mujoco...) rules the env out
            continue
        try:
            shape = env.observation_space.shape or ()
            if isinstance(env.action_space, gym.spaces.Discrete) and len(shape) == 3 and shape[-1] == 3:
                found.append(env_id)
        finally:
            env.close()
    return found
