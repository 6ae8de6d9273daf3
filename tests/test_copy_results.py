"""``scripts/copy_results.sh``: finished runs into a results folder without checkpoints, TensorBoard files or locks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "copy_results.sh"


def _run_dir(root: Path, name: str, state: str) -> Path:
    run = root / name
    (run / "tb").mkdir(parents=True)
    (run / "tb" / "events.out.tfevents.1").write_bytes(b"x")
    for file in ("metrics.jsonl", "eval.json", "train.log", "checkpoint.pt", "checkpoint.pt.tmp", ".lock",
                 ".eval.lock"):
        (run / file).write_text(file)
    (run / "config.json").write_text(json.dumps({"run": {"total_steps": 64}}))
    (run / "sweep_status.json").write_text(json.dumps({"state": state, "total_steps": 64, "global_step": 64}, indent=2))
    return run


def _copy(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False)


def test_a_finished_run_is_copied_without_its_checkpoint_tensorboard_or_locks(tmp_path):
    done = _run_dir(tmp_path / "sweep", "Boxing-rnd-s1", "finished")
    running = _run_dir(tmp_path / "sweep", "Boxing-rnd-s2", "running")
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    result = _copy(tmp_path / "results", done, running, tmp_path / "sweep" / "sweep.json")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["copied Boxing-rnd-s1", "skipped Boxing-rnd-s2: not finished (its "
                                          "sweep_status.json, or by hand: its metrics and checkpoint)",
                                          "skipped sweep.json: not a run directory (no metrics.jsonl)"]
    copied = sorted(p.name for p in (tmp_path / "results" / "Boxing-rnd-s1").iterdir())
    assert copied == ["config.json", "eval.json", "metrics.jsonl", "sweep_status.json", "train.log"]
    assert not (tmp_path / "results" / "Boxing-rnd-s2").exists()
    assert (done / "checkpoint.pt").is_file()  # the source keeps everything


def test_without_runs_it_prints_its_usage_and_exits_2(tmp_path):
    result = _copy(tmp_path / "results")
    assert result.returncode == 2 and "usage: bash scripts/copy_results.sh DEST RUN_DIR" in result.stderr


def test_a_run_trained_by_hand_is_copied_once_a_checkpoint_vouches_for_its_whole_budget(tiny_run, tmp_path):
    import shutil

    done = shutil.copytree(tiny_run, tmp_path / "by-hand" / "done")  # `prend train`: 64 agent steps of 64
    short = shutil.copytree(tiny_run, tmp_path / "by-hand" / "short")
    (short / "checkpoint.pt").unlink()  # metrics no checkpoint vouches for: killed before it could write one
    half = shutil.copytree(tiny_run, tmp_path / "by-hand" / "half")
    state = torch.load(half / "checkpoint.pt", weights_only=True)
    config = json.loads(state["config"])
    config["run"]["total_steps"] = 128  # stopped at 64 of a 128-step budget
    state["config"] = json.dumps(config)
    torch.save(state, half / "checkpoint.pt")
    result = _copy(tmp_path / "results", done, short, half)
    assert result.returncode == 0, result.stderr
    reason = "not finished (its sweep_status.json, or by hand: its metrics and checkpoint)"
    assert result.stdout.splitlines() == ["copied done", f"skipped short: {reason}", f"skipped half: {reason}"]
    assert (tmp_path / "results" / "done" / "metrics.jsonl").is_file()
    assert not (tmp_path / "results" / "done" / "checkpoint.pt").exists()


def test_a_swept_run_continued_by_hand_is_copied_only_at_its_new_budget(tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "sweep" / "Boxing-rnd-s1")
    (run / "sweep_status.json").write_text(json.dumps({"state": "finished", "total_steps": 64, "global_step": 64}))
    assert _copy(tmp_path / "results", run).stdout.splitlines() == ["copied Boxing-rnd-s1"]
    # `prend train --resume RUN --total-steps 128` raises the budget in the checkpoint and config.json; the sweep's
    # status still says finished (at 64): copied only once the metrics reach 128 under a checkpoint
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    config = json.loads(state["config"])
    config["run"]["total_steps"] = 128
    state["config"] = json.dumps(config)
    torch.save(state, run / "checkpoint.pt")
    (run / "config.json").write_text(json.dumps(config))
    result = _copy(tmp_path / "results-2", run)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["skipped Boxing-rnd-s1: not finished (its sweep_status.json, or by hand: "
                                          "its metrics and checkpoint)"]
