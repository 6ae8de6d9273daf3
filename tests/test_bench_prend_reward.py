"""benchmarks/prend_reward_at_init.py: the reward's offset share, CV and target spread at init, per backbone."""

from __future__ import annotations

import json
import math

from benchmark_scripts import load_benchmark

SCRIPT = "prend_reward_at_init"
"""The benchmark under test (``benchmarks/prend_reward_at_init.py``)."""


def test_rows_per_variant_and_backbone_with_plausible_figures(tmp_path, capsys):
    variants = ["RND", "PreND (paper default)", "PreND --predictor-init target-mean"]
    main = load_benchmark(SCRIPT).main
    code = main(["--games", "Boxing", "--frames", "32", "--init-seeds", "1", "2", "--variants", *variants,
                 "--backbones", "atariari-last84", "stdim-boxing", "--threads", "1", "--out", str(tmp_path / "r")])
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["meta"]["frames"] == 32 and result["meta"]["init_seeds"] == [1, 2] and result["meta"]["seconds"] > 0
    rows = {r["variant"]: r for r in result["rows"]}
    # RND has no backbone: one row; each PreND variant one row per backbone, labelled and configured with it
    assert list(rows) == ["RND", "PreND (paper default) [atariari-last84]", "PreND (paper default) [stdim-boxing]",
                          "PreND --predictor-init target-mean [atariari-last84]",
                          "PreND --predictor-init target-mean [stdim-boxing]"]
    assert rows["RND"]["config"]["method"] == "rnd"
    for label, row in rows.items():
        assert row["game"] == "Boxing" and row["seeds"] == [1, 2]
        if "[" in label:
            assert row["config"]["backbone"] == label.split("[")[1].rstrip("]")
        assert 0.0 <= row["offset_share"] <= 1.0 and row["raw_cv"] >= 0.0 and row["target_spread"] > 0.0
        assert all(math.isfinite(row[k + "_sd"]) and row[k + "_sd"] >= 0 for k in ("offset_share", "raw_cv",
                                                                                   "target_spread"))
    for backbone in ("atariari-last84", "stdim-boxing"):
        paper, mean_init = (rows[f"{v} [{backbone}]"] for v in variants[1:])
        # the target (frozen backbone + random neck) is the same whatever the predictor starts at ...
        assert paper["target_spread"] == mean_init["target_spread"]
        # ... and a predictor started at the target's mean output removes most of the state-independent offset
        assert mean_init["offset_share"] < paper["offset_share"]
    # the two backbones give two different targets
    assert rows[f"{variants[1]} [atariari-last84]"]["target_spread"] != rows[f"{variants[1]} [stdim-boxing]"][
        "target_spread"]
    table = (tmp_path / "r.md").read_text().splitlines()
    assert len(table) == 2 + len(rows) and table[2].startswith("| Boxing | RND | ")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["frames"] == 32


def test_a_bad_backbone_is_one_line_and_exit_2_before_any_frame(tmp_path, capsys):
    main = load_benchmark(SCRIPT).main
    code = main(["--backbones", "compact", "nope", "--out", str(tmp_path / "r"), "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: unknown backbone 'nope'")
    assert not (tmp_path / "r.json").exists()
