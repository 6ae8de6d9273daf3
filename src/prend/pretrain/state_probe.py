"""The state probe of ``prend probe --state``: does an encoder carry the game's state, read from its RAM?

AtariARI's protocol (Anand et al. 2019, "Unsupervised State Representation Learning in Atari", NeurIPS;
code mila-iqia/atari-representation-learning): each frame is labelled with state variables read from the
emulator's RAM bytes (:mod:`prend.pretrain.state_labels`), and a linear classifier per variable over the
frozen encoder's features predicts the byte's value. The figure is the test set's weighted F1 per variable,
averaged within AtariARI's five categories and then across them (their reported figure,
:func:`~prend.pretrain.state_labels.category_mean`), beside the plain mean over variables. Two references
are probed with the encoder: the same architecture randomly initialised, and raw pixels (the newest frame
average-pooled to 21 x 21).

Each encoder is probed twice: the **map probe** reads its whole output (for an Atari-PB backbone the
flattened C x 6 x 6 map, 2,304-4,608 features), the **vector probe** reads it reduced to AtariARI's 256
features (:func:`vector_features`: an output of at most 256 features as it is, else a fixed, seeded random
projection, the analogue of AtariARI's randomly initialised last layer), so a random network is not scored
as a 4,608-d random-feature machine.

Like AtariARI: episodes (here: the episode fragments a collector stream holds; fragments of at most 64
frames are dropped) are split into train, validation and test sets by whole episodes; test observations
also seen in train or validation are removed; variables whose label entropy (nats, over all frames of the
game) is below 0.6 are dropped and reported; each variable gets one linear layer over the byte's values,
trained with Adam (lr 3e-4, eps 1e-5, batches of 64) on the cross-entropy; sklearn's weighted F1. Every
figure is the mean over ``repeats`` probe seeds (each its own split, initialisation and batch order),
reported with the seeds' range. Whose classifiers is ``classifiers``: ``"prend"`` (the default) differs
from AtariARI's in that the classes of a variable are the byte values seen in training (a value never seen
there counts as an error at test time, as it would with 256 outputs that never saw it), features are
standardised with train statistics, and training stops per variable when its validation loss has not
improved for ``patience`` epochs and keeps its best epoch; ``"atariari"`` is AtariARI's own
(:func:`prend.pretrain.atariari_classifiers.atariari_probe_variables`: raw features, 256 outputs, learning-rate
plateaus, stopping after 15 epochs without a better validation accuracy, the last weights).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from prend.envs.games import atari_pb_game_id
from prend.errors import PrendError
from prend.pretrain.atariari_classifiers import ATARIARI_PATIENCE, atariari_probe_variables
from prend.pretrain.dataset import FrameData, split_episodes
from prend.pretrain.state_labels import (  # noqa: F401 (re-exported: the labels and scores the probe uses)
    ATARIARI_CATEGORIES,
    ATARIARI_RAM,
    ATARIARI_SOURCE,
    ENTROPY_THRESHOLD,
    atariari_categories,
    category_mean,
    label_entropy,
    state_labels,
    weighted_f1,
)

PIXEL_GRID = 21
"""Side of the raw-pixel reference: the newest 84x84 frame average-pooled by 4."""

VIEWS = ("map", "vector")
"""What of an encoder's output the classifiers read: all of it, or reduced to ``vector_dim`` features."""


