import json
import math
import re

import numpy as np
import pytest

from prend.cli import main
from prend.config import config_to_dict
from prend.errors import PrendError
from prend.experiments.cells import fmt, separation_p
from prend.experiments.diagnose import diagnose
from prend.experiments.figures import plot_fig1, plot_fig1_summary
from prend.experiments.published import published_curves
from prend.experiments.report import aggregates, group_scores, write_report
from prend.experiments.report_figures import plot_aggregates, plot_final_scores, plot_scores
from prend.experiments.runs import find_runs, load_run
from prend.train import parse_train_args

RANDOM_HUMAN = {"Boxing": (0.1, 12.1), "Riverraid": (1338.5, 17118.0)}


def make_run(root, game, method, seed, scores, raw=None, lr_scale=0.01, diagnostics=None, extra=(), series=None):
    """A synthetic run directory: config.json from real flags, one metrics record per score (plus ``series``)."""
    n = len(scores)
    cfg, _ = parse_train_args(["--game", game, "--method", method, "--seed", str(seed), "--num-envs", "2",
                               "--num-steps", "16", "--total-steps", str(32 * n),
                               "--predictor-lr-scale", str(lr_scale), *extra])
    run_dir = root / f"{game}-{method}-{lr_scale}-{'-'.join(extra)}-s{seed}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(cfg)))
    raw = np.linspace(2.0, 1.0, n) if raw is None else raw
    with (run_dir / "metrics.jsonl").open("w") as f:
        for i, (score, r) in enumerate(zip(scores, raw, strict=True)):
            f.write(json.dumps({"iteration": i + 1, "charts/global_step": 32 * (i + 1), "charts/frames": 128 * (i + 1),
                                "charts/score_mean_100": None if math.isnan(score) else score,
                                "intrinsic/raw_mean": r, "intrinsic/raw_std": 0.5 * r,
                                **{k: v[i] for k, v in (series or {}).items()}}) + "\n")
    if diagnostics is not None:
        np.savez(run_dir / "diagnostics.npz", **diagnostics)
    return run_dir


def score_for(game, hns):
    random, human = RANDOM_HUMAN[game]
    return random + hns * (human - random)


def test_report_numbers_on_synthetic_runs(tmp_path):
    # rnd: HNS Boxing 0 and 1, Riverraid 0.5 and 2 -> pooled 0, 0.5, 1, 2: IQM (0.5 + 1) / 2 = 0.75, mean 0.875.
    for game, finals in {"Boxing": (0.0, 1.0), "Riverraid": (0.5, 2.0)}.items():
        for seed, hns in enumerate(finals, start=1):
            make_run(tmp_path, game, "rnd", seed, [math.nan, score_for(game, 0.0), score_for(game, hns)])
            make_run(tmp_path, game, "prend", seed, [math.nan, 1.0, 3.0])
    path = write_report(tmp_path, reps=2000)
    data = json.loads((tmp_path / "report.json").read_text())
    agg = {row["label"]: row for row in data["aggregates"]}
    assert agg["rnd"]["IQM"]["value"] == pytest.approx(0.75)
    assert agg["rnd"]["mean"]["value"] == pytest.approx(0.875)
    assert agg["rnd"]["IQM"]["low"] <= 0.75 <= agg["rnd"]["IQM"]["high"]
    assert agg["rnd"]["games"] == ["Boxing", "Riverraid"] and agg["rnd"]["runs"] == 4
    groups = {(g["game"], g["label"]): g for g in data["groups"]}
    prend_boxing = groups[("Boxing", "prend")]
    assert prend_boxing["final"] == [3.0, 3.0] and prend_boxing["seeds"] == [1, 2]
    assert prend_boxing["auc"] == [pytest.approx(2.0), pytest.approx(2.0)]  # mean of 1 and 3 over the scored span
    assert prend_boxing["hns"][0] == pytest.approx((3.0 - 0.1) / 12.0)
    text = path.read_text()
    for needle in ("## Final score", "## Human-normalised final score", "## Aggregates across games", "IQM",
                   "DQN Zoo", "| Boxing | rnd | 2 |", "fig2_scores.png", "final_scores.png", "hns_aggregates.png",
                   "intrinsic_reward.png"):
        assert needle in text, needle
    for png in ("fig2_scores.png", "final_scores.png", "hns_aggregates.png", "intrinsic_reward.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_score_at_fixed_frame_budgets(tmp_path, capsys):
    # Records every 128 frames (128 ... 1280). Seed 1 scores NaN, 1, 2, ..., 9; seed 2 twice that.
    # Default budgets: 10/25/50/100% of 1280 = 128, 320, 640, 1280 frames; the first record at or past each is
    # iteration 1 (no game yet), 3 (384 frames), 5 (640) and 10 -> seed 1: NaN, 2, 4, 9; seed 2: NaN, 4, 8, 18.
    ones = [math.nan, *range(1, 10)]
    make_run(tmp_path, "Boxing", "rnd", 1, [float(v) for v in ones])
    make_run(tmp_path, "Boxing", "rnd", 2, [2.0 * v for v in ones])
    write_report(tmp_path, reps=200)
    table = json.loads((tmp_path / "report.json").read_text())["at_frames"]
    assert [t["game"] for t in table] == ["Boxing"] and table[0]["frames"] == [128, 320, 640, 1280]
    (group,) = table[0]["groups"]
    assert group["seeds"] == [1, 2]
    assert group["scores"] == [[None, None], [2.0, 4.0], [4.0, 8.0], [9.0, 18.0]]
    text = (tmp_path / "report.md").read_text()
    # Two seeds: each seed's value in seed order and their mean, no sd or interval.
    assert "| Boxing | seeds | 128 frames | 320 frames | 640 frames | 1,280 frames |" in text
    assert "| rnd | 2 | – | 2 / 4 (mean 3) | 4 / 8 (mean 6) | 9 / 18 (mean 13.5) |" in text
    # Budgets given: one past the runs' end has no score; a bad one is a one-line error, exit 2.
    assert main(["report", str(tmp_path), "--reps", "200", "--at-frames", "256", "2000"]) == 0
    table = json.loads((tmp_path / "report.json").read_text())["at_frames"][0]
    assert table["frames"] == [256, 2000] and table["groups"][0]["scores"] == [[1.0, 2.0], [None, None]]
    capsys.readouterr()
    assert main(["report", str(tmp_path), "--at-frames", "0"]) == 2
    err = capsys.readouterr().err
    assert "--at-frames must be positive" in err and len(err.strip().splitlines()) == 1


def test_groups_are_labelled_by_the_fields_that_vary(tmp_path):
    for scale in (0.01, 0.1):
        make_run(tmp_path, "Boxing", "rnd-lr", 1, [1.0, 2.0], lr_scale=scale)
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0])
    labels = sorted({r.label for r in find_runs([tmp_path])})
    # RND's predictor shares PPO's optimizer, so the scale does not apply to it and its label leaves it out.
    assert labels == ["rnd", "rnd-lr predictor_lr_scale=0.01", "rnd-lr predictor_lr_scale=0.1"]


