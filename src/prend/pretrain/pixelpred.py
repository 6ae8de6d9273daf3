"""Pixel prediction: a backbone whose 6x6 feature map must redraw the next frame stack (``--objective pixelpred``).

An objective for pre-training on a CPU budget, chosen because SiamMAE at that budget left the backbone no
better than its random initialisation at carrying the game's state (``prend probe --state``; see
docs/pretraining.md). The backbone's map of the augmented stack at ``t`` feeds a small convolutional decoder
that predicts the un-augmented stack ``k ~ U{1..n_step}`` steps later (AtariARI's "pixel prediction"
baseline, which their state probe ranked well above a random encoder on Boxing and Riverraid). With
``norm_pix`` the target is each 7x7 patch of each frame normalised to zero mean and unit variance (MAE's
``norm_pix_loss``, He et al. 2022): flat background patches become 0 and cost nothing to predict, so the
loss is spent on the sprites, digits and edges that carry the state instead of on the backdrop, which a
random network already reproduces. Batches, augmentations (Atari-PB's random shift and intensity) and the
checkpoint layout are the SiamMAE trainer's; the decoder is the checkpoint's ``head``, the ``neck`` is
empty, and both are dropped after pre-training like SiamMAE's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prend.pretrain.siammae import augment

PATCH = 7
"""Side of the normalised target patches (84 = 12 x 7)."""


def normalise_patches(x: torch.Tensor, patch: int = PATCH, eps: float = 1e-3) -> torch.Tensor:
    """Each ``patch`` x ``patch`` block of each channel shifted to mean 0 and divided by ``sqrt(var + eps)``.

    ``eps`` (in [0, 1] pixel units squared) keeps near-flat patches from being blown up: a patch whose
    standard deviation is under ~0.03 (8 grey levels) stays small.

    Example:
        >>> flat = torch.full((1, 1, 7, 7), 0.5)
        >>> normalise_patches(flat).abs().max().item()                 # a flat patch becomes 0
        0.0
    """
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // patch, patch, w // patch, patch)
    mean = blocks.mean(dim=(3, 5), keepdim=True)
    var = blocks.var(dim=(3, 5), keepdim=True, unbiased=False)
    return ((blocks - mean) / (var + eps).sqrt()).reshape(n, c, h, w)


class PixelDecoder(nn.Module):
    """(N, C, 6, 6) feature maps -> (N, 4, 84, 84) frames: a 1x1 projection, then four upsample + 3x3 stages.

    Args:
        in_channels: Channels of the backbone's map.
        width: Channels after the projection; halved at each of the next stages (down to ``width // 8``).
        out_channels: Frames predicted (the stack).
    """

    SIZES = (11, 21, 42, 84)
    """The backbone's own spatial sizes, in reverse (84 -> 42 -> 21 -> 11 -> 6)."""

    def __init__(self, in_channels: int, width: int = 64, out_channels: int = 4):
        super().__init__()
        widths = [width, width // 2, width // 4, width // 8]
        self.project = nn.Sequential(nn.Conv2d(in_channels, width, 1), nn.ReLU())
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Conv2d(widths[-1], out_channels, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted frames (no output non-linearity: the targets may be normalised patches)."""
        x = self.project(features)
        for size, stage in zip(self.SIZES[:-1], self.stages, strict=True):
            x = stage(F.interpolate(x, size=size, mode="nearest"))
        return self.out(F.interpolate(x, size=self.SIZES[-1], mode="nearest"))


class LinearPatchDecoder(nn.Module):
    """(N, C, 6, 6) -> (N, 4, 84, 84) by one linear map per cell: cell (i, j) draws its own 14x14x4 patch.

    Nothing but a shared linear layer stands between the map and the pixels, so whatever the frame shows
    must be linearly readable from the cell over it: the readout a linear probe uses. The weight layout is
    MAE's per-token patch projection (here a 1x1 convolution followed by a depth-to-space shuffle).

    Args:
        in_channels: Channels of the backbone's map.
        out_channels: Frames predicted (the stack).
        patch: Side of each cell's patch (84 / 6).
    """

    def __init__(self, in_channels: int, out_channels: int = 4, patch: int = 14):
        super().__init__()
        self.project = nn.Conv2d(in_channels, out_channels * patch * patch, 1)
        self.shuffle = nn.PixelShuffle(patch)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted frames."""
        return self.shuffle(self.project(features))


class PixelPrediction(nn.Module):
    """Backbone and decoder with the pixel-prediction loss; the trainer's interface (see :class:`SiamMAE`).

    Args:
        backbone: An Atari-PB backbone ((N, 4, 84, 84) -> (N, C, 6, 6)).
        head: A :class:`PixelDecoder` or :class:`LinearPatchDecoder` for it.
        aug_pad: Random-shift padding of the input stack (Atari-PB: 4; 0 disables).
        aug_intensity: Intensity augmentation scale of the input stack (Atari-PB: 0.05; 0 disables).
        norm_pix: Predict per-patch normalised frames (:func:`normalise_patches`) instead of raw pixels.
        backbone_amp: Let an enclosing ``torch.autocast`` reach the backbone.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, aug_pad: int = 4, aug_intensity: float = 0.05,
                 norm_pix: bool = True, backbone_amp: bool = True):
        super().__init__()
        self.backbone, self.neck, self.head = backbone, nn.Identity(), head
        self.aug_pad, self.aug_intensity = aug_pad, aug_intensity
        self.norm_pix, self.backbone_amp = norm_pix, backbone_amp

    def forward(self, obs: torch.Tensor, future: torch.Tensor, game_id: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss (float32 MSE against the un-augmented future stack, normalised with ``norm_pix``) and prediction.

        ``game_id`` is accepted for the trainer's interface; the decoder is shared by all games.
        """
        x = augment(obs, self.aug_pad, self.aug_intensity, generator)
        if self.backbone_amp:
            feats = self.backbone(x)
        else:
            with torch.autocast(x.device.type, enabled=False):
                feats = self.backbone(x.float())
        pred = self.head(feats).float()
        target = normalise_patches(future.float()) if self.norm_pix else future.float()
        return F.mse_loss(pred, target), pred
