"""prend.rundir.RunDir: its readers against hand-made files, and run directories written by earlier prend versions.

docs/results/*/ hold real run directories committed by earlier versions (cpu-paper's have no run_info.json and
configs without the fields added since), with the report.json and diagnose/summary.json the code of the time
made from them: the readers, `prend report` and `prend diagnose` must still read them to the same numbers.
"""

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from prend.checkpoint import FORMAT
from prend.cli import main
from prend.config import IntrinsicConfig, TrainConfig, config_to_dict
from prend.experiments.diagnose import diagnose
from prend.experiments.runs import find_runs, load_run
from prend.rundir import (
    FRAMES,
    GLOBAL_STEP,
    SCORE,
    BackboneRecord,
    RunDir,
    RunLock,
    flatten,
    read_sweep_manifest,
    write_sweep_manifest,
)

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
PAPER = RESULTS / "cpu-paper"


def _arrays(n=3, probes=2, states=4):
    return {"iteration": np.arange(1, n + 1), "frame": np.full((n, 84, 84), 7, np.uint8),
            "frame_reward": np.linspace(1.0, 2.0, n), "probe_iteration": np.arange(1, probes + 1),
            "probe_rewards": np.ones((probes, states)), "probe_obs": np.zeros((states, 4, 84, 84), np.uint8)}


# ------------------------------------------------------------------------------------ hand-made files
def test_metrics_leave_out_a_torn_last_line_and_finished_steps_do_not_count_it(tmp_path):
    run = RunDir(tmp_path)
    run.metrics_path.write_text('{"iteration": 1, "charts/global_step": 16, "charts/score_mean_100": null}\n'
                                '{"iteration": 2, "charts/global_step": 32}\n{"iteration": 3, "charts/glo')
    run.write_checkpoint({"format": FORMAT})
    records = run.metrics()
    assert [r[GLOBAL_STEP] for r in records] == [16, 32] and math.isnan(records[0][SCORE])
    assert run.finished_steps() == 0  # the torn record may be the budget's last: not finished for sure
    run.metrics_path.write_text('{"iteration": 1, "charts/global_step": 16}\n'
                                '{"iteration": 2, "charts/global_step": 32}\n')
    os.utime(run.metrics_path, (1, 1))  # a checkpoint written after the metrics counts them
    assert run.finished_steps() == 32
    os.utime(run.checkpoint_path, (0, 0))  # metrics written after the last checkpoint: not for sure
    assert run.finished_steps() == 0


def test_finished_steps_come_from_a_sweeps_status_first(tmp_path):
    run = RunDir(tmp_path)
    assert run.sweep_status() is None and run.finished_steps() == 0
    run.write_sweep_status({"state": "finished", "total_steps": 64, "global_step": 48})
    assert run.finished_steps() == 48
    run.write_sweep_status({"state": "finished", "total_steps": 64})
    assert run.finished_steps() == 64
    run.write_sweep_status({"state": "failed", "global_step": 64})
    assert run.finished_steps() == 0
    run.sweep_status_path.write_text("{not json")
    assert run.sweep_status() is None


def test_a_swept_run_continued_by_hand_is_finished_only_at_its_new_budget(tmp_path):
    run = RunDir(tmp_path)
    run.write_sweep_status({"state": "finished", "total_steps": 64, "global_step": 64})
    run.write_config({"run": {"total_steps": 64}})
    run.metrics_path.write_text('{"iteration": 1, "charts/global_step": 64}\n')
    assert run.finished_steps() == 64
    # `prend train --resume RUN --total-steps 128` rewrote config.json; the sweep's status still reads 64
    run.write_config({"run": {"total_steps": 128}})
    run.metrics_path.write_text('{"iteration": 1, "charts/global_step": 64}\n'
                                '{"iteration": 2, "charts/global_step": 96}\n')
    assert run.finished_steps() == 64  # no checkpoint after the record at 96: the sweep's 64 stand
    run.write_checkpoint({"format": FORMAT})
    os.utime(run.metrics_path, (1, 1))
    assert run.finished_steps() == 96  # short of 128: copy_results.sh and a report count it unfinished
    run.metrics_path.write_text(run.metrics_path.read_text() + '{"iteration": 3, "charts/global_step": 128}\n')
    os.utime(run.metrics_path, (1, 1))
    assert run.finished_steps() == 128


