"""AtariARI's state probe of :mod:`prend.pretrain.atariari`'s encoders, with their published Table 2 beside it.

The probe is AtariARI's (``atariari/benchmark/{episodes,probe}.py``): the probe set's episodes of more than
64 steps are shuffled and split 70/10/20 (train/validation/test) by whole episodes; test frames whose exact
pixels also occur in train or validation are removed; variables whose label entropy over the probe set is
below 0.6 nats are dropped; one linear classifier per variable over the encoder's 256-d vector; weighted F1 on
the test frames, averaged within AtariARI's categories and then across them
(:func:`prend.pretrain.state_probe.category_mean`). The classifiers are either protocol of :data:`CLASSIFIERS`:
AtariARI's own (:func:`prend.pretrain.atariari_classifiers.atariari_probe_variables`, which
``prend probe --state --state-settings.classifiers atariari`` also uses: raw features, 256 outputs, patience 15
on the validation accuracy) or prend's
(:func:`prend.pretrain.state_probe.probe_variables`, ``prend probe --state``'s default: features standardised
with the training frames' statistics, the classes seen in training, patience 15 here on the validation loss),
both with Adam lr 3e-4, batches of 64, up to 100 epochs. Each encoder is probed over several split seeds; the
figures are their mean and standard deviation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prend.errors import PrendError
from prend.pretrain.atariari import MIN_EPISODE_LENGTH, AtariARIEncoder, Episodes, encode, load_encoder
from prend.pretrain.atariari_classifiers import ATARIARI_PATIENCE, atariari_probe_variables
from prend.pretrain.state_probe import (
    ATARIARI_CATEGORIES,
    ENTROPY_THRESHOLD,
    StateProbeSettings,
    atariari_categories,
    category_mean,
    label_entropy,
    probe_variables,
    state_labels,
)

PUBLISHED_BOXING: dict[str, dict[str, float]] = {
    "random CNN": {"clock": 0.05, "player_score": 0.03, "enemy_score": 0.06, "player_x": 0.25, "player_y": 0.18,
                   "enemy_x": 0.37, "enemy_y": 0.27, "across_categories": 0.19},
    "pixel prediction": {"clock": 0.27, "player_score": 0.32, "enemy_score": 0.58, "player_x": 0.54,
                         "player_y": 0.43, "enemy_x": 0.49, "enemy_y": 0.42, "across_categories": 0.44},
    "ST-DIM": {"clock": 0.92, "player_score": 0.88, "enemy_score": 0.70, "player_x": 0.56, "player_y": 0.37,
               "enemy_x": 0.51, "enemy_y": 0.38, "across_categories": 0.58},
    "supervised": {"clock": 0.97, "player_score": 1.00, "enemy_score": 1.00, "player_x": 0.81, "player_y": 0.72,
                   "enemy_x": 0.80, "enemy_y": 0.69, "across_categories": 0.83},
}
"""AtariARI's Table 2 on Boxing (random-agent data), per variable and category-averaged, read from the
authors' results notebook (mila-iqia/atari-representation-learning ``notebooks/summarize_results.ipynb``,
commit 9a31785)."""

PROBE_SETTINGS = StateProbeSettings(lr=3e-4, batch_size=64, max_epochs=100, patience=ATARIARI_PATIENCE)
"""AtariARI's classifier schedule (the split fractions are :func:`probe_split`'s)."""


def run_encoders(run: str | os.PathLike[str], spec: str = "all") -> dict[str, AtariARIEncoder]:
    """The encoders of an :class:`~prend.pretrain.atariari.STDIMTrainer` run named by ``spec``.

    Args:
        run: The run directory.
        spec: Comma-separated names: ``init`` (untrained), ``epochNNN``, ``last`` (the latest checkpoint),
            ``best`` (lowest validation loss); ``all`` is every one present.

    Raises:
        PrendError: If the run or a named encoder is missing.
    """
    run = Path(run)
    files = {"init": run / "init.pt", "last": run / "checkpoint.pt", "best": run / "best.pt"}
    files.update({p.stem: p for p in sorted(run.glob("epoch[0-9][0-9][0-9].pt"))})
    names = [n for n in files if files[n].exists()] if spec == "all" else [n.strip() for n in spec.split(",")]
    missing = [n for n in names if n not in files or not files[n].exists()]
    if missing or not names:
        raise PrendError(f"{run} has no encoder {', '.join(missing) or '(none at all)'}",
                         f"name some of: {', '.join(n for n in files if files[n].exists()) or 'run pretrain first'}")
    return {n: load_encoder(files[n]) for n in names}


def probe_split(lengths: Sequence[int], seed: int) -> np.ndarray:
    """Which part each frame falls in, 0 train, 1 validation, 2 test, -1 dropped: AtariARI's split.

    Episodes of at most 64 steps are dropped; the rest are shuffled by ``seed`` and cut at 70% and 80%.

    Raises:
        PrendError: If fewer than three episodes are long enough, so that a part would be empty.

    Example:
        >>> np.bincount(probe_split([100] * 10 + [10], seed=0) + 1).tolist()   # dropped, train, val, test
        [10, 700, 100, 200]
    """
    long = [i for i, n in enumerate(lengths) if n > MIN_EPISODE_LENGTH]
    val_at, test_at = int(0.7 * len(long)), int(0.8 * len(long))
    if not 0 < val_at < test_at < len(long):
        raise PrendError(f"the probe set has {len(long)} episode(s) of more than {MIN_EPISODE_LENGTH} steps; "
                         "a 70/10/20 split by episodes needs at least 4", "collect more probe steps")
    order = np.array(long)[np.random.RandomState(seed).permutation(len(long))]
    part_of_episode = np.full(len(lengths), -1)
    part_of_episode[order[:val_at]], part_of_episode[order[val_at:test_at]], part_of_episode[order[test_at:]] = 0, 1, 2
    return np.repeat(part_of_episode, lengths)


def duplicate_test_frames(frames: Sequence[np.ndarray], part: np.ndarray) -> np.ndarray:
    """Boolean over frames: test frames whose exact pixels also occur in train or validation.

    Example:
        >>> f = [np.array([[[1]], [[2]]], np.uint8), np.array([[[2]], [[3]]], np.uint8)]
        >>> duplicate_test_frames(f, np.array([0, 0, 2, 2])).tolist()
        [False, False, True, False]
    """
    keys = [frame.tobytes() for episode in frames for frame in episode]
    seen = {k for k, p in zip(keys, part, strict=True) if p in (0, 1)}
    return np.array([p == 2 and k in seen for k, p in zip(keys, part, strict=True)])


CLASSIFIERS = ("atariari", "prend")
"""The two classifier protocols: AtariARI's own (:func:`atariari_probe_variables`) and prend's
(:func:`prend.pretrain.state_probe.probe_variables`: standardised features, the classes seen in training,
patience 15 on the validation loss, the best epoch's weights)."""


def probe_features(features: np.ndarray, ram: np.ndarray, game: str, part: np.ndarray, seed: int = 0,
                   classifier: str = "atariari", settings: StateProbeSettings = PROBE_SETTINGS) -> dict[str, Any]:
    """Weighted F1 per variable, category means and plain mean of one split of one encoder's features.

    Args:
        features: (M, D) features of the probe set's frames.
        ram: (M, 128) RAM of those frames.
        game: The ALE ROM name (its AtariARI variables).
        part: :func:`probe_split`'s parts, with removed test duplicates set to -1.
        seed: Seeds the classifiers' initialisation and batches.
        classifier: ``"atariari"`` or ``"prend"`` (:data:`CLASSIFIERS`).
        settings: The schedule of both protocols (lr, batch size, epochs, patience).
    """
    labels = state_labels(ram, game)
    kept = part >= 0
    entropy = {n: label_entropy(y[kept]) for n, y in labels.items()}
    labels = {n: y for n, y in labels.items() if entropy[n] >= ENTROPY_THRESHOLD}
    if classifier == "atariari":
        f1 = atariari_probe_variables(features, labels, part, seed, settings.lr, settings.batch_size,
                                      settings.max_epochs, settings.patience)
    else:
        settings = StateProbeSettings(**{**settings.__dict__, "seed": seed, "classifiers": "prend"})
        f1 = probe_variables(features, labels, (part == 0, part == 1, part == 2), settings)
    categories = category_mean(f1)
    return {"variables": f1, "categories": {c: v for c, v in categories.items() if c != "across_categories"},
            "across_categories": categories["across_categories"],
            "mean": float(np.mean(list(f1.values()))) if f1 else float("nan"),
            "dropped": {n: e for n, e in entropy.items() if e < ENTROPY_THRESHOLD}}


def probe_encoders(encoders: Mapping[str, AtariARIEncoder], episodes: Episodes, seeds: Sequence[int],
                   log: Callable[[str], None] = print, classifiers: Sequence[str] = CLASSIFIERS) -> dict[str, Any]:
    """Probe every encoder on ``episodes`` over each split seed with each classifier protocol.

    Returns:
        ``{"encoders": {name: {classifier: figures' mean and sd over seeds}}, "splits": ..., ...}``.
    """
    lengths = [len(f) for f in episodes.frames]
    ram = np.concatenate(episodes.ram)
    splits = {}
    for seed in seeds:
        part = probe_split(lengths, seed)
        duplicates = duplicate_test_frames(episodes.frames, part)
        part[duplicates] = -1
        splits[seed] = (part, int(duplicates.sum()))
    result: dict[str, Any] = {"game": episodes.game, "frames": int(sum(lengths)), "episodes": len(lengths),
                              "seeds": list(seeds), "classifiers": list(classifiers), "encoders": {},
                              "splits": {str(s): {"train": int((p == 0).sum()), "val": int((p == 1).sum()),
                                                  "test": int((p == 2).sum()), "test_duplicates_removed": d}
                                         for s, (p, d) in splits.items()}}
    for name, encoder in encoders.items():
        log(f"probe {name}: encoding {sum(lengths):,} frames ...")
        features = np.concatenate(encode(encoder, episodes))
        result["encoders"][name] = {}
        for classifier in classifiers:
            runs = []
            for seed in seeds:
                runs.append(probe_features(features, ram, episodes.game, splits[seed][0], seed, classifier))
                log(f"probe {name}, {classifier} classifiers, seed {seed}: category mean "
                    f"{runs[-1]['across_categories']:.3f}")
            result["encoders"][name][classifier] = _aggregate(runs)
    return result


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "values": [float(v) for v in values]}

    return {"variables": {v: stats([r["variables"][v] for r in runs]) for v in runs[0]["variables"]},
            "categories": {c: stats([r["categories"][c] for r in runs]) for c in runs[0]["categories"]},
            "across_categories": stats([r["across_categories"] for r in runs]),
            "mean": stats([r["mean"] for r in runs]), "dropped": runs[0]["dropped"]}


