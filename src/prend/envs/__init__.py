"""Environments: game names, protocol-applying vector envs and prend's own exploration tasks."""

from prend.envs.deep_sea import DeepSeaEnv
from prend.envs.games import ATARI_PB_GAMES, atari_pb_game_id, protocol_defaults, resolve_atari_game
from prend.envs.vector import ProtocolVecEnv, Step, make_env

__all__ = ["ATARI_PB_GAMES", "DeepSeaEnv", "ProtocolVecEnv", "Step", "atari_pb_game_id", "make_env",
           "protocol_defaults", "resolve_atari_game"]
