"""Vectorised image environments with the training protocol applied.

:func:`make_env` returns a :class:`ProtocolVecEnv`: ``reset(seed)`` then ``step(actions)`` giving a
:class:`Step` of numpy arrays. It hides the backend (ale-py's native C++ vector env for Atari, a gymnasium
vector env otherwise) and applies what the backends do not: raw-score bookkeeping, sign-clipped rewards
for learning, life loss as an episode end for learning only, and the true next observation at episode
ends (the backends auto-reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import ale_py
import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from gymnasium.vector import AutoresetMode

from prend.envs.games import resolve_atari_game, unknown_game_error
from prend.errors import PrendError

if TYPE_CHECKING:
    # For annotations only: importing the config (and with it tyro, ~45 ms) would slow down `import prend`,
    # and with it every `prend` command's start, for a name this module never uses at run time.
    from prend.config import EnvConfig


class Step(NamedTuple):
    """One vector step.

    ``obs`` is what the policy sees next (the first observation of a new episode where one ended);
    ``next_obs`` is the observation the transition led to (the last one of the ended episode there), which
    the intrinsic reward is computed on.
    """

    obs: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    """Reward used for learning (sign-clipped when ``clip_reward``)."""
    raw_reward: np.ndarray
    """The game's own reward."""
    done: np.ndarray
    """The transition ended an episode for learning (game over, episode cap, or a lost life if enabled)."""
    episode_end: np.ndarray
    """The game itself ended or hit the cap: the score bookkeeping restarts."""
    finished: list[tuple[float, int]]
    """(raw score, length in agent steps) of each game that ended at this step."""


@dataclass
class EpisodeTracker:
    """Raw score and length of the running game of each environment."""

    num_envs: int

    def __post_init__(self) -> None:
        self.score = np.zeros(self.num_envs, dtype=np.float64)
        self.length = np.zeros(self.num_envs, dtype=np.int64)

    def add(self, raw_reward: np.ndarray, episode_end: np.ndarray) -> list[tuple[float, int]]:
        """Add one step's rewards; return (score, length) of each game that ended, and restart those."""
        self.score += raw_reward
        self.length += 1
        ended = np.flatnonzero(episode_end)
        finished = [(float(self.score[i]), int(self.length[i])) for i in ended]
        self.score[ended] = 0.0
        self.length[ended] = 0
        return finished


class FireReset(gym.Wrapper):
    """Press FIRE when a game starts and, with ``after_life_loss``, after every lost life.

    baselines' ``FireResetEnv`` under ``EpisodicLifeEnv``: a lost life is a reset for learning there, so the
    ball is served for the agent each time. Here the FIRE step is part of the agent step that lost the life
    (its reward, if any, is added), so the next observation already shows play.
    """

    def __init__(self, env: gym.Env, after_life_loss: bool):
        super().__init__(env)
        self.fire = env.unwrapped.get_action_meanings().index("FIRE")
        self.after_life_loss = after_life_loss

    def reset(self, **kwargs):
        """Reset, then press FIRE (resetting again in the rare case that ends the game)."""
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:
            obs, info = self.env.reset()
        return obs, info

    def step(self, action):
        """Step; after a lost life that did not end the game, press FIRE within the same step."""
        lives = self.env.unwrapped.ale.lives()
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.after_life_loss and not (terminated or truncated) and self.env.unwrapped.ale.lives() < lives:
            obs, extra, terminated, truncated, info = self.env.step(self.fire)
            reward += extra
        return obs, reward, terminated, truncated, info


