"""``prend probe``: does a backbone's representation carry more than its random initialisation's?

Measured on held-out frames (by default Boxing and Riverraid, games prend's pre-training recipe never
sees), for the checkpoint's backbone and for the same architecture randomly initialised (the *twin*; with
the pre-training seed it is exactly the starting point of the run):

(a) **Temporal coherence.** Within each episode, up to ``frames_per_episode`` observations are drawn; over
    all pairs of them, the Spearman rank correlation between the Euclidean distance of their backbone
    features (the full C x 6 x 6 map) and their distance in time. The figure is the mean over episodes.
    Higher means the feature space orders states along the trajectory.

(b) **Linear probes.** For each game, a multinomial logistic regression on the features of a transition,
    ``[pool(f(s_t)), pool(f(s_t+1))]`` (by default the full 6x6 map, optionally average-pooled), predicts
    (i) the action taken at ``t`` and (ii) the sign of the reward it earned. Both stacks are needed because
    collection policies are random: the action is independent of ``s_t`` alone and shows only in what it
    changes. Episodes are split into train and test sets (never sharing an episode); features are
    standardised with train statistics; classes are weighted inversely to their train frequency; the L2
    strength is picked from a grid on a validation split of the train episodes. The figure is the
    *balanced accuracy* (mean per-class recall) on the test episodes, averaged over games; chance is
    1 / classes, and balanced accuracy keeps the mostly-zero rewards from rewarding a constant guess.

(c) **State probe** (``--state``, :mod:`prend.pretrain.state_probe`): linear classifiers of AtariARI's RAM
    state variables (positions, clocks, scores) over the flattened feature map and over a 256-feature vector
    of it, scored by test weighted F1 (averaged within AtariARI's categories and then across them, as AtariARI
    does, and the plain mean, over 3 probe seeds) beside the random twin and raw pixels; it needs frames
    collected with ``--ram``. The classifiers are prend's (standardised features) unless
    ``--state-settings.classifiers atariari`` picks AtariARI's own; the frames are prend's either way.

The probed encoder is called by the name the user gave it (the checkpoint path or backbone name), never
"pretrained": prend cannot know what it was trained on. In the JSON its figures keep the key
``"pretrained"`` (``details.names`` maps the keys to the names). Each stage prints one line to stderr with
what it does and about how long it will take, with or without progress bars.

The probed backbone is an Atari-PB checkpoint, an AtariARI encoder file (an ST-DIM run's ``init.pt``,
``epochNNN.pt``, ``best.pt``, or an exported one; 84x84 4-stacks only), or any backbone ``--backbone`` accepts
(``compact``, an Atari-PB architecture name, ``atariari-stack84``, ``pkg.module:factory``). The twin of an
Atari-PB ResNet or an AtariARI encoder is built anew from the seed; of any other backbone it is a copy with
every layer's ``reset_parameters()`` called.

Supplementary, outside the verdict: the **paired difference** of (a) between the two backbones with a 95%
bootstrap interval over episodes (:func:`paired_difference_ci`; both backbones are scored on the same
frames), which says whether the episodes can tell them apart; and **short-range temporal coherence**
(:func:`local_temporal_coherence`), the same correlation over all pairs at most ``local_gap`` steps apart,
added after the first shipped backbone's run came out below its random twin on (a) while short-range pairs
were about equal (docs/pretraining.md gives both). Both are printed under the table and never decide
``beats_random_init``.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from torch import nn
from tqdm import tqdm

from prend.agent.perf import resolve_device
from prend.checkpoint import load_checkpoint
from prend.clihelp import default_hint
from prend.config import IntrinsicConfig
from prend.envs.games import atari_pb_game_id
from prend.errors import PrendError
from prend.intrinsic.pretrained import make_backbone
from prend.nets.atari_pb import ARCHS, ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone, read_atari_pb_checkpoint
from prend.nets.atariari import PREND_ARCHS as ATARIARI_ARCHS
from prend.nets.atariari import AtariARIEncoder, is_atariari_file, load_atariari_backbone
from prend.nets.weights import SHIPPED_BACKBONES, shipped_backbone_path
from prend.pretrain.atariari import STDIMSettings
from prend.pretrain.coherence import (  # noqa: F401 (re-exported: the probe's statistics)
    episode_coherences,
    episode_spearman,
    local_temporal_coherence,
    mean_and_count,
    paired_difference_ci,
    spearman,
    temporal_coherence,
)
from prend.pretrain.collect import has_ram, read_manifest, resolve_games
from prend.pretrain.dataset import FrameData, split_episodes  # noqa: F401 (re-exported)
from prend.pretrain.logistic import (  # noqa: F401 (re-exported: the classic probes' classifier)
    L2_GRID,
    balanced_accuracy,
    fit_logistic,
    linear_probe,
    predict_logistic,
)
from prend.pretrain.shipped import atariari_seed
from prend.pretrain.state_labels import ATARIARI_RAM
from prend.pretrain.state_probe import StateProbeSettings, encoder_features, state_probe
from prend.pretrain.state_report import format_state_probe


@dataclass
class ProbeConfig:
    """Probe a backbone checkpoint against its randomly initialised twin on held-out games."""

    checkpoint: tyro.conf.Positional[Path]
    """Atari-PB-format checkpoint (its 'backbone' entry is probed; arch and width are read from it), an AtariARI
    encoder file at 84x84 4-stacks (an ST-DIM run's init.pt/epochNNN.pt/best.pt, or an exported one), or a
    backbone as --backbone names one: a shipped one ('compact', ...), 'resnet18'/'resnet50' or
    'atariari-stack84' (random init), 'pkg.module:factory'."""
    data: Path = Path("data/probe_frames")
    """Held-out frame directory (collect it with: prend collect --out data/probe_frames --games boxing
    riverraid --frames-per-game 36000 --num-envs 16 --seed 1 --ram)."""
    state: bool = False
    """Also run the state probe (needs --data collected with --ram): a linear classifier per AtariARI RAM state
    variable over the whole feature map and over a 256-feature vector of it, beside the random twin and raw
    21x21 pixels; test weighted F1 averaged within AtariARI's categories and then across them (their
    averaging) and the plain mean, over 3 probe seeds. The classifiers are prend's (standardised features),
    which read random networks better than AtariARI's and have no published figure to check them; AtariARI's
    own: --state-settings.classifiers atariari (docs/pretraining.md, section 3)."""
    classic: bool = True
    """Run temporal coherence and the action/reward probes (--no-classic: only the state probe)."""
    state_settings: StateProbeSettings = field(default_factory=StateProbeSettings)
    """Classifiers (prend's or AtariARI's), split, optimiser, probe seeds and views (map, vector) of the state
    probe."""
    backbone_width: float = 1.0
    """Width multiplier when CHECKPOINT names an Atari-PB architecture (e.g. resnet18)."""
    games: Annotated[tuple[str, ...] | None, tyro.conf.arg(
        metavar="GAME [GAME ...]", help_behavior_hint=default_hint("all games in --data"))] = None
    """Games of --data to probe on."""
    max_frames_per_game: Annotated[int | None, tyro.conf.arg(
        metavar="INT", help_behavior_hint=default_hint("all frames of --data"))] = None
    """Frames per game used, whole streams first (the first N frames of a stream-ordered set)."""
    frames_per_episode: int = 200
    """Observations drawn per episode for the temporal-coherence pairs."""
    local_gap: int = 16
    """Largest time gap of the supplementary short-range temporal coherence (0 skips it)."""
    pool: int = 6
    """Grid the 6x6 feature map is average-pooled to for the linear probes (6: the full map; the moving
    sprites that reveal an action are small, and coarser pooling blurs where they are)."""
    test_fraction: float = 0.3
    """Share of each game's episodes held out for testing the linear probes."""
    init_seed: Annotated[int | None, tyro.conf.arg(
        metavar="INT",
        help_behavior_hint=default_hint("the pre-training seed recorded with the checkpoint, else 0 (an AtariARI "
                                        "encoder: 42, ST-DIM's default)"))] = None
    """Seed of the random-init twin."""
    seed: int = 0
    """Seed of the episode split and the frame draws."""
    batch_size: int = 256
    """Observations per backbone forward pass."""
    device: str = "auto"
    """'auto', 'cpu' or 'cuda[:i]'."""
    out: Annotated[Path | None, tyro.conf.arg(metavar="PATH", help_behavior_hint=default_hint("not written"))] = None
    """Also write the figures as JSON here."""
    progress: bool = True
    """Show progress bars (one line per stage, with an estimate of its time, is printed either way)."""