def test_missing_and_incomplete_diagnostics(tmp_path):
    run = RunDir(tmp_path)
    assert run.diagnostics() is None
    run.write_diagnostics(_arrays())
    diag = run.diagnostics()
    assert diag.frame.shape == (3, 84, 84) and diag.frame.dtype == np.uint8 and diag.frame[0, 0, 0] == 7
    assert diag.frame_reward.tolist() == [1.0, 1.5, 2.0] and diag.probe_rewards.shape == (2, 4)
    assert set(np.load(run.diagnostics_path).files) == set(diag.arrays())
    incomplete = {k: v for k, v in _arrays().items() if k != "probe_obs"}
    np.savez(run.diagnostics_path, **incomplete)
    with pytest.raises(ValueError, match="no probe_obs"):
        run.diagnostics()


def test_the_checkpoints_config_wins_over_an_edited_config_json(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(FileNotFoundError):
        run.config()
    run.write_config({"intrinsic": {"method": "rnd-lr"}})
    assert run.config_file() == {"intrinsic": {"method": "rnd-lr"}}  # as written
    assert run.config() == config_to_dict(TrainConfig(intrinsic=IntrinsicConfig(method="rnd-lr")))  # as read today
    run.write_checkpoint({"format": FORMAT, "config": json.dumps({"intrinsic": {"method": "rnd"}})})
    assert run.config()["intrinsic"]["method"] == "rnd"
    run.checkpoint_path.write_bytes(b"cut short")  # unreadable: its own error on resume; readers use config.json
    assert run.config()["intrinsic"]["method"] == "rnd-lr"
    run.write_config({"intrinsic": {"method": "rnd", "removed_field": 1}})  # from a version with other fields
    run.checkpoint_path.unlink()
    assert run.config() == {"intrinsic": {"method": "rnd", "removed_field": 1}}


def test_run_info_and_the_backbone_it_records(tmp_path):
    run = RunDir(tmp_path)
    assert run.run_info() is None and run.backbone() is None  # a run from before run_info.json
    run.write_run_info({"started": {"prend": "0.1"}, "resumed": []})
    assert run.run_info()["started"]["prend"] == "0.1" and run.backbone() is None  # not PreND
    run.write_run_info({"started": {"backbone": {"name": "compact", "weights": "/w.pt", "sha256": "ab"}}})
    assert run.backbone() == BackboneRecord("compact", "/w.pt", "ab")
    run.write_run_info({"started": {"backbone": {"name": "compact", "weights": None, "sha256": None}}})
    assert run.backbone() == BackboneRecord("compact", None, None)  # recorded: no weights file was found
    run.run_info_path.write_text('{"started": ')
    assert run.run_info() is None and run.backbone() is None


def test_writers_write_indented_json_atomically_and_leave_nothing_else(tmp_path):
    run = RunDir(tmp_path)
    run.write_config({"run": {"seed": 1}})
    run.write_sweep_status({"state": "running"})
    assert run.config_path.read_text() == '{\n  "run": {\n    "seed": 1\n  }\n}\n'
    write_sweep_manifest(tmp_path, {"runs": []})
    assert read_sweep_manifest(tmp_path) == {"runs": []} and read_sweep_manifest(tmp_path / "none") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "sweep.json", "sweep_status.json"]
    assert run.holder() is None and not run.is_run()
    with RunLock(tmp_path):
        assert f"pid {os.getpid()}" in run.holder()


# --------------------------------------------------------------------------- run directories of old versions
@pytest.fixture
def old_sweep(tmp_path):
    """Two cpu-paper runs (written before run_info.json and several config fields existed) in a sweep dir."""
    sweep = tmp_path / "sweep"
    for name in ("Boxing-rnd-s1", "Boxing-prend-s1"):
        shutil.copytree(PAPER / name, sweep / name)
    return sweep


