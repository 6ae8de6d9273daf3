"""The interface of prediction-based intrinsic rewards, and the machinery RND, RND+LR and PreND share.

A distillation reward is three modules and two normalisers:

``encoder``
    maps uint8 observations to the target's input. RND: the last frame, normalised per pixel by running
    statistics and clipped to [-5, 5]. PreND: a frozen pre-trained backbone on the frame stack in [0, 1].
``target``
    frozen and randomly initialised; ``predictor`` is trained to match it.
reward normalisation
    the reward is divided by the running std of each environment's discounted intrinsic return
    (:class:`~prend.intrinsic.normalizers.RewardForwardFilter`), as in the original RND.

The work splits like TorchRL's RND transform/loss pair, but in one module that owns its state:
:meth:`DistillationReward.reward` runs at collection time and returns, besides the raw reward, the
cheapest tensors the predictor's update needs (the encoder's *compact* input and the target's output), so
the update never runs the target or an expensive encoder again.

Example (one's own training loop, with a tiny fake batch):
    >>> import torch
    >>> from prend.intrinsic import make_rnd
    >>> rnd = make_rnd(num_envs=2)
    >>> obs = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8)   # (time*envs, stack, 84, 84)
    >>> rnd.observe(obs)                               # update observation statistics
    >>> out = rnd.reward(obs)                          # raw novelty of each next-observation
    >>> out.raw.shape, out.target.shape
    (torch.Size([6]), torch.Size([6, 512]))
    >>> rewards = rnd.normalize(out.raw.reshape(3, 2)) # (time, envs) -> divided by the return std
    >>> opt = torch.optim.Adam(rnd.predictor.parameters(), lr=1e-4)
    >>> loss = rnd.predictor_loss(out.update_input, out.target)
    >>> loss.backward(); opt.step()
    >>> state = rnd.state_dict()                       # networks and normalisers, for torch.save
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import torch
from torch import nn

from prend.intrinsic.normalizers import RewardForwardFilter, RunningMeanStd


class RewardOutput(NamedTuple):
    """What :meth:`DistillationReward.reward` returns for a batch of B next-observations."""

    raw: torch.Tensor
    """(B,) mean squared prediction error over the output features: the un-normalised reward."""
    update_input: torch.Tensor
    """(B, ...) the encoder's compact input, to be stored for the predictor's update."""
    target: torch.Tensor
    """(B, feature_dim) the frozen target's output, reused by the predictor's update."""


class Encoder(nn.Module, abc.ABC):
    """Maps observations to the target's input in two stages, so the first can be cached.

    ``compact(obs)`` gives the cheapest tensor to keep per observation; ``expand(compact)`` turns it into
    the target's input. ``observe(obs)`` updates any statistics (after each rollout).
    """

    @abc.abstractmethod
    def compact(self, obs: torch.Tensor) -> torch.Tensor:
        """The tensor kept per observation (uint8 observations (B, C, H, W) in)."""

    @abc.abstractmethod
    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """The target's input from the kept tensor."""

    def observe(self, obs: torch.Tensor) -> None:
        """Update statistics from a batch of observations (no-op by default)."""

    needs_warmup: bool = False
    """Whether :meth:`observe` should be fed random-agent observations before training."""


class DistillationReward(nn.Module):
    """Prediction error of a trained predictor against a frozen target, normalised as in the original RND.

    Args:
        encoder: observations -> target input (see :class:`Encoder`).
        target: the frozen network; its parameters are frozen here.
        predictor: the trained network.
        num_envs: environments whose discounted intrinsic returns are tracked.
        gamma: discount of the reward forward filter (the intrinsic discount).
        chunk_size: observations per forward pass in :meth:`reward`, to bound memory.
    """

    episodic = False
    """The intrinsic stream does not stop at episode ends (the original RND's ``use_news=0``)."""

    def __init__(self, encoder: Encoder, target: nn.Module, predictor: nn.Module, num_envs: int,
                 gamma: float = 0.99, chunk_size: int = 2048):
        super().__init__()
        self.encoder = encoder
        self.target = target.requires_grad_(False)
        self.predictor = predictor
        self.forward_filter = RewardForwardFilter(gamma, num_envs)
        self.return_rms = RunningMeanStd(shape=())
        self.chunk_size = chunk_size

    @torch.no_grad()
    def reward(self, next_obs: torch.Tensor) -> RewardOutput:
        """Raw rewards of B next-observations (uint8, (B, C, H, W)), with what the update will need."""
        parts = [self._reward_chunk(chunk) for chunk in next_obs.split(self.chunk_size)]
        return RewardOutput(*(torch.cat(p) for p in zip(*parts, strict=True)))

    def _reward_chunk(self, obs: torch.Tensor) -> RewardOutput:
        compact = self.encoder.compact(obs)
        x = self.encoder.expand(compact)
        target = self.target(x)
        raw = (self.predictor(x) - target).square().mean(-1)
        return RewardOutput(raw, compact, target)

    @torch.no_grad()
    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Divide a rollout's raw rewards, (time, envs), by the running std of the discounted return.

        Updates the forward filter and the return statistics, so call it once per rollout, in order.
        """
        returns = self.forward_filter(raw)
        self.return_rms.update(returns.reshape(-1))
        return (raw / self.return_rms.std).to(raw.dtype)

    def observe(self, obs: torch.Tensor) -> None:
        """Update the encoder's observation statistics from a batch (uint8, (B, C, H, W))."""
        self.encoder.observe(obs)

    def predictor_loss(self, update_input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predictor against stored target outputs (averaged over features, batch)."""
        prediction = self.predictor(self.encoder.expand(update_input))
        return (prediction - target).square().mean()