# ------------------------------------------------------------------------------------------------ probing
def say(line: str) -> None:
    """One status line of the probe on stderr (printed with or without progress bars)."""
    print(f"probe: {line}", file=sys.stderr, flush=True)


@torch.no_grad()
def extract_features(backbone: nn.Module, data: Any, rows: np.ndarray, batch_size: int = 256,
                     device: torch.device | str = "cpu", progress: bool = False, desc: str = "features",
                     log: Any = None) -> np.ndarray:
    """Float32 backbone features (len(rows), ...) of the stacks ending at frames ``rows``.

    ``log`` (a ``str -> None`` callable) gets one line after the first batch: the output shape and an
    estimate of the time for all rows.

    Raises:
        PrendError: If the backbone raises, or returns anything but finite float features of one shape, one
            row per stack.
    """
    backbone = backbone.to(device).eval()
    out, started = None, time.perf_counter()
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, disable=not progress, unit="batch"):
        idx = rows[start:start + batch_size]
        x = torch.from_numpy(data.stacks(idx)).to(device).float().div_(255)
        f = encoder_features(desc, lambda _, x=x: backbone(x), idx)   # one-line errors for a failing net
        if out is None:
            out = np.empty((len(rows), *f.shape[1:]), dtype=np.float32)
            if log is not None:
                per_batch = time.perf_counter() - started
                log(f"features of {desc}: {len(rows):,} frames -> {tuple(f.shape[1:])}, about "
                    f"{per_batch * len(rows) / len(idx):.0f} s ({per_batch:.2f} s for the first {len(idx)})")
        elif f.shape[1:] != out.shape[1:]:
            raise PrendError(f"the encoder '{desc}' returned features of shape {tuple(f.shape[1:])} for one batch "
                             f"and {tuple(out.shape[1:])} for another", "return one feature shape for every batch")
        out[start:start + len(idx)] = f
    assert out is not None
    return out