def test_old_run_directories_read_through_rundir(old_sweep):
    run = RunDir(old_sweep / "Boxing-rnd-s1")
    assert run.is_run() and not run.has_checkpoint()
    written = json.loads((PAPER / "Boxing-rnd-s1" / "config.json").read_text())
    assert "anneal_lr" not in written["ppo"]  # a field added since, whose default is the old behaviour
    assert run.config_file() == written and run.config()["ppo"]["anneal_lr"] is False
    assert {k: v for k, v in flatten(run.config()).items() if k in flatten(written)} == flatten(written)
    records = run.metrics()
    lines = (PAPER / "Boxing-rnd-s1" / "metrics.jsonl").read_text().splitlines()
    assert len(records) == len(lines) == 48 and records[-1][FRAMES] == json.loads(lines[-1])["charts/frames"]
    assert records[-1][GLOBAL_STEP] == 49152 and run.finished_steps() == 49152  # from its sweep_status.json
    diag = run.diagnostics()
    assert diag.iteration.tolist() == list(range(1, 49)) and diag.probe_rewards.shape == (4, 64)
    assert run.run_info() is None and run.backbone() is None
    newer = RunDir(RESULTS / "cpu-prend-random-backbone" / "Boxing-prend-s1")  # one with run_info.json
    recorded = json.loads(newer.run_info_path.read_text())["started"]["backbone"]
    assert newer.backbone() == BackboneRecord(recorded["name"], recorded["weights"], recorded["sha256"])
    assert load_run(run.path).config["intrinsic"]["method"] == "rnd"


def test_prend_report_reads_old_runs_to_the_numbers_it_reported_then(old_sweep, capsys):
    assert main(["report", str(old_sweep), "--reps", "100"]) == 0
    then = {r["run"]: r for r in json.loads((PAPER / "report.json").read_text())["runs"]}
    now = json.loads((old_sweep / "report.json").read_text())["runs"]
    assert [r["run"] for r in now] == ["Boxing-rnd-s1", "Boxing-prend-s1"]
    for row in now:
        old = then[row["run"]]
        assert row.keys() == old.keys()
        for key, value in old.items():
            if key == "auc":
                # A numpy trapezoid sum over 48 logged scores: another CPU's kernels may change its last bits
                # (1e-16 relative); a real change (a point dropped or added, another x axis) moves it by 1e-3.
                assert row[key] == pytest.approx(value, rel=1e-9), key
            elif key != "path":
                # Names, counts, the final score (copied) and its HNS (Python float arithmetic, correctly rounded
                # on every CPU): exactly.
                assert row[key] == value, key


def test_prend_diagnose_reads_old_runs_to_the_numbers_it_reported_then(old_sweep):
    then = {r["run"]: r for r in json.loads((PAPER / "diagnose" / "summary.json").read_text())["runs"]}
    rows = diagnose([old_sweep], old_sweep / "diagnose")["runs"]
    assert [r["run"] for r in rows] == ["Boxing-rnd-s1", "Boxing-prend-s1"]
    for row in rows:
        old = then[row["run"]]
        for key, value in old.items():
            if key != "path" and value is None:  # null: a NaN (not logged then) or no reason (r defined)
                assert row[key] is None or math.isnan(row[key]), key
            elif key != "path":
                assert row[key] == _diagnose_tolerance(key, value), key
        assert math.isnan(row["offset_share"])  # logged only since: NaN, not an error
    assert [r.name for r in find_runs([old_sweep])] == ["Boxing-rnd-s1", "Boxing-prend-s1"]


def _diagnose_tolerance(key, value):
    """What a number of ``prend diagnose`` may differ by when recomputed on another CPU, and still be the same.

    The committed summary.json was computed on another CPU; the kernels that numpy, OpenBLAS and torch pick
    for a CPU change the order of sums, hence the last bits. Sizes measured over all 12 cpu-paper runs under
    the three kernel paths of scripts/test_kernels.sh (docs/testing.md) and set far above them; a real change
    (another frame, iteration or formula, another reference network) moves these numbers by 1e-3 or more.
    """
    if not isinstance(value, float) or key in ("predictor_lr_scale", "raw_first", "raw_last"):
        return value  # names, counts, and values copied from the config or metrics.jsonl: exactly
    if "spearman" in key:
        # A rank statistic: a near-tie that swaps on another CPU moves it by up to ~1e-5 (1,128 pairs);
        # seen: up to 7e-6 (reference), 0 (pixels).
        return pytest.approx(value, abs=1e-4)
    if "reference" in key:
        # Pearson r of a float32 network's embeddings (float32 rounding ~1e-7 relative); seen: up to 4e-7.
        return pytest.approx(value, abs=1e-5)
    if "pearson" in key:
        # Pearson r of float64 pixel distances (bounded by 1, so absolute); seen: up to 3e-16. Tight enough to
        # catch the distances computed in float32 (which moves these two runs' r by 6e-9 to 2e-8).
        return pytest.approx(value, abs=1e-9)
    # decay, oscillation, spread: float64 means and deviations of <= 48 logged values; seen: 0.
    return pytest.approx(value, rel=1e-9)
