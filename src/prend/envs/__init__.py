"""Environments: game names and protocol-applying vector envs."""

from prend.envs.games import ATARI_PB_GAMES, atari_pb_game_id, resolve_atari_game
from prend.envs.vector import ProtocolVecEnv, Step, make_env

__all__ = ["ATARI_PB_GAMES", "ProtocolVecEnv", "Step", "atari_pb_game_id", "make_env", "resolve_atari_game"]
