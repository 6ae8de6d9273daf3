"""Hooks into the training loop, in the manner of Stable-Baselines3's callbacks.

A :class:`Callback` is handed to :class:`~prend.agent.trainer.Trainer` and called at fixed points of
:meth:`~prend.agent.trainer.Trainer.start` and :meth:`~prend.agent.trainer.Trainer.train_iteration`. It may
add metrics to an iteration's record and entries to the trainer's state (the checkpoint). The trainer keeps
only what learning needs; what a study records on top (``prend train``'s per-iteration frames and probe-set
rewards for ``prend diagnose``: :class:`prend.recorders.DiagnosticsRecorder`) is a callback.

Every hook receives the trainer, whose attributes (``cfg``, ``env``, ``intrinsic``, ``storage``,
``iteration``, ``device``, ``np_rng``) are the callback's view of the run. The defaults do nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # the trainer imports this module; the type is for annotations only
    from prend.agent.trainer import Trainer
    from prend.intrinsic.base import RewardOutput


class Callback:
    """The hooks the trainer calls, each a no-op here; subclass and override the ones you need."""

    random_rollouts: int = 0
    """Random-agent rollouts to play before training for :meth:`on_start` (the trainer plays the larger of
    the callbacks' numbers and the intrinsic reward's observation-statistics warm-up)."""
    purpose: str = ""
    """What the callback keeps of the random agent's frames, shown on the warm-up's progress bar."""
    state_keys: tuple[str, ...] = ()
    """Top-level entries of the trainer's state that :meth:`state_dict` writes and :meth:`load_state_dict` reads."""

    def on_init(self, trainer: Trainer) -> None:
        """The trainer is built (networks, environments, storage), nothing has run yet."""

    def on_start(self, trainer: Trainer, frames: torch.Tensor) -> None:
        """The random-agent warm-up ended; ``frames`` (uint8 (T*N, *obs_shape)) are its last rollout's observations.

        ``frames`` is empty when no random rollout was played.
        """

    def on_intrinsic_rewards(self, trainer: Trainer, rewards: RewardOutput) -> None:
        """The rollout's intrinsic rewards are computed and normalised (``trainer.storage`` holds both)."""

    def on_iteration_end(self, trainer: Trainer) -> dict[str, float]:
        """The update is done and the counters advanced; returns metrics to add to the iteration's record."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The callback's entries of the trainer's state (keys: :attr:`state_keys`; tensors, numbers, strings)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the callback from the trainer's whole loaded state (it reads its :attr:`state_keys`)."""
