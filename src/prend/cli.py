"""The ``prend`` command line: one subcommand per job, each a typed dataclass config parsed by tyro.

Each entry of :data:`COMMANDS` names a module and its command function ``f(argv, prog) -> exit code``,
which parses its own dataclass config with tyro. Modules are imported only when their subcommand runs, so
``prend --help`` stays fast and optional dependencies stay optional.
A :class:`~prend.errors.PrendError`, or an ``OSError`` about a file (unwritable, missing, a full disk), is
printed as one line and exits with code 2.
"""

from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from prend.envs.games import _camel, ale_rom_ids, image_env_ids
from prend.errors import PrendError

COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, command function, one-line help)
    "train": ("prend.train", "train_command", "Train PPO with RND, RND+LR or PreND."),
    "sweep": ("prend.experiments.commands", "sweep_command", "Run methods x games x seeds locally or on Ray."),
    "report": ("prend.experiments.commands", "report_command", "Score curves, tables and IQM of a sweep."),
    "diagnose": ("prend.experiments.commands", "diagnose_command", "Intrinsic-reward analyses (Fig. 1, Fig. 3)."),
    "eval": ("prend.experiments.commands", "eval_command", "Score trained runs over N games (eval.json)."),
    "video": ("prend.experiments.commands", "video_command", "Video of a trained agent with its rewards."),
    "collect": ("prend.pretrain.commands", "collect_command", "Collect Atari frames for pre-training/probing."),
    "pretrain": ("prend.pretrain.commands", "pretrain_command", "Pre-train an Atari-PB backbone (SiamMAE)."),
    "probe": ("prend.pretrain.commands", "probe_command", "Probe a backbone against its random-init twin."),
    "check-backbone": ("prend.backbone_check", "check_backbone_command",
                       "Check an Atari-PB backbone file before a run."),
    "games": ("prend.cli", "games_command", "List the games --game accepts."),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prend`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        _usage(argv[0] if argv and not argv[0].startswith("-") else None)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name, rest = argv[0], argv[1:]
    module_name, function_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    try:
        return int(getattr(module, function_name)(rest, prog=f"prend {name}") or 0)
    except PrendError as err:
        print(f"prend {name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        if err.filename is None and err.errno not in _FULL:
            raise  # not about a file the user named or a full disk: a bug, keep its traceback
        print(f"prend {name}: error: {os_error_message(err)}", file=sys.stderr)
        return 2


_FULL = (errno.ENOSPC, errno.EDQUOT)


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error about a file: what failed, where, and what to do.

    Example:
        >>> os_error_message(OSError(errno.ENOSPC, "No space left on device", "runs/a/metrics.jsonl"))
        "No space left on device: 'runs/a/metrics.jsonl': free disk space; a training run continues from \
its last checkpoint with `prend train --resume RUN_DIR`"
    """
    where = f": '{err.filename}'" if err.filename is not None else ""
    if err.errno in _FULL:
        fix = "free disk space; a training run continues from its last checkpoint with `prend train --resume RUN_DIR`"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "check its permissions, or pass a path in a writable place"
    else:
        fix = "check the path"
    return f"{err.strerror or type(err).__name__}{where}: {fix}"


@dataclass
class GamesArgs:
    """List the games `prend train --game` accepts.

    First the Atari games ale-py ships (each also accepted in lower case, e.g. `boxing`, or as a gymnasium
    id such as `ALE/Boxing-v5`), then the other registered gymnasium envs with RGB-image observations and
    discrete actions, which prend trains on through a gymnasium vector env of single envs.
    """


def games_command(argv: list[str], prog: str = "prend games") -> int:
    """``prend games``: the names ``--game`` accepts (ALE's games, then other registered image envs)."""
    from prend.clihelp import cli  # here, not at the top: tyro adds ~35 ms (10%) to `prend --help`, which needs none

    cli(GamesArgs, argv, prog)
    names = [_camel(rom) for rom in ale_rom_ids()]
    print(f"Atari games ({len(names)}; also accepted as e.g. 'boxing' or 'ALE/Boxing-v5'):")
    width = max(map(len, names)) + 2
    per_line = max(1, 100 // width)
    for i in range(0, len(names), per_line):
        print("  " + "".join(name.ljust(width) for name in names[i:i + per_line]).rstrip())
    others = image_env_ids()
    print("other registered image envs with discrete actions: " + (", ".join(others) if others else "none"))
    return 0


def _usage(unknown: str | None) -> None:
    stream = sys.stderr if unknown else sys.stdout
    if unknown:
        print(f"prend: error: unknown command '{unknown}'; choose one of: {', '.join(COMMANDS)}", file=stream)
    print("usage: prend <command> [--help] [flags]\n\ncommands:", file=stream)
    for name, (*_, help_text) in COMMANDS.items():
        print(f"  {name:<14} {help_text}", file=stream)


if __name__ == "__main__":
    sys.exit(main())
