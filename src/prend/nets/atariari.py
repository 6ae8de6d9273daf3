"""AtariARI's encoder (Anand et al. 2019; mila-iqia/atari-representation-learning, ``atariari/methods/encoders.py``).

Their Nature-CNN-like stack to a 256-d vector, with the local map their ST-DIM reads; trained by
:mod:`prend.pretrain.atariari`. It lives with the networks so that a trained one can be loaded where the
pre-training package is not (a frozen backbone under PreND reads 84x84 4-stacks: ``frame="stack84"``).

An encoder file (:func:`load_atariari_encoder`) is a prend checkpoint dict ``{"format", "encoder": state_dict,
"frame", "size": [h, w]}``, maybe with ``"epoch"``: ``init.pt``, ``epochNNN.pt`` and ``best.pt`` of an ST-DIM run
(:class:`prend.pretrain.atariari.STDIMTrainer`), or the encoder alone as
:func:`prend.pretrain.shipped.export_atariari_backbone` writes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from prend.checkpoint import load_checkpoint
from prend.errors import PrendError
from prend.nets.atari_pb_io import key_and_shape_problems

Frame = Literal["full", "stack84", "last84"]
FRAME_SHAPES: dict[str, tuple[int, int]] = {"full": (210, 160), "stack84": (84, 84), "last84": (84, 84)}
"""Frame (height, width) per input kind: AtariARI's full 210x160 single frames, prend's 84x84 4-stacks (all four
frames read, ``stack84``, or only the newest, ``last84``)."""

PREND_FRAMES = ("stack84", "last84")
"""The input kinds that take what PreND's backbone sees, float (N, 4, 84, 84)."""

PREND_ARCH = "atariari-stack84"
"""``--backbone`` name of the encoder PreND can use: 84x84 4-stacks in, the 256-d vector out."""

PREND_ARCHS = ("atariari-stack84", "atariari-last84")
"""``--backbone`` names of AtariARI's encoders PreND can use (``atariari-<frame>``, random unless weights)."""

FILE_FIX = ("pass init.pt, epochNNN.pt or best.pt of an ST-DIM run (prend.pretrain.atariari.STDIMTrainer), "
            "or a file prend.pretrain.shipped.export_atariari_backbone wrote")


class AtariARIEncoder(nn.Module):
    """AtariARI's Nature-CNN-like encoder to a ``feature_dim`` vector, with the local map ST-DIM reads.

    Args:
        frame: ``"full"``: one 210x160 frame in; ``"stack84"``: an 84x84 4-stack in; ``"last84"``: an 84x84
            4-stack in, of which only the newest frame is read (AtariARI's single frames at prend's resolution,
            as RND's networks read only the newest frame). ST-DIM pairs consecutive steps, and two consecutive
            4-stacks share three frames: with ``stack84`` the pair can be matched by those frames' pixels alone.
        feature_dim: Width of the output vector (AtariARI: 256).
        size: The frames' (height, width) when not the kind's own (small frames keep tests fast).

    Example:
        >>> enc = AtariARIEncoder("full")
        >>> out, local = enc(torch.zeros(2, 1, 210, 160), local=True)
        >>> tuple(out.shape), tuple(local.shape)
        ((2, 256), (2, 128, 11, 8))
        >>> tuple(AtariARIEncoder("stack84")(torch.zeros(2, 4, 84, 84), local=True)[1].shape)
        (2, 32, 7, 7)
        >>> tuple(AtariARIEncoder("last84")(torch.zeros(2, 4, 84, 84)).shape)
        (2, 256)
    """

    def __init__(self, frame: Frame = "full", feature_dim: int = 256, size: tuple[int, int] | None = None):
        super().__init__()
        if frame == "full":
            convs = [(1, 32, 8, 4), (32, 64, 4, 2), (64, 128, 4, 2), (128, 64, 3, 1)]
        else:
            convs = [(4 if frame == "stack84" else 1, 32, 8, 4), (32, 64, 4, 2), (64, 32, 3, 1)]
        # Local features: the 128-channel third layer at full resolution (AtariARI's f5); their downsampled
        # stack has three layers, so there the last map is the local one.
        self.local_layers = 3
        layers: list[nn.Module] = []
        for cin, cout, k, s in convs:
            layers += [nn.Conv2d(cin, cout, k, stride=s), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.size = size or FRAME_SHAPES[frame]
        with torch.no_grad():  # the flattened width follows from the frame size (64x9x6 at 210x160)
            flat = self.convs(torch.zeros(1, convs[0][0], *self.size)).numel()
        self.head = nn.Linear(flat, feature_dim)
        self.local_channels = convs[self.local_layers - 1][1]
        self.frame, self.feature_dim = frame, feature_dim
        self.arch = f"atariari-{frame}"  # what reports call it (``prend probe``'s facts), as ResNetGN's ``arch``
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.weight, nn.init.calculate_gain("relu"))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, local: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Float inputs in [0, 1] (N, C, H, W) -> the vector (N, feature_dim), and the local map if asked."""
        if self.frame == "last84":
            x = x[:, -1:]
        split = 2 * self.local_layers
        local_map = self.convs[:split](x)
        out = self.head(self.convs[split:](local_map).flatten(1))
        return (out, local_map) if local else out


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _unreadable(path: Path, err: PrendError) -> PrendError:
    """A one-line error for a file :func:`prend.checkpoint.load_checkpoint` refused, with this file's fix."""
    text = str(err)
    reason = ("it holds pickled objects" if "pickled" in text else
              "it is no prend checkpoint" if "not a prend" in text else "not a torch file, or corrupt")
    return PrendError(f"cannot read an AtariARI encoder from {path} ({reason})", FILE_FIX)


