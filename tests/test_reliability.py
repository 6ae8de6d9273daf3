"""The run directory's guarantees (docs/reliability.md), one test per reproduction of issue 12.

Most tests copy one tiny finished run (module fixture) and act on the copy in-process, so the file adds
little time: a lock held by this process blocks ``prend train`` exactly as one held by another process
would (``flock`` locks belong to open files, not processes).
"""

import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from prend.agent.ppo import first_nonfinite
from prend.checkpoint import load_checkpoint
from prend.cli import main
from prend.errors import PrendError
from prend.experiments import execution
from prend.experiments.execution import execute_run
from prend.experiments.runs import load_run
from prend.experiments.sweep import RunSpec, SweepConfig, _task, classify, plan
from prend.metrics import read_metrics, truncate_metrics
from prend.rundir import LAUNCH_LOCK, RunDir, RunLock, config_differences, holder

TINY = ["--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--torch-threads", "1",
        "--env-threads", "1", "--no-progress", "--no-tensorboard", "--probe-size", "8"]


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def _iterations(run_dir):
    return [r["iteration"] for r in read_metrics(run_dir / "metrics.jsonl")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run: 2 iterations of 32 steps, a checkpoint after each."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--total-steps", "64", "--checkpoint-every", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


# ------------------------------------------------------------------------------------------- 1. lock
def test_1_a_locked_run_directory_refuses_a_second_train_or_resume(run, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for target, args in ((fresh, [*TINY, "--total-steps", "32", "--out", str(fresh)]),
                         (run, ["--resume", str(run), "--total-steps", "96"])):
        before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and p.name != ".lock"}
        with RunLock(target):
            assert holder(target)["pid"] == os.getpid()
            capsys.readouterr()
            assert main(["train", *args]) == 2
            line = _one_line_error(capsys)
            assert f"is in use by pid {os.getpid()} on host" in line and "another --out" in line
        assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and p.name != ".lock"} == before
    assert holder(run) is None and (run / ".lock").read_text() == ""  # released and emptied


