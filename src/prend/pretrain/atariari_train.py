"""Training AtariARI's encoder on :mod:`prend.pretrain.atariari`'s episodes: ST-DIM and the supervised control.

Both objectives share one resumable loop (:class:`EncoderTrainer`): episodes split 80/20 by
:func:`~prend.pretrain.atariari.split_train_val`; an epoch draws as many samples as the training episodes
hold, each batch 64 episodes drawn with replacement and one time step from each; Adam lr 3e-4, eps 1e-5; up
to 100 epochs, stopped when the validation loss has not improved for 15 epochs (AtariARI's
``scripts/run_contrastive.py`` defaults). Checkpoints are written every ``checkpoint_every`` batches, and the
samples of an epoch are a function of (seed, epoch, split), so a stopped run resumes at that batch with the
same samples it would have drawn. The run directory holds ``checkpoint.pt`` (encoder, the objective's heads,
Adam, position, history), ``init.pt`` (the untrained encoder: the random-init twin), ``epochNNN.pt`` (the
encoder after NNN epochs), ``best.pt`` (the best-validation encoder) and ``history.jsonl`` (one line per
epoch); the encoder files are read by :func:`prend.pretrain.atariari.load_encoder`, whichever objective
wrote them.

The objectives themselves, ST-DIM and the supervised control, live in
:mod:`prend.pretrain.atariari_objectives` (their names still import from here).
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from prend.checkpoint import FORMAT as CHECKPOINT_FORMAT
from prend.checkpoint import atomic_torch_save, load_checkpoint
from prend.errors import PrendError
from prend.nets.atariari import AtariARIEncoder
from prend.pretrain.atariari import Episodes
from prend.pretrain.state_labels import ENTROPY_THRESHOLD

RAM_CLASSES = 256
"""Classes of a RAM variable's classifier: every value of a byte (AtariARI: 256)."""


# ---------------------------------------------------------------------------------------------- settings
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


@dataclass
class SupervisedSettings(STDIMSettings):
    """The supervised control's schedule: ST-DIM's, and which variables it learns.

    AtariARI trains its supervised baseline with the same optimiser settings as its ST-DIM encoder.
    """

    min_entropy: float = ENTROPY_THRESHOLD
    """Variables whose label entropy over the training frames is below this (nats) are not trained, as
    AtariARI's probe drops them (0.6); 0 trains every variable."""


# ---------------------------------------------------------------------------------------------- the loop
def _game_sets(train: Episodes | Sequence[Episodes], val: Episodes | Sequence[Episodes]
               ) -> tuple[list[Episodes], list[Episodes]]:
    # One Episodes per game, the same games in the same order for both splits, one input kind and size.
    train_sets = [train] if isinstance(train, Episodes) else list(train)
    val_sets = [val] if isinstance(val, Episodes) else list(val)
    games = [e.game for e in train_sets]
    if not train_sets or games != [e.game for e in val_sets]:
        raise PrendError(f"training games {games} and validation games {[e.game for e in val_sets]} differ",
                         "pass one training and one validation Episodes per game, in the same order")
    if len(set(games)) < len(games):
        raise PrendError(f"a game appears twice in {games}", "pass each game's episodes once")
    shapes = {(e.frame, e.frames[0].shape[1:]) for e in train_sets + val_sets if len(e)}
    if len(shapes) > 1:
        raise PrendError(f"the games' frames differ in kind or size: {sorted(shapes)}",
                         "collect every game with the same --frame")
    return train_sets, val_sets