@dataclass
class StateProbeSettings:
    """How the linear state classifiers are fitted (defaults: AtariARI's split, optimiser and batch)."""

    test_fraction: float = 0.2
    """Share of a game's frames held out for testing, as whole episodes (AtariARI: 0.2)."""
    val_fraction: float = 0.125
    """Share of the remaining episodes used to pick each variable's epoch (AtariARI: 0.1 of all = 0.125 of
    the rest)."""
    lr: float = 3e-4
    """Adam learning rate (AtariARI: 3e-4)."""
    batch_size: int = 64
    """Frames per Adam step (AtariARI: 64)."""
    max_epochs: int = 100
    """Epochs at most (AtariARI: 100)."""
    classifiers: Literal["prend", "atariari"] = "prend"
    """Whose linear classifiers: 'prend' (features standardised with train statistics, the classes seen in
    training, the best epoch by validation loss) or 'atariari' (AtariARI's own: raw features, 256 outputs, Adam
    with learning-rate plateaus, stopped after 15 epochs without a better validation accuracy, the last
    weights). The category averaging is AtariARI's with either."""
    patience: int = 10
    """Stop a variable's classifier after this many epochs without a better validation loss (prend's
    classifiers; AtariARI's use their own 15, on the validation accuracy)."""
    seed: int = 0
    """First probe seed: of the episode split, the initialisation and the batch order."""
    repeats: int = 3
    """Probe seeds (seed, seed+1, ...); every figure is their mean, printed with their range (max - min)."""
    short_episode: int = 64
    """Episodes (stream fragments) of at most this many frames are left out (AtariARI: 64)."""
    stride: int = 1
    """Probe every stride-th frame of each episode (t = 0, stride, ...; AtariARI: 1): consecutive frames are
    near-duplicates, and 4 cuts the classifiers' cost 4-fold (docs/pretraining.md gives both costs)."""
    map: bool = True
    """Probe each encoder's whole output, flattened (--state-settings.no-map: only the vector probe)."""
    vector: Literal["project", "pool", "off"] = "project"
    """The vector probe: an output of more than --state-settings.vector-dim features is reduced by a fixed
    random projection ('project', seeded by --state-settings.projection-seed; the measured choice, see
    docs/pretraining.md) or, for a spatial map, by global average pooling over its cells ('pool'); 'off'
    skips the vector probe. An output of at most vector-dim features is read as it is."""
    vector_dim: int = 256
    """Features of the vector probe (AtariARI's encoders output 256)."""
    projection_seed: int = 0
    """Seed of the vector probe's random projection (the same matrix for every encoder of one width and every
    probe seed; its sha256 is stored with the figures)."""


def pixel_features(data: FrameData, rows: np.ndarray) -> np.ndarray:
    """The raw-pixel reference: the newest frame of each observation average-pooled to 21x21, in [0, 1]."""
    frames = torch.from_numpy(data.frames[rows]).float().div_(255)[:, None]
    return F.avg_pool2d(frames, 84 // PIXEL_GRID).flatten(1).numpy()


# ------------------------------------------------------------------------------------------- the vector
def projection_matrix(dim_in: int, dim_out: int, seed: int) -> np.ndarray:
    """The vector probe's fixed random projection: float32 (dim_in, dim_out), entries N(0, 1/dim_in).

    Drawn from ``numpy.random.default_rng(seed)``, so one seed gives one matrix per input width; scaled so a
    feature vector keeps its length on average (Johnson-Lindenstrauss).

    Example:
        >>> p = projection_matrix(2304, 256, seed=0)
        >>> p.shape, bool(np.array_equal(p, projection_matrix(2304, 256, seed=0)))
        ((2304, 256), True)
    """
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((dim_in, dim_out), dtype=np.float32) / np.float32(np.sqrt(dim_in)))


def vector_features(features: np.ndarray, settings: StateProbeSettings) -> tuple[np.ndarray, str]:
    """An encoder's output reduced to at most ``settings.vector_dim`` features, and how it was reduced.

    An output of at most ``vector_dim`` features (e.g. AtariARI's 256-d encoder) is read as it is; a spatial
    map (M, C, H, W) with ``vector="pool"`` is averaged over its cells (then projected if C is still larger);
    anything else is flattened and multiplied by :func:`projection_matrix`.

    Example:
        >>> x = np.ones((5, 64, 6, 6), np.float32)
        >>> [(f.shape, how.split(" over")[0].split(":")[0]) for f, how in (vector_features(x, StateProbeSettings()),
        ...                                          vector_features(x, StateProbeSettings(vector="pool")))]
        [((5, 256), 'random projection'), ((5, 64), 'global average pooling')]
    """
    dim = settings.vector_dim
    how = []
    if settings.vector == "pool" and features.ndim == 4:
        features = features.mean((2, 3))
        how.append(f"global average pooling over {features.shape[1]} channels")
    flat = features.reshape(len(features), -1).astype(np.float32, copy=False)
    if flat.shape[1] <= dim:
        return flat, "; ".join(how) or f"as it is ({flat.shape[1]} features)"
    proj = projection_matrix(flat.shape[1], dim, settings.projection_seed)
    out = np.empty((len(flat), dim), np.float32)
    for start in range(0, len(flat), 4096):  # in blocks: no second full-size copy of a large map
        out[start:start + 4096] = flat[start:start + 4096] @ proj
    digest = hashlib.sha256(proj.tobytes()).hexdigest()[:16]
    how.append(f"random projection: {flat.shape[1]} -> {dim}, N(0, 1/{flat.shape[1]}), "
               f"numpy default_rng({settings.projection_seed}), sha256 {digest}")
    return out, "; ".join(how)


