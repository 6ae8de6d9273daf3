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
- **objective** (:func:`stdim_loss`): two InfoNCE terms with in-batch negatives, global(t) against each
  local cell of t-1 (through a linear map 256 -> C) and local(t) against local(t-1) (C -> C), each
  averaged over cells, summed; no score scaling, no augmentation.
- **schedule** (:class:`STDIMTrainer`): episodes split 80/20 (train/validation) after dropping those of
  at most 64 steps; an epoch draws as many samples as the training episodes hold, each batch 64 episodes
  drawn with replacement and one time step from each; Adam lr 3e-4, eps 1e-5; up to 100 epochs, stopped
  when the validation loss has not improved for 15 epochs. The encoder the probe reads is the last one, as
  theirs returns it (the best-validation one is kept too).

Deviations, each because it changes nothing measured or cannot be done here: no FIRE at reset (their
``FireResetEnv``; Boxing needs none to start), ALE's own grayscale rather than OpenCV's (both luminance),
and a sample's time step is drawn from ``1 .. T-1`` (theirs from ``0 .. T-1``, pairing step 0 with the
episode's last frame through Python's negative index). Checkpoints are written every ``checkpoint_every``
batches, so a stopped run resumes at that batch with the same samples it would have drawn.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prend.checkpoint import FORMAT as CHECKPOINT_FORMAT
from prend.checkpoint import atomic_torch_save, atomic_write, load_checkpoint
from prend.envs.games import ale_env_id, resolve_atari_game, unknown_game_error
from prend.errors import PrendError
from prend.nets.atariari import FRAME_SHAPES, AtariARIEncoder, Frame, load_atariari_encoder
from prend.pretrain.stdim import info_nce

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


# ---------------------------------------------------------------------------------------------- encoder
class STDIMScores(nn.Module):
    """ST-DIM's two linear score maps: global (D) -> local (C), and local (C) -> local (C)."""

    def __init__(self, feature_dim: int, local_channels: int):
        super().__init__()
        self.global_local = nn.Linear(feature_dim, local_channels)
        self.local_local = nn.Linear(local_channels, local_channels)


