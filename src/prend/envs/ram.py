"""An Atari vector env under prend's protocol whose emulator RAM can be read: state labels for probes.

ale-py's native vector env (:func:`prend.envs.vector.ale_vector_env`) runs its emulators in C++ and exposes
no RAM. :func:`ram_vector_env` builds the same protocol from gymnasium's per-env wrappers (frame skip 4 with
the max over the last two raw frames, 84x84 grayscale, ALE's sticky actions, no no-op starts, no fire
reset, an episode cap in agent steps, auto-reset within the step), so :func:`read_ram` can read each
emulator's 128 bytes. The newest frame of every observation equals the native env's bit for bit (tested);
only the padding of a new episode's stack differs (gymnasium repeats the first frame where ALE puts zeros),
which does not matter to ``prend collect``, as it stores newest frames and rebuilds stacks with zeros.
"""

from __future__ import annotations

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from prend.envs.games import ale_env_id

RAM_BYTES = 128
"""Bytes of the Atari 2600's RAM."""


def ram_vector_env(rom: str, num_envs: int, *, sticky_action_prob: float, max_episode_steps: int,
                   frame_skip: int = 4) -> gym.vector.SyncVectorEnv:
    """A synchronous vector env of ``num_envs`` copies of ``rom`` whose RAM :func:`read_ram` reads.

    It steps like :func:`~prend.envs.vector.ale_vector_env` (``reset(seed=)`` seeds env ``i`` with
    ``seed + i``; ``info["lives"]``; a game that ends resets within the same step), one emulator at a time.
    """
    gym.register_envs(ale_py)
    env_id = ale_env_id(rom)

    def make_one() -> gym.Env:
        env = gym.make(env_id, frameskip=1, repeat_action_probability=sticky_action_prob, max_episode_steps=None)
        env = gym.wrappers.AtariPreprocessing(env, noop_max=0, frame_skip=frame_skip, screen_size=84,
                                              grayscale_obs=True)
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
        return gym.wrappers.FrameStackObservation(env, 4)

    return gym.vector.SyncVectorEnv([make_one for _ in range(num_envs)], autoreset_mode=AutoresetMode.SAME_STEP)


def read_ram(env: gym.vector.SyncVectorEnv) -> np.ndarray:
    """uint8 (N, 128): each emulator's RAM now, i.e. the state the last returned observations show."""
    return np.stack([sub.unwrapped.ale.getRAM() for sub in env.envs]).astype(np.uint8)