# ------------------------------------------------------------------------------------------ classifiers
def three_way_split(episode: np.ndarray, settings: StateProbeSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean (train, val, test) masks over rows, each a set of whole episodes.

    Raises:
        PrendError: If there are fewer than 3 episodes (no split into three sets of whole episodes).
    """
    n_episodes = len(np.unique(episode))
    if n_episodes < 3:
        raise PrendError(f"the state probe needs at least 3 episodes to split into train, validation and test; "
                         f"the frames hold {n_episodes}",
                         "collect more (e.g. prend collect --ram --num-envs 16 --frames-per-game 36000)")
    rest, test = split_episodes(episode, settings.test_fraction, settings.seed)
    fit_in_rest, val_in_rest = split_episodes(episode[rest], settings.val_fraction, settings.seed + 1)
    train, val = np.zeros_like(rest), np.zeros_like(rest)
    train[np.flatnonzero(rest)[fit_in_rest]] = True
    val[np.flatnonzero(rest)[val_in_rest]] = True
    return train, val, test


@contextlib.contextmanager
def one_thread_if(small: bool) -> Iterator[None]:
    """Run torch on one thread inside the block when ``small`` (then restore the thread count).

    A small layer's steps are a few microseconds of arithmetic: a second thread only adds synchronisation,
    which on a busy machine made the state probe's test fits 5x slower (91 s against 18 s, measured at load
    average 9); large problems (a full map) keep every thread.
    """
    threads = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_linear_heads(x_train: np.ndarray, y_train: Mapping[str, np.ndarray], x_val: np.ndarray,
                     y_val: Mapping[str, np.ndarray], settings: StateProbeSettings
                     ) -> dict[str, tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """One linear classifier per variable over the same (standardised) features, trained side by side.

    Each variable's classes are the values in ``y_train``; validation values never seen in training are
    left out of its validation loss. The heads share batches but not parameters or stopping: each keeps the
    weights of its best validation epoch and stops improving after ``settings.patience`` epochs without one.

    Returns:
        name -> ``(classes, W (D, K), b (K,))``.
    """
    names = list(y_train)
    classes = {n: np.unique(y_train[n]) for n in names}
    with one_thread_if(x_train.shape[1] * sum(len(c) for c in classes.values()) < 2**20):
        return _fit_linear_heads(x_train, y_train, x_val, y_val, settings, names, classes)


def _fit_linear_heads(x_train: np.ndarray, y_train: Mapping[str, np.ndarray], x_val: np.ndarray,
                      y_val: Mapping[str, np.ndarray], settings: StateProbeSettings, names: list[str],
                      classes: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(settings.seed)
    xt, xv = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(x_val, dtype=torch.float32)
    cols = np.cumsum([0] + [len(classes[n]) for n in names])
    targets_t = torch.stack([torch.as_tensor(np.searchsorted(classes[n], y_train[n])) for n in names], 1)
    targets_v, keep_v = [], []
    for n in names:
        idx = np.searchsorted(classes[n], y_val[n]).clip(0, len(classes[n]) - 1)
        keep_v.append(torch.as_tensor(classes[n][idx] == y_val[n]))
        targets_v.append(torch.as_tensor(idx))

    bound = 1.0 / np.sqrt(xt.shape[1])  # nn.Linear's default initialisation
    w = (torch.rand(xt.shape[1], int(cols[-1]), generator=gen) * 2 - 1).mul_(bound).requires_grad_()
    b = (torch.rand(int(cols[-1]), generator=gen) * 2 - 1).mul_(bound).requires_grad_()
    opt = torch.optim.Adam([w, b], lr=settings.lr, eps=1e-5)
    best = {n: (float("inf"), w[:, cols[i]:cols[i + 1]].detach().clone(), b[cols[i]:cols[i + 1]].detach().clone())
            for i, n in enumerate(names)}
    stale = dict.fromkeys(names, 0)

    def head_losses(logits: torch.Tensor, targets: Sequence[torch.Tensor] | torch.Tensor,
                    keep: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        out = []
        for i in range(len(names)):
            part, target = logits[:, cols[i]:cols[i + 1]], targets[i] if keep is not None else targets[:, i]
            if keep is not None:
                part, target = part[keep[i]], target[keep[i]]
            out.append(F.cross_entropy(part, target) if len(target) else torch.zeros(()))
        return out

    for _ in range(settings.max_epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            loss = torch.stack(head_losses(xt[batch] @ w + b, targets_t[batch])).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val_losses = head_losses(xv @ w + b, targets_v, keep_v)
        for i, n in enumerate(names):
            value = float(val_losses[i])
            if value < best[n][0]:
                best[n] = (value, w[:, cols[i]:cols[i + 1]].detach().clone(), b[cols[i]:cols[i + 1]].detach().clone())
                stale[n] = 0
            else:
                stale[n] += 1
        if all(s >= settings.patience for s in stale.values()):
            break
    return {n: (classes[n], best[n][1], best[n][2]) for n in names}


def predict_heads(x: np.ndarray, heads: Mapping[str, tuple[np.ndarray, torch.Tensor, torch.Tensor]]
                  ) -> dict[str, np.ndarray]:
    """Each head's predicted byte value for the rows of ``x``."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        return {n: classes[(xt @ w + b).argmax(1).numpy()] for n, (classes, w, b) in heads.items()}


