"""The table ``prend probe --state`` prints from :func:`prend.pretrain.state_probe.state_probe`'s figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prend.pretrain.state_probe import PIXEL_GRID, spread

CLASSIFIERS = {"prend": "prend's linear classifiers (standardised features, best epoch)",
               "atariari": "AtariARI's linear classifiers (raw features, 256 outputs, last epoch)"}
"""How the table names each ``--state-settings.classifiers``; figures without the setting are prend's."""

CATEGORY_SHORT = {"agent_localization": "agent loc", "small_object_localization": "small obj loc",
                  "other_localization": "other loc", "score_clock_lives_display": "score/clock/lives",
                  "misc": "misc"}


def format_state_probe(result: Mapping[str, Any], encoders: Sequence[str],
                       names: Mapping[str, str] | None = None) -> list[str]:
    """The state probe's table: per game and view, each variable's F1 per encoder, then the means.

    Each variable is shown with its AtariARI categories; the plain and category means with the range of the
    probe seeds' figures; then the means over games and how the vector probe reduced each encoder. The first
    line names whose classifiers were fitted; the category mean is called "AtariARI's figure" only when they
    were AtariARI's (with prend's it is AtariARI's averaging over other classifiers).

    Args:
        result: :func:`state_probe`'s figures.
        encoders: Which encoders to show, in order (keys of the figures).
        names: Column label of each encoder (default: its key; ``"pixels"`` as "pixels 21x21").
    """
    names = {"random_init": "random init", "pixels": f"pixels {PIXEL_GRID}x{PIXEL_GRID}", **(names or {})}
    label = {e: names.get(e, e) for e in encoders}
    width = {e: max(16, len(label[e]) + 2) for e in encoders}
    settings = result.get("settings", {})
    views = settings.get("views", ["map"])
    seeds = settings.get("seeds", [settings.get("seed", 0)])
    classifiers = settings.get("classifiers", "prend")  # older figures were all prend's
    category = "AtariARI's figure" if classifiers == "atariari" else "AtariARI's averaging"

    def figures(values: Mapping[str, float], per_seed: Mapping[str, Sequence[float]] | None = None) -> str:
        cells = []
        for e in encoders:
            cell = f"{values[e]:.3f}"
            if per_seed is not None and len(per_seed[e]) > 1:
                cell += f" [{spread(per_seed[e]):.3f}]"
            cells.append(f"{cell:>{width[e]}}")
        return "".join(cells)

    lines = [f"state probe: test weighted F1 of {CLASSIFIERS[classifiers]}, mean over probe seeds "
             f"{', '.join(map(str, seeds))}"
             + (" [in brackets: max - min over them]" if len(seeds) > 1 else ""),
             f"{'':<52}" + "".join(f"{label[e]:>{width[e]}}" for e in encoders)]
    view_title = {"map": "map probe (the whole output, flattened)",
                  "vector": f"vector probe (at most {settings.get('vector_dim', 256)} features: "
                            f"{settings.get('vector', 'project')})"}
    for game, g in result["per_game"].items():
        kept = len(g["categories"])
        fr = g["frames"]
        lines.append(f"{game}: {kept} of {kept + len(g['dropped'])} variables, {fr['episodes']} episodes, "
                     f"test frames {min(fr['test']):,}-{max(fr['test']):,} "
                     f"({max(fr['test_duplicates_removed']):,} duplicates removed at most)")
        for view in views:
            v = g[view]
            lines.append(f"  {view_title[view]}")
            for var, values in v["variables"].items():
                cats = ", ".join(CATEGORY_SHORT[c] for c in g["categories"][var]) or "(none)"
                lines.append(f"    {var:<28}{cats:<20}" + figures(values))
            for key, title in (("mean", "plain mean"), ("category_mean", f"category mean ({category})")):
                lines.append(f"    {title:<48}" + figures(v[key], {e: v["seeds"][e][key] for e in encoders}))
        if g["dropped"]:
            lines.append("  dropped (label entropy < 0.6 nats): " + ", ".join(
                f"{n} ({e:.2f})" for n, e in g["dropped"].items()))
    if len(result["per_game"]) > 1:
        for view in views:
            for key, title in (("mean", "plain mean"), ("category_mean", "category mean")):
                lines.append(f"{f'mean over games, {view} probe, {title}':<52}"
                             + figures(result[view][key], {e: result[view]["seeds"][e][key] for e in encoders}))
    if "vector" in views:
        lines += [f"vector probe of {label[e]}: {result['vector_reduction'][e]}" for e in encoders
                  if e in result.get("vector_reduction", {})]
    if result.get("games_without_annotation"):
        lines.append("no AtariARI annotation (not state-probed): " + ", ".join(result["games_without_annotation"]))
    return lines