def test_labels_leave_out_fields_a_runs_backbone_ignores(tmp_path):
    make_run(tmp_path, "Boxing", "prend", 1, [1.0, 2.0])  # the shipped backbone: its width is its file's
    make_run(tmp_path, "Boxing", "prend", 1, [1.0, 2.0], extra=("--backbone", "resnet18", "--backbone-width", "0.125"))
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0])
    labels = sorted({r.label for r in find_runs([tmp_path])})
    assert labels == ["prend backbone=compact", "prend backbone=resnet18 backbone_width=0.125", "rnd"]


def test_runs_of_two_presets_are_labelled_by_the_preset_not_the_fields_it_sets(tmp_path):
    # ppo-atari and rnd-original differ in a dozen fields (docs/hyperparameters.md); the preset names them all.
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0])
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0], extra=("--preset", "ppo-atari"))
    make_run(tmp_path, "Boxing", "none", 1, [1.0, 2.0], extra=("--preset", "ppo-atari"))
    # A flag on top of one preset still varies within that preset's runs, so it stays in the label.
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0], extra=("--preset", "ppo-atari", "--ent-coef", "0.02"))
    labels = sorted({r.label for r in find_runs([tmp_path])})
    assert labels == ["none ent_coef=0.01 preset=ppo-atari", "rnd ent_coef=0.001 preset=rnd-original",
                      "rnd ent_coef=0.01 preset=ppo-atari", "rnd ent_coef=0.02 preset=ppo-atari"]


def test_one_factor_at_a_time_sweeps_label_runs_by_the_field_they_change(tmp_path):
    # What `prend sweep --grid-mode each` writes: the base PreND, and variants that each change one field.
    variants = [(), ("--feature-norm",), ("--target-norm", "center"), ("--target-norm", "whiten"),
                ("--predictor-layers", "1")]
    for seed in (1, 2):
        for extra in variants:
            make_run(tmp_path, "Boxing", "prend", seed, [1.0, 2.0], extra=extra)
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0])
    labels = sorted({r.label for r in find_runs([tmp_path])})
    assert labels == ["prend", "prend feature_norm=True", "prend predictor_layers=1", "prend target_norm=center",
                      "prend target_norm=whiten", "rnd"]
    # A run that changes two fields at once is no longer a one-at-a-time design: every varying field is named.
    make_run(tmp_path, "Boxing", "prend", 1, [1.0, 2.0], extra=("--feature-norm", "--predictor-layers", "1"))
    labels = {r.label for r in find_runs([tmp_path])}
    assert "prend feature_norm=True predictor_layers=1 target_norm=none" in labels
    assert "prend feature_norm=False predictor_layers=2 target_norm=none" in labels


def test_a_run_from_before_a_field_existed_groups_with_its_default(tmp_path):
    make_run(tmp_path, "Boxing", "prend", 1, [1.0, 2.0])
    old = make_run(tmp_path, "Boxing", "prend", 2, [1.0, 2.0])
    config = json.loads((old / "config.json").read_text())
    del config["intrinsic"]["feature_norm"], config["ppo"]["anneal_lr"]  # fields later versions added
    (old / "config.json").write_text(json.dumps(config))
    runs = find_runs([tmp_path])
    assert {r.label for r in runs} == {"prend"} and runs[1].config["intrinsic"]["feature_norm"] is False


