"""Command functions of ``prend collect``, ``prend pretrain`` and ``prend probe`` (see :mod:`prend.cli`).

Each parses its dataclass config with tyro (the fields' docstrings are the ``--help`` text) and raises
:class:`~prend.errors.PrendError` for input a user can fix.
"""

from __future__ import annotations

import json

from prend.clihelp import cli
from prend.pretrain.collect import CollectConfig, collect, disk_usage
from prend.pretrain.probe import ProbeConfig, probe
from prend.pretrain.trainer import PretrainConfig, pretrain


def collect_command(argv: list[str], prog: str) -> int:
    """``prend collect``: store frames of a list of games (resumable)."""
    cfg = cli(CollectConfig, argv, prog)
    manifest = collect(cfg)
    usage = disk_usage(manifest)
    print(json.dumps({"out": str(cfg.out), **usage}))
    return 0


def pretrain_command(argv: list[str], prog: str) -> int:
    """``prend pretrain``: SiamMAE pre-training of an Atari-PB backbone (resumable)."""
    cfg = cli(PretrainConfig, argv, prog)
    summary = pretrain(cfg)
    print(json.dumps(summary, default=str))
    return 130 if summary.get("interrupted") else 0


def probe_command(argv: list[str], prog: str) -> int:
    """``prend probe CHECKPOINT``: temporal coherence and linear probes vs the random-init twin."""
    cfg = cli(ProbeConfig, argv, prog)
    probe(cfg)
    return 0
