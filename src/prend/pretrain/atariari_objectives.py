"""AtariARI's two encoder objectives on :class:`~prend.pretrain.atariari_train.EncoderTrainer`'s loop.

- **ST-DIM** (:class:`STDIMTrainer`, :func:`stdim_loss`): two InfoNCE terms with in-batch negatives,
  global(t) against each local cell of t-1 (through a linear map 256 -> C) and local(t) against local(t-1)
  (C -> C), each averaged over cells, summed; no score scaling, no augmentation. A sample's time step is
  drawn from ``1 .. T-1`` (AtariARI's from ``0 .. T-1``, pairing step 0 with the episode's last frame
  through Python's negative index). Given several games' episodes, each batch is drawn from one game,
  chosen with probability proportional to its training frames, so that the in-batch negatives are frames
  of the same game: mixed batches would let InfoNCE be solved by telling the games apart. Validation
  batches are likewise one game's each, every game its share of the validation frames. One game's run
  draws exactly the samples it drew before multi-game runs existed.
- **supervised control** (:class:`SupervisedTrainer`, :func:`ram_cross_entropy`): AtariARI's
  ``supervised`` baseline, the same encoder trained end to end with one linear classifier (256 classes) per
  AtariARI RAM variable of the game; the loss is the mean over variables of their cross-entropies. A
  sample is one time step, drawn from ``0 .. T-1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from prend.errors import PrendError
from prend.pretrain.atariari_train import RAM_CLASSES, EncoderTrainer, SupervisedSettings
from prend.pretrain.state_labels import ATARIARI_RAM, ENTROPY_THRESHOLD, label_entropy, state_labels
from prend.pretrain.stdim import info_nce


# ------------------------------------------------------------------------------------------------- ST-DIM
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


class STDIMTrainer(EncoderTrainer):
    """Trains an :class:`AtariARIEncoder` with ST-DIM on one game's episodes or several games', resumably.

    Several games: pass a list of Episodes, one per game, for ``train`` and ``val``; each batch is one
    game's (see the module docstring). The checkpoint records the games; the score maps are saved under
    ``scores``.
    """

    objective = "ST-DIM"
    heads_key = "scores"
    first_step = 1

    @property
    def scores(self) -> STDIMScores:
        """The two score maps."""
        return self.heads  # type: ignore[return-value]

    def _prepare(self) -> tuple[str, ...]:
        return ("global_local", "local_local")

    def _make_heads(self) -> nn.Module:
        return STDIMScores(self.encoder.feature_dim, self.encoder.local_channels)

    def _terms(self, split: int, game: int, ep: np.ndarray, t: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        now, prev = self._inputs(split, game, ep, t), self._inputs(split, game, ep, t - 1)
        out, local = self.encoder(torch.cat([now, prev]), local=True)
        n = now.shape[0]
        return stdim_loss(self.scores, out[:n], local[:n], local[n:])

    def _loss(self, terms: Sequence[torch.Tensor]) -> torch.Tensor:
        return terms[0] + terms[1]

    def _loss_value(self, terms: np.ndarray) -> float:
        return float(terms.sum())


# ------------------------------------------------------------------------------------- supervised control
class RAMClassifiers(nn.Module):
    """One linear classifier of ``RAM_CLASSES`` classes per RAM variable, read from the encoder's vector.

    Args:
        feature_dim: Width of the encoder's vector.
        variables: How many variables.
    """

    def __init__(self, feature_dim: int, variables: int):
        super().__init__()
        self.variables = variables
        # One Linear with every classifier's rows: the same as separate ones (AtariARI's probe does the same).
        self.linear = nn.Linear(feature_dim, variables * RAM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Vectors (N, D) -> logits (N, variables, RAM_CLASSES)."""
        return self.linear(x).view(x.shape[0], self.variables, RAM_CLASSES)


def ram_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each variable's mean cross-entropy over the batch: logits (N, V, K), labels (N, V) -> (V,).

    Example (uniform logits: every variable's loss is ln K):
        >>> [round(v, 4) for v in ram_cross_entropy(torch.zeros(3, 2, 4), torch.zeros(3, 2).long()).tolist()]
        [1.3863, 1.3863]
    """
    return F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(0)


class SupervisedTrainer(EncoderTrainer):
    """AtariARI's supervised control: the encoder trained end to end to classify one game's RAM variables.

    The variables are the game's AtariARI variables (:func:`~prend.pretrain.state_labels.state_labels`),
    less those whose label entropy over the training frames is below ``settings.min_entropy``; the loss is
    the mean of their cross-entropies (:func:`ram_cross_entropy`). The checkpoint records the variables, and
    the classifiers under ``classifiers``; the encoder files are ST-DIM's.

    Raises:
        PrendError: If the episodes are several games', a game AtariARI does not annotate, or no variable
            is left to learn.
    """

    objective = "supervised"
    heads_key = "classifiers"
    first_step = 0
    settings_type = SupervisedSettings

    def _prepare(self) -> tuple[str, ...]:
        if len(self.games) > 1:
            raise PrendError(f"the supervised control learns one game's variables, got {self.games}",
                             "pass one game's episodes")
        game = self.games[0]
        if game not in ATARIARI_RAM:
            raise PrendError(f"AtariARI annotates no RAM variables of {game}",
                             f"choose one of {', '.join(sorted(ATARIARI_RAM))}")
        names = list(ATARIARI_RAM[game])
        train = state_labels(np.concatenate(self.train_sets[0].ram), game)
        floor = getattr(self.settings, "min_entropy", ENTROPY_THRESHOLD)
        self.entropy = {n: label_entropy(train[n]) for n in names}
        self.variables = [n for n in names if self.entropy[n] >= floor]
        if not self.variables:
            raise PrendError(f"every variable of {game} has label entropy below {floor} on the training frames",
                             "lower min_entropy (0 keeps every variable) or collect more steps")
        # Labels (T, V) per episode, gathered by index at each batch.
        self.labels = [[np.stack([labels[n] for n in self.variables], 1)
                        for labels in (state_labels(r, game) for r in sets[0].ram)]
                       for sets in (self.train_sets, self.val_sets)]
        return tuple(self.variables)

    def _make_heads(self) -> nn.Module:
        return RAMClassifiers(self.encoder.feature_dim, len(self.variables))

    def _terms(self, split: int, game: int, ep: np.ndarray, t: np.ndarray) -> torch.Tensor:
        labels = np.stack([self.labels[split][e][s] for e, s in zip(ep, t, strict=True)])
        return ram_cross_entropy(self.heads(self.encoder(self._inputs(split, game, ep, t))),
                                 torch.from_numpy(labels))

    def _loss(self, terms: Sequence[torch.Tensor]) -> torch.Tensor:
        return terms.mean()  # type: ignore[union-attr]

    def _loss_value(self, terms: np.ndarray) -> float:
        return float(terms.mean())

    def _extra_state(self) -> dict[str, Any]:
        return {"variables": self.variables, "entropy": self.entropy}

    def _check_state(self, state: dict[str, Any]) -> None:
        if state["variables"] != self.variables:
            raise PrendError(f"{self.out} learnt the variables {state['variables']}, not {self.variables}",
                             "resume with the same training episodes, or use another directory")