class ProtocolVecEnv:
    """A vector env of ``num_envs`` copies of one game, uint8 observations (N, stack, 84, 84).

    With ``render``, env 0's screen is kept in colour for :meth:`render` (``prend video``); this needs
    gymnasium's per-env wrappers, so it uses the ``gymnasium`` backend whatever ``cfg.backend`` says.
    """

    def __init__(self, cfg: EnvConfig, render: bool = False):
        self.cfg = cfg
        self.rom = resolve_atari_game(cfg.game)
        self.render_mode = "rgb_array" if render else None
        backend = "gymnasium" if render else cfg.backend
        if backend == "auto":
            # ale-py's native vector env presses FIRE only when a game starts; pressing it after every lost
            # life too (baselines' FireResetEnv under EpisodicLifeEnv) needs a per-env wrapper.
            native = self.rom is not None and not (cfg.fire_reset and cfg.life_loss_done)
            backend = "ale" if native else "gymnasium"
        if backend == "ale" and self.rom is None:
            raise unknown_game_error(cfg.game)
        if self.rom is not None and cfg.game_kwargs:
            raise PrendError(f"--game-kwargs applies to non-Atari gymnasium envs, not to '{cfg.game}'",
                             "leave --game-kwargs out; Atari games are set up by the protocol flags")
        if self.rom is None:
            atari_only = {flag: off for flag, off, used in (
                ("--noop-max", "--noop-max 0", cfg.noop_max > 0), ("--fire-reset", "--no-fire-reset", cfg.fire_reset),
                ("--full-action-space", "--no-full-action-space", cfg.full_action_space)) if used}
            if atari_only:
                verb = "applies" if len(atari_only) == 1 else "apply"
                raise PrendError(f"{', '.join(atari_only)} {verb} to Atari games only, not to '{cfg.game}'",
                                 f"pass {' '.join(atari_only.values())}")
        self.backend = backend
        self.num_envs = cfg.num_envs
        self._env = self._make_ale() if backend == "ale" else self._make_gymnasium()
        self.num_actions = int(self._env.single_action_space.n)
        self.obs_shape: tuple[int, ...] = tuple(self._env.single_observation_space.shape)
        self._episodes = EpisodeTracker(self.num_envs)
        self._lives = np.zeros(self.num_envs, dtype=np.int64)

    # ----------------------------------------------------------------------------------------- backends
    def _make_ale(self) -> AtariVectorEnv:
        cfg = self.cfg
        return ale_vector_env(self.rom, cfg.num_envs, sticky_action_prob=cfg.sticky_action_prob,
                              max_episode_steps=cfg.max_episode_steps, frame_skip=cfg.frame_skip,
                              frame_stack=cfg.frame_stack, noop_max=cfg.noop_max, fire_reset=cfg.fire_reset,
                              full_action_space=cfg.full_action_space, num_threads=cfg.env_threads)

    def _make_gymnasium(self):
        cfg = self.cfg
        if self.rom is not None:
            gym.register_envs(ale_py)
            env_id = f"ALE/{''.join(p.capitalize() for p in self.rom.split('_'))}-v5"
        else:
            env_id = cfg.game
            if env_id not in gym.registry:
                raise unknown_game_error(cfg.game)

        def make_one():
            if self.rom is not None:
                env = gym.make(env_id, frameskip=1, repeat_action_probability=cfg.sticky_action_prob,
                               full_action_space=cfg.full_action_space, max_episode_steps=None,
                               render_mode=self.render_mode)
                env = gym.wrappers.AtariPreprocessing(env, noop_max=cfg.noop_max, frame_skip=cfg.frame_skip,
                                                      screen_size=84, grayscale_obs=True)
                if cfg.fire_reset and "FIRE" in env.unwrapped.get_action_meanings():
                    env = FireReset(env, after_life_loss=cfg.life_loss_done)
            else:
                env = self._make_image_env(gym, env_id)
            env = gym.wrappers.TimeLimit(env, cfg.max_episode_steps)
            return gym.wrappers.FrameStackObservation(env, cfg.frame_stack)

        return gym.vector.SyncVectorEnv([make_one for _ in range(cfg.num_envs)],
                                        autoreset_mode=AutoresetMode.SAME_STEP)

    def _make_image_env(self, gym, env_id: str):
        """One non-Atari RGB-image env with the protocol's sticky actions, frame skip and 84x84 grayscale."""
        cfg = self.cfg
        try:
            env = gym.make(env_id, **cfg.game_kwargs, **({"render_mode": self.render_mode} if self.render_mode else {}))
        except (TypeError, ValueError) as err:
            raise PrendError(f"cannot make '{cfg.game}' with --game-kwargs {cfg.game_kwargs}: {err}",
                             "pass keyword arguments the env accepts, e.g. --game-kwargs size 10") from None
        shape = env.observation_space.shape or ()
        if not isinstance(env.action_space, gym.spaces.Discrete) or len(shape) != 3 or shape[-1] != 3:
            raise PrendError(f"'{cfg.game}' is not an RGB-image env with discrete actions",
                             "prend trains on image envs such as the Atari games ('Boxing')")
        if cfg.sticky_action_prob > 0:
            env = gym.wrappers.StickyAction(env, repeat_action_probability=cfg.sticky_action_prob)
        if cfg.frame_skip > 1:
            env = gym.wrappers.MaxAndSkipObservation(env, skip=cfg.frame_skip)
        env = gym.wrappers.GrayscaleObservation(env)
        return gym.wrappers.ResizeObservation(env, (84, 84))

    # --------------------------------------------------------------------------------------------- API
    def reset(self, seed: int) -> np.ndarray:
        """Reset every environment, seeding env ``i`` with ``seed + i``."""
        obs, info = self._env.reset(seed=seed)
        self._episodes = EpisodeTracker(self.num_envs)
        self._lives = np.asarray(info.get("lives", np.zeros(self.num_envs)), dtype=np.int64)
        return np.asarray(obs, dtype=np.uint8)

    def step(self, actions: np.ndarray) -> Step:
        """Advance every environment by one agent step."""
        obs, raw, terminated, truncated, info = self._env.step(actions)
        obs = np.asarray(obs, dtype=np.uint8)
        raw = np.asarray(raw, dtype=np.float32)
        episode_end = np.logical_or(terminated, truncated)
        done = episode_end.copy()
        lives = np.asarray(info.get("lives", self._lives), dtype=np.int64)
        if self.cfg.life_loss_done:
            done |= lives < self._lives
        self._lives = lives
        next_obs = obs
        if episode_end.any():
            next_obs = obs.copy()
            final = info["final_obs"]
            for i in np.flatnonzero(episode_end):
                next_obs[i] = final[i]
        reward = np.sign(raw) if self.cfg.clip_reward else raw
        finished = self._episodes.add(raw, episode_end)
        return Step(obs, next_obs, reward.astype(np.float32), raw, done, episode_end, finished)

    def render(self) -> np.ndarray:
        """Env 0's current screen in colour, (H, W, 3) uint8 at the game's own resolution (needs ``render=True``).

        After a step that ended env 0's game it shows the next game's first screen (the env resets within
        the step).
        """
        if self.render_mode is None:
            raise RuntimeError("this env was made without render=True")
        return np.asarray(self._env.envs[0].render(), dtype=np.uint8)

    def close(self) -> None:
        """Release the emulators."""
        self._env.close()


