"""Generalised advantage estimation (Schulman et al. 2016) as a pure function, one call per reward stream."""

from __future__ import annotations

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, next_value: torch.Tensor, dones: torch.Tensor | None,
        gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and lambda-returns of one stream over a rollout.

    Args:
        rewards: (T, N) reward of the transition at each step.
        values: (T, N) value estimates of the observations the transitions start from.
        next_value: (N,) value of the observation after the last step.
        dones: (T, N) true where the transition ended an episode, so nothing is bootstrapped across it;
            ``None`` for a non-episodic stream (the original RND's intrinsic stream).
        gamma: discount.
        lam: GAE lambda.

    Returns:
        ``(advantages, returns)``, both (T, N), with ``returns = advantages + values``.

    Example:
        >>> r = torch.tensor([[1.0], [1.0]]); v = torch.zeros(2, 1)
        >>> adv, ret = gae(r, v, torch.tensor([10.0]), torch.tensor([[False], [True]]), gamma=0.5, lam=1.0)
        >>> adv.squeeze(1).tolist()    # the episode ends at step 1: the bootstrap value 10 is ignored
        [1.5, 1.0]
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else values[t + 1]
        alive = 1.0 if dones is None else (~dones[t]).to(rewards.dtype)
        delta = rewards[t] + gamma * following * alive - values[t]
        last = delta + gamma * lam * alive * last
        advantages[t] = last
    return advantages, advantages + values