def _order(name: str) -> tuple[int, str]:
    return (0, name) if name == "init" else (1, name) if re.fullmatch(r"epoch\d+", name) else (2, name)


def format_probe(result: Mapping[str, Any]) -> list[str]:
    """Markdown: per classifier protocol, a table of each variable (with its category) and each category.

    Cells are each encoder's mean ± sd over the split seeds; AtariARI's published random CNN, ST-DIM and
    supervised encoder stand beside them on Boxing.
    """
    names = sorted(result["encoders"], key=_order)
    published = PUBLISHED_BOXING if result["game"] == "boxing" else {}
    theirs = [p for p in ("random CNN", "ST-DIM", "supervised") if published]
    cols = [*names, *(f"AtariARI {p}" for p in theirs)]
    pad = " |" * len(theirs)

    def cell(figures: Mapping[str, Any]) -> str:
        return f"{figures['mean']:.3f} ± {figures['sd']:.3f}"

    lines: list[str] = []
    for classifier in result.get("classifiers", CLASSIFIERS):
        figures = {n: result["encoders"][n][classifier] for n in names}
        first = figures[names[0]]
        lines += [f"**{classifier} classifiers**", "",
                  f"| {result['game']} | category | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
        for var in first["variables"]:
            row = [cell(figures[n]["variables"][var]) for n in names]
            row += [f"{published[p].get(var, float('nan')):.2f}" for p in theirs]
            lines.append(f"| {var} | {', '.join(atariari_categories(var)) or '-'} | " + " | ".join(row) + " |")
        for cat in ATARIARI_CATEGORIES:
            if cat in first["categories"]:
                lines.append(f"| *{cat}* | | " + " | ".join(cell(figures[n]["categories"][cat]) for n in names)
                             + " |" + pad)
        row = [f"**{cell(figures[n]['across_categories'])}**" for n in names]
        row += [f"**{published[p]['across_categories']:.2f}**" for p in theirs]
        # AtariARI's figure only with their classifiers; prend's classifiers get only their averaging.
        figure = "AtariARI's figure" if classifier == "atariari" else "AtariARI's averaging"
        lines.append(f"| **category mean** ({figure}) | | " + " | ".join(row) + " |")
        lines.append("| plain mean over variables | | " + " | ".join(cell(figures[n]["mean"]) for n in names)
                     + " |" + pad)
        lines.append("")
    lines.append(f"{result['frames']:,} probe frames in {result['episodes']} episodes; split seeds "
                 f"{result['seeds']} (mean ± sd over them); dropped (label entropy < 0.6 nats): "
                 f"{', '.join(first['dropped']) or 'none'}.")
    return lines