def probe_variables(features: np.ndarray, labels: Mapping[str, np.ndarray], masks: tuple[np.ndarray, ...],
                    settings: StateProbeSettings) -> dict[str, float]:
    """Test weighted F1 of a linear classifier per variable: ``settings.classifiers``' classifiers.

    prend's on features standardised with train statistics; AtariARI's (``"atariari"``) on the raw features,
    :func:`prend.pretrain.atariari_classifiers.atariari_probe_variables` with ``settings``' lr, batch, epochs and
    patience (:func:`state_probe` sets AtariARI's 15).

    Example (a feature that is the label scores 1; the split is by the ``episode`` of each row):
        >>> rng = np.random.default_rng(0); y = rng.integers(0, 4, 400); episode = np.arange(400) // 40
        >>> masks = three_way_split(episode, StateProbeSettings())
        >>> probe_variables(np.eye(4)[y], {"v": y}, masks, StateProbeSettings(lr=0.05, max_epochs=20))
        {'v': 1.0}
    """
    if not labels:
        return {}  # every variable was dropped: nothing to classify
    x = features.reshape(len(features), -1).astype(np.float32)
    if settings.classifiers == "atariari":
        with one_thread_if(x.shape[1] * 256 * len(labels) < 2**20):
            return atariari_probe_variables(x, labels, np.select(masks, [0, 1, 2], -1), settings.seed, settings.lr,
                                            settings.batch_size, settings.max_epochs, settings.patience)
    train, val, test = masks
    mean, std = x[train].mean(0), x[train].std(0)
    std[std < 1e-6] = 1.0  # constant features carry nothing; centred they stay 0
    z = (x - mean) / std
    heads = fit_linear_heads(z[train], {n: y[train] for n, y in labels.items()}, z[val],
                             {n: y[val] for n, y in labels.items()}, settings)
    pred = predict_heads(z[test], heads)
    return {n: weighted_f1(pred[n], labels[n][test]) for n in labels}


