"""Running statistics kept as module buffers, so ``state_dict()`` carries them into checkpoints.

- :class:`RunningMeanStd`: the parallel (Chan et al.) mean/variance update used by openai/baselines and
  the original RND, in float64, started at ``count=1e-4, mean=0, var=1`` as there.
- :class:`RewardForwardFilter`: the original RND's per-environment discounted sum of intrinsic rewards,
  run forward over *time*; the running std of its outputs normalises the intrinsic reward.
- :class:`OutputNormalizer`: centres, or whitens and clips, a network's outputs per element by running
  statistics (PreND's ``--target-norm`` and ``--feature-norm`` variants).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Running mean and variance of a stream of batches, elementwise over ``shape``.

    Example:
        >>> rms = RunningMeanStd(shape=())
        >>> rms.update(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        >>> round(rms.mean.item(), 4), round(rms.var.item(), 4)
        (2.4999, 1.2501)
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor, chunk_size: int = 2048) -> None:
        """Fold in a batch whose first dimension indexes samples (in chunks: the merge is exact)."""
        for chunk in batch.split(chunk_size):
            chunk = chunk.to(torch.float64)
            self.update_from_moments(chunk.mean(0), chunk.var(0, unbiased=False), chunk.shape[0])

    @torch.no_grad()
    def update_from_moments(self, batch_mean: torch.Tensor, batch_var: torch.Tensor, batch_count: int) -> None:
        """Fold in a batch given by its mean, (population) variance and size."""
        delta = batch_mean.to(torch.float64) - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var.to(torch.float64) * batch_count
        m2 = m2 + delta.square() * self.count * batch_count / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        """Square root of the running variance."""
        return self.var.sqrt()


class RewardForwardFilter(nn.Module):
    """Discounted running sum ``R_t = gamma * R_{t-1} + r_t`` per environment, never reset at episode ends.

    The original RND feeds every R_t of a rollout to a :class:`RunningMeanStd` and divides the intrinsic
    rewards by its std, so the scale of the intrinsic *return* stays near 1.

    Example:
        >>> f = RewardForwardFilter(gamma=0.5, num_envs=2)
        >>> f(torch.tensor([[1.0, 2.0], [1.0, 0.0]])).tolist()
        [[1.0, 2.0], [1.5, 1.0]]
    """

    returns: torch.Tensor

    def __init__(self, gamma: float, num_envs: int):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("returns", torch.zeros(num_envs, dtype=torch.float64))

    @torch.no_grad()
    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        """Filter ``rewards`` of shape (time, envs); return the filtered values, same shape."""
        out = torch.empty_like(rewards, dtype=torch.float64)
        running = self.returns.clone()
        for t in range(rewards.shape[0]):
            running = running * self.gamma + rewards[t].to(torch.float64)
            out[t] = running
        self.returns.copy_(running)
        return out


class OutputNormalizer(nn.Module):
    """Per-element ``x - mean`` (``center``) or ``clip((x - mean) / std)`` (``whiten``) by running statistics.

    The statistics change only in :meth:`update`, so every call between two updates applies the same map.

    Args:
        shape: shape of one sample (the statistics are per element).
        mode: ``center`` or ``whiten``.
        clip: whitened values are clipped to ``[-clip, clip]`` (the original RND's 5 for pixels).

    Example:
        >>> norm = OutputNormalizer((2,), "whiten")
        >>> norm.update(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        >>> norm(torch.tensor([[2.0, 5.0]])).round(decimals=3).tolist()   # (2 - 1) / 1; (5 - 1) / 0.01, clipped
        [[1.0, 5.0]]
    """

    def __init__(self, shape: tuple[int, ...], mode: Literal["center", "whiten"], clip: float = 5.0):
        super().__init__()
        if mode not in ("center", "whiten"):
            raise ValueError(f"mode must be 'center' or 'whiten', got {mode!r}")
        self.mode, self.clip = mode, clip
        self.rms = RunningMeanStd(shape=shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised outputs, in ``x``'s dtype."""
        centred = x - self.rms.mean.to(x.dtype)
        if self.mode == "center":
            return centred
        return (centred / self.rms.std.to(x.dtype)).clamp(-self.clip, self.clip)

    def update(self, x: torch.Tensor) -> None:
        """Fold a batch (first dimension: samples) into the statistics."""
        self.rms.update(x)