def ale_vector_env(rom: str, num_envs: int, *, sticky_action_prob: float, max_episode_steps: int, frame_skip: int = 4,
                   frame_stack: int = 4, noop_max: int = 0, fire_reset: bool = False, full_action_space: bool = False,
                   num_threads: int = 0) -> AtariVectorEnv:
    """ale-py's native vector env of ``num_envs`` copies of ``rom`` under prend's Atari protocol.

    Observations are stacks of 84x84 grayscale frames, each the max over the last two emulator frames of a
    skip; a game that ends resets within the same step (its last observation is in ``info["final_obs"]``);
    rewards are raw and a lost life is no episode end: :class:`ProtocolVecEnv` applies the learning-side
    protocol on top, and ``prend collect`` stores what the game gives. ``max_episode_steps`` counts agent steps.
    """
    return AtariVectorEnv(
        rom,
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=max_episode_steps * frame_skip,
        repeat_action_probability=sticky_action_prob,
        full_action_space=full_action_space,
        autoreset_mode="SameStep",
        stack_num=frame_stack,
        frameskip=frame_skip,
        maxpool=True,
        noop_max=noop_max,
        episodic_life=False,
        reward_clipping=False,
        use_fire_reset=fire_reset,
    )


def make_env(cfg: EnvConfig, render: bool = False) -> ProtocolVecEnv:
    """Build the vector env of ``cfg`` (raises :class:`~prend.errors.PrendError` for an unknown game)."""
    return ProtocolVecEnv(cfg, render)