# -------------------------------------------------------------------------------------------- the probe
def stack_hashes(data: FrameData, rows: np.ndarray) -> np.ndarray:
    """A hash of each observation's exact pixels (its 4-stack), to find test frames seen in training."""
    blocks = [data.stacks(rows[i:i + 512]).reshape(len(rows[i:i + 512]), -1) for i in range(0, len(rows), 512)]
    return np.array([hash(k.tobytes()) for block in blocks for k in block])


def duplicate_test_rows(data: FrameData, rows: np.ndarray, masks: tuple[np.ndarray, ...],
                        hashes: np.ndarray | None = None) -> np.ndarray:
    """Boolean over ``rows``: test observations (4-stacks) whose exact pixels also occur in train or val."""
    train, val, test = masks
    hashes = stack_hashes(data, rows) if hashes is None else hashes
    return test & np.isin(hashes, hashes[train | val])


def encoder_features(name: str, source: Any, rows: np.ndarray) -> np.ndarray:
    """The features of encoder ``name`` for ``rows``: ``source`` is an array over all frames or ``rows -> array``.

    Raises:
        PrendError: If the encoder raises, or returns anything but finite float features, one row per frame.
    """
    try:
        feats = source(rows) if callable(source) else np.asarray(source)[rows]
    except PrendError:
        raise
    except Exception as err:  # noqa: BLE001 - a user's encoder can fail in any way; report it in one line
        raise PrendError(f"the encoder '{name}' failed on {len(rows)} frames ({type(err).__name__}: {err})",
                         "check that it maps float (N, 4, 84, 84) stacks in [0, 1] to features") from None
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().cpu()
        feats = (feats.float() if feats.is_floating_point() else feats).numpy()
    feats = np.asarray(feats)
    if feats.ndim < 2 or len(feats) != len(rows) or not np.issubdtype(feats.dtype, np.floating):
        raise PrendError(f"the encoder '{name}' returned {feats.dtype} features of shape {feats.shape} for "
                         f"{len(rows)} frames", "return float features, one row (or map) per frame: shape (N, ...)")
    if not np.isfinite(feats).all():
        raise PrendError(f"the encoder '{name}' returned non-finite features (NaN or inf)",
                         "check its weights and its input scaling (float stacks in [0, 1])")
    return feats