T_975 = {1: 12.706204736, 5: 2.570581836}
"""Student-t 97.5% quantiles by degrees of freedom (printed tables), independent of scipy."""


def _spread_artists(ax):
    """The panel's unlabelled thin seed lines, its labelled lines by label, and the vertices of non-empty bands."""
    thin = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    labelled = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    bands = [c.get_paths()[0].vertices for c in ax.collections if c.get_paths() and len(c.get_paths()[0].vertices)]
    return thin, labelled, bands


def test_two_seeds_are_drawn_one_by_one_with_their_mean_and_no_t_band(tmp_path):
    # Frames 128, 256, 384; seed 1 scores (no game yet), 1, 3; seed 2: (none), 3, 7 -> mean 2, 5.
    curves = {1: [math.nan, 1.0, 3.0], 2: [math.nan, 3.0, 7.0]}
    for seed, scores in curves.items():
        make_run(tmp_path, "Boxing", "rnd", seed, scores, raw=[4.0, 2.0, 1.0] if seed == 1 else [8.0, 4.0, 3.0])
    runs = find_runs([tmp_path])
    fig = plot_scores(runs, tmp_path / "fig2.png")
    thin, labelled, bands = _spread_artists(fig.axes[0])
    assert not bands  # a t-interval of 2 seeds (+-12.7 standard errors) would hide the curves
    assert len(thin) == 2
    for line, seed in zip(thin, (1, 2), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), [128, 256, 384])
        np.testing.assert_array_equal(line.get_ydata(), curves[seed])
    mean = labelled["rnd: mean of 2 seeds"]
    np.testing.assert_allclose(mean.get_ydata(), [np.nan, 2.0, 5.0])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "thin: each seed" in legend and "shaded: 95% t-interval of the mean" not in legend
    caption = " ".join(fig._suptitle.get_text().split())  # as wrapped to the figure's width
    assert "thin lines = each seed" in caption and "shaded" not in caption
    # The intrinsic-reward figure follows the same rule: raw rewards 4, 2, 1 and 8, 4, 3 -> mean 6, 3, 2.
    fig = plot_fig1(runs, tmp_path / "fig1.png")
    thin, labelled, bands = _spread_artists(fig.axes[0])
    assert len(thin) == 2 and not bands
    np.testing.assert_allclose(labelled["rnd: mean of 2 seeds"].get_ydata(), [6.0, 3.0, 2.0])
    assert "thin lines = each seed" in " ".join(fig._suptitle.get_text().split())
    # The tables list the seeds and give no interval.
    text = write_report(tmp_path, reps=200).read_text()
    assert "| Boxing | rnd | 2 | 384 | 5 | – (n < 5) | s1: 3, s2: 7 |" in text
    # The intrinsic-reward table too: decay = last iteration's raw reward over the first's, 1 / 4 and 3 / 8
    assert "| Boxing | rnd | 0.25 / 0.375 (mean 0.312) |" in text
    # So do the aggregates: HNS (3 - 0.1) / 12 = 0.2417 and (7 - 0.1) / 12 = 0.575; IQM, mean and median of two
    # runs are their mean 0.408. No interval in the table, and the figure draws both runs as points, no bar.
    assert ("| rnd | Boxing | 2 | 0.408 (n < 5: no CI) | 0.408 (n < 5: no CI) | 0.408 (n < 5: no CI) "
            "| Boxing s1: 0.242, Boxing s2: 0.575 |") in text
    agg = aggregates(group_scores(runs), reps=200)
    fig = plot_aggregates(agg, tmp_path / "agg.png")
    for ax in fig.axes[:3]:
        assert not ax.patches  # no bootstrap bar
        xs = sorted(float(x) for c in ax.collections for x, _ in c.get_offsets())
        np.testing.assert_allclose(xs, [2.9 / 12, 6.9 / 12])
    assert "points: every run" in fig._suptitle.get_text() and "bar:" not in fig._suptitle.get_text()


def test_the_smallest_p_value_few_seeds_can_give():
    # all 2 splits of 1 + 1 runs are "separated"; C(8, 4) = 70 splits of 4 + 4, two of them extreme
    assert separation_p(1, 1) == 1.0 and separation_p(4, 4) == pytest.approx(2 / 70)
    assert separation_p(2, 3) == pytest.approx(2 / 10) and separation_p(3, 2) == separation_p(2, 3)


