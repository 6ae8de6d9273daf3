"""``prend check-backbone PATH``: check a downloaded Atari-PB backbone file before ``prend train`` uses it.

It runs the check ``prend train --backbone-weights PATH`` runs before copying a weight (every key and shape
against the architecture, finite values, the shared stem tensor; :mod:`prend.nets.atari_pb_check`) and says
which pre-training objective wrote the file where that can be told. A file that does not fit is one line, exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from prend.clihelp import cli
from prend.errors import PrendError
from prend.nets.atari_pb import LAYOUT
from prend.nets.atari_pb_check import check_atari_pb_file, check_report


@dataclass
class CheckBackboneArgs:
    """Check an Atari-PB-format backbone checkpoint (e.g. Atari-PB's SiamMAE file) before a PreND run.

    Reads the file without running pickled code, checks every backbone key and shape against the architecture the
    run will build, and prints the architecture, width, parameter count, output shape, the pre-training objective
    (from prend's record or the neck and head saved beside the backbone) and the `prend train` flags to use.
    """

    path: tyro.conf.Positional[Path]
    """The `.pth` file."""
    backbone: str = "atari-pb-resnet50"
    """What the run will pass as `--backbone`: `atari-pb-resnet50` (ResNet-50 at width 1.0, the paper's), an
    architecture (`resnet18`, `resnet34`, `resnet50`, at `--backbone-width`), or `any` (take both from the file)."""
    backbone_width: float = 1.0
    """Width multiplier expected with an architecture name."""
    keys: bool = False
    """Also list every backbone key and its shape."""


def check_backbone_command(argv: list[str], prog: str = "prend check-backbone") -> int:
    """``prend check-backbone PATH``: exit 0 with the report, or one line and exit 2 when the file does not fit."""
    args = cli(CheckBackboneArgs, argv, prog)
    if args.backbone == "atari-pb-resnet50":
        arch, width = "resnet50", 1.0
    elif args.backbone == "any":
        arch, width = None, None
    elif args.backbone in LAYOUT:
        arch, width = args.backbone, args.backbone_width
    else:
        raise PrendError(f"--backbone {args.backbone} names no Atari-PB architecture",
                         fix=f"pass atari-pb-resnet50, any, or one of {', '.join(LAYOUT)}")
    print(check_report(check_atari_pb_file(args.path, arch, width), keys=args.keys))
    return 0