def stdim_loss(scores: STDIMScores, out_t: torch.Tensor, local_t: torch.Tensor, local_prev: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """AtariARI's InfoNCE ST-DIM terms for a batch of pairs (t, t-1).

    For each cell m of the local map, the scores of sample i's query against sample j's cell m at t-1 are
    a softmax over j whose positive is j = i; each term is the mean cross-entropy over cells (and samples).

    Args:
        scores: The two linear maps.
        out_t: The global vectors at t (N, D).
        local_t: The local maps at t (N, C, H, W).
        local_prev: The local maps at t-1 (N, C, H, W).

    Returns:
        ``(global_local, local_local)``; the loss trained is their sum.

    Example (one sample: the only candidate is the positive, so both terms are 0):
        >>> s = STDIMScores(4, 3)
        >>> [round(v.item(), 6) for v in stdim_loss(s, torch.ones(1, 4), torch.ones(1, 3, 2, 2),
        ...                                         torch.ones(1, 3, 2, 2))]
        [0.0, 0.0]
    """
    prev = local_prev.flatten(2).permute(2, 0, 1)                 # (M, N, C)
    now = local_t.flatten(2).permute(2, 0, 1)                     # (M, N, C)
    logits_g = torch.einsum("nc,mkc->mnk", scores.global_local(out_t), prev)
    logits_l = torch.einsum("mnc,mkc->mnk", scores.local_local(now), prev)
    return info_nce(logits_g), info_nce(logits_l)  # unscaled, as AtariARI's (prend's own ST-DIM scales)


# ---------------------------------------------------------------------------------------------- trainer
@dataclass
class STDIMSettings:
    """AtariARI's ST-DIM schedule (``scripts/run_contrastive.py``'s defaults)."""

    lr: float = 3e-4
    """Adam learning rate (AtariARI: 3e-4; Adam eps 1e-5)."""
    batch_size: int = 64
    """Pairs per step, each from an episode drawn with replacement (AtariARI: 64)."""
    max_epochs: int = 100
    """Epochs at most (AtariARI: 100)."""
    patience: int = 15
    """Stop after this many epochs without a lower validation loss (AtariARI: 15)."""
    seed: int = 42
    """Seed of the split, the initialisation and the samples (AtariARI's default seed: 42)."""
    checkpoint_every: int = 100
    """Batches between checkpoints (an epoch of 80k samples is 1,250 batches)."""


class STDIMTrainer:
    """Trains an :class:`AtariARIEncoder` with ST-DIM on one game's episodes, resumably.

    The run directory holds ``checkpoint.pt`` (encoder, score maps, Adam, position, history), ``init.pt``
    (the untrained encoder: the random-init twin), ``epochNNN.pt`` (the encoder after NNN epochs), ``best.pt``
    (the best-validation encoder) and
    ``history.jsonl`` (one line per epoch).

    Args:
        train: Training episodes.
        val: Validation episodes.
        out: The run directory (created; resumed when it holds a checkpoint).
        settings: The schedule.
        log: Where progress lines go.
    """

    def __init__(self, train: Episodes, val: Episodes, out: str | os.PathLike[str],
                 settings: STDIMSettings | None = None, log: Callable[[str], None] = print):
        self.train_eps, self.val_eps, self.out, self.log = train, val, Path(out), log
        self.settings = settings or STDIMSettings()
        torch.manual_seed(self.settings.seed)
        self.encoder = AtariARIEncoder(train.frame, size=train.frames[0].shape[1:])
        self.scores = STDIMScores(self.encoder.feature_dim, self.encoder.local_channels)
        params = list(self.encoder.parameters()) + list(self.scores.parameters())
        self.optimizer = torch.optim.Adam(params, lr=self.settings.lr, eps=1e-5)
        self.epoch, self.batch, self.history = 0, 0, []
        self.best_val, self.stale, self.running = float("inf"), 0, [0.0, 0.0, 0]
        self.out.mkdir(parents=True, exist_ok=True)
        if (self.out / "checkpoint.pt").exists():
            self._load(load_checkpoint(self.out / "checkpoint.pt"))
        else:
            self._save_encoder("init.pt")

    # -- the samples of an epoch are a function of (seed, epoch, split), so a resume draws the same ones
    def _plan(self, episodes: Episodes, epoch: int, split: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.settings.seed, epoch, split])
        batches = episodes.steps // self.settings.batch_size
        ep = rng.integers(len(episodes), size=(batches, self.settings.batch_size))
        lengths = np.array([len(f) for f in episodes.frames])
        t = 1 + (rng.random(ep.shape) * (lengths[ep] - 1)).astype(np.int64)
        return ep, t

    def _pair_batch(self, episodes: Episodes, ep: np.ndarray, t: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        now = np.concatenate([episodes.inputs(e, np.array([s])) for e, s in zip(ep, t, strict=True)])
        prev = np.concatenate([episodes.inputs(e, np.array([s - 1])) for e, s in zip(ep, t, strict=True)])
        return (torch.from_numpy(now).float().div_(255), torch.from_numpy(prev).float().div_(255))

    def _losses(self, now: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, local = self.encoder(torch.cat([now, prev]), local=True)
        n = now.shape[0]
        return stdim_loss(self.scores, out[:n], local[:n], local[n:])

    def fit(self, stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        """Train until early stopping, ``max_epochs``, or ``stop()`` (then checkpoint and return)."""
        s = self.settings
        while self.epoch < s.max_epochs and self.stale < s.patience:
            ep, t = self._plan(self.train_eps, self.epoch, 0)
            start = time.time()
            self.encoder.train()
            while self.batch < len(ep):
                loss_g, loss_l = self._losses(*self._pair_batch(self.train_eps, ep[self.batch], t[self.batch]))
                loss = loss_g + loss_l
                if not torch.isfinite(loss):
                    raise PrendError(f"ST-DIM's loss is {loss.item()} at epoch {self.epoch} batch {self.batch}; "
                                     "the last checkpoint is intact", "lower --lr and resume")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.running = [self.running[0] + loss_g.item(), self.running[1] + loss_l.item(),
                                self.running[2] + 1]
                self.batch += 1
                if self.batch % s.checkpoint_every == 0:
                    self._save()
                    self.log(f"epoch {self.epoch} batch {self.batch}/{len(ep)}: train loss "
                             f"{(self.running[0] + self.running[1]) / self.running[2]:.4f} "
                             f"({time.time() - start:.0f} s this session)")
                if stop():
                    self._save()
                    return self.summary()
            val = self.validate()
            record = {"epoch": self.epoch, "train_loss": (self.running[0] + self.running[1]) / max(1, self.running[2]),
                      "train_global_local": self.running[0] / max(1, self.running[2]),
                      "train_local_local": self.running[1] / max(1, self.running[2]), **val,
                      "seconds": round(time.time() - start, 1)}
            self.history.append(record)
            with open(self.out / "history.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            self._save_encoder(f"epoch{self.epoch + 1:03d}.pt", epoch=self.epoch + 1)  # the probe's trajectory
            if val["val_loss"] < self.best_val:
                self.best_val, self.stale = val["val_loss"], 0
                self._save_encoder("best.pt", epoch=self.epoch)
            else:
                self.stale += 1
            self.epoch, self.batch, self.running = self.epoch + 1, 0, [0.0, 0.0, 0]
            self._save()
            self.log(f"epoch {record['epoch']}: train {record['train_loss']:.4f} val {val['val_loss']:.4f} "
                     f"({record['seconds']:.0f} s)")
        return self.summary()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The validation loss over one epoch's worth of validation samples."""
        self.encoder.eval()
        ep, t = self._plan(self.val_eps, self.epoch, 1)
        totals = np.zeros(2)
        for i in range(len(ep)):
            totals += [v.item() for v in self._losses(*self._pair_batch(self.val_eps, ep[i], t[i]))]
        totals /= max(1, len(ep))
        return {"val_loss": float(totals.sum()), "val_global_local": float(totals[0]),
                "val_local_local": float(totals[1])}

    def summary(self) -> dict[str, Any]:
        """Where training stands: epochs done, whether it stopped early, the best validation loss."""
        s = self.settings
        return {"epochs": self.epoch, "batch": self.batch, "early_stopped": self.stale >= s.patience,
                "finished": self.epoch >= s.max_epochs or self.stale >= s.patience, "best_val_loss": self.best_val,
                "settings": asdict(s), "train_episodes": len(self.train_eps), "train_steps": self.train_eps.steps,
                "val_episodes": len(self.val_eps), "val_steps": self.val_eps.steps}

    def _save_encoder(self, name: str, **extra: Any) -> None:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "encoder": self.encoder.state_dict(),
                           "frame": self.encoder.frame, "size": list(self.encoder.size), **extra}, self.out / name)

    def _save(self) -> None:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "encoder": self.encoder.state_dict(),
                           "scores": self.scores.state_dict(),
                           "optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "batch": self.batch,
                           "running": self.running, "best_val": self.best_val, "stale": self.stale,
                           "history": self.history, "settings": asdict(self.settings),
                           "frame": self.encoder.frame, "size": list(self.encoder.size)}, self.out / "checkpoint.pt")

    def _load(self, state: dict[str, Any]) -> None:
        if state["settings"] != asdict(self.settings):
            raise PrendError(f"{self.out} was trained with other settings ({state['settings']})",
                             "use the same settings to resume, or another directory")
        self.encoder.load_state_dict(state["encoder"])
        self.scores.load_state_dict(state["scores"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.running = state["epoch"], state["batch"], list(state["running"])
        self.best_val, self.stale, self.history = state["best_val"], state["stale"], list(state["history"])


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
