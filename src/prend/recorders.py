"""What ``prend train`` records during training on top of learning: the data of the paper's Fig. 3.

:class:`DiagnosticsRecorder` is a trainer callback (:mod:`prend.agent.callbacks`). Every iteration it keeps
one observation (env 0's last frame of the rollout) with its raw intrinsic reward; at the start it draws a
fixed probe set from the random agent's frames, and every ``run.probe_every`` iterations it logs the raw
intrinsic reward on that set (``intrinsic/probe_mean``, ``intrinsic/probe_std``). ``prend diagnose`` reads
it all from the run's ``diagnostics.npz`` (:meth:`DiagnosticsRecorder.arrays`); the checkpoint carries it as
``probe_obs`` and ``diagnostics``, so a resumed run's file continues where it left off.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prend.agent.callbacks import Callback
from prend.agent.trainer import Trainer
from prend.intrinsic.base import RewardOutput

SERIES = ("iteration", "frame", "frame_reward", "probe_iteration", "probe_rewards")
"""The per-iteration series, in ``diagnostics.npz``'s order (``probe_obs`` follows them)."""


class DiagnosticsRecorder(Callback):
    """Per-iteration frames with their raw reward, and raw rewards on a fixed probe set (``diagnostics.npz``)."""

    purpose = "probe set"
    state_keys = ("probe_obs", "diagnostics")

    def __init__(self) -> None:
        self.series: dict[str, list[Any]] = {key: [] for key in SERIES}
        self.probe_obs = torch.zeros(0, dtype=torch.uint8)
        self.frame_shape: tuple[int, ...] = ()

    def on_init(self, trainer: Trainer) -> None:
        """Size the empty probe set and frames after the env's observations; ask for a random rollout if probing."""
        self.probe_size = trainer.cfg.run.probe_size
        self.random_rollouts = 1 if self.probe_size > 0 else 0
        self.probe_obs = torch.zeros(0, *trainer.env.obs_shape, dtype=torch.uint8)
        self.frame_shape = tuple(trainer.env.obs_shape[1:])

    def on_start(self, trainer: Trainer, frames: torch.Tensor) -> None:
        """Draw the probe set from the random agent's last rollout (with the trainer's numpy generator)."""
        if self.probe_size > 0 and len(frames):
            pick = trainer.np_rng.choice(len(frames), size=min(self.probe_size, len(frames)), replace=False)
            self.probe_obs = frames[np.sort(pick)].clone()

    def on_intrinsic_rewards(self, trainer: Trainer, rewards: RewardOutput) -> None:
        """Keep env 0's last observation of the rollout and its raw reward."""
        st = trainer.storage
        self.series["iteration"].append(trainer.iteration + 1)
        self.series["frame"].append(st.last_obs[0, -1].cpu().clone())
        self.series["frame_reward"].append(st.rewards_int_raw[-1, 0].item())

    def on_iteration_end(self, trainer: Trainer) -> dict[str, float]:
        """Raw intrinsic reward on the probe set, every ``probe_every`` iterations."""
        every = trainer.cfg.run.probe_every
        if trainer.intrinsic is None or not len(self.probe_obs) or every <= 0 or trainer.iteration % every:
            return {}
        rewards = trainer.intrinsic.reward(self.probe_obs.to(trainer.device)).raw.cpu()
        self.series["probe_iteration"].append(trainer.iteration)
        self.series["probe_rewards"].append(rewards)
        return {"intrinsic/probe_mean": rewards.mean().item(), "intrinsic/probe_std": rewards.std().item()}

    def _tensors(self) -> dict[str, torch.Tensor]:
        s = self.series
        return {
            "iteration": torch.tensor(s["iteration"], dtype=torch.long),
            "frame": torch.stack(s["frame"]) if s["frame"] else torch.zeros(0, *self.frame_shape, dtype=torch.uint8),
            "frame_reward": torch.tensor(s["frame_reward"], dtype=torch.float64),
            "probe_iteration": torch.tensor(s["probe_iteration"], dtype=torch.long),
            "probe_rewards": torch.stack(s["probe_rewards"]) if s["probe_rewards"] else torch.zeros(0),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The series so far and the probe set, as ``diagnostics.npz`` holds them."""
        arrays = {key: value.numpy() for key, value in self._tensors().items()}
        if not self.series["probe_rewards"]:
            arrays["probe_rewards"] = np.zeros((0, len(self.probe_obs)))
        return arrays | {"probe_obs": self.probe_obs.numpy()}

    def state_dict(self) -> dict[str, Any]:
        """``probe_obs`` and the series as tensors (the checkpoint's ``diagnostics``)."""
        return {"probe_obs": self.probe_obs, "diagnostics": self._tensors()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the series and probe set of a checkpoint."""
        self.probe_obs = state["probe_obs"]
        d = state["diagnostics"]
        self.series = {
            "iteration": d["iteration"].tolist(), "frame": list(d["frame"]), "frame_reward": d["frame_reward"].tolist(),
            "probe_iteration": d["probe_iteration"].tolist(),
            "probe_rewards": list(d["probe_rewards"]) if d["probe_rewards"].numel() else [],
        }
