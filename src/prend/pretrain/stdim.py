"""ST-DIM: spatiotemporal deep InfoMax over the backbone's map (``--objective stdim``).

AtariARI's own objective (Anand et al. 2019, "Unsupervised State Representation Learning in Atari", section
4), the one whose linear state probe ranked first of their unsupervised encoders on Boxing. Each of the map's
36 cells at ``t + k`` must be told apart from the same cell of the other stacks in the batch, given

- the whole map at ``t`` (global-local: a linear projection of the flattened map to a ``global_dim`` vector,
  scored against the cell through a bilinear form), and
- the same cell at ``t`` (local-local: a second bilinear form).

Each score is a softmax over the batch (InfoNCE; the positive is the stack's own future), and the loss is
the two cross-entropies averaged over cells. One deviation: the scores are divided by sqrt(C), as attention
scores are. Unscaled, a fresh 64-channel map's scores start far from chance (loss 4.1 against log 8 = 2.1
on a batch of 8), and at lr 1e-3 the map collapsed to chance within a few steps; scaled, training starts at
chance and learns at lr 3e-4 and 1e-3 alike (tests/test_pretrain_stdim.py).

A cell can only win if it says what is in its part of the screen *in this stack* (a sprite's position, a
digit), which is what a linear probe later reads; what all stacks of a game share (the backdrop) does not
help. Negatives from other games are too easy to teach that, so the trainer draws each batch from one game
(``--batches auto``, as AtariARI trains one encoder per game).

Differences from AtariARI's encoder: their local features come from the third of four convolutions and the
global vector from a linear layer after the last; prend's local features are the backbone's output map
itself (what PreND distils and what ``prend probe`` reads), and the global vector is the head's, dropped
after pre-training with the bilinear forms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prend.pretrain.siammae import augment


def info_nce(scores: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``scores`` (..., N, N) whose positives lie on the diagonal.

    Example:
        >>> round(info_nce(torch.zeros(1, 4, 4)).item(), 4)             # chance: log 4
        1.3863
    """
    n = scores.shape[-1]
    labels = torch.arange(n, device=scores.device).expand(scores.shape[:-1])
    return F.cross_entropy(scores.reshape(-1, n), labels.reshape(-1))


class STDIMHead(nn.Module):
    """The global projection and the two bilinear score maps of ST-DIM.

    Args:
        channels: Channels of the backbone's map (the local feature width).
        cells: Cells of the map (36 for 6x6).
        global_dim: Width of the global vector (AtariARI: 256).
    """

    def __init__(self, channels: int, cells: int, global_dim: int = 256):
        super().__init__()
        self.to_global = nn.Linear(channels * cells, global_dim)
        self.global_local = nn.Linear(global_dim, channels)  # W_g in g^T W_g f
        self.local_local = nn.Linear(channels, channels)     # W_l in f^T W_l f'
        self.scale = channels ** -0.5

    def forward(self, now: torch.Tensor, future: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global-local and local-local InfoNCE losses of maps ``now`` and ``future`` (N, C, H, W)."""
        n = now.shape[0]
        local_now = now.flatten(2).transpose(1, 2)        # (N, M, C)
        local_future = future.flatten(2).transpose(1, 2)  # (N, M, C)
        query_g = self.global_local(self.to_global(now.flatten(1)))  # (N, C)
        # scores[m, i, j]: stack i's query against stack j's cell m at t + k.
        scores_g = torch.einsum("ic,jmc->mij", query_g, local_future) * self.scale
        scores_l = torch.einsum("imc,jmc->mij", self.local_local(local_now), local_future) * self.scale
        assert scores_g.shape == scores_l.shape == (local_now.shape[1], n, n)
        return info_nce(scores_g), info_nce(scores_l)


class STDIM(nn.Module):
    """Backbone and ST-DIM head with the ST-DIM loss; the trainer's interface (see :class:`SiamMAE`).

    Args:
        backbone: An Atari-PB backbone ((N, 4, 84, 84) -> (N, C, 6, 6)).
        global_dim: Width of the global vector (AtariARI: 256).
        aug_pad: Random-shift padding of both stacks (AtariARI: none).
        aug_intensity: Intensity augmentation scale of both stacks (AtariARI: none).
        backbone_amp: Let an enclosing ``torch.autocast`` reach the backbone.
    """

    loss_name = "infonce"
    """The TensorBoard tag of the loss (``loss/infonce``)."""

    def __init__(self, backbone: nn.Module, global_dim: int = 256, aug_pad: int = 0, aug_intensity: float = 0.0,
                 backbone_amp: bool = True):
        super().__init__()
        height, width = backbone.out_spatial
        self.backbone, self.neck = backbone, nn.Identity()
        self.head = STDIMHead(backbone.out_channels, height * width, global_dim)
        self.aug_pad, self.aug_intensity, self.backbone_amp = aug_pad, aug_intensity, backbone_amp

    def forward(self, obs: torch.Tensor, future: torch.Tensor, game_id: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss (mean of the global-local and local-local InfoNCE, float32) and the global-local scores' loss.

        ``game_id`` is accepted for the trainer's interface; the negatives are the batch's other stacks.
        """
        both = augment(torch.cat([obs, future]), self.aug_pad, self.aug_intensity, generator)
        if self.backbone_amp:
            maps = self.backbone(both)
        else:
            with torch.autocast(both.device.type, enabled=False):
                maps = self.backbone(both.float())
        now, later = maps.float().chunk(2)
        with torch.autocast(both.device.type, enabled=False):
            loss_g, loss_l = self.head(now, later)
        return 0.5 * (loss_g + loss_l), loss_g.detach()
