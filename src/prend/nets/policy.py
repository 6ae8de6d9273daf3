"""Actor-critics with an extrinsic and an intrinsic value head.

Both policies share one interface, so PPO never asks which one it has:

- ``initial_state(num_envs)``: the recurrent state at the start of training (empty for the CNN);
- ``forward(obs, state, first) -> PolicyOutput``: ``obs`` uint8 of shape (T, N, C, 84, 84), ``first``
  (T, N) marks steps that begin an episode (the recurrent state is zeroed there), ``state`` is the state
  before step 0. The CNN treats the T*N observations independently.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Categorical

from prend.nets.layers import NATURE_FLAT, nature_convs, orthogonal_init


class PolicyOutput(NamedTuple):
    """Policy logits and both values over (T, N), and the recurrent state after the last step."""

    logits: torch.Tensor
    value_ext: torch.Tensor
    value_int: torch.Tensor
    state: tuple[torch.Tensor, ...]

    def distribution(self) -> Categorical:
        """The action distribution."""
        return Categorical(logits=self.logits)


class DualValueHeads(nn.Module):
    """The original RND's heads.

    A residual 448-unit layer (init scale 0.1) sits before each of the policy and the value layers; policy
    logits and both values come out with init scale 0.01.
    """

    def __init__(self, in_features: int, num_actions: int, hidden: int = 448):
        super().__init__()
        self.policy_residual = nn.Sequential(orthogonal_init(nn.Linear(in_features, hidden), 0.1), nn.ReLU())
        self.value_residual = nn.Sequential(orthogonal_init(nn.Linear(in_features, hidden), 0.1), nn.ReLU())
        self.logits = orthogonal_init(nn.Linear(hidden, num_actions), 0.01)
        self.value_ext = orthogonal_init(nn.Linear(hidden, 1), 0.01)
        self.value_int = orthogonal_init(nn.Linear(hidden, 1), 0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, extrinsic value and intrinsic value of features ``x``."""
        pi = x + self.policy_residual(x)
        v = x + self.value_residual(x)
        return self.logits(pi), self.value_ext(v).squeeze(-1), self.value_int(v).squeeze(-1)


class FeedForwardPolicy(nn.Module):
    """A policy that scores each observation on its own: ``heads(torso(obs / 255))``, no recurrent state."""

    recurrent = False
    torso: nn.Module
    heads: nn.Module
    """Maps torso features to ``(logits, value_ext, value_int)``."""

    def initial_state(self, num_envs: int) -> tuple[torch.Tensor, ...]:
        """No recurrent state."""
        return ()

    def forward(self, obs: torch.Tensor, state: tuple[torch.Tensor, ...] = (),
                first: torch.Tensor | None = None) -> PolicyOutput:
        """Evaluate observations of any leading shape independently."""
        lead = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:]).float().div_(255.0)
        logits, v_ext, v_int = self.heads(self.torso(x))
        return PolicyOutput(logits.reshape(*lead, -1), v_ext.reshape(lead), v_int.reshape(lead), state)


class CnnPolicy(FeedForwardPolicy):
    """The original RND's CNN policy: 3 convs, FC256, FC448, then :class:`DualValueHeads`; input x/255."""

    def __init__(self, in_channels: int, num_actions: int):
        super().__init__()
        gain = math.sqrt(2)
        self.torso = nn.Sequential(
            nature_convs(in_channels),
            orthogonal_init(nn.Linear(NATURE_FLAT, 256), gain), nn.ReLU(),
            orthogonal_init(nn.Linear(256, 448), gain), nn.ReLU(),
        )
        self.heads = DualValueHeads(448, num_actions)