def _size(state: Mapping[str, Any], frame: str, path: Path) -> tuple[int, int]:
    size = state.get("size", FRAME_SHAPES[frame])
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise PrendError(f"{path} records the frame size {size!r}, not [height, width]", FILE_FIX)
    return int(size[0]), int(size[1])


def check_encoder_state_dict(encoder: nn.Module, state_dict: Mapping[str, Any], source: str) -> None:
    """Every key and shape of ``state_dict`` against ``encoder``'s, and every tensor finite, before any copy.

    nanoGPT's ``from_pretrained`` check: the missing keys, unexpected keys and shape mismatches are all
    collected and the first few of each named in one error, so a file for another encoder never half-loads.

    Raises:
        PrendError: On any difference, or a non-finite value (a NaN in a frozen backbone poisons every reward).
    """
    problems = key_and_shape_problems(encoder, state_dict, "file vs encoder")
    if problems:
        raise PrendError(f"{source} does not match {getattr(encoder, 'arch', 'the encoder')} "
                         f"({getattr(encoder, 'size', '?')}): {'; '.join(problems)}",
                         "the file was edited or written by other code: " + FILE_FIX)
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PrendError(f"{source} has non-finite values in {_first(bad)}", "use an earlier epoch's file of the run")


def load_atariari_encoder(path: str | os.PathLike[str]) -> AtariARIEncoder:
    """The AtariARI encoder saved in ``path``, checked key by key, in eval mode and float32.

    Args:
        path: ``init.pt``, ``epochNNN.pt``, ``best.pt`` or ``checkpoint.pt`` of an ST-DIM run, or an exported
            encoder file (see the module doc).

    Raises:
        PrendError: If the file is missing, unreadable or not prend's, holds no encoder, or its weights do not
            match the encoder its ``frame`` and ``size`` describe.

    Example:
        >>> import tempfile
        >>> from prend.checkpoint import FORMAT, atomic_torch_save
        >>> enc = AtariARIEncoder("stack84")
        >>> f = Path(tempfile.mkdtemp()) / "init.pt"
        >>> _ = atomic_torch_save({"format": FORMAT, "encoder": enc.state_dict(), "frame": "stack84",
        ...                        "size": [84, 84]}, f)
        >>> load_atariari_encoder(f).arch
        'atariari-stack84'
    """
    path = Path(path)
    if not path.is_file():
        raise PrendError(f"no AtariARI encoder file at {path}", FILE_FIX)
    try:
        state = load_checkpoint(path)
    except PrendError as err:
        raise _unreadable(path, err) from None
    weights, frame = state.get("encoder"), state.get("frame")
    if not isinstance(weights, Mapping) or frame not in FRAME_SHAPES:
        what = "no 'encoder' state dict" if not isinstance(weights, Mapping) else f"the frame kind {frame!r}"
        raise PrendError(f"{path} holds {what}, so it is no AtariARI encoder file", FILE_FIX)
    head = weights.get("head.weight")
    # The output width is the head's (AtariARI: 256); a file without one is refused by the key check below.
    feature_dim = int(head.shape[0]) if isinstance(head, torch.Tensor) and head.dim() == 2 else 256
    try:
        encoder = AtariARIEncoder(frame, feature_dim, _size(state, frame, path))
    except RuntimeError:  # a frame too small for the convolutions' kernels
        raise PrendError(f"{path} records frames of {state.get('size')}, too small for AtariARI's encoder",
                         FILE_FIX) from None
    check_encoder_state_dict(encoder, weights, f"AtariARI encoder file {path}")
    encoder.load_state_dict(weights, strict=True)  # copied into the fresh float32 parameters
    return encoder.float().eval()


def check_prend_input(encoder: AtariARIEncoder, source: str) -> AtariARIEncoder:
    """``encoder`` itself if it reads what PreND's backbone sees (84x84 4-stacks); else one-line error.

    Raises:
        PrendError: If it was trained on full 210x160 frames or another size.
    """
    if encoder.frame not in PREND_FRAMES or tuple(encoder.size) != FRAME_SHAPES["stack84"]:
        height, width = encoder.size
        raise PrendError(f"{source} is an AtariARI encoder of '{encoder.frame}' frames at {height}x{width}, but "
                         "PreND's backbone (and prend probe) sees 84x84 4-stacks",
                         "train one on frame='stack84' episodes (collect_episodes(..., frame='stack84')), "
                         "reading the 4-stacks or their last frame")
    return encoder


def load_atariari_backbone(path: str | os.PathLike[str]) -> AtariARIEncoder:
    """:func:`load_atariari_encoder`, refusing an encoder that does not read 84x84 4-stacks (PreND's input)."""
    return check_prend_input(load_atariari_encoder(path), f"{path}")


def is_atariari_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like an AtariARI encoder file (a dict with ``encoder`` and ``frame``), cheaply.

    Memory-mapped and ``weights_only``: deciding costs no read of the weights, and a file that is not a torch
    file, or holds pickled objects, is simply not one (the caller's own loader then says what it is).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - torch raises many types for foreign files; any means "not one"
        return False
    return isinstance(state, dict) and "encoder" in state and "frame" in state