def probe_backbone(backbone: nn.Module, data: Any, cfg: ProbeConfig, device: torch.device | str = "cpu",
                   desc: str = "features", feats: np.ndarray | None = None) -> dict[str, Any]:
    """Temporal coherence and the two linear probes of one backbone on loaded frames (see module doc).

    ``feats`` are the backbone's features of every frame when already extracted (the state probe shares them).
    """
    if feats is None:
        feats = extract_features(backbone, data, np.arange(len(data)), cfg.batch_size, device, cfg.progress, desc)
    flat = feats.reshape(len(feats), -1)
    # A spatial map is pooled to cfg.pool x cfg.pool cells; any other output (a vector) is read as it is.
    pooled = (F.adaptive_avg_pool2d(torch.from_numpy(feats), cfg.pool).flatten(1).numpy() if feats.ndim == 4
              else flat)

    result: dict[str, Any] = {"per_game": {}}
    tc_all, local_all, act_all, rew_all = [], [], [], []
    for gid in np.unique(data.game_ids):
        in_game = data.game_ids == gid
        per_episode = episode_coherences(flat[in_game], data.episode[in_game], data.t[in_game],
                                         cfg.frames_per_episode, seed=cfg.seed)
        tc, n_eps = mean_and_count(per_episode)
        tc_local = float("nan")
        if cfg.local_gap > 0:
            tc_local, _ = local_temporal_coherence(flat[in_game], data.episode[in_game], data.t[in_game],
                                                   cfg.local_gap)
        # Transitions (t, t+1) inside one episode of this game.
        src = np.flatnonzero(in_game & (data.left >= 1))
        pair = np.concatenate([pooled[src], pooled[src + 1]], axis=1)
        actions = data.actions[src]
        reward_class = (np.sign(data.rewards[src]).astype(np.int64) + 1)     # -1, 0, +1 -> 0, 1, 2
        act = linear_probe(pair, actions, data.episode[src], int(actions.max()) + 1, cfg.test_fraction, cfg.seed)
        rew = linear_probe(pair, reward_class, data.episode[src], 3, cfg.test_fraction, cfg.seed)
        name = _game_name(data.games, int(gid))
        result["per_game"][name] = {"temporal_coherence": tc, "temporal_coherence_local": tc_local,
                                    "episodes": n_eps, "action_probe": act, "reward_probe": rew,
                                    "temporal_coherence_per_episode": per_episode}
        tc_all.append(tc)
        local_all.append(tc_local)
        act_all.append(act["balanced_accuracy"])
        rew_all.append(rew["balanced_accuracy"])
    result["temporal_coherence"] = float(np.nanmean(tc_all))
    result["temporal_coherence_local"] = float(np.mean(local_all))
    result["action_probe"] = float(np.mean(act_all))
    result["reward_probe"] = float(np.mean(rew_all))
    return result


