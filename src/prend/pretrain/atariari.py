"""AtariARI's encoder recipe, reproduced: one small encoder per game, ST-DIM on random-play frames.

Anand et al. 2019 ("Unsupervised State Representation Learning in Atari", NeurIPS; code
mila-iqia/atari-representation-learning, ``atariari/methods/{encoders,stdim}.py``,
``atariari/benchmark/episodes.py``) is the one published result on which representation reads an Atari
game's state at small scale: on Boxing their ST-DIM encoder scores 0.58 (category-averaged weighted F1 of
linear RAM-state probes) where the same network untrained scores 0.19. This module is their recipe, written
for prend, so that ``benchmarks/atariari_repro.py`` can check prend's probe against their number before any
claim about PreND's backbones rests on it (issue 30, part 2):

- **data** (:func:`collect_episodes`): a random agent (actions ``1 .. n-1`` of the minimal set, never NOOP)
  in ``<Game>NoFrameskip-v4``'s protocol: no sticky actions, up to 30 no-ops at reset, frame skip 4 with the
  max over the last two raw frames, episode end at a life lost; full 210x160 grayscale single frames
  (``frame="full"``) or prend's 84x84 frames for 4-stacks (``frame="stack84"``). The RAM of the state each
  frame shows is stored with it (the probe's labels).
- **encoder** (:class:`AtariARIEncoder`): their Nature-CNN-like stack (``full``: 32-8s4, 64-4s2, 128-4s2,
  64-3s1 -> 64x9x6, linear to 256; ``stack84``: their downsampled stack 32-8s4, 64-4s2, 32-3s1 -> 32x7x7,
  linear to 256), orthogonal initialisation with ReLU gain, zero biases. Local features: the 128-channel
  third layer (11x8 cells) at full resolution; the last conv layer (7x7) at 84x84, as their downsampled
  stack has no deeper map to take.
- **training** (the loop in :mod:`prend.pretrain.atariari_train`, the objectives in
  :mod:`prend.pretrain.atariari_objectives`): ST-DIM (:class:`STDIMTrainer`, on one game or several) and
  AtariARI's supervised control (``SupervisedTrainer``), resumable mid-epoch; their names
  ``STDIMScores``, ``STDIMSettings``, ``STDIMTrainer`` and ``stdim_loss`` are importable from here too.
  The encoder the probe reads is the last one, as theirs returns it (the best-validation one is kept too).

Deviations, each because it changes nothing measured or cannot be done here: no FIRE at reset (their
``FireResetEnv``; Boxing needs none to start), ALE's own grayscale rather than OpenCV's (both luminance).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import torch

from prend.checkpoint import atomic_write
from prend.envs.games import ale_env_id, resolve_atari_game, unknown_game_error
from prend.errors import PrendError
from prend.nets.atariari import FRAME_SHAPES, AtariARIEncoder, Frame, load_atariari_encoder

# The trainers live in prend.pretrain.atariari_train and atariari_objectives, which import this module's data;
# their old names are resolved from there on first use (PEP 562), so that old imports keep working without a cycle.
_TRAIN_EXPORTS = {"STDIMScores": "atariari_objectives", "STDIMSettings": "atariari_train",
                  "STDIMTrainer": "atariari_objectives", "stdim_loss": "atariari_objectives"}


def __getattr__(name: str) -> Any:
    """The trainers' names, from the module each now lives in."""
    if name in _TRAIN_EXPORTS:
        return getattr(importlib.import_module(f"prend.pretrain.{_TRAIN_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MIN_EPISODE_LENGTH = 64
"""Episodes of at most this many steps are dropped before any split (AtariARI: ``min_episode_length`` =
the batch size, 64)."""


# ------------------------------------------------------------------------------------------------- data
@dataclass
class Episodes:
    """Random-play episodes of one game: frames and the RAM of the state each frame shows.

    Attributes:
        frames: One uint8 array (T, H, W) per episode.
        ram: One uint8 array (T, 128) per episode, row ``t`` the RAM of ``frames[e][t]``'s state.
        game: The ALE ROM name.
        frame: ``"full"`` (210x160 single frames) or ``"stack84"`` (84x84 frames, read as 4-stacks).
    """

    frames: list[np.ndarray]
    ram: list[np.ndarray]
    game: str
    frame: str

    def __len__(self) -> int:
        """Number of episodes."""
        return len(self.frames)

    @property
    def steps(self) -> int:
        """Frames over all episodes."""
        return int(sum(len(f) for f in self.frames))

    def subset(self, index: np.ndarray | list[int]) -> Episodes:
        """The episodes at ``index``, in that order."""
        return Episodes([self.frames[i] for i in index], [self.ram[i] for i in index], self.game, self.frame)

    def long_enough(self, min_length: int = MIN_EPISODE_LENGTH) -> Episodes:
        """Only the episodes of more than ``min_length`` steps (AtariARI drops the rest)."""
        return self.subset([i for i, f in enumerate(self.frames) if len(f) > min_length])

    def inputs(self, episode: int, t: np.ndarray) -> np.ndarray:
        """uint8 encoder inputs (N, C, H, W) for steps ``t`` of ``episode``.

        One frame each, or a 4-stack whose frames before the episode's start are zeros (prend's stacks).
        """
        frames = self.frames[episode]
        if self.frame == "full":
            return frames[t][:, None]
        offsets = np.arange(-3, 1)
        idx = t[:, None] + offsets[None]
        out = frames[np.clip(idx, 0, None)]
        out[idx < 0] = 0
        return out


def _make_env(rom: str, frame: str) -> gym.Env:
    gym.register_envs(ale_py)
    env = gym.make(ale_env_id(rom), frameskip=1, repeat_action_probability=0.0, max_episode_steps=None)
    height, width = FRAME_SHAPES[frame]
    # terminal_on_life_loss: AtariARI wraps every game in EpisodicLifeEnv; screen_size is (width, height).
    return gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=(width, height),
                                           terminal_on_life_loss=True, grayscale_obs=True)


def collect_episodes(game: str, steps: int, seed: int, root: str | os.PathLike[str], frame: Frame = "full",
                     progress: Callable[[str], None] | None = None) -> Path:
    """Random-play episodes of ``game`` into ``root/<rom>-<frame>-s<seed>/``, one ``.npz`` per episode.

    Each episode is written atomically when it ends (the last, unfinished one when ``steps`` is reached),
    and ``manifest.json`` last; a rerun of a finished collection returns at once, an interrupted one starts
    over (a collection of 100k frames takes a few minutes).

    Returns:
        The collection's directory.

    Raises:
        PrendError: If ``game`` is not an ALE game or ``steps`` is not positive.
    """
    rom = resolve_atari_game(game)
    if rom is None:
        raise unknown_game_error(game)
    if steps <= 0:
        raise PrendError(f"steps must be positive, got {steps}", "pass --steps 100000 (AtariARI's budget)")
    out = Path(root) / f"{rom}-{frame}-s{seed}"
    if (out / "manifest.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    env = _make_env(rom, frame)
    rng = np.random.default_rng(seed)
    num_actions = int(env.action_space.n)
    obs, _ = env.reset(seed=seed)
    frames, rams, lengths, taken, start = [obs], [env.unwrapped.ale.getRAM().copy()], [], 1, time.time()

    def flush() -> None:
        arrays = {"frames": np.stack(frames).astype(np.uint8), "ram": np.stack(rams).astype(np.uint8)}
        atomic_write(out / f"ep{len(lengths):05d}.npz", lambda f: np.savez_compressed(f, **arrays))
        lengths.append(len(frames))

    while taken < steps:
        action = int(rng.integers(1, num_actions))  # AtariARI's random agent never picks NOOP
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            flush()
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            frames, rams = [], []
            if progress:
                progress(f"collect {rom} ({frame}): {taken:,}/{steps:,} frames, {len(lengths)} episodes, "
                         f"{time.time() - start:.0f} s")
        frames.append(obs)
        rams.append(env.unwrapped.ale.getRAM().copy())
        taken += 1
    flush()
    env.close()
    manifest = {"game": rom, "frame": frame, "seed": seed, "steps": taken, "episode_lengths": lengths,
                "seconds": round(time.time() - start, 1), "protocol": "AtariARI random agent (actions 1..n-1), "
                "NoFrameskip-v4: no sticky actions, noop_max 30, frame skip 4 with max-pool, episodic life"}
    atomic_write(out / "manifest.json", lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    return out


def load_episodes(path: str | os.PathLike[str]) -> Episodes:
    """The episodes :func:`collect_episodes` wrote to ``path``.

    Raises:
        PrendError: If ``path`` holds no finished collection.
    """
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise PrendError(f"{path} holds no finished AtariARI collection (no manifest.json)",
                         "run the collection again; it starts over")
    manifest = json.loads((path / "manifest.json").read_text())
    frames, ram = [], []
    for i in range(len(manifest["episode_lengths"])):
        with np.load(path / f"ep{i:05d}.npz") as z:
            frames.append(z["frames"])
            ram.append(z["ram"])
    return Episodes(frames, ram, manifest["game"], manifest["frame"])


def split_train_val(episodes: Episodes, seed: int, train_fraction: float = 0.8) -> tuple[Episodes, Episodes]:
    """AtariARI's encoder split: long-enough episodes shuffled by ``seed``, the first 80% for training.

    Raises:
        PrendError: If fewer than two episodes are long enough.
    """
    kept = episodes.long_enough()
    if len(kept) < 2:
        raise PrendError(f"only {len(kept)} episode(s) of more than {MIN_EPISODE_LENGTH} steps: nothing to "
                         "validate on", "collect more steps")
    order = np.random.RandomState(seed).permutation(len(kept))
    cut = max(1, min(len(kept) - 1, int(train_fraction * len(kept))))
    return kept.subset(order[:cut]), kept.subset(order[cut:])


# ----------------------------------------------------------------------------------------------- encoders
load_encoder = load_atariari_encoder
"""The encoder saved in a run's ``init.pt``, ``best.pt`` or ``checkpoint.pt`` (the loader lives in
:mod:`prend.nets.atariari`, so that PreND can load one as its backbone; this name is kept for imports)."""


@torch.no_grad()
def encode(encoder: AtariARIEncoder, episodes: Episodes, batch_size: int = 256) -> list[np.ndarray]:
    """The encoder's vector (float32 (T, D)) for every step of every episode."""
    out = []
    for e, frames in enumerate(episodes.frames):
        steps = np.arange(len(frames))
        parts = [encoder(torch.from_numpy(episodes.inputs(e, steps[i:i + batch_size])).float().div_(255))
                 for i in range(0, len(steps), batch_size)]
        out.append(torch.cat(parts).numpy())
    return out