class EncoderTrainer(ABC):
    """The resumable epoch loop that trains an :class:`AtariARIEncoder`, whatever the objective.

    A subclass names its loss terms (:attr:`terms`) and computes them for a batch (:meth:`_terms`), says how
    they combine into the loss (:meth:`_loss`, :meth:`_loss_value`) and builds the modules it trains beside
    the encoder (:meth:`_make_heads`). The loop draws the samples (:meth:`_plan`), steps Adam, checkpoints,
    validates, stops early and writes the run directory described in the module docstring.

    Args:
        train: Training episodes: one game's, or one Episodes per game.
        val: Validation episodes, the same games in the same order.
        out: The run directory (created; resumed when it holds a checkpoint).
        settings: The schedule.
        log: Where progress lines go.
        encoder_frame: The encoder's input kind when not the episodes' own: ``"last84"`` reads only the newest
            frame of ``stack84`` episodes' 4-stacks (two consecutive 4-stacks share three frames, which an
            ST-DIM pair could be matched by).
    """

    objective: ClassVar[str] = ""
    """The objective's name, in the checkpoint and in messages."""
    heads_key: ClassVar[str] = ""
    """The checkpoint key of the modules trained beside the encoder."""
    first_step: ClassVar[int] = 0
    """The first time step a sample may draw (ST-DIM's pairs need a step before it)."""
    settings_type: ClassVar[type[STDIMSettings]] = STDIMSettings

    def __init__(self, train: Episodes | Sequence[Episodes], val: Episodes | Sequence[Episodes],
                 out: str | os.PathLike[str], settings: STDIMSettings | None = None,
                 log: Callable[[str], None] = print, encoder_frame: str | None = None):
        self.train_sets, self.val_sets = _game_sets(train, val)
        self.games = [e.game for e in self.train_sets]
        self.out, self.log = Path(out), log
        self.settings = settings or self.settings_type()
        self.terms: tuple[str, ...] = self._prepare()
        torch.manual_seed(self.settings.seed)
        first = self.train_sets[0]
        if encoder_frame not in (None, first.frame) and (encoder_frame, first.frame) != ("last84", "stack84"):
            raise PrendError(f"an encoder of '{encoder_frame}' input cannot read '{first.frame}' episodes",
                             "use encoder_frame='last84' only with frame='stack84' episodes")
        self.encoder = AtariARIEncoder(encoder_frame or first.frame, size=first.frames[0].shape[1:])  # type: ignore[arg-type]
        self.heads = self._make_heads()
        params = list(self.encoder.parameters()) + list(self.heads.parameters())
        self.optimizer = torch.optim.Adam(params, lr=self.settings.lr, eps=1e-5)
        self.epoch, self.batch, self.history = 0, 0, []
        self.best_val, self.stale = float("inf"), 0
        self.running: list[float] = [0.0] * len(self.terms) + [0]  # the terms' sums over the epoch, batches
        self.out.mkdir(parents=True, exist_ok=True)
        if (self.out / "checkpoint.pt").exists():
            self._load(load_checkpoint(self.out / "checkpoint.pt"))
        else:
            self._save_encoder("init.pt")

    # -- the objective's part
    @abstractmethod
    def _prepare(self) -> tuple[str, ...]:
        """Check the data for the objective, precompute what it needs; returns the loss terms' names."""

    @abstractmethod
    def _make_heads(self) -> nn.Module:
        """The modules trained beside the encoder (built after it, from the same seeded generator)."""

    @abstractmethod
    def _terms(self, split: int, game: int, ep: np.ndarray, t: np.ndarray) -> Sequence[torch.Tensor]:
        """The loss terms (scalars, one per :attr:`terms` name) of one batch.

        The batch is steps ``t`` of episodes ``ep`` of game ``game`` in ``split`` (0 training, 1 validation).
        """

    @abstractmethod
    def _loss(self, terms: Sequence[torch.Tensor]) -> torch.Tensor:
        """The loss trained, from the terms."""

    @abstractmethod
    def _loss_value(self, terms: np.ndarray) -> float:
        """The loss reported, from the terms' (mean) values."""

    def _extra_state(self) -> dict[str, Any]:
        """What the objective adds to ``checkpoint.pt``."""
        return {}

    def _check_state(self, state: dict[str, Any]) -> None:
        """Raise :class:`PrendError` if ``state`` (a checkpoint) cannot be resumed by this trainer."""
        return  # an objective with nothing of its own to check accepts every state the base checks passed

    # -- the samples of an epoch are a function of (seed, epoch, split), so a resume draws the same ones
    def _plan(self, sets: Sequence[Episodes], epoch: int, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The epoch's samples: game (B,), episode (B, N) and time step (B, N) of each batch's samples.

        One game: ``steps // batch_size`` batches drawn as before multi-game runs existed (episodes with
        replacement, then steps). Several games, training: as many batches as all games' frames fill, each
        batch's game drawn with probability proportional to its frames; validation: each game its own
        ``steps // batch_size`` batches, so every epoch's validation loss weighs the games alike.
        """
        rng = np.random.default_rng([self.settings.seed, epoch, split])
        size = self.settings.batch_size
        steps = np.array([e.steps for e in sets])
        if len(sets) == 1:
            game = np.zeros(steps[0] // size, np.int64)
        elif split == 0:
            game = rng.choice(len(sets), size=int(steps.sum()) // size, p=steps / steps.sum())
        else:
            game = np.repeat(np.arange(len(sets)), steps // size)
        ep = np.zeros((len(game), size), np.int64)
        t = np.zeros((len(game), size), np.int64)
        for g, episodes in enumerate(sets):
            rows = game == g
            lengths = np.array([len(f) for f in episodes.frames])
            ep[rows] = rng.integers(len(episodes), size=(int(rows.sum()), size))
            t[rows] = self.first_step + (rng.random(ep[rows].shape) * (lengths[ep[rows]] - self.first_step)
                                         ).astype(np.int64)
        return game, ep, t

    def _inputs(self, split: int, game: int, ep: np.ndarray, t: np.ndarray) -> torch.Tensor:
        """Float encoder inputs in [0, 1] (N, C, H, W) for steps ``t`` of episodes ``ep`` of one game."""
        episodes = (self.train_sets, self.val_sets)[split][game]
        x = np.concatenate([episodes.inputs(e, np.array([s])) for e, s in zip(ep, t, strict=True)])
        return torch.from_numpy(x).float().div_(255)

    def fit(self, stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        """Train until early stopping, ``max_epochs``, or ``stop()`` (then checkpoint and return)."""
        s = self.settings
        while self.epoch < s.max_epochs and self.stale < s.patience:
            game, ep, t = self._plan(self.train_sets, self.epoch, 0)
            start = time.time()
            self.encoder.train()
            while self.batch < len(ep):
                terms = self._terms(0, int(game[self.batch]), ep[self.batch], t[self.batch])
                loss = self._loss(terms)
                if not torch.isfinite(loss):
                    raise PrendError(f"{self.objective}'s loss is {loss.item()} at epoch {self.epoch} batch "
                                     f"{self.batch}; the last checkpoint is intact", "lower --lr and resume")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                values = [v.item() for v in terms]
                self.running = [r + v for r, v in zip(self.running[:-1], values, strict=True)] + [self.running[-1] + 1]
                self.batch += 1
                if self.batch % s.checkpoint_every == 0:
                    self._save()
                    self.log(f"epoch {self.epoch} batch {self.batch}/{len(ep)}: train loss "
                             f"{self._loss_value(np.array(self.running[:-1])) / self.running[-1]:.4f} "
                             f"({time.time() - start:.0f} s this session)")
                if stop():
                    self._save()
                    return self.summary()
            val = self.validate()
            n = max(1, self.running[-1])
            record = {"epoch": self.epoch, "train_loss": self._loss_value(np.array(self.running[:-1])) / n,
                      **{f"train_{name}": r / n for name, r in zip(self.terms, self.running[:-1], strict=True)},
                      **val, "seconds": round(time.time() - start, 1)}
            self.history.append(record)
            with open(self.out / "history.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            self._save_encoder(f"epoch{self.epoch + 1:03d}.pt", epoch=self.epoch + 1)  # the probe's trajectory
            if val["val_loss"] < self.best_val:
                self.best_val, self.stale = val["val_loss"], 0
                self._save_encoder("best.pt", epoch=self.epoch + 1)  # epochs completed, as epochNNN.pt
            else:
                self.stale += 1
            self.epoch, self.batch, self.running = self.epoch + 1, 0, [0.0] * len(self.terms) + [0]
            self._save()
            self.log(f"epoch {record['epoch']}: train {record['train_loss']:.4f} val {val['val_loss']:.4f} "
                     f"({record['seconds']:.0f} s)")
        return self.summary()

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """The validation loss (and its terms) over one epoch's worth of validation samples.

        With several games, ``val_loss_by_game`` holds each game's own (absent for a game with no batch).
        """
        self.encoder.eval()
        game, ep, t = self._plan(self.val_sets, self.epoch, 1)
        sums, batches = np.zeros((len(self.val_sets), len(self.terms))), np.zeros(len(self.val_sets), np.int64)
        for i in range(len(ep)):
            sums[game[i]] += [v.item() for v in self._terms(1, int(game[i]), ep[i], t[i])]
            batches[game[i]] += 1
        totals = sums.sum(0) / max(1, len(ep))
        out: dict[str, Any] = {"val_loss": self._loss_value(totals),
                               **{f"val_{name}": float(v) for name, v in zip(self.terms, totals, strict=True)}}
        if len(self.games) > 1:
            out["val_loss_by_game"] = {g: self._loss_value(sums[i] / batches[i])
                                       for i, g in enumerate(self.games) if batches[i]}
        return out

    def summary(self) -> dict[str, Any]:
        """Where training stands: epochs done, whether it stopped early, the best validation loss."""
        s = self.settings
        return {"epochs": self.epoch, "batch": self.batch, "early_stopped": self.stale >= s.patience,
                "finished": self.epoch >= s.max_epochs or self.stale >= s.patience, "best_val_loss": self.best_val,
                "settings": asdict(s), "objective": self.objective, "games": self.games,
                "train_episodes": sum(len(e) for e in self.train_sets),
                "train_steps": sum(e.steps for e in self.train_sets),
                "val_episodes": sum(len(e) for e in self.val_sets), "val_steps": sum(e.steps for e in self.val_sets)}

    def _save_encoder(self, name: str, **extra: Any) -> None:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "encoder": self.encoder.state_dict(),
                           "frame": self.encoder.frame, "size": list(self.encoder.size), **extra}, self.out / name)

    def _save(self) -> None:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "encoder": self.encoder.state_dict(),
                           self.heads_key: self.heads.state_dict(),
                           "optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "batch": self.batch,
                           "running": self.running, "best_val": self.best_val, "stale": self.stale,
                           "history": self.history, "settings": asdict(self.settings),
                           "frame": self.encoder.frame, "size": list(self.encoder.size),
                           "objective": self.objective, "games": self.games, **self._extra_state()},
                          self.out / "checkpoint.pt")

    def _load(self, state: dict[str, Any]) -> None:
        # Checkpoints written before the objective and the games were recorded are one game's ST-DIM runs.
        if state.get("objective", "ST-DIM") != self.objective:
            raise PrendError(f"{self.out} holds a {state.get('objective', 'ST-DIM')} run, not {self.objective}",
                             "use another directory")
        if state.get("games", self.games) != self.games:
            raise PrendError(f"{self.out} was trained on {state['games']}, not {self.games}",
                             "pass the same games to resume, or use another directory")
        if state.get("frame", self.encoder.frame) != self.encoder.frame:
            raise PrendError(f"{self.out} holds an encoder of '{state['frame']}' input, not '{self.encoder.frame}'",
                             "resume with the same input kind, or use another directory")
        if state["settings"] != asdict(self.settings):
            raise PrendError(f"{self.out} was trained with other settings ({state['settings']})",
                             "use the same settings to resume, or another directory")
        self._check_state(state)
        self.encoder.load_state_dict(state["encoder"])
        self.heads.load_state_dict(state[self.heads_key])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.running = state["epoch"], state["batch"], list(state["running"])
        self.best_val, self.stale, self.history = state["best_val"], state["stale"], list(state["history"])


# The objectives live in prend.pretrain.atariari_objectives, which imports this loop; their names are resolved
# from there on first use (PEP 562), so that imports written before the split keep working without a cycle.
_OBJECTIVE_EXPORTS = ("STDIMScores", "stdim_loss", "STDIMTrainer", "RAMClassifiers", "ram_cross_entropy",
                      "SupervisedTrainer")


def __getattr__(name: str) -> Any:
    """The objectives' names, from :mod:`prend.pretrain.atariari_objectives`."""
    if name in _OBJECTIVE_EXPORTS:
        import importlib

        return getattr(importlib.import_module("prend.pretrain.atariari_objectives"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