def test_six_seeds_get_the_student_t_band_of_their_mean(tmp_path):
    # Seed k scores k, 2k, k + 10 at frames 128, 256, 384: per column the mean and t(0.975, 5) sd / sqrt(6).
    seeds = np.arange(1, 7, dtype=np.float64)
    columns = [seeds, 2 * seeds, seeds + 10]
    for k in seeds:
        make_run(tmp_path, "Boxing", "rnd", int(k), [k, 2 * k, k + 10], raw=[k, 2 * k, k + 10])
    runs = find_runs([tmp_path])
    # The score figure and the intrinsic-reward figure (same values as raw rewards) draw the same band
    for fig in (plot_scores(runs, tmp_path / "fig2.png"), plot_fig1(runs, tmp_path / "fig1.png")):
        thin, labelled, bands = _spread_artists(fig.axes[0])
        assert not thin and len(bands) == 1
        vertices = bands[0]
        for x, column in zip((128, 256, 384), columns, strict=True):
            mean = column.sum() / 6
            half = T_975[5] * math.sqrt(((column - mean) ** 2).sum() / 5) / math.sqrt(6)
            at_x = vertices[np.isclose(vertices[:, 0], x), 1]
            assert at_x.min() == pytest.approx(mean - half, rel=1e-6)
            assert at_x.max() == pytest.approx(mean + half, rel=1e-6)
    fig = plot_scores(runs, tmp_path / "fig2.png")
    np.testing.assert_allclose(labelled["rnd: mean of 6 seeds"].get_ydata(), [3.5, 7.0, 13.5])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "shaded: 95% t-interval of the mean" in legend and "thin: each seed" not in legend
    assert "Student-t 95% CI" in " ".join(fig._suptitle.get_text().split())
    # The final-score table: mean ± sd and the same interval at the last iteration (13.5 ± 1.9, 11.54-15.46).
    text = write_report(tmp_path, reps=200).read_text()
    assert "| Boxing | rnd | 6 | 384 | 13.5 ± 1.9 | [11.5, 15.5] |" in text
    # Six seeds of one game: the aggregates get their bootstrap interval, in the table and as the figure's bar
    agg = aggregates(group_scores(runs), reps=200)
    iqm = agg[0]["IQM"]
    assert iqm["low"] < iqm["value"] < iqm["high"] and "(HNS table above)" in text
    assert f"| rnd | Boxing | 6 | {fmt(iqm['value'])} [{fmt(iqm['low'])}, {fmt(iqm['high'])}] |" in text
    bar = plot_aggregates(agg, tmp_path / "agg.png").axes[0].patches[0]
    assert bar.get_x() == pytest.approx(iqm["low"]) and bar.get_width() == pytest.approx(iqm["high"] - iqm["low"])


def test_fig2_caption_fits_a_one_game_figure(tmp_path):
    make_run(tmp_path, "Breakout", "none", 1, [1.0, 2.0, 3.0])  # a short run: the caption's longest form
    fig = plot_scores(find_runs([tmp_path]), tmp_path / "fig2.png")
    title = fig._suptitle.get_window_extent()  # as laid out by the savefig above
    assert "Short CPU-scale runs" in fig._suptitle.get_text()
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1, (title, fig.bbox)


def test_fig2_with_many_groups_puts_one_legend_below_the_panels_and_with_few_one_inside(tmp_path):
    # Five groups on each of two games (the paper-answer comparison): inside a panel their entries covered curves.
    for game in ("Boxing", "Riverraid"):
        for k in range(5):
            make_run(tmp_path / "many", game, "rnd-lr", 1, [1.0, 2.0], lr_scale=0.01 * (k + 1))
    fig = plot_scores(find_runs([tmp_path / "many"]), tmp_path / "many.png")
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert sum("rnd-lr" in label for label in labels) == 5  # each group once, not once per game
    box = legend.get_window_extent()
    assert all(box.y1 <= ax.get_window_extent().y0 for ax in fig.axes)
    for k in range(2):
        make_run(tmp_path / "few", "Boxing", "rnd-lr", 1, [1.0, 2.0], lr_scale=0.01 * (k + 1))
    fig = plot_scores(find_runs([tmp_path / "few"]), tmp_path / "few.png")
    assert fig.legends == [] and fig.axes[0].get_legend() is not None


def test_final_scores_figure_draws_every_seed_its_mean_and_its_evaluation(tmp_path):
    make_run(tmp_path, "Boxing", "rnd", 1, [0.0, 1.0])
    make_run(tmp_path, "Boxing", "rnd", 2, [0.0, 3.0])
    make_run(tmp_path, "Boxing", "none", 1, [0.0, -2.0])
    evaluation = [{"setting": "eval.json", "game": "Boxing", "label": "rnd", "seeds": [2], "scores": [5.5]}]
    fig = plot_final_scores(find_runs([tmp_path]), evaluation, tmp_path / "final.png")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["rnd", "none"]
    points = {tuple(np.round(p, 2)) for c in ax.collections for p in c.get_offsets()}
    assert {(-0.12, 1.0), (0.12, 3.0), (1.0, -2.0), (0.12, 5.5)} == points  # seeds, and seed 2's evaluation
    bars = [line.get_ydata()[0] for line in ax.get_lines() if len(line.get_xdata()) == 2 and line.get_linewidth() == 2]
    assert bars == [pytest.approx(2.0), pytest.approx(-2.0)]
    assert [t.get_text() for t in ax.texts] == ["s1", "s2", "s1"]
    (legend,) = fig.legends
    assert any("evaluation mean" in t.get_text() for t in legend.get_texts())