class LinearHeads(nn.Module):
    """PPO2's heads: linear logits (init scale 0.01) and linear values (init scale 1) on shared features.

    Without ``intrinsic_head`` the intrinsic value is a constant zero, so plain PPO trains one value head.
    """

    def __init__(self, in_features: int, num_actions: int, intrinsic_head: bool):
        super().__init__()
        self.logits = orthogonal_init(nn.Linear(in_features, num_actions), 0.01)
        self.value_ext = orthogonal_init(nn.Linear(in_features, 1), 1.0)
        self.value_int = orthogonal_init(nn.Linear(in_features, 1), 1.0) if intrinsic_head else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, extrinsic value and intrinsic value of features ``x``."""
        v_ext = self.value_ext(x).squeeze(-1)
        v_int = torch.zeros_like(v_ext) if self.value_int is None else self.value_int(x).squeeze(-1)
        return self.logits(x), v_ext, v_int


class NatureCnnPolicy(FeedForwardPolicy):
    """PPO's Atari actor-critic (Mnih et al. 2015 torso, as in baselines' ``ppo2`` and CleanRL's ``ppo_atari``).

    Three convs and FC512 shared by :class:`LinearHeads`; the intrinsic value head only when
    ``intrinsic_head``.
    """

    def __init__(self, in_channels: int, num_actions: int, intrinsic_head: bool = True):
        super().__init__()
        self.torso = nn.Sequential(nature_convs(in_channels),
                                   orthogonal_init(nn.Linear(NATURE_FLAT, 512), math.sqrt(2)), nn.ReLU())
        self.heads = LinearHeads(512, num_actions, intrinsic_head)


class LstmPolicy(nn.Module):
    """A recurrent policy in the style of FARCuriosity's (rlpyt ``AtariLstmModel``).

    Convs 16x8x8/4 and 32x4x4/2, FC512, an LSTM(512), then :class:`DualValueHeads`.

    The state ``(h, c)`` is zeroed at every step where ``first`` is set, so it never crosses an episode
    boundary. (rlpyt also feeds the previous action and reward to the LSTM; prend does not, see
    docs/hyperparameters.md.)
    """

    recurrent = True

    def __init__(self, in_channels: int, num_actions: int, hidden: int = 512):
        super().__init__()
        gain = math.sqrt(2)
        self.torso = nn.Sequential(
            orthogonal_init(nn.Conv2d(in_channels, 16, 8, stride=4)), nn.ReLU(),
            orthogonal_init(nn.Conv2d(16, 32, 4, stride=2, padding=1)), nn.ReLU(),
            nn.Flatten(),
            orthogonal_init(nn.Linear(32 * 10 * 10, hidden), gain), nn.ReLU(),
        )
        self.lstm = nn.LSTMCell(hidden, hidden)
        for name, param in self.lstm.named_parameters():
            if "bias" in name:
                nn.init.zeros_(param)
            else:
                nn.init.orthogonal_(param, 1.0)
        self.heads = DualValueHeads(hidden, num_actions, hidden=hidden)

    def initial_state(self, num_envs: int) -> tuple[torch.Tensor, ...]:
        """Zero ``(h, c)`` for ``num_envs`` environments."""
        size = self.lstm.hidden_size
        return (torch.zeros(num_envs, size), torch.zeros(num_envs, size))

    def forward(self, obs: torch.Tensor, state: tuple[torch.Tensor, ...] = (),
                first: torch.Tensor | None = None) -> PolicyOutput:
        """Run the LSTM over (T, N) observations from ``state``, zeroing it where ``first``."""
        steps, envs = obs.shape[:2]
        x = obs.reshape(-1, *obs.shape[-3:]).float().div_(255.0)
        feats = self.torso(x).reshape(steps, envs, -1)
        h, c = state
        outputs = []
        for t in range(steps):
            if first is not None:
                keep = (~first[t]).to(feats.dtype).unsqueeze(-1)
                h, c = h * keep, c * keep
            h, c = self.lstm(feats[t], (h, c))
            outputs.append(h)
        logits, v_ext, v_int = self.heads(torch.stack(outputs))
        return PolicyOutput(logits, v_ext, v_int, (h, c))


def make_policy(kind: str, in_channels: int, num_actions: int, intrinsic_head: bool = True) -> nn.Module:
    """Build the ``cnn``, ``lstm`` or ``nature`` policy, with channels-last conv weights.

    Convolutions run in their weights' memory format, so the inputs need no conversion; the trainer may lay
    the weights out otherwise (``run.memory_format``, timed per machine by :mod:`prend.agent.perf`).

    ``intrinsic_head`` matters only to ``nature``; the original RND's and FARCuriosity's policies always
    carry both value heads.
    """
    if kind == "nature":
        policy: nn.Module = NatureCnnPolicy(in_channels, num_actions, intrinsic_head)
    elif kind == "lstm":
        policy = LstmPolicy(in_channels, num_actions)
    else:
        policy = CnnPolicy(in_channels, num_actions)
    return policy.to(memory_format=torch.channels_last)
