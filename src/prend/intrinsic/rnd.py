"""RND (Burda et al. 2019): a random CNN target on the normalised last frame."""

from __future__ import annotations

import torch

from prend.config import IntrinsicConfig
from prend.intrinsic.base import DistillationReward, Encoder
from prend.intrinsic.normalizers import RunningMeanStd
from prend.nets.rnd import rnd_predictor, rnd_target


class LastFrameNormalizer(Encoder):
    """The last frame of the stack, whitened per pixel by running statistics and clipped to [-5, 5].

    Stores the uint8 frame as its compact form (7 KB per observation), so the update re-normalises it.
    Statistics change only in :meth:`observe`, which the trainer calls after the update, so the rollout's
    rewards and the predictor's update see the same normalisation.
    """

    needs_warmup = True

    def __init__(self, frame_shape: tuple[int, int] = (84, 84), clip: float = 5.0):
        super().__init__()
        self.obs_rms = RunningMeanStd(shape=(1, *frame_shape))
        self.clip = clip

    def compact(self, obs: torch.Tensor) -> torch.Tensor:
        """The last frame, uint8 (B, 1, H, W)."""
        return obs[:, -1:]

    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """Whitened and clipped float frames."""
        mean = self.obs_rms.mean.to(torch.float32)
        std = self.obs_rms.std.to(torch.float32)
        return ((compact.float() - mean) / std).clamp_(-self.clip, self.clip)

    def observe(self, obs: torch.Tensor, compact: torch.Tensor | None = None) -> None:
        """Fold the last frames of a batch into the per-pixel statistics (from ``obs``, as the original RND)."""
        self.obs_rms.update(obs[:, -1:])


def make_rnd(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None) -> DistillationReward:
    """The original RND reward module: :class:`LastFrameNormalizer` -> random CNN target / CNN predictor.

    The builder of methods ``rnd`` and ``rnd-lr`` (:mod:`prend.intrinsic.methods`), which differ only in the
    predictor's optimizer; of ``cfg`` it reads ``feature_dim``, and it is the same for every game (``rom``).
    The networks use channels-last weights: oneDNN's convolutions run about 1.8x faster so on a CPU.
    """
    target = rnd_target(1, cfg.feature_dim).to(memory_format=torch.channels_last)
    predictor = rnd_predictor(1, cfg.feature_dim).to(memory_format=torch.channels_last)
    return DistillationReward(LastFrameNormalizer(), target, predictor, num_envs=num_envs, gamma=gamma)