def test_fig1_with_twelve_groups_gives_each_its_own_colour_and_one_legend_below_the_panels(tmp_path):
    # Twelve predictor learning-rate scales of RND+LR: twelve groups, more than tab10's ten colours.
    for k in range(12):
        make_run(tmp_path, "Boxing", "rnd-lr", 1, [1.0, 2.0], raw=[1.0 + k, 0.5 + k], lr_scale=0.01 * (k + 1))
    fig = plot_fig1(find_runs([tmp_path]), tmp_path / "fig1.png")
    means = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert len(means) == 12 and len({line.get_color() for line in means}) == 12
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    assert len(legend.get_texts()) == 12
    box = legend.get_window_extent()  # as laid out by the savefig above
    for ax in fig.axes:
        panel = ax.get_window_extent()
        assert box.y1 <= panel.y0, (box, panel)
        assert panel.height > 100  # the figure grew by the legend's height rather than squeezing the panels
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1


def test_fig1_summary_legend_covers_no_panel_with_ten_groups(tmp_path):
    rows = [{"game": game, "label": f"prend variant {j}", "decay": 0.5 + j / 10, "oscillation": 0.1 * j,
             "spread": 0.2} for game in ("Boxing", "Riverraid") for j in range(10)]
    fig = plot_fig1_summary(rows, tmp_path / "fig1.png")
    (legend,) = fig.legends
    assert len(legend.get_texts()) == 10
    box = legend.get_window_extent()  # as laid out by the savefig above
    for ax in fig.axes:
        panel = ax.get_window_extent()
        assert box.y1 <= panel.y0 or box.x1 <= panel.x0 or panel.x1 <= box.x0, (box, panel)


def _diagnostics(levels, rewards, probe_levels, probe_rewards):
    """Frames of constant grey levels, so pixel distances are |level_i - level_j| * 84 / 255."""
    frames = np.repeat(np.asarray(levels, dtype=np.uint8)[:, None, None], 84, 1).repeat(84, 2)
    probe = np.repeat(np.asarray(probe_levels, dtype=np.uint8)[:, None, None, None], 4, 1).repeat(84, 2).repeat(84, 3)
    return {"iteration": np.arange(1, len(levels) + 1), "frame": frames, "frame_reward": np.asarray(rewards, float),
            "probe_iteration": np.arange(1, len(probe_rewards) + 1), "probe_rewards": np.asarray(probe_rewards, float),
            "probe_obs": probe}


def test_diagnose_fig3_correlation_on_synthetic_diagnostics(tmp_path):
    levels = np.arange(0, 200, 20)
    # Reward affine in the grey level: |dr| is proportional to the pixel distance, so Pearson r = 1.
    diag = _diagnostics(levels, 3.0 - 0.01 * levels, [0, 100, 50, 200],
                        [[1.0, 2.0, 1.5, 3.0], [0.0, 1.0, 2.0, 0.5]])
    run = make_run(tmp_path, "Boxing", "rnd", 1, [1.0] * len(levels), raw=np.linspace(4, 1, len(levels)),
                   diagnostics=diag)
    summary = diagnose([run], tmp_path / "out", max_points=400)
    row = summary["runs"][0]
    assert row["fig3_pearson_pixels"] == pytest.approx(1.0) and row["fig3_points"] == len(levels)
    assert -1 <= row["fig3_pearson_reference"] <= 1
    # Probe set at the last evaluation: the correlation of its |dr| with the (proportional) level differences.
    assert row["probe_pearson_pixels_last"] == pytest.approx(
        np.corrcoef(*_upper(np.abs(np.subtract.outer([0.0, 1.0, 2.0, 0.5], [0.0, 1.0, 2.0, 0.5])),
                            np.abs(np.subtract.outer([0, 100, 50, 200], [0, 100, 50, 200]))))[0, 1])
    assert row["decay"] == pytest.approx(1.0 / 4.0)
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"fig1_intrinsic.png", "fig1_decay_oscillation.png", "fig3_correlations.png", "fig3_Boxing-rnd-s1.png",
            "summary.json", "summary.md"} <= names
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["runs"][0]["fig3_pearson_pixels"] == \
        pytest.approx(1.0)
    later = diagnose([run], tmp_path / "later", skip_first=3)["runs"][0]
    assert later["fig3_points"] == len(levels) - 3 and later["fig3_pearson_pixels"] == pytest.approx(1.0)
    # a figure an earlier analysis left in the folder is not listed as this one's
    (tmp_path / "out" / "fig3_Riverraid-rnd-s9.png").write_bytes(b"")
    diagnose([run], tmp_path / "out")
    listed = re.findall(r"!\[(.*?)\]", (tmp_path / "out" / "summary.md").read_text())
    assert listed == ["fig1_decay_oscillation.png", "fig1_intrinsic.png", "fig3_Boxing-rnd-s1.png",
                      "fig3_correlations.png"]


