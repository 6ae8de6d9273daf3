"""Frames collected by ``prend collect``, loaded into memory, with frame stacks assembled on demand.

:class:`FrameData` concatenates every chunk of a frame directory (streams in order) into flat arrays and
records, for each frame, its episode and position in it. Stacks follow ALE's convention (oldest to newest,
zeros before the episode's first frame), so the backbone sees during pre-training exactly what PreND's
agent sees. :class:`FuturePairSampler` draws Atari-PB's ``random_future_state`` pairs: a stack and the stack
``k ~ U{1..n_step}`` steps later in the same episode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from prend.envs.ram import RAM_BYTES
from prend.errors import PrendError
from prend.pretrain.collect import FRAME_SHAPE, read_manifest, resolve_games

STACK = 4
"""Frames per observation (Atari-PB's ``frame: 4``, prend's protocol)."""


@dataclass
class FrameData:
    """Flat per-frame arrays of a frame directory.

    Attributes:
        frames: uint8 (M, 84, 84), single frames.
        actions: int64 (M,), action taken on each frame's observation.
        rewards: float32 (M,), raw reward of that action.
        game_ids: int64 (M,), Atari-PB game ids.
        episode: int64 (M,), a running episode number (unique across games and streams).
        t: int64 (M,), position of the frame in its episode (0 = first).
        left: int64 (M,), stored frames of the same episode after this one.
        games: The games loaded, in order.
        ram: uint8 (M, 128), the emulator RAM in the state each frame shows, when every loaded chunk was
            collected with ``--ram`` (else None): the labels of ``prend probe --state``.
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    game_ids: np.ndarray
    episode: np.ndarray
    t: np.ndarray
    left: np.ndarray
    games: list[str]
    ram: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def load(cls, root: str | os.PathLike[str], games: Sequence[str] | None = None,
             max_frames_per_game: int | None = None, progress: bool = False) -> FrameData:
        """Load a frame directory (or some of its games).

        Args:
            root: Directory written by ``prend collect``.
            games: Games to load (default: all in the manifest).
            max_frames_per_game: Keep only the first frames of each game (whole chunks, streams in order).
            progress: Show a progress bar over chunks.

        Raises:
            PrendError: If the directory is not a frame directory, lacks a requested game, or is empty.
        """
        root = Path(root)
        manifest = read_manifest(root)
        available = manifest["games"]
        names = list(available) if games is None else resolve_games(games)
        missing = [g for g in names if g not in available or not available[g]["chunks"]]
        if missing:
            raise PrendError(f"{root} has no frames of {', '.join(missing)}",
                             f"collect them: prend collect --out {root} --games {' '.join(missing)}")
        plan: list[tuple[str, dict]] = []
        for game in names:
            chunks = sorted(available[game]["chunks"], key=lambda c: (c["stream"], c["part"]))
            kept, total = [], 0
            for chunk in chunks:
                if max_frames_per_game is not None and total >= max_frames_per_game:
                    break
                kept.append(chunk)
                total += chunk["frames"]
            plan += [(game, c) for c in _complete_prefixes(kept)]
        total = sum(c["frames"] for _, c in plan)
        if total == 0:
            raise PrendError(f"{root} holds no frames", f"collect some: prend collect --out {root}")

        frames = np.empty((total, *FRAME_SHAPE), dtype=np.uint8)
        actions = np.empty(total, dtype=np.int64)
        rewards = np.empty(total, dtype=np.float32)
        game_ids = np.empty(total, dtype=np.int64)
        first = np.empty(total, dtype=bool)
        done = np.empty(total, dtype=bool)
        ram = np.empty((total, RAM_BYTES), dtype=np.uint8) if all(c.get("ram") for _, c in plan) else None
        pos, prev_stream = 0, None
        for game, chunk in tqdm(plan, desc="load frames", unit="chunk", disable=not progress):
            try:
                with np.load(root / chunk["file"]) as z:
                    n = len(z["frames"])
                    sl = slice(pos, pos + n)
                    frames[sl], actions[sl], rewards[sl] = z["frames"], z["actions"], z["rewards"]
                    first[sl], done[sl] = z["first"], z["done"]
                    game_ids[sl] = int(z["game_id"])
                    if ram is not None:
                        ram[sl] = z["ram"]
            except (OSError, KeyError, ValueError) as err:
                raise PrendError(f"cannot read chunk {root / chunk['file']}: {err}",
                                 "delete it and its manifest entry, then re-run prend collect") from None
            if n != chunk["frames"]:
                raise PrendError(f"chunk {chunk['file']} holds {n} frames, the manifest says {chunk['frames']}",
                                 "the directory is inconsistent; collect it again")
            # A stream's first stored step always starts an episode; the step after a `done` does too.
            key = (game, chunk["stream"])
            if key != prev_stream:
                first[pos] = True
            prev_stream = key
            pos += n
        first[1:] |= done[:-1]
        first[0] = True
        episode = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], total)  # exclusive end of each episode
        t = np.arange(total) - starts[episode]
        left = ends[episode] - 1 - np.arange(total)
        return cls(frames, actions, rewards, game_ids, episode, t, left, names, ram)

    def stacks(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 (B, 4, 84, 84) observations ending at frames ``idx``, zero-filled before episode starts.

        Example:
            >>> d = FrameData.synthetic(episode_lengths=[2, 3])
            >>> d.stacks(np.array([1, 2]))[:, :, 0, 0].tolist()   # frame k holds the value k + 1
            [[0, 0, 1, 2], [0, 0, 0, 3]]
        """
        idx = np.asarray(idx, dtype=np.int64)
        offsets = np.arange(-(STACK - 1), 1)                      # oldest .. newest
        src = idx[:, None] + offsets[None, :]
        valid = self.t[idx][:, None] + offsets[None, :] >= 0       # not before the episode's first frame
        gathered = self.frames[np.where(valid, src, idx[:, None])]
        gathered[~valid] = 0
        if out is not None:
            out[...] = gathered
            return out
        return gathered

    @classmethod
    def synthetic(cls, episode_lengths: Sequence[int], game_id: int = 0) -> FrameData:
        """A tiny in-memory dataset whose frame ``k`` is filled with the value ``k + 1`` (for tests)."""
        total = int(sum(episode_lengths))
        frames = ((np.arange(total) + 1) % 256).astype(np.uint8)[:, None, None] * np.ones(FRAME_SHAPE, np.uint8)
        first = np.zeros(total, dtype=bool)
        first[np.cumsum([0, *episode_lengths[:-1]])] = True
        episode = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], total)
        return cls(frames, np.zeros(total, np.int64), np.zeros(total, np.float32),
                   np.full(total, game_id, np.int64), episode, np.arange(total) - starts[episode],
                   ends[episode] - 1 - np.arange(total), ["synthetic"])


def split_episodes(episode: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks over rows, holding out about ``fraction`` of the rows as whole episodes.

    With a single episode, its last ``fraction`` of rows is the test part (the only split available).
    """
    eps = np.unique(episode)
    if len(eps) < 2:
        n = len(episode)
        test = np.zeros(n, dtype=bool)
        test[int(round(n * (1 - fraction))):] = True
        return ~test, test
    order = np.random.default_rng(seed).permutation(eps)
    sizes = np.array([(episode == e).sum() for e in order])
    cum = np.cumsum(sizes) / sizes.sum()
    n_test = max(1, min(len(eps) - 1, int(np.searchsorted(cum, fraction) + 1)))
    test = np.isin(episode, order[:n_test])
    return ~test, test


def _complete_prefixes(chunks: list[dict]) -> list[dict]:
    """Drop chunks whose stream has a gap before them (a missing part breaks the stream's continuity)."""
    kept, expect = [], {}
    for chunk in chunks:
        if chunk["part"] == expect.get(chunk["stream"], 0):
            kept.append(chunk)
            expect[chunk["stream"]] = chunk["part"] + 1
    return kept


class FuturePairSampler:
    """Atari-PB's ``random_future_state`` batches: (stack at t, stack at t + k, game id), k ~ U{1..n_step}.

    Anchors are frames with at least ``n_step`` frames after them in their episode. Each epoch visits every
    anchor once in a fresh random order; the order and the draws of ``k`` depend only on ``(seed, step)``,
    so training resumes from a step number alone (the *data cursor*) and replays exactly.

    Args:
        data: The frames.
        batch_size: Pairs per batch.
        n_step: Largest look-ahead (Atari-PB: 3).
        seed: Seed of the epoch permutations and the ``k`` draws.
        one_game: Draw each batch from one game (the game uniformly, its anchors without replacement) instead
            of from the pooled anchors, so a contrastive loss's negatives share the positive's game. Each
            batch then depends on ``(seed, step)`` alone; an "epoch" is still ``len(anchors) // batch_size``
            batches.
    """

    def __init__(self, data: FrameData, batch_size: int, n_step: int = 3, seed: int = 0, one_game: bool = False):
        self.data, self.batch_size, self.n_step, self.seed = data, batch_size, n_step, seed
        self.anchors = np.flatnonzero(data.left >= n_step)
        if len(self.anchors) < batch_size:
            raise PrendError(f"only {len(self.anchors)} frames have {n_step} successors in their episode, "
                             f"fewer than the batch size {batch_size}",
                             "collect more frames or lower --batch-size")
        self.one_game = one_game
        if one_game:
            by_game = {int(g): self.anchors[data.game_ids[self.anchors] == g]
                       for g in np.unique(data.game_ids[self.anchors])}
            self._game_anchors = [a for a in by_game.values() if len(a) >= batch_size]
            if not self._game_anchors:
                raise PrendError(f"no game has {batch_size} frames with {n_step} successors for one-game batches",
                                 "collect more frames per game or lower --batch-size")
        self._perm_epoch, self._perm = -1, self.anchors

    @property
    def steps_per_epoch(self) -> int:
        """Batches per pass over the anchors."""
        return len(self.anchors) // self.batch_size

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.anchors)
            self._perm_epoch = epoch
        return self._perm

    def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Anchor and target frame indices of batch number ``step`` (0-based)."""
        if self.one_game:
            rng = np.random.default_rng([self.seed, 2_000_003, step])
            pool = self._game_anchors[rng.integers(len(self._game_anchors))]
            anchor = np.sort(rng.choice(pool, self.batch_size, replace=False))
            k = rng.integers(1, self.n_step + 1, size=len(anchor))
            return anchor, anchor + k
        per_epoch = self.steps_per_epoch
        epoch, within = divmod(step, per_epoch)  # the remainder of an epoch is dropped, like drop_last
        anchor = self._permutation(epoch)[within * self.batch_size:(within + 1) * self.batch_size]
        k = np.random.default_rng([self.seed, 1_000_003, step]).integers(1, self.n_step + 1, size=len(anchor))
        return anchor, anchor + k

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uint8 stacks (B, 4, 84, 84) at t and t + k, and the game ids (B,), of batch ``step``."""
        anchor, target = self.indices(step)
        return self.data.stacks(anchor), self.data.stacks(target), self.data.game_ids[anchor]
