"""Reproduce AtariARI's Boxing result (Anand et al. 2019, Table 2): ST-DIM 0.58 against a random CNN's 0.19.

Usage (each stage resumes where it stopped; ``all`` runs them in order; ``--out`` is any directory outside the
repository or ignored by git, e.g. ``runs/atariari``):
    .venv/bin/python benchmarks/atariari_repro.py all --out runs/atariari [--frame full|stack84]
    .venv/bin/python benchmarks/atariari_repro.py probe --out runs/atariari --encoders epoch000,last
    .venv/bin/python benchmarks/atariari_repro.py export --encoder runs/atariari/stack84/stdim-last84/epoch012.pt \
        --dest src/prend/weights/stdim_last84_boxing.pt --record src/prend/weights/stdim_last84_boxing.json

Stages:

- ``collect``: AtariARI's random-agent frames with RAM (:func:`prend.pretrain.atariari.collect_episodes`):
  ``--pretrain-steps`` (100k) frames for the encoder (seed ``--seed``) and ``--probe-steps`` (50k) for the
  probe (seed ``--seed + 1``, so the probe never sees a pre-training frame);
- ``pretrain``: ST-DIM, AtariARI's schedule (:class:`prend.pretrain.atariari_objectives.STDIMTrainer`), checkpointed
  every 100 batches; SIGINT/SIGTERM stop it at the next batch with a checkpoint; ``--max-epochs`` caps it
  below AtariARI's 100 (the cap is part of the settings a resume checks, so raise it only in a new --out);
- ``probe``: AtariARI's probe of each encoder's 256-d vector (:mod:`prend.pretrain.atariari_probe`): the
  untrained encoder (``init``: the random-init twin), the one after each finished epoch (``epochNNN``), the
  latest (``last``) and the best-validation one (``best``), over ``--probe-seeds`` splits; writes
  ``NAME.json`` and ``NAME.md`` (``--name``, default ``probe``: per variable, per category and the category
  mean beside AtariARI's);
- ``init``: only the run's ``init.pt``, the untrained encoder (the random-init twin), built as ``pretrain``
  builds it (``torch.manual_seed(--seed)``, then the encoder), without collecting or training anything: the
  twin of a run whose directory is gone, for ``probe --encoders init``;
- ``export``: one encoder file of a run (``--encoder``: ``epochNNN.pt``, ``best.pt``, ``init.pt``, ``checkpoint.pt``)
  as a PreND backbone (:func:`prend.pretrain.shipped.export_atariari_backbone`): ``--dest`` (``.pt``, the encoder
  alone, float32, readable with ``weights_only=True``) and its ``.json`` record beside it. ``--record`` names a
  JSON object whose entries are added to the record (recipe, data, probe figures; e.g. a shipped backbone's own
  ``.json``, to re-export it from a retrained run); the entries the export measures itself (file, format,
  family, arch, width, frame, size, feature_dim, sha256, bytes, epoch, seed) are written afresh, not copied.
  Needs no ``--out``.

Everything goes under ``--out/<frame>/``: ``data/`` (the collections), ``stdim/`` (the run), the probe files.

Two other runs, beside that one:

- ``--objective supervised``: AtariARI's supervised control (``SupervisedTrainer`` of
  :mod:`prend.pretrain.atariari_objectives`): the same encoder trained end to end to classify the game's RAM
  variables, on the same collection and split, into ``<out>/<frame>/supervised/`` (``--all-variables``
  keeps those of label entropy below 0.6 too); its probe files are ``probe-supervised.*``;
- ``--games g1,g2,...``: one ST-DIM encoder on several games (each batch one game's), into
  ``<out>/<frame>/stdim-<run-name>/`` (``--run-name``, default ``<n>games``), from the collections
  ``<data-root>/<rom>-<frame>-s<seed>`` (``--data-root``, default ``<out>/<frame>/data``; a missing one is
  collected with ``--pretrain-steps`` frames). Its probe (``probe --run-name NAME --game GAME``, no
  ``--games`` needed) reads ``--game``'s probe collection in ``<out>/<frame>/data`` and writes
  ``probe-stdim-<run-name>-<rom>.*``.

    .venv/bin/python benchmarks/atariari_repro.py pretrain --out runs/atariari --frame stack84 \
        --objective supervised
    .venv/bin/python benchmarks/atariari_repro.py pretrain --out runs/multigame --frame stack84 \
        --games boxing,pong --data-root runs/multigame/data --pretrain-steps 20000 --run-name two
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from prend.agent.perf import cpu_summary
from prend.checkpoint import FORMAT as CHECKPOINT_FORMAT
from prend.checkpoint import atomic_torch_save
from prend.envs.games import resolve_atari_game, unknown_game_error
from prend.errors import PrendError
from prend.nets.atariari import AtariARIEncoder
from prend.pretrain.atariari import collect_episodes, load_episodes, split_train_val
from prend.pretrain.atariari_objectives import STDIMTrainer, SupervisedTrainer
from prend.pretrain.atariari_probe import CLASSIFIERS, format_probe, probe_encoders, run_encoders
from prend.pretrain.atariari_train import STDIMSettings, SupervisedSettings
from prend.pretrain.shipped import export_atariari_backbone
from prend.signals import StopFlag


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("collect", "pretrain", "probe", "all", "export", "init"))
    parser.add_argument("--out", type=Path, default=None,
                        help="where data, run and results go (every stage but export)")
    parser.add_argument("--game", default="boxing")
    parser.add_argument("--frame", choices=("full", "stack84"), default="full",
                        help="full: 210x160 single frames (AtariARI's); stack84: prend's 84x84 4-stacks")
    parser.add_argument("--pretrain-steps", type=int, default=100_000, help="AtariARI: 100k")
    parser.add_argument("--probe-steps", type=int, default=50_000, help="AtariARI: 50k")
    parser.add_argument("--seed", type=int, default=42, help="AtariARI's default seed: 42")
    parser.add_argument("--max-epochs", type=int, default=100, help="AtariARI: 100 (with patience 15)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--encoders", default="all",
                        help="probe: comma-separated init, last, best, epochNNN, or all of them")
    parser.add_argument("--probe-seeds", default="0,1,2", help="probe: the splits' seeds")
    parser.add_argument("--classifiers", default="atariari,prend",
                        help="probe: atariari (their classifiers on raw features), prend (standardised), or both")
    parser.add_argument("--name", default=None,
                        help="probe: the results' file stem (NAME.json, NAME.md); default probe for the ST-DIM "
                             "run, probe-supervised, probe-stdim-RUN_NAME-GAME for a named run")
    parser.add_argument("--objective", choices=("stdim", "supervised"), default="stdim",
                        help="stdim: AtariARI's ST-DIM (stdim/); supervised: their supervised control, the encoder "
                             "trained to classify the RAM variables (supervised/)")
    parser.add_argument("--all-variables", action="store_true",
                        help="supervised: also train variables of label entropy below 0.6 (AtariARI's probe "
                             "drops them)")
    parser.add_argument("--games", default=None,
                        help="comma-separated games: one ST-DIM encoder on all of them, each batch one game's "
                             "(stdim-RUN/)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="where the pre-training collections are read or collected (default OUT/FRAME/data); "
                             "the probe's collection stays in OUT/FRAME/data")
    parser.add_argument("--last-frame", action="store_true",
                        help="with --frame stack84: the encoder reads only each 4-stack's newest frame (AtariARI's "
                             "single frames at 84x84; consecutive 4-stacks share three frames, which ST-DIM's pairs "
                             "could be matched by); runs get '-last84' in their name")
    parser.add_argument("--run-name", default=None,
                        help="the run is stdim-RUN_NAME/ (supervised-RUN_NAME/); --games' default: <n>games")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="export: the run's encoder file (epochNNN.pt, best.pt, init.pt or checkpoint.pt)")
    parser.add_argument("--dest", type=Path, default=None,
                        help="export: the backbone file to write (.pt); its record goes beside it (.json)")
    parser.add_argument("--record", type=Path, default=None,
                        help="export: a JSON object of entries to add to the record (recipe, data, probe figures)")
    args = parser.parse_args(argv)
    if args.stage == "export":
        if args.encoder is None or args.dest is None:
            parser.error("export needs --encoder FILE and --dest FILE.pt")
    elif args.out is None:
        parser.error(f"{args.stage} needs --out DIR")
    return args


MEASURED = ("file", "format", "family", "arch", "width", "frame", "size", "feature_dim", "sha256", "bytes", "epoch",
            "seed")
"""The record entries :func:`export_atariari_backbone` writes from the file itself; ``--record`` cannot set them."""


def export(args: argparse.Namespace) -> dict:
    """Write ``--encoder``'s encoder as a PreND backbone at ``--dest``, with ``--record``'s entries in its record.

    Returns:
        The record written (``--dest`` with ``.json``).

    Raises:
        PrendError: If the record is not a readable JSON object, the destination is not a ``.pt`` file, or the
            encoder file is no AtariARI encoder reading 84x84 4-stacks.
    """
    if args.dest.suffix != ".pt":
        raise PrendError(f"--dest {args.dest} is not a .pt file",
                         "name the backbone file NAME.pt (its record: NAME.json)")
    if not args.encoder.is_file():
        raise PrendError(f"--encoder {args.encoder} is no file", "pass epochNNN.pt, best.pt or init.pt of a run")
    extra: dict = {}
    if args.record is not None:
        try:
            extra = json.loads(args.record.read_text())
        except (OSError, ValueError) as err:
            raise PrendError(f"cannot read --record {args.record} ({type(err).__name__})",
                             "pass a JSON object, e.g. a shipped backbone's .json") from None
        if not isinstance(extra, dict):
            raise PrendError(f"--record {args.record} holds no JSON object", "pass a JSON object of record entries")
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    info = export_atariari_backbone(args.encoder, args.dest, {k: v for k, v in extra.items() if k not in MEASURED})
    # An exported file keeps no epoch (its record does): re-exporting a shipped file keeps the record's.
    if "epoch" not in info and isinstance(extra.get("epoch"), int):
        info["epoch"] = extra["epoch"]
        args.dest.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def run_games(args: argparse.Namespace) -> list[str]:
    """The ROMs of ``--games`` (empty without it).

    Raises:
        PrendError: If a game is unknown or named twice, or ``--games`` is given to the supervised control.
    """
    if args.games is None:
        return []
    if args.objective != "stdim":
        raise PrendError("--games trains one ST-DIM encoder on several games; the supervised control learns one "
                         "game's variables", "drop --games, or use --objective stdim")
    roms = []
    for name in (g.strip() for g in args.games.split(",") if g.strip()):
        rom = resolve_atari_game(name)
        if rom is None:
            raise unknown_game_error(name)
        roms.append(rom)
    if not roms or len(set(roms)) < len(roms):
        raise PrendError(f"--games {args.games} names no game or one twice", "list each game once, e.g. boxing,pong")
    return roms


def run_dir(args: argparse.Namespace, root: Path, games: list[str]) -> Path:
    """The run directory under ``root``: ``stdim`` or ``supervised``, ``-<run-name>`` added when named.

    A multi-game run is always named (``<n>games`` unless ``--run-name``), so that it never resumes the
    single-game run.
    """
    base = "stdim" if args.objective == "stdim" else "supervised"
    name = args.run_name or (f"{len(games)}games" if games else None)
    parts = [base, *(["last84"] if args.last_frame else []), *([name] if name else [])]
    return root / "-".join(parts)


def probe_name(args: argparse.Namespace, run: Path, rom: str) -> str:
    """The probe files' stem: ``--name``, else ``probe`` (ST-DIM), ``probe-supervised``, ``probe-<run>-<rom>``."""
    if args.name:
        return args.name
    return {"stdim": "probe", "supervised": "probe-supervised"}.get(run.name, f"probe-{run.name}-{rom}")