def test_diagnose_says_why_fig3_r_is_undefined_for_a_reward_with_no_spread(tmp_path, capsys):
    """Issue 32: a constant reward printed Fig. 3 r "nan" without a word; now n/a with the reason, null in JSON."""
    levels = np.arange(0, 200, 20)
    diag = _diagnostics(levels, np.full(len(levels), 0.25), [0, 100, 50, 200], [[1.0, 1.0, 1.0, 1.0]])
    run = make_run(tmp_path, "Boxing", "rnd", 1, [1.0] * len(levels), raw=np.full(len(levels), 0.25),
                   diagnostics=diag)
    assert main(["diagnose", str(run), "--out", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.endswith("Fig. 3 r: pixels n/a, reference n/a (the reward is constant over the frames compared)")
    assert "nan" not in line.split("Fig. 3 r")[1]
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    row, group = saved["runs"][0], saved["groups"][0]
    assert row["fig3_pearson_pixels"] is None and group["fig3_pearson_reference"] is None
    assert row["fig3_undefined_pixels"] == group["fig3_undefined_reference"] == \
        "the reward is constant over the frames compared"
    assert "- Boxing-rnd-s1: Fig. 3 r: pixels n/a" in (tmp_path / "out" / "summary.md").read_text()
    # A run whose reward varies has a value and no reason; too few iterations is its own reason.
    varied = make_run(tmp_path / "b", "Boxing", "rnd", 2, [1.0] * len(levels), raw=np.linspace(4, 1, len(levels)),
                      diagnostics=_diagnostics(levels, 3.0 - 0.01 * levels, [0, 100, 50, 200], [[1.0, 2.0, 1.5, 3.0]]))
    row = diagnose([varied], tmp_path / "varied")["runs"][0]
    assert row["fig3_pearson_pixels"] == pytest.approx(1.0) and row["fig3_undefined_pixels"] is None
    row = diagnose([varied], tmp_path / "late", skip_first=len(levels) - 2)["runs"][0]
    assert row["fig3_undefined_pixels"] == "2 iterations give fewer than 3 pairs"


def _upper(a, b):
    i, j = np.triu_indices(len(a), 1)
    return np.asarray(a, float)[i, j], np.asarray(b, float)[i, j]


def test_diagnose_and_report_errors_are_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["diagnose", str(tmp_path / "empty")]) == 2
    assert "no run directories under" in capsys.readouterr().err
    run = make_run(tmp_path / "runs", "Boxing", "rnd", 1, [1.0])
    (run / "metrics.jsonl").write_text("")
    assert main(["diagnose", str(run)]) == 2
    err = capsys.readouterr().err
    assert "has no metrics yet" in err and len(err.strip().splitlines()) == 1
    assert main(["report", str(tmp_path / "missing")]) == 2
    with pytest.raises(PrendError, match="is not a run directory"):
        load_run(tmp_path / "empty")
    with pytest.raises(PrendError, match="does not exist"):
        find_runs([tmp_path / "nope"])


def test_several_directories_are_reported_together_into_out(tmp_path, capsys):
    """A new sweep beside committed runs of other methods: the same groups and numbers as one folder holding all."""
    for root in (tmp_path / "new", tmp_path / "together"):
        make_run(root, "Boxing", "prend", 1, [math.nan, 1.0, 3.0])
    for root in (tmp_path / "committed", tmp_path / "together"):
        make_run(root, "Boxing", "rnd", 1, [math.nan, 0.0, 5.0])
    assert main(["report", str(tmp_path / "new"), str(tmp_path / "committed")]) == 2
    err = capsys.readouterr().err
    assert "2 directories given and no --out" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new" / "report.md").exists()
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "new"), str(tmp_path / "committed"), "--out", str(out), "--reps", "200"]) == 0
    write_report(tmp_path / "together", reps=200)
    apart, together = (json.loads((d / "report.json").read_text()) for d in (out, tmp_path / "together"))
    assert {(g["label"], g["final"][0]) for g in apart["groups"]} == {("prend", 3.0), ("rnd", 5.0)}
    assert apart["groups"] == together["groups"]
    assert (out / "fig2_scores.png").is_file() and not (tmp_path / "new" / "report.md").exists()
    assert (out / "report.md").read_text().startswith(
        f"# Report of runs from 2 directories\n\nunder `{tmp_path}`: `new`, `committed`\n")


