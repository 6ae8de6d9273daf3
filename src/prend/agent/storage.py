"""Rollout storage and the typed minibatches that flow from it to the losses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch


class PPOBatch(NamedTuple):
    """A minibatch. Tensors lead with (T, B) when split by environment, with (B,) when split by sample."""

    obs: torch.Tensor
    first: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values_ext: torch.Tensor
    values_int: torch.Tensor
    advantages: torch.Tensor
    returns_ext: torch.Tensor
    returns_int: torch.Tensor
    int_update_input: torch.Tensor | None
    int_target: torch.Tensor | None
    int_pair_input: torch.Tensor | None
    """The other member of each consecutive pair, for a target trained on pairs (else ``None``)."""
    int_ends: torch.Tensor | None
    """Whether s_t+1 ends its episode, with ``int_pair_input``."""
    initial_state: tuple[torch.Tensor, ...]
    """Recurrent state before the first step, (B, ...) per element; empty for feed-forward policies."""


def frames(steps: int, envs: int, obs_shape: tuple[int, ...], device: torch.device,
           channels_last: bool = True) -> torch.Tensor:
    """A zero uint8 (steps, envs, C, H, W) tensor, with ``channels_last`` laid out (steps, envs, H, W, C) in memory.

    The networks that read frame stacks run their convolutions in the run's memory format, channels-last
    unless the start-up check found contiguous faster (:mod:`prend.agent.perf`). Frames kept in that layout
    from the rollout on convert to float in one contiguous pass and reach the first convolution without the
    layout reorders (forward and backward) that cost 18% of an 8 x 128 iteration (docs/performance.md).
    Non-image observations stay as they are.

    Example:
        >>> x = frames(2, 3, (4, 84, 84), torch.device("cpu"))
        >>> x.shape, x.reshape(6, 4, 84, 84).is_contiguous(memory_format=torch.channels_last)
        (torch.Size([2, 3, 4, 84, 84]), True)
    """
    if len(obs_shape) != 3 or not channels_last:
        return torch.zeros(steps, envs, *obs_shape, dtype=torch.uint8, device=device)
    channels, height, width = obs_shape
    return torch.zeros(steps, envs, height, width, channels, dtype=torch.uint8, device=device).permute(0, 1, 4, 2, 3)


class RolloutStorage:
    """Fixed-size (T, N) buffers for one rollout, filled step by step and then post-processed in place."""

    def __init__(self, num_steps: int, num_envs: int, obs_shape: tuple[int, ...], device: torch.device,
                 channels_last: bool = True):
        def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(num_steps, num_envs, *shape, dtype=dtype, device=device)

        self.num_steps, self.num_envs = num_steps, num_envs
        self.obs = frames(num_steps, num_envs, obs_shape, device, channels_last)
        self.first = zeros(dtype=torch.bool)
        self.actions = zeros(dtype=torch.long)
        self.logprobs = zeros()
        self.values_ext = zeros()
        self.values_int = zeros()
        self.rewards_ext = zeros()
        self.dones = zeros(dtype=torch.bool)
        self.rewards_int_raw = zeros()
        self.rewards_int = zeros()
        self.advantages = zeros()
        self.returns_ext = zeros()
        self.returns_int = zeros()
        self.last_obs = frames(1, num_envs, obs_shape, device, channels_last)[0]
        self.final_obs: dict[tuple[int, int], torch.Tensor] = {}
        self.int_update_input: torch.Tensor | None = None
        self.int_target: torch.Tensor | None = None
        self.int_pair_input: torch.Tensor | None = None
        self.int_ends: torch.Tensor | None = None
        self.initial_state: tuple[torch.Tensor, ...] = ()

    def next_observations(self) -> torch.Tensor:
        """(T*N, ...) the observation each transition led to: the next step's, or the ended episode's last."""
        nxt = torch.empty_like(self.obs)  # in the frames' layout, as the convs read it
        nxt[:-1], nxt[-1] = self.obs[1:], self.last_obs
        for (t, env), frame in self.final_obs.items():
            nxt[t, env] = frame
        return nxt.reshape(-1, *nxt.shape[2:])

    def episode_ends(self) -> torch.Tensor:
        """(T, N) bool: the transition ended an episode, so its next observation is that episode's last one."""
        ends = torch.zeros(self.num_steps, self.num_envs, dtype=torch.bool)
        for t, env in self.final_obs:
            ends[t, env] = True
        return ends.to(self.first.device)

    def store_intrinsic(self, raw: torch.Tensor, update_input: torch.Tensor, target: torch.Tensor,
                        pair_input: torch.Tensor | None = None) -> None:
        """Keep the intrinsic reward's outputs, flat over (T*N), for the update.

        ``pair_input``, for a target trained on consecutive pairs: the compact form of each transition's other
        state (stored with :meth:`episode_ends`).
        """
        self.rewards_int_raw.copy_(raw.reshape(self.num_steps, self.num_envs))
        self.int_update_input = update_input.reshape(self.num_steps, self.num_envs, *update_input.shape[1:])
        self.int_target = target.reshape(self.num_steps, self.num_envs, *target.shape[1:])
        if pair_input is not None:
            self.int_pair_input = pair_input.reshape(self.num_steps, self.num_envs, *pair_input.shape[1:])
            self.int_ends = self.episode_ends()

    def minibatches(self, num_minibatches: int, by_env: bool, generator: torch.Generator) -> Iterator[PPOBatch]:
        """One pass over the rollout in random minibatches, by environment or by sample."""
        fields = (self.obs, self.first, self.actions, self.logprobs, self.values_ext, self.values_int,
                  self.advantages, self.returns_ext, self.returns_int, self.int_update_input, self.int_target,
                  self.int_pair_input, self.int_ends)
        if by_env:
            order = torch.randperm(self.num_envs, generator=generator)
            for envs in order.chunk(num_minibatches):
                picked = [None if f is None else f[:, envs] for f in fields]
                yield PPOBatch(*picked, initial_state=tuple(s[envs] for s in self.initial_state))
        else:
            total = self.num_steps * self.num_envs
            flat = [None if f is None else f.reshape(total, *f.shape[2:]) for f in fields]
            for idx in torch.randperm(total, generator=generator).chunk(num_minibatches):
                yield PPOBatch(*[None if f is None else f[idx] for f in flat], initial_state=())