def test_1_a_dead_holders_lock_is_taken_over(run, capsys):
    # What `kill -9` leaves: the file names its holder, but the kernel dropped the flock with the process.
    (run / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone", "since": "2026-01-01T00:00:00+00:00"}))
    assert holder(run) is None
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--total-steps", "96"]) == 0
    assert "taking over the lock of pid 999999 on host gone" in capsys.readouterr().err
    assert _iterations(run) == [1, 2, 3]
    # The resume rewrote config.json with the extended budget, so it agrees with the checkpoint again.
    assert json.loads((run / "config.json").read_text())["run"]["total_steps"] == 96
    assert config_differences(json.loads((run / "config.json").read_text()),
                              json.loads(load_checkpoint(run / "checkpoint.pt")["config"])) == []


def test_1_a_sweep_reports_a_locked_run_directory_as_busy(tmp_path):
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd", games="Boxing", seeds="1")
    spec = plan(cfg, [*TINY, "--total-steps", "32"])[0]
    spec.run_dir.mkdir(parents=True)
    with RunLock(spec.run_dir):
        classify(spec)
        assert spec.state == "busy" and f"pid {os.getpid()}" in spec.message
        assert plan(cfg, [*TINY, "--total-steps", "32"])[0].state == "busy"
    classify(spec)
    assert spec.state == "start"


def test_1_a_sweep_sharing_its_directory_with_another_says_busy_not_failed(tmp_path, capsys):
    # Two sweep processes over one directory (a second worker): the run the other one trains is not a failure,
    # and the exit code says nothing failed.
    out = tmp_path / "s"
    spec = plan(SweepConfig(out=out, methods="rnd", games="Boxing", seeds="1"), [*TINY, "--total-steps", "32"])[0]
    spec.run_dir.mkdir(parents=True)
    with RunLock(spec.run_dir):
        assert main(["sweep", "--out", str(out), "--methods", "rnd", "--games", "Boxing", "--seeds", "1",
                     *TINY, "--total-steps", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index(f"sweep {out}: 0 of 1 runs finished, 1 being trained by another process:")
    assert lines[at + 1].startswith(f"  busy {spec.name}: '{spec.run_dir}' is being trained by pid {os.getpid()}")
    assert not any("failed" in line for line in lines)


def test_1_a_run_taken_after_planning_is_busy_and_left_untouched(tmp_path, monkeypatch):
    # Two sweeps over one directory plan the same free run at the same instant; the second to start finds it
    # held, either before it starts prend train or (the race) when prend train fails on the lock.
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd", games="Boxing", seeds="1")
    spec = plan(cfg, [*TINY, "--total-steps", "32"])[0]
    spec.run_dir.mkdir(parents=True)
    with RunLock(spec.run_dir):
        result = execute_run(*_task(spec, 1, str(tmp_path)))
        assert result["state"] == "busy" and f"pid {os.getpid()}" in result["error"]
        assert sorted(p.name for p in spec.run_dir.iterdir()) == [".lock"]  # no status, log or config written
        free_then_held = iter([None])
        monkeypatch.setattr(RunDir, "holder", lambda self: next(free_then_held, f"pid {os.getpid()}"))
        result = execute_run(*_task(spec, 1, str(tmp_path)))  # prend train itself refuses: the lock is held
        assert result["state"] == "busy"  # and the run's status stays the holder's "running", never "failed"
        assert json.loads((spec.run_dir / "sweep_status.json").read_text())["state"] == "running"
        assert "in use by" in (spec.run_dir / "train.log").read_text()


def test_1_two_sweeps_launching_one_run_at_the_same_instant_leave_it_to_the_first(tmp_path, monkeypatch):
    # Both planned the run free; prend train takes its own lock only seconds after it starts, so the second
    # sweep used to start one too, write its "running" status over the first's and append the refusal to the
    # run's train.log. The launch lock, held by the first sweep until its prend train ends, keeps it out.
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd", games="Boxing", seeds="1")
    spec = plan(cfg, [*TINY, "--total-steps", "32"])[0]
    spec.run_dir.mkdir(parents=True)
    started = []
    monkeypatch.setattr(execution, "_train", lambda *args, **kw: started.append(args) or 0)
    with RunLock(spec.run_dir, LAUNCH_LOCK):  # the first sweep, between starting prend train and its lock
        classify(spec)
        assert spec.state == "busy" and f"pid {os.getpid()}" in spec.message  # a later plan sees it too
        with monkeypatch.context() as m:  # this sweep looked an instant before the first took its lock
            m.setattr(RunDir, "holder", lambda self: None)
            result = execute_run(*_task(spec, 1, str(tmp_path)))
        assert result["state"] == "busy" and f"pid {os.getpid()}" in result["error"]
        assert started == [] and sorted(p.name for p in spec.run_dir.iterdir()) == [".launch.lock"]
    result = execute_run(*_task(spec, 1, str(tmp_path)))  # once the first has finished, the lock is free
    assert result["state"] == "finished" and len(started) == 1
    assert holder(spec.run_dir, LAUNCH_LOCK) is None  # released, so the next sweep's plan is not "busy"


# ------------------------------------------------------------------------------------------ 2. NaN
def test_2_a_diverging_predictor_stops_with_one_line_and_writes_no_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    assert main(["train", *TINY, "--method", "rnd-lr", "--predictor-lr-scale", "1e9", "--checkpoint-every", "1",
                 "--total-steps", "256", "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert "training diverged at iteration 1" in line and "losses/predictor" in line
    assert "no checkpoint was written" in line
    assert not (out / "checkpoint.pt").exists()


def test_2_a_nan_in_a_later_iteration_keeps_the_last_good_checkpoint(run, monkeypatch, capsys):
    import prend.agent.trainer as trainer_module

    real_update = trainer_module.ppo_update

    def poisoned(policy, *args, **kwargs):  # the 4th iteration's update meets a NaN weight
        if poisoned.calls == 1:
            with torch.no_grad():
                next(policy.parameters())[0].fill_(math.nan)
        poisoned.calls += 1
        return real_update(policy, *args, **kwargs)

    poisoned.calls = 0
    monkeypatch.setattr(trainer_module, "ppo_update", poisoned)
    good = (run / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--total-steps", "160"]) == 2
    line = _one_line_error(capsys)
    assert "training diverged at iteration 4: non-finite losses/" in line
    assert "its last good checkpoint (iteration 3) is kept" in line
    assert load_checkpoint(run / "checkpoint.pt")["iteration"] == 3 and _iterations(run) == [1, 2, 3]
    assert (run / "checkpoint.pt").read_bytes() != good  # iteration 3's (finite) checkpoint was written
    assert holder(run) is None


def test_2_a_checkpoint_holding_nan_is_refused_on_resume(run, capsys):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    name = next(iter(state["policy"]))
    state["policy"][name] = state["policy"][name].clone().index_fill_(-1, torch.tensor([0]), math.inf)
    torch.save(state, run / "checkpoint.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--total-steps", "96"]) == 2
    assert f"holds non-finite values (policy.{name})" in _one_line_error(capsys)


def test_2_first_nonfinite_names_the_tensor():
    ok = torch.ones(3)
    assert first_nonfinite([("a", ok), ("b", None), ("c", torch.zeros(2, dtype=torch.long))]) is None
    assert first_nonfinite([("a", ok), ("b", torch.tensor([1.0, math.nan])), ("c", torch.tensor([math.inf]))]) == "b"
    assert first_nonfinite([("big", torch.full((4,), 3e38))]) == "big"  # a norm that overflows is divergence too


# ---------------------------------------------------------------------------------- 3. metrics, rerun
def test_3_a_rerun_after_a_crash_before_the_first_checkpoint_starts_clean(tmp_path, capsys):
    out = tmp_path / "crashed"
    out.mkdir()
    # What `kill -9` before the first checkpoint leaves: config, metrics of 5 iterations, no checkpoint.
    (out / "metrics.jsonl").write_text("".join(json.dumps({"iteration": i, "charts/global_step": 32 * i}) + "\n"
                                               for i in range(1, 6)))
    (out / "config.json").write_text("{}")
    (out / ".checkpoint.pt.abcd1234.tmp").write_bytes(b"half a checkpoint")
    assert main(["train", *TINY, "--total-steps", "64", "--out", str(out)]) == 0
    assert "never reached its first checkpoint; starting afresh" in capsys.readouterr().err
    assert _iterations(out) == [1, 2]
    assert not list(out.glob(".*.tmp"))
    assert json.loads((out / "config.json").read_text())["env"]["num_envs"] == 2


# ----------------------------------------------------------------------------- 4. torn line, temp files
def test_4_resume_drops_a_torn_last_line_and_removes_temp_files(run, capsys):
    info_before = (run / "run_info.json").read_text()
    # A broken line before the last: the resume refuses before changing anything.
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text("{not json\n" + good)
    assert main(["train", "--resume", str(run), "--total-steps", "96"]) == 2
    assert "is corrupt before its last line" in _one_line_error(capsys)
    assert (run / "run_info.json").read_text() == info_before
    # A torn last line (power loss mid-write) and the temp files of interrupted checkpoint writes.
    (run / "metrics.jsonl").write_text(good + '{"iteration": 3, "charts/glo')
    assert read_metrics(run / "metrics.jsonl")[-1]["iteration"] == 2  # readers skip it too
    for name in (".checkpoint.pt.x1y2z3.tmp", ".diagnostics.npz.q9.tmp"):
        (run / name).write_bytes(b"\0" * 1000)
    (run / "unrelated.tmp").write_text("not prend's")
    inode = (run / "metrics.jsonl").stat().st_ino
    assert main(["train", "--resume", str(run), "--total-steps", "96"]) == 0
    assert "dropped a torn last line" in capsys.readouterr().err
    assert _iterations(run) == [1, 2, 3]
    assert (run / "metrics.jsonl").stat().st_ino != inode  # replaced by a new file, not rewritten in place
    assert not list(run.glob(".*.tmp")) and (run / "unrelated.tmp").exists()
    assert len(json.loads((run / "run_info.json").read_text())["resumed"]) == 1


def test_4_truncate_metrics_replaces_the_file_only_when_records_go(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"iteration": i}) + "\n" for i in (1, 2, 3)))
    inode = path.stat().st_ino
    repair = truncate_metrics(path, 3)
    assert (repair.kept, repair.dropped, repair.torn) == (3, 0, False) and path.stat().st_ino == inode
    assert repair.message(path) is None
    repair = truncate_metrics(path, 1)
    assert (repair.kept, repair.dropped) == (1, 2) and path.stat().st_ino != inode
    assert path.read_text() == '{"iteration": 1}\n'
    # Cut right before its newline: dropped, or the next record appended would share its line.
    path.write_text('{"iteration": 1}\n{"iteration": 2}')
    assert [r["iteration"] for r in read_metrics(path)] == [1]
    assert truncate_metrics(path, 5).torn and path.read_text() == '{"iteration": 1}\n'


# ------------------------------------------------------------------------------------ 5. config truth
def test_5_an_edited_config_json_is_refused_on_resume_and_ignored_by_readers(run, tmp_path, capsys):
    config = json.loads((run / "config.json").read_text())
    config["intrinsic"]["method"] = "rnd-lr"
    (run / "config.json").write_text(json.dumps(config))
    assert main(["train", "--resume", str(run), "--total-steps", "96"]) == 2
    line = _one_line_error(capsys)
    assert 'intrinsic.method ("rnd-lr" in config.json, "rnd" in the checkpoint)' in line
    assert load_run(run).method == "rnd"  # prend report reads the checkpoint's config
    truth = load_checkpoint(run / "checkpoint.pt")["config"]
    spec = RunSpec("r", run, [], 64, json.loads(truth))
    classify(spec)
    assert spec.state in ("finished", "resume")  # the sweep compares with the checkpoint, not the edit
    spec = RunSpec("r", run, [], 64, config)
    classify(spec)
    assert spec.state == "conflict" and "intrinsic.method" in spec.message


# ------------------------------------------------------------------------------- 7. one-line errors
def test_7_bad_out_paths_fail_before_any_set_up(tmp_path, monkeypatch, capsys):
    import prend.train

    def no_set_up(*args, **kwargs):
        raise AssertionError("set-up started before --out was checked")

    monkeypatch.setattr(prend.train, "Trainer", no_set_up)
    (tmp_path / "file").write_text("x")
    for out, message in ((tmp_path / "file", "is an existing file"),
                         (tmp_path / "file" / "sub", "cannot create run directory"),
                         ("/proc/prend-run", "cannot create run directory")):
        assert main(["train", *TINY, "--out", str(out)]) == 2
        assert message in _one_line_error(capsys)


def test_7_a_full_disk_is_one_line_and_frees_the_lock(run, monkeypatch, capsys):
    import prend.train

    def full(trainer, run_dir):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "checkpoint.pt"))

    monkeypatch.setattr(prend.train, "save_run_state", full)
    assert main(["train", "--resume", str(run), "--total-steps", "96"]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("prend train: error: No space left on device") and "--resume" in line
    assert holder(run) is None


@pytest.mark.parametrize("text, message", [
    ('[env]\nnum_envs = "two"\n', "config field 'env.num_envs' must be an integer, got \"two\""),
    ("[run]\ntotal_steps = 256.7\n", "config field 'run.total_steps' must be an integer, got 256.7"),
    (b'[env]\ngame = "Box\xffing"\n', "is not UTF-8 text"),
])
def test_7_config_file_type_errors_are_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "c.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_7_an_integral_float_is_an_int():
    from prend.config import config_from_dict

    cfg = config_from_dict({"run": {"total_steps": 1e6}, "ppo": {"learning_rate": 1}})
    assert cfg.run.total_steps == 1_000_000 and isinstance(cfg.run.total_steps, int)
    assert isinstance(cfg.ppo.learning_rate, float)
    kwargs = config_from_dict({"env": {"game_kwargs": {"size": 6, "scale": 2.0}}}).env.game_kwargs
    assert kwargs == {"size": 6, "scale": 2.0} and isinstance(kwargs["scale"], float)  # a union with float keeps it
    with pytest.raises(PrendError, match="'env.game_kwargs.size' must be"):
        config_from_dict({"env": {"game_kwargs": {"size": [6]}}})
    with pytest.raises(PrendError, match="must be a finite number"):
        config_from_dict({"ppo": {"learning_rate": math.inf}}).validate()


def test_7_checkpoint_errors_say_what_is_wrong(run, tmp_path, capsys):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    # Missing its config.
    torch.save({k: v for k, v in state.items() if k != "config"}, run / "checkpoint.pt")
    assert main(["train", "--resume", str(run)]) == 2
    assert "has no config" in _one_line_error(capsys)
    # A network that does not match, written by this version: not blamed on another version.
    broken = dict(state, policy=dict(state["policy"]))
    broken["policy"].pop(next(iter(broken["policy"])))
    torch.save(broken, run / "checkpoint.pt")
    assert main(["train", "--resume", str(run)]) == 2
    line = _one_line_error(capsys)
    assert "does not match its config" in line and "version" not in line
    torch.save(dict(broken, version="0.0.1"), run / "checkpoint.pt")
    assert main(["train", "--resume", str(run)]) == 2
    assert "was written by prend 0.0.1" in _one_line_error(capsys)
    # A pickle that would run code.
    evil = tmp_path / "evil"
    evil.mkdir()
    torch.save({"format": "prend-checkpoint-v1", "x": _Evil()}, evil / "checkpoint.pt")
    assert main(["train", "--resume", str(evil)]) == 2
    line = _one_line_error(capsys)
    assert "holds a pickled object (posix.system) that prend refuses to load" in line
    assert "Weights only load failed" not in line


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_7_prend_games_lists_the_games_the_hint_names(capsys):
    assert main(["games"]) == 0
    out = capsys.readouterr().out
    assert "Boxing" in out and "MontezumaRevenge" in out and "Riverraid" in out


def test_7_sigterm_during_start_up_stops_cleanly_with_143(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "prend.cli", "train", *TINY, "--obs-norm-init-iters", "100000",
           "--total-steps", "64", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "run_info.json").exists():  # written just before the warm-up
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "stopped by SIGTERM during set-up" in err
    assert holder(out) is None and not (out / "checkpoint.pt").exists()