def test_a_run_named_twice_counts_once_and_a_seed_trained_twice_is_named(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    run = make_run(sweep, "Boxing", "rnd", 1, [math.nan, 0.0, 5.0])
    make_run(sweep, "Boxing", "rnd", 2, [math.nan, 0.0, 1.0])
    rerun = make_run(tmp_path / "reruns", "Boxing", "rnd", 1, [math.nan, 0.0, 2.0])  # seed 1 again, elsewhere
    assert [r.seed for r in find_runs([sweep, run])] == [1, 2]  # the run directory inside the sweep, and by name
    out = tmp_path / "report"
    assert main(["report", str(sweep), str(run), "--out", str(out), "--reps", "200"]) == 0
    assert capsys.readouterr().err == ""
    (group,) = json.loads((out / "report.json").read_text())["groups"]
    assert group["seeds"] == [1, 2] and group["final"] == [5.0, 1.0]
    assert main(["report", str(sweep), str(rerun), "--out", str(out), "--reps", "200"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: Boxing rnd: seed 1 is trained by 2 runs (") and str(rerun) in err
    data = json.loads((out / "report.json").read_text())
    assert data["groups"][0]["seeds"] == [1, 1, 2]
    # a seed's runs in path order, as the report's tables list them
    assert data["repeated_seeds"] == [{"game": "Boxing", "label": "rnd", "seed": 1, "paths": [str(rerun), str(run)]}]
    assert f"**Seed 1 counted 2 times** in Boxing rnd: `{rerun}`, `{run}`." in (out / "report.md").read_text()


@pytest.mark.slow
def test_pipeline_from_real_training_runs_to_report_and_diagnostics(tmp_path):
    # Two real (tiny) runs through the sweep command, then the report and the diagnostics on them.
    out = tmp_path / "sweep"
    flags = ["--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--total-steps", "64",
             "--probe-size", "8", "--probe-every", "1", "--no-tensorboard"]
    assert main(["sweep", "--methods", "rnd,rnd-lr", "--games", "Boxing", "--seeds", "1", "--out", str(out),
                 *flags]) == 0
    assert main(["report", str(out), "--reps", "1000"]) == 0
    text = (out / "report.md").read_text()
    assert "| Boxing-rnd-s1 | finished | 256 |" in text and "| Boxing-rnd-lr-s1 | finished | 256 |" in text
    assert main(["diagnose", str(out)]) == 0
    summary = json.loads((out / "diagnose" / "summary.json").read_text())
    assert [r["label"] for r in summary["runs"]] == ["rnd", "rnd-lr"]
    for row in summary["runs"]:
        assert row["iterations"] == 2 and row["raw_first"] > 0 and row["fig3_points"] == 2
    assert (out / "diagnose" / "fig3_Boxing-rnd-lr-s1.png").exists()


def test_diagnose_reports_the_offset_share_first_and_late(tmp_path):
    share = [0.99, 0.98, 0.5, 0.4, 0.3, 0.2]
    run = make_run(tmp_path, "Boxing", "prend", 1, [1.0] * 6,
                   series={"intrinsic/offset_share": share, "intrinsic/target_spread": [0.1, 0.1, 0.1, 0.2, 0.3, 0.5]})
    old = make_run(tmp_path, "Boxing", "rnd", 1, [1.0] * 6)  # logged before the decomposition existed
    summary = diagnose([run, old], tmp_path / "out")
    rows = {r["method"]: r for r in summary["runs"]}
    assert rows["prend"]["offset_share_first"] == 0.99
    assert rows["prend"]["offset_share"] == pytest.approx(0.3)  # median of the second half (0.4, 0.3, 0.2)
    assert rows["prend"]["target_spread"] == pytest.approx(0.3)
    assert math.isnan(rows["rnd"]["offset_share"])
    assert "| 0.99 → 0.3 |" in (tmp_path / "out" / "summary.md").read_text()


def test_diagnose_summary_header_defines_its_measures_with_the_windows_the_table_used(tmp_path):
    # decay with 20% windows of 10 iterations: (1 + 1) / (10 + 8) = 0.111; late offset share: median of the
    # second half (0.1, 0.2, 0.3, 0.4, 0.5) = 0.3, not the last 10% (0.5) nor the last 20% (0.45)
    run = make_run(tmp_path, "Boxing", "prend", 1, [1.0] * 10, raw=[10.0, 8, 6, 4, 2, 1, 1, 1, 1, 1],
                   series={"intrinsic/offset_share": [0.9] * 5 + [0.1, 0.2, 0.3, 0.4, 0.5]})
    diagnose([run], tmp_path / "out", early_fraction=0.2, skip_first=3)
    header, tables = (tmp_path / "out" / "summary.md").read_text().split("## Groups")
    assert "**decay** = mean r over the last 20% of iterations / over the first 20%" in header
    assert "**offset share** = the share of a rollout's mean reward that is one constant" in header
    assert "at the first iteration → its median over the second half of training" in header
    assert "moving average (10% of the iterations long)" in header  # oscillation's, whatever --early-fraction
    assert "up to 400 evenly spaced iterations after iteration 3;" in header
    row = next(line for line in tables.splitlines() if line.startswith("| Boxing-prend-"))
    assert "| 0.111 |" in row and "| 0.9 → 0.3 |" in row


def test_diagnose_group_table_lists_each_seed_below_five_and_mean_sd_from_five(tmp_path):
    # Late offset share = median of the second half: seed 1 (0.5, 0.4, 0.3) -> 0.4, seed 2 (0.2, 0.2, 0.2) -> 0.2
    shares = {1: [0.9, 0.8, 0.6, 0.5, 0.4, 0.3], 2: [0.7, 0.6, 0.4, 0.2, 0.2, 0.2]}
    runs = [make_run(tmp_path / "two", "Boxing", "prend", seed, [1.0] * 6,
                     series={"intrinsic/offset_share": share}) for seed, share in shares.items()]
    diagnose(runs, tmp_path / "two" / "out")
    text = (tmp_path / "two" / "out" / "summary.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Boxing | prend | 2 |"))
    assert "| 0.9 / 0.7 (mean 0.8) → 0.4 / 0.2 (mean 0.3) |" in row and "±" not in row
    # Five seeds with late shares 0.1 ... 0.5: mean 0.3, sd 0.158
    runs = [make_run(tmp_path / "five", "Boxing", "prend", seed, [1.0] * 6,
                     series={"intrinsic/offset_share": [0.9] * 3 + [seed / 10] * 3}) for seed in range(1, 6)]
    diagnose(runs, tmp_path / "five" / "out")
    assert "| 0.9 ± 0 → 0.3 ± 0.16 |" in (tmp_path / "five" / "out" / "summary.md").read_text()


def test_published_dopamine_curves_match_the_figures_quoted_in_the_reference_notes():
    # google/dopamine's Boxing and Riverraid means of 5 seeds per 1M-frame iteration, read by hand (rounded) from
    # baselines/atari/data/{boxing,riverraid}.json at commit 5873f54 (github.com/google/dopamine).
    quoted = {("Boxing", "DQN"): {0: -3.4, 1: -14.8, 9: 37.3}, ("Boxing", "Rainbow"): {0: -6.0, 1: -31.2, 9: 68.4},
              ("Boxing", "IQN"): {0: 0.2, 1: 10.0, 9: 89.5}, ("Riverraid", "DQN"): {0: 1137, 1: 1634, 9: 3199},
              ("Riverraid", "Rainbow"): {0: 895, 1: 1638, 9: 4273}, ("Riverraid", "IQN"): {0: 1799, 1: 2748, 9: 6632}}
    for (game, agent), values in quoted.items():
        (curve,) = [c for c in published_curves(game) if c.agent == f"Dopamine {agent}"]
        assert curve.seeds == 5 and len(curve.scores) == 50 and curve.frames[9] == 10_000_000
        for iteration, value in values.items():
            assert curve.scores[iteration] == pytest.approx(value, abs=0.051 if abs(value) < 100 else 0.51)
    assert published_curves("MontezumaRevenge") and not published_curves("DeepSea-10")


def test_report_draws_and_tabulates_published_curves_on_request(tmp_path, capsys):
    frames = {"charts/frames": [1_000_000, 2_000_000, 3_000_000]}
    make_run(tmp_path, "Boxing", "none", 1, [1.0, 2.0, 3.0], series=frames)
    write_report(tmp_path, reps=200)  # off by default: nothing published in the table
    assert json.loads((tmp_path / "report.json").read_text())["at_frames"][0]["published"] == []
    assert main(["report", str(tmp_path), "--reps", "200", "--published", "dopamine"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert "google/dopamine" in data["published"]
    (table,) = data["at_frames"]
    # Budgets 10/25/50/100% of 3M frames; the first iteration ending at or past each: 1st, 1st, 2nd, 3rd.
    assert table["frames"] == [300_000, 750_000, 1_500_000, 3_000_000]
    dqn = next(p for p in table["published"] if p["agent"] == "Dopamine DQN")
    scores = published_curves("Boxing")[0].scores
    assert dqn["seeds"] == 5 and dqn["scores"] == [scores[0], scores[0], scores[1], scores[2]]
    assert "| Dopamine DQN (published, mean of seeds) | 5 | -3.35 | -3.35 | -14.8 | -4.6 |" in (
        tmp_path / "report.md").read_text()
    fig = plot_scores(find_runs([tmp_path]), tmp_path / "fig2.png", published="dopamine")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines["Dopamine IQN (published, 5 seeds)"].get_xdata()) == [1_000_000, 2_000_000, 3_000_000]
    # With published curves the legend sits below the panel (and its x label), inside the figure, on no curve.
    fig.draw_without_rendering()  # the constrained layout, as savefig ran it
    legend, ax = fig.axes[0].get_legend().get_window_extent(), fig.axes[0]
    assert legend.y1 < ax.xaxis.label.get_window_extent().y0 and legend.y0 >= 0
    assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1
    capsys.readouterr()
    assert main(["report", str(tmp_path), "--published", "atari-pb"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_report_says_which_partial_runs_still_train(tmp_path):
    from prend.rundir import RunDir, RunLock

    states = {1: None, 2: "running", 3: "running", 4: "interrupted", 5: "failed"}
    for seed, state in states.items():
        run_dir = make_run(tmp_path, "Boxing", "rnd", seed, [1.0, 2.0], extra=("--total-steps", "6400"))
        if state:
            RunDir(run_dir).write_sweep_status({"state": state})
    with RunLock(next(tmp_path.glob("*-s3"))):  # seed 3's training is alive; seed 2's sweep was killed outright
        write_report(tmp_path, reps=200)
    runs = {r["seed"]: r["status"] for r in json.loads((tmp_path / "report.json").read_text())["runs"]}
    assert runs == {1: "partial", 2: "stopped (partial)", 3: "running", 4: "interrupted (partial)",
                    5: "failed (partial)"}


def test_fig1_says_when_its_runs_logged_no_probe_set_instead_of_drawing_empty_axes(tmp_path):
    make_run(tmp_path, "Boxing", "rnd", 1, [1.0, 2.0], raw=[1.0, 0.5])  # no diagnostics.npz: no probe rewards
    fig = plot_fig1(find_runs([tmp_path]), tmp_path / "fig1.png")
    rollout, probe = fig.axes[:2]
    assert len(rollout.get_lines()) > 0 and rollout.get_xlabel() == "emulator frames"
    assert [t.get_text() for t in probe.texts] == ["not logged by these runs\n(no probe set: --probe-every 0)"]
    assert not probe.get_lines() and list(probe.get_xticks()) == [] and list(probe.get_yticks()) == []
