"""benchmarks/throughput.py --backbones: one PreND row per backbone, timed in the whole training loop."""

from __future__ import annotations

import json
import math

from benchmark_scripts import load_benchmark

SCRIPT = "throughput"
"""The benchmark under test (``benchmarks/throughput.py``)."""


def test_backbones_multiply_only_prend_rows_and_rounds_interleave(tmp_path, monkeypatch):
    script = load_benchmark(SCRIPT)
    seen = []

    def fake_loop_rate(cfg, iterations):  # what each row would train, without training
        seen.append((cfg.intrinsic.method, cfg.intrinsic.backbone if cfg.intrinsic.method == "prend" else None))
        return 100.0, {"time/rollout_s": 0.1, "time/intrinsic_s": 0.2, "time/update_s": 0.3, "backbone_fps": 5.0,
                       "perf": {"threads": 1, "memory_format": "contiguous", "micro_batch": 0}}

    monkeypatch.setattr(script, "loop_rate", fake_loop_rate)
    jsonl = tmp_path / "t.jsonl"
    assert script.main(["--methods", "rnd", "prend", "--configs", "2x8", "--backbones", "atariari-last84",
                        "stdim-boxing", "--rounds", "2", "--env-seconds", "0", "--jsonl", str(jsonl)]) == 0
    one_round = [("rnd", None), ("prend", "atariari-last84"), ("prend", "stdim-boxing")]
    assert seen == one_round * 2  # A B C A B C: every variant measured once per round
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["method"] for r in records] == ["rnd", "prend:atariari-last84", "prend:stdim-boxing"] * 2


def test_a_tiny_prend_row_on_a_shipped_backbone_has_real_figures(tmp_path, capsys):
    script = load_benchmark(SCRIPT)
    jsonl = tmp_path / "t.jsonl"
    assert script.main(["--methods", "prend", "--configs", "2x8", "--iterations", "1", "--env-seconds", "0",
                        "--backbones", "stdim-boxing", "--torch-threads", "1", "--jsonl", str(jsonl)]) == 0
    (record,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert record["method"] == "prend:stdim-boxing" and record["config"] == "2x8" and record["threads"] == 1
    assert record["steps_per_s"] > 0 and math.isfinite(record["steps_per_s"])
    assert record["backbone_fps"] > 0 and math.isfinite(record["backbone_fps"])  # the frozen encoder was timed
    assert all(record[k] >= 0 for k in ("rollout_s", "intrinsic_s", "update_s"))
    assert math.isnan(record["env_steps_per_s"])  # --env-seconds 0: not measured, and said so
    assert "| prend:stdim-boxing | 2x8 | 1 |" in script.markdown_table([record])
    capsys.readouterr()
    assert script.main(["--table", str(jsonl)]) == 0 and "prend:stdim-boxing" in capsys.readouterr().out


def test_a_bad_backbone_is_one_line_and_exit_2_before_any_row(tmp_path, capsys):
    jsonl = tmp_path / "t.jsonl"
    main = load_benchmark(SCRIPT).main
    code = main(["--methods", "rnd", "prend", "--configs", "2x8", "--backbones", "stdim-boxing", "nope",
                 "--jsonl", str(jsonl)])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: unknown backbone 'nope'")
    assert not jsonl.exists() and "rnd" not in captured.out