def _game_name(games: Sequence[str], gid: int) -> str:
    """The name in ``games`` of Atari-PB game id ``gid`` (its id as text when none matches, e.g. test data)."""
    for game in games:
        try:
            if atari_pb_game_id(game) == gid:
                return game
        except PrendError:  # not an Atari ROM name (synthetic frames)
            continue
    return str(gid)


def random_twin(backbone: nn.Module, seed: int) -> nn.Module:
    """The same architecture randomly initialised from ``seed``.

    An Atari-PB ResNet or an AtariARI encoder is built anew (with the pre-training seed that is exactly a run's
    starting point: ``init.pt`` of an ST-DIM run); any other module is copied and every layer with
    ``reset_parameters()`` re-initialised.

    Raises:
        PrendError: If no layer of ``backbone`` can be re-initialised.
    """
    torch.manual_seed(seed)
    if isinstance(backbone, ResNetGN):
        return ResNetGN(backbone.arch, backbone.width, backbone.in_channels)
    if isinstance(backbone, AtariARIEncoder):  # as STDIMTrainer builds it, right after seeding torch
        return AtariARIEncoder(backbone.frame, backbone.feature_dim, backbone.size)
    twin = copy.deepcopy(backbone)
    layers = [m for m in twin.modules() if callable(getattr(m, "reset_parameters", None))]
    if not layers:
        raise PrendError(f"cannot make a random twin of {type(backbone).__name__}: no layer has reset_parameters()",
                         "probe a backbone built from torch layers (nn.Conv2d, nn.Linear, ...)")
    for layer in layers:
        layer.reset_parameters()
    return twin


def load_probed_backbone(cfg: ProbeConfig) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """The backbone ``cfg.checkpoint`` names, its random twin, and facts for the report (step, seed, arch).

    Raises:
        PrendError: If it is neither a readable Atari-PB checkpoint, nor an AtariARI encoder file at 84x84
            4-stacks, nor a backbone name.
    """
    spec = str(cfg.checkpoint)
    path = shipped_backbone_path(name=spec) if spec in SHIPPED_BACKBONES else Path(spec)
    if path.is_file() and is_atariari_file(path):
        backbone = load_atariari_backbone(path)
        state = load_checkpoint(path)
        saved_seed = atariari_seed(path, state)
        # Unrecorded: ST-DIM's default seed, with which the twin is the run's init.pt.
        init_seed = cfg.init_seed if cfg.init_seed is not None else (
            STDIMSettings().seed if saved_seed is None else saved_seed)
        epoch = state.get("epoch")
        facts = {"checkpoint": str(path), "arch": backbone.arch, "width": None, "step": None,
                 "epoch": epoch if isinstance(epoch, int) else None}
    elif path.is_file():
        ckpt = read_atari_pb_checkpoint(path)
        backbone = load_atari_pb_backbone(path, arch=None, width=None)
        saved_seed = ckpt.get("extra", {}).get("prend", {}).get("config", {}).get("seed", 0)
        init_seed = int(saved_seed) if cfg.init_seed is None else cfg.init_seed
        facts = {"checkpoint": str(path), "arch": backbone.arch, "width": backbone.width,
                 "step": int(ckpt.get("step", 0))}
    elif ":" in spec or spec in (*ARCHS, "atari-pb-resnet50", *ATARIARI_ARCHS):
        backbone = make_backbone(IntrinsicConfig(method="prend", backbone=spec, backbone_width=cfg.backbone_width))
        init_seed = 0 if cfg.init_seed is None else cfg.init_seed
        facts = {"checkpoint": spec, "arch": getattr(backbone, "arch", type(backbone).__name__),
                 "width": getattr(backbone, "width", None), "step": 0}
    else:
        raise PrendError(f"'{spec}' is neither a checkpoint file nor a backbone name",
                         "pass an Atari-PB checkpoint, an AtariARI encoder file, 'compact', an architecture such "
                         "as resnet18 or atariari-stack84, or pkg.mod:factory")
    return backbone, random_twin(backbone, init_seed), {**facts, "init_seed": init_seed}