def _summary(per_seed: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Per-variable means over seeds, and each seed's plain and category mean with their mean and range."""
    names = list(per_seed[0]) if per_seed else []
    plain = [float(np.mean(list(f.values()))) if f else float("nan") for f in per_seed]
    cats = [category_mean(f) for f in per_seed]
    across = [c["across_categories"] for c in cats]
    return {"variables": {n: float(np.mean([f[n] for f in per_seed])) for n in names},
            "mean": float(np.mean(plain)), "category_mean": float(np.mean(across)),
            "per_category": {k: float(np.mean([c[k] for c in cats])) for k in ATARIARI_CATEGORIES if k in cats[0]}
            if cats else {},
            "seeds": {"mean": plain, "category_mean": across}}


def spread(values: Sequence[float]) -> float:
    """Max - min of the probe seeds' figures (NaN for none)."""
    return float(np.max(values) - np.min(values)) if len(values) else float("nan")


def state_probe(encoders: Mapping[str, Any], data: FrameData, settings: StateProbeSettings | None = None,
                progress: bool = False, log: Callable[[str], None] | None = None,
                names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Weighted F1 of linear state classifiers over each encoder's features, per annotated game of ``data``.

    Args:
        encoders: name -> features of every frame of ``data`` (array (M, ...)) or a callable
            ``rows -> features`` (called once per game). ``"pixels"`` is added when absent.
        data: Frames with RAM (collected with ``prend collect --ram``).
        settings: The classifiers, the split, the optimiser, the probe seeds and the views.
        progress: Show a progress bar over (game, encoder, view) fits.
        log: Called with one line per stage (what is being fitted, how long it took, about how long is left).
        names: encoder key -> the name ``log`` calls it by (default: the key), e.g. the path the user gave.

    Returns:
        ``{"per_game": {game: {view: {"variables": {name: {encoder: f1}}, "mean": {encoder: f1},
        "category_mean": {...}, "per_category": {encoder: {category: f1}}, "seeds": {encoder: {"mean": [...],
        "category_mean": [...]}}}, "categories": {name: [...]}, "dropped": {name: entropy}, "frames": {...}}},
        view: {"mean": {encoder: mean over games}, "category_mean": {...}, "seeds": {...}, "spread": {...}},
        "mean": the map probe's (else the vector probe's) plain means, "vector_reduction": {encoder: how},
        "games_without_annotation": [...], "settings": {...}}``, views ``"map"`` and ``"vector"`` as run;
        figures are means over the probe seeds, ``seeds`` holds each seed's.

    Raises:
        PrendError: If no game of ``data`` is annotated, a game has fewer than 3 episodes longer than
            ``settings.short_episode``, an encoder fails, or ``settings.classifiers`` is unknown.
    """
    settings = settings or StateProbeSettings()
    log = log or (lambda line: None)
    if data.ram is None:
        raise PrendError("the frames have no RAM labels", "collect them with prend collect --ram")
    if settings.classifiers not in ("prend", "atariari"):
        raise PrendError(f"unknown state-probe classifiers '{settings.classifiers}'", "pass prend or atariari")
    if settings.classifiers == "atariari":  # AtariARI's own stopping rule, recorded as used
        if settings.patience not in (StateProbeSettings.patience, ATARIARI_PATIENCE):
            log(f"note: AtariARI's classifiers stop after {ATARIARI_PATIENCE} epochs without a better validation "
                f"accuracy; patience {settings.patience} is for prend's classifiers and is not used")
        settings = dataclasses.replace(settings, patience=ATARIARI_PATIENCE)
    views = [v for v in VIEWS if (settings.map if v == "map" else settings.vector != "off")]
    if not views or settings.repeats < 1 or settings.stride < 1:
        raise PrendError("the state probe has nothing to fit (no view, --state-settings.repeats or stride < 1)",
                         "keep the map probe or a vector probe, at least one probe seed and a stride >= 1")
    encoders = {**encoders, "pixels": encoders.get("pixels", lambda rows: pixel_features(data, rows))}
    games = [g for g in data.games if g in ATARIARI_RAM]
    if not games:
        raise PrendError(f"no AtariARI state annotation for {', '.join(data.games)}",
                         f"probe frames of an annotated game: {', '.join(sorted(ATARIARI_RAM))}")
    seeds = [settings.seed + r for r in range(settings.repeats)]
    result: dict[str, Any] = {"per_game": {}, "vector_reduction": {},
                              "games_without_annotation": [g for g in data.games if g not in ATARIARI_RAM]}
    fits, done, started = len(games) * len(encoders) * len(views), 0, time.perf_counter()
    bar = tqdm(total=fits, desc="state probe", unit="fit", disable=not progress)
    for game in games:
        rows = np.flatnonzero(data.game_ids == atari_pb_game_id(game))
        episode_ids, lengths = np.unique(data.episode[rows], return_counts=True)
        short = episode_ids[lengths <= settings.short_episode]
        rows = rows[~np.isin(data.episode[rows], short) & (data.t[rows] % settings.stride == 0)]
        labels = state_labels(data.ram[rows], game)
        entropy = {n: label_entropy(y) for n, y in labels.items()}
        dropped = {n: e for n, e in entropy.items() if e < ENTROPY_THRESHOLD}
        labels = {n: y for n, y in labels.items() if n not in dropped}
        if len(episode_ids) - len(short) < 3:
            raise PrendError(f"{game}: the state probe needs at least 3 episodes to split into train, validation "
                             f"and test; the frames hold {len(episode_ids) - len(short)} (and {len(short)} of at "
                             f"most {settings.short_episode} frames, left out)",
                             "collect more (e.g. prend collect --ram --num-envs 16 --frames-per-game 36000)")
        splits = [three_way_split(data.episode[rows], dataclasses.replace(settings, seed=s)) for s in seeds]
        hashes = stack_hashes(data, rows)
        duplicates = [duplicate_test_rows(data, rows, m, hashes) for m in splits]
        splits = [(tr, va, te & ~dup) for (tr, va, te), dup in zip(splits, duplicates, strict=True)]
        log(f"state probe, {game}: {len(rows):,} frames in {len(episode_ids) - len(short)} episodes, "
            f"{len(labels)} variables; {len(encoders)} encoders x {'+'.join(views)} x {len(seeds)} probe seeds")
        per_view: dict[str, dict[str, dict[str, Any]]] = {v: {} for v in views}
        for name, source in encoders.items():
            feats = encoder_features(name, source, rows)
            for view in views:
                tick = time.perf_counter()
                if view == "vector":
                    x, result["vector_reduction"][name] = vector_features(feats, settings)
                else:
                    x = feats.reshape(len(feats), -1)
                if view == "vector" and name in per_view.get("map", {}) and \
                        result["vector_reduction"][name].startswith("as it is"):
                    # A vector output (AtariARI's 256-d encoder) is its own vector view: the same features,
                    # split and classifiers give the same figures, so they are not fitted twice.
                    per_view[view][name] = per_view["map"][name]
                else:
                    per_seed = [probe_variables(x, labels, masks, dataclasses.replace(settings, seed=s))
                                for masks, s in zip(splits, seeds, strict=True)]
                    per_view[view][name] = _summary(per_seed)
                done += 1
                bar.update(1)
                elapsed = time.perf_counter() - started
                shown = (names or {}).get(name, name)
                log(f"  {game} {view} probe ({x.shape[1]:,} features) of {shown}: category mean "
                    f"{per_view[view][name]['category_mean']:.3f}, plain mean {per_view[view][name]['mean']:.3f}"
                    f"; {time.perf_counter() - tick:.0f} s, about {elapsed / done * (fits - done):.0f} s left")
        entry: dict[str, Any] = {
            "categories": {n: list(atariari_categories(n)) for n in labels}, "dropped": dropped, "entropy": entropy,
            "frames": {"train": [int(m[0].sum()) for m in splits], "val": [int(m[1].sum()) for m in splits],
                       "test": [int(m[2].sum()) for m in splits],
                       "test_duplicates_removed": [int(d.sum()) for d in duplicates],
                       "episodes": int(len(episode_ids) - len(short)), "short_episodes_left_out": int(len(short))}}
        for view, by_encoder in per_view.items():
            entry[view] = {"variables": {n: {e: s["variables"][n] for e, s in by_encoder.items()} for n in labels},
                           **{key: {e: s[key] for e, s in by_encoder.items()}
                              for key in ("mean", "category_mean", "per_category", "seeds")}}
        result["per_game"][game] = entry
    bar.close()
    for view in views:
        per_game = [g[view] for g in result["per_game"].values()]
        summary: dict[str, Any] = {"mean": {}, "category_mean": {}, "seeds": {}, "spread": {}}
        for name in encoders:
            seeds_plain = np.mean([g["seeds"][name]["mean"] for g in per_game], axis=0).tolist()
            seeds_cat = np.mean([g["seeds"][name]["category_mean"] for g in per_game], axis=0).tolist()
            summary["mean"][name] = float(np.mean(seeds_plain))
            summary["category_mean"][name] = float(np.mean(seeds_cat))
            summary["seeds"][name] = {"mean": seeds_plain, "category_mean": seeds_cat}
            summary["spread"][name] = {"mean": spread(seeds_plain), "category_mean": spread(seeds_cat)}
        result[view] = summary
    result["mean"] = result[views[0]]["mean"]  # the figure older readers (prend pretrain's TensorBoard) take
    result["settings"] = {**dataclasses.asdict(settings), "seeds": seeds, "views": views,
                          "entropy_threshold": ENTROPY_THRESHOLD, "pixel_grid": PIXEL_GRID,
                          "source": ATARIARI_SOURCE}
    log(f"state probe done in {time.perf_counter() - started:.0f} s")
    return result