def write_init(args: argparse.Namespace, run: Path) -> Path:
    """Write ``run/init.pt`` as the trainers (:class:`STDIMTrainer`, :class:`SupervisedTrainer`) do on their first
    start: the encoder built right after ``torch.manual_seed(args.seed)``, saved untrained (an existing ``init.pt``
    is left as it is).
    """
    path = run / "init.pt"
    if path.exists():
        return path
    torch.manual_seed(args.seed)
    encoder = AtariARIEncoder("last84" if args.last_frame else args.frame)
    run.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "encoder": encoder.state_dict(), "frame": encoder.frame,
                       "size": list(encoder.size)}, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the chosen stage(s); returns the exit code."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.stage == "export":
        try:
            info = export(args)
        except PrendError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"exported {args.encoder} -> {args.dest} ({info['bytes']:,} bytes, sha256 {info['sha256'][:16]}..., "
              f"{info['arch']}, epoch {info.get('epoch', '?')}, seed {info.get('seed', '?')}); record "
              f"{args.dest.with_suffix('.json')}", flush=True)
        return 0
    root = args.out / args.frame
    data = root / "data"
    say = lambda line: print(line, flush=True)  # noqa: E731 - a one-line logger
    try:
        if args.last_frame and args.frame != "stack84":
            raise PrendError("--last-frame reads the newest frame of 84x84 4-stacks", "add --frame stack84")
        games = run_games(args)
        run = run_dir(args, root, games)
        if args.stage == "init":
            path = write_init(args, run)
            say(f"wrote {path}: the untrained {args.frame}{' (last frame)' if args.last_frame else ''} encoder, "
                f"seed {args.seed}")
            return 0
        pre_root = args.data_root or data
        if args.stage in ("collect", "all", "pretrain"):
            pre = [collect_episodes(g, args.pretrain_steps, args.seed, pre_root, args.frame, say)
                   for g in games or [args.game]]
        if args.stage in ("collect", "all", "probe"):
            probe_dir = collect_episodes(args.game, args.probe_steps, args.seed + 1, data, args.frame, say)
        if args.stage in ("pretrain", "all"):
            splits = [split_train_val(load_episodes(p), args.seed) for p in pre]
            train, val = [s[0] for s in splits], [s[1] for s in splits]
            for tr, va in splits:
                say(f"pretrain {tr.game}: {len(tr)} training episodes ({tr.steps:,} frames), {len(va)} validation "
                    f"({va.steps:,})")
            encoder_frame = "last84" if args.last_frame else None
            say(f"pretrain: {args.objective} into {run}; {cpu_summary()}; {torch.get_num_threads()} thread(s)")
            if args.objective == "supervised":
                settings = SupervisedSettings(max_epochs=args.max_epochs, seed=args.seed,
                                              **({"min_entropy": 0.0} if args.all_variables else {}))
                trainer = SupervisedTrainer(train[0], val[0], run, settings, say, encoder_frame=encoder_frame)
                say(f"supervised: {len(trainer.variables)} variables ({', '.join(trainer.variables)})")
            else:
                settings = STDIMSettings(max_epochs=args.max_epochs, seed=args.seed)
                # One game's run is given its Episodes, as before multi-game runs existed.
                trainer = STDIMTrainer(train if games else train[0], val if games else val[0], run, settings, say,
                                       encoder_frame=encoder_frame)
            with StopFlag("stopping after this batch (saving)...") as stop:
                summary = trainer.fit(lambda: stop.raised is not None)
            say(json.dumps(summary))
            if not summary["finished"]:
                return 0 if stop.raised is None else 128 + stop.raised
        if args.stage in ("probe", "all"):
            start = time.time()
            encoders = run_encoders(run, args.encoders)
            seeds = [int(s) for s in args.probe_seeds.split(",")]
            classifiers = [c.strip() for c in args.classifiers.split(",")]
            if not set(classifiers) <= set(CLASSIFIERS):
                raise PrendError(f"unknown classifiers in --classifiers {args.classifiers}",
                                 f"choose from {', '.join(CLASSIFIERS)}")
            probe_set = load_episodes(probe_dir)
            name = probe_name(args, run, probe_set.game)
            result = probe_encoders(encoders, probe_set, seeds, say, classifiers)
            result.update(cpu=cpu_summary(), seconds=round(time.time() - start, 1), frame=args.frame,
                          run=str(run), command=" ".join(["benchmarks/atariari_repro.py", *(argv or sys.argv[1:])]))
            (root / f"{name}.json").write_text(json.dumps(result, indent=1))
            (root / f"{name}.md").write_text("\n".join(format_probe(result)) + "\n")
            say("\n".join(format_probe(result)))
    except PrendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