def probe(cfg: ProbeConfig) -> dict[str, Any]:
    """Probe ``cfg.checkpoint``'s backbone and its random-init twin; print and return the figures.

    Returns:
        With ``cfg.classic``: ``{"temporal_coherence": {"pretrained": ..., "random_init": ...},
        "action_probe": {...}, "reward_probe": {...}, "beats_random_init": bool, ...}``; with ``cfg.state``
        also ``"state_probe"`` (:func:`prend.pretrain.state_probe.state_probe`'s figures); and ``"details"``.

    Raises:
        PrendError: If the checkpoint or the frames cannot be read, or the frames lack what ``--state`` needs.
    """
    if not (cfg.classic or cfg.state):
        raise PrendError("--no-classic without --state leaves nothing to probe", "add --state")
    device = resolve_device(cfg.device)
    backbone, twin, facts = load_probed_backbone(cfg)
    if cfg.state:
        check_state_frames(cfg)
    names = {"pretrained": str(cfg.checkpoint), "random_init": "random init", "pixels": "pixels 21x21"}
    say(f"loading frames from {cfg.data}")
    data = FrameData.load(cfg.data, cfg.games, cfg.max_frames_per_game, progress=cfg.progress)
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {**facts, "data": str(cfg.data), "games": list(data.games), "frames": len(data),
                               "names": names}
    rows = np.arange(len(data))
    # Each net's features are extracted once and serve every measure.
    feats = {key: extract_features(net, data, rows, cfg.batch_size, device, cfg.progress, names[key], log=say)
             for key, net in (("pretrained", backbone), ("random_init", twin))}
    if cfg.classic:
        tick = time.perf_counter()
        say(f"temporal coherence and the action/reward probes of both nets on {len(data.games)} game(s) "
            f"(L-BFGS over {len(L2_GRID)} L2 strengths per probe; minutes on 2 cores for 10k+ frames)")
        figures.update(_classic_figures(feats, data, cfg))
        details.update(figures.pop("details"))
        say(f"temporal coherence and action/reward probes done in {time.perf_counter() - tick:.0f} s")
    if cfg.state:
        st = cfg.state_settings
        say(f"state probe ({st.classifiers} classifiers): {1 + (st.vector != 'off') if st.map else 1} view(s) x 3 "
            f"encoders x {st.repeats} probe seeds, up to {st.max_epochs} epochs per fit; the time left is printed "
            "after each fit")
        figures["state_probe"] = state_probe(feats, data, cfg.state_settings, progress=cfg.progress, log=say,
                                             names=names)
    figures["details"] = details
    print(format_figures(figures))
    if cfg.out is not None:
        try:
            Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
            Path(cfg.out).write_text(json.dumps(figures, indent=1))
        except OSError as err:
            raise PrendError(f"cannot write {cfg.out}: {err.strerror or err}", "pass a writable --out path") from None
    return figures


def check_state_frames(cfg: ProbeConfig) -> None:
    """Refuse ``--state`` on frames without RAM labels or without an annotated game, before loading them.

    Raises:
        PrendError: If the frames of the probed games lack RAM, or none of those games has AtariARI labels.
    """
    manifest = read_manifest(cfg.data)
    games = resolve_games(cfg.games) if cfg.games else list(manifest["games"])
    annotated = [g for g in games if g in ATARIARI_RAM]
    if not annotated:
        raise PrendError(f"no AtariARI state annotation for {', '.join(games)} (--state)",
                         f"probe frames of an annotated game: {', '.join(sorted(ATARIARI_RAM))}")
    if not has_ram({"games": {g: manifest["games"][g] for g in games if g in manifest["games"]}}):
        raise PrendError(f"{cfg.data} has no RAM labels for --state",
                         f"collect the probe frames with them: prend collect --out {cfg.data} --games "
                         f"{' '.join(games)} --frames-per-game 36000 --num-envs 16 --seed 1 --ram")


def _classic_figures(feats: dict[str, np.ndarray], data: FrameData, cfg: ProbeConfig) -> dict[str, Any]:
    """Temporal coherence and the action/reward probes of both nets, with the verdict and the supplements."""
    pre = probe_backbone(nn.Identity(), data, cfg, feats=feats["pretrained"])
    rnd = probe_backbone(nn.Identity(), data, cfg, feats=feats["random_init"])
    figures: dict[str, Any] = {}
    for key in ("temporal_coherence", "action_probe", "reward_probe"):
        figures[key] = {"pretrained": pre[key], "random_init": rnd[key]}
    figures["beats_random_init"] = all(figures[k]["pretrained"] > figures[k]["random_init"]
                                       for k in ("temporal_coherence", "action_probe", "reward_probe"))
    # Supplementary: reported beside the main figures, not part of the verdict above.
    differences = []
    for game, theirs in rnd["per_game"].items():
        ours = pre["per_game"][game]["temporal_coherence_per_episode"]
        other = theirs["temporal_coherence_per_episode"]
        shared = sorted(set(ours) & set(other))
        differences.append(np.array([ours[e] - other[e] for e in shared]))
    mean, low, high = paired_difference_ci(differences, seed=cfg.seed)
    figures["temporal_coherence_difference"] = {"mean": mean, "ci95": [low, high],
                                                "episodes": int(sum(len(d) for d in differences))}
    figures["temporal_coherence_local"] = {"pretrained": pre["temporal_coherence_local"],
                                           "random_init": rnd["temporal_coherence_local"],
                                           "max_gap": cfg.local_gap}
    figures["details"] = {
        "pool": cfg.pool, "frames_per_episode": cfg.frames_per_episode, "test_fraction": cfg.test_fraction,
        "metric": "temporal coherence: mean within-episode Spearman(feature distance, time distance); "
                  "probes: test balanced accuracy of logistic regression on [f(s_t), f(s_t+1)]",
        "per_game": {"pretrained": _without_episodes(pre["per_game"]),
                     "random_init": _without_episodes(rnd["per_game"])},
    }
    return figures


def _without_episodes(per_game: dict[str, Any]) -> dict[str, Any]:
    return {game: {k: v for k, v in figures.items() if k != "temporal_coherence_per_episode"}
            for game, figures in per_game.items()}


def format_figures(figures: dict[str, Any]) -> str:
    """The probe's table: one line per measure, the probed backbone (by its given name) beside its twin."""
    d = figures.get("details", {})
    names = d.get("names", {"pretrained": str(d.get("checkpoint", "probed"))})
    lines = [f"probe of {d.get('checkpoint', '?')} ({d.get('arch', '?')}, width {d.get('width', '?')}) on "
             f"{', '.join(d.get('games', []))}: {d.get('frames', '?')} frames"]
    if "temporal_coherence" in figures:
        lines += _format_classic(figures, names["pretrained"])
    if "state_probe" in figures:
        lines += format_state_probe(figures["state_probe"], ("pretrained", "random_init", "pixels"), names)
    return "\n".join(lines)


def _format_classic(figures: dict[str, Any], name: str) -> list[str]:
    width = max(14, len(name) + 2)
    lines = [f"{'measure':<34}{name:>{width}}{'random init':>13}"]
    measures = {"temporal_coherence": "temporal coherence (Spearman)", "action_probe": "action probe (bal. acc.)",
                "reward_probe": "reward-sign probe (bal. acc.)"}
    for key, label in measures.items():
        pair = figures[key]
        lines.append(f"{label:<34}{pair['pretrained']:>{width}.4f}{pair['random_init']:>13.4f}")
    lines.append(f"{name} beats random init on every measure: " + ("yes" if figures.get("beats_random_init") else "NO"))
    diff = figures.get("temporal_coherence_difference")
    if diff and np.isfinite(diff["mean"]):
        lines.append(f"temporal coherence, {name} - random init: {diff['mean']:+.4f} "
                     f"(95% CI {diff['ci95'][0]:+.4f} to {diff['ci95'][1]:+.4f}, paired bootstrap over "
                     f"{diff['episodes']} episodes)")
    local = figures.get("temporal_coherence_local")
    if local and np.isfinite(local["pretrained"]):
        label = f"supplementary: coherence, gap<={local['max_gap']}"
        lines.append(f"{label:<34}{local['pretrained']:>{width}.4f}{local['random_init']:>13.4f}")
    return lines
