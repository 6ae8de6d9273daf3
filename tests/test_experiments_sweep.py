import json
import os
import subprocess
import sys

import pytest

from prend.checkpoint import sha256_file
from prend.cli import main
from prend.config import config_to_dict
from prend.errors import PrendError
from prend.experiments.execution import ThreadPlan, _train, child_pythonpath, prend_command, thread_plan
from prend.experiments.sweep import SweepConfig, classify, load_sweep_file, parse_grid, plan, run_sweep
from prend.pretrain import shipped_backbone
from prend.rundir import RunDir
from prend.train import parse_train_args

TINY = ["--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--probe-size", "8",
        "--probe-every", "1", "--no-tensorboard"]


def test_plan_names_runs_and_gives_each_its_flags(tmp_path):
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd,rnd-lr", games="Boxing", seeds="1,2",
                      grid=("predictor-lr-scale=0.01,0.1",), workers=2)
    specs = plan(cfg, [*TINY, "--total-steps", "64"])
    assert [s.name for s in specs] == [
        "Boxing-rnd-predictor-lr-scale0.01-s1", "Boxing-rnd-predictor-lr-scale0.01-s2",
        "Boxing-rnd-predictor-lr-scale0.1-s1", "Boxing-rnd-predictor-lr-scale0.1-s2",
        "Boxing-rnd-lr-predictor-lr-scale0.01-s1", "Boxing-rnd-lr-predictor-lr-scale0.01-s2",
        "Boxing-rnd-lr-predictor-lr-scale0.1-s1", "Boxing-rnd-lr-predictor-lr-scale0.1-s2"]
    spec = specs[6]
    assert spec.config["intrinsic"]["predictor_lr_scale"] == 0.1 and spec.config["intrinsic"]["method"] == "rnd-lr"
    assert spec.config["run"]["seed"] == 1 and spec.total_steps == 64 and spec.state == "start"
    assert spec.run_dir == (tmp_path / "s" / spec.name).resolve()
    assert spec.config["run"]["progress"] is False  # progress bars would fill the logs
    shares = thread_plan(8, workers=2)
    assert spec.config["run"]["torch_threads"] == shares.torch_threads and shares.torch_threads in (0, 1)
    assert spec.config["env"]["env_threads"] == shares.threads >= 1


# --------------------------------------------------------------------------------------- a run's imports
def test_a_run_imports_modules_from_where_the_sweep_did_not_from_its_working_directory(tmp_path, monkeypatch):
    """Issue 32: runs started as ``python -m`` found a folder of their working directory before the plug-in."""
    on_path, only_here, work = (tmp_path / name for name in ("on_path", "only_here", "work"))
    for folder, names in ((on_path, ["sweep_mod_a"]), (only_here, ["sweep_mod_b"]), (work, ["sweep_mod_a",
                                                                                             "sweep_mod_b"])):
        folder.mkdir()
        for name in names:
            (folder / f"{name}.py").write_text(f"WHERE = {folder.name!r}\n")
    monkeypatch.setenv("PYTHONPATH", str(on_path))
    monkeypatch.syspath_prepend(str(on_path))
    monkeypatch.syspath_prepend(str(only_here))  # as `python -m prend.cli sweep` in that folder would have it
    for name in ("sweep_mod_a", "sweep_mod_b"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        __import__(name)
    extra = child_pythonpath(["sweep_mod_a", "sweep_mod_b", "json"])
    assert extra == (str(only_here.resolve()),)  # PYTHONPATH and the standard library the run has anyway
    script = "import sweep_mod_a, sweep_mod_b; print(sweep_mod_a.WHERE, sweep_mod_b.WHERE)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*extra, str(on_path)])}

    def imported(python: list[str]) -> str:
        return subprocess.run([*python, "-c", script], cwd=work, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert imported(prend_command()[:2]) == "on_path only_here"  # what this process imported
    assert imported([sys.executable]) == "work work"  # what `python -m prend.cli` found first


# ------------------------------------------------------------------------------------------------ threads
@pytest.mark.parametrize("runs, workers, threads, cores, pin, expected", [
    # Alone on the machine: the run times 1 thread against all the cores, as `prend train` does (issue 32:
    # `--workers 1` used to fix 2 threads on a busy 2-core machine, 30-60x slower than the 1 it would choose).
    (4, 1, 0, 2, True, ThreadPlan(1, 2, 0)),
    (1, 0, 0, 16, True, ThreadPlan(1, 16, 0)),
    # A core each: nothing to choose.
    (4, 0, 0, 2, True, ThreadPlan(2, 1, 1)),
    (3, 0, 0, 2, True, ThreadPlan(2, 1, 1)),
    # Several runs with several cores each: each times its threads on cores of its own.
    (2, 0, 0, 8, True, ThreadPlan(2, 4, 0, (frozenset(range(4)), frozenset(range(4, 8))))),
    (9, 3, 0, 8, True, ThreadPlan(3, 2, 0, (frozenset({0, 1}), frozenset({2, 3}), frozenset({4, 5})))),
    (2, 0, 0, 8, False, ThreadPlan(2, 4, 4)),  # Ray's tasks cannot be held to cores: the fixed split
    # --threads-per-run is kept as given.
    (4, 1, 2, 2, True, ThreadPlan(1, 2, 2)),
    (4, 2, 3, 8, True, ThreadPlan(2, 3, 3)),
])
def test_a_sweeps_runs_time_their_threads_as_prend_train_does_on_cores_of_their_own(runs, workers, threads, cores,
                                                                                     pin, expected):
    assert thread_plan(runs, workers, threads, cores=list(range(cores)), pin=pin) == expected


@pytest.mark.parametrize("workers, threads, torch_threads, env_threads", [(1, 0, 0, 2), (2, 0, 1, 1), (1, 1, 1, 1)])
def test_plan_hands_each_run_the_thread_choice(tmp_path, monkeypatch, workers, threads, torch_threads, env_threads):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine, as in issue 32
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd", games="Boxing", seeds="1,2", workers=workers,
                      threads_per_run=threads)
    for spec in plan(cfg, [*TINY, "--total-steps", "32"]):
        assert spec.fields["run"]["torch_threads"] == spec.config["run"]["torch_threads"] == torch_threads
        assert spec.fields["env"]["env_threads"] == spec.config["env"]["env_threads"] == env_threads
    spec = plan(cfg, [*TINY, "--total-steps", "32", "--torch-threads", "2"])[0]  # a train flag wins
    assert "torch_threads" not in spec.fields["run"] and spec.config["run"]["torch_threads"] == 2


def test_a_run_held_to_cores_times_threads_only_up_to_them(tmp_path):
    """The run's start-up check (prend.agent.perf) takes its candidates from the cores it may use."""
    core = min(os.sched_getaffinity(0))
    log = tmp_path / "log"
    script = ("import os; from prend.agent.perf import thread_candidates; "
              "print(sorted(os.sched_getaffinity(0)), thread_candidates(len(os.sched_getaffinity(0))))")
    with log.open("w") as handle:
        assert _train([sys.executable, "-c", script], handle, dict(os.environ), None, frozenset({core})) == 0
    assert log.read_text().split() == [f"[{core}]", "[1]"]


def test_a_prend_run_made_with_another_backbone_is_a_conflict_not_a_finished_run(tmp_path):
    cfg = SweepConfig(out=tmp_path / "s", methods="prend", games="Boxing", seeds="1")
    spec = plan(cfg, [*TINY, "--total-steps", "32"])[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "checkpoint.pt").write_bytes(b"not read by classify")
    (spec.run_dir / "config.json").write_text(json.dumps(spec.config))
    (spec.run_dir / "sweep_status.json").write_text(json.dumps({"state": "finished", "global_step": 32}))

    def recorded(sha):
        info = {"started": {"backbone": {"name": "compact", "sha256": sha}}, "resumed": []}
        (spec.run_dir / "run_info.json").write_text(json.dumps(info))
        classify(spec)
        return spec.state

    assert recorded(sha256_file(shipped_backbone()[0])) == "finished"
    assert recorded("0" * 64) == "conflict" and "another PreND backbone" in spec.message
    (spec.run_dir / "run_info.json").unlink()  # a run from before run_info.json: nothing to compare
    classify(spec)
    assert spec.state == "finished"


def test_a_run_saved_before_a_config_field_existed_is_still_finished_not_a_conflict(tmp_path):
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd", games="Boxing", seeds="1")
    spec = plan(cfg, [*TINY, "--total-steps", "32"])[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "checkpoint.pt").write_bytes(b"not read by classify")
    old = json.loads(json.dumps(spec.config))
    del old["ppo"]["anneal_lr"]  # a field added later, whose default is the old behaviour
    (spec.run_dir / "config.json").write_text(json.dumps(old))
    (spec.run_dir / "sweep_status.json").write_text(json.dumps({"state": "finished", "global_step": 32}))
    classify(spec)
    assert spec.state == "finished"
    old["ppo"]["learning_rate"] = 0.5  # a real difference still is one
    (spec.run_dir / "config.json").write_text(json.dumps(old))
    classify(spec)
    assert spec.state == "conflict" and "ppo.learning_rate" in spec.message


@pytest.mark.parametrize("args, message", [
    (["--seed", "3"], "--seed cannot be given"),
    (["--out", "x"], "--out cannot be given"),
    (["--predictor-lr-scale", "0.1"], "both a --grid field and a train flag"),
])
def test_plan_rejects_flags_the_sweep_owns(tmp_path, args, message):
    cfg = SweepConfig(out=tmp_path, methods="rnd", games="Boxing", seeds="1", grid=("predictor-lr-scale=0.1",))
    with pytest.raises(PrendError, match=message):
        plan(cfg, args)


def test_plan_rejects_bad_input_before_running_anything(tmp_path):
    with pytest.raises(PrendError, match="unknown game 'Boxng'"):
        plan(SweepConfig(out=tmp_path / "s", games="Boxng"), [])
    with pytest.raises(PrendError, match="needs --out"):
        plan(SweepConfig(), [])
    with pytest.raises(PrendError, match="bad --grid entry"):
        parse_grid(["predictor-lr-scale"])
    with pytest.raises(PrendError, match="^the train flags of run 'Boxing-rnd-s1': Unrecognized options: "
                                         "--num-envz, 2: did you mean --num-envs"):
        plan(SweepConfig(out=tmp_path / "s", games="Boxing", methods="rnd", seeds="1"), ["--num-envz", "2"])
    assert not (tmp_path / "s").exists()


def test_sweep_file_with_cli_overrides(tmp_path, capsys):
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(f"""
methods = ["rnd", "prend"]
games = ["Boxing"]
seeds = [1, 2, 3]
out = "{tmp_path / 'from-file'}"
[grid]
predictor-lr-scale = [0.01, 0.1]
[train]
num-envs = 2
num-steps = 16
norm-adv = true
""")
    cfg, train_args = load_sweep_file(sweep_file)
    assert cfg.methods == "rnd,prend" and cfg.seeds == "1,2,3" and cfg.grid == ("predictor-lr-scale=0.01,0.1",)
    assert train_args == ["--num-envs", "2", "--num-steps", "16", "--norm-adv"]
    # Flags override the file; --dry-run writes nothing.
    assert main(["sweep", "--file", str(sweep_file), "--seeds", "5", "--methods", "rnd", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "Boxing-rnd-predictor-lr-scale0.1-s5" in out and "--norm-adv" in out
    assert not (tmp_path / "from-file").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "rnd"}))
    with pytest.raises(PrendError, match="unknown key"):
        load_sweep_file(bad)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """A real sweep: Boxing trains (one iteration); CartPole is not an image env, so its run fails."""
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    lines = []
    cfg = SweepConfig(out=out, methods="rnd", games="Boxing,CartPole-v1", seeds="1", workers=2)
    results = run_sweep(cfg, [*TINY, "--total-steps", "32"], echo=lines.append)
    return cfg, out, results, lines


@pytest.mark.slow
def test_a_failed_run_is_reported_with_its_log_and_does_not_stop_the_others(local_sweep):
    cfg, out, results, lines = local_sweep
    by_name = {r["name"]: r for r in results}
    assert by_name["Boxing-rnd-s1"]["state"] == "finished"
    failed = by_name["CartPole-v1-rnd-s1"]
    assert failed["state"] == "failed" and failed["returncode"] == 2
    assert "not an RGB-image env" in (out / "CartPole-v1-rnd-s1" / "train.log").read_text()
    text = "\n".join(lines)
    assert "FAILED CartPole-v1-rnd-s1" in text and str(out / "CartPole-v1-rnd-s1" / "train.log") in text
    assert "not an RGB-image env" in text  # the log's last line, for a quick look
    run_dir = out / "Boxing-rnd-s1"
    assert {"checkpoint.pt", "metrics.jsonl", "diagnostics.npz", "train.log", "sweep_status.json"} <= \
        {p.name for p in run_dir.iterdir()}
    assert "done: 32 agent steps" in (run_dir / "train.log").read_text()
    manifest = json.loads((out / "sweep.json").read_text())
    assert {r["name"]: r["state"] for r in manifest["runs"]} == {"Boxing-rnd-s1": "finished",
                                                                  "CartPole-v1-rnd-s1": "failed"}


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_resumes_to_a_larger_budget(local_sweep):
    cfg, out, _, _ = local_sweep
    log = out / "Boxing-rnd-s1" / "train.log"
    before = log.read_text()
    only_boxing = SweepConfig(out=out, methods="rnd", games="Boxing", seeds="1")
    lines = []
    results = run_sweep(only_boxing, [*TINY, "--total-steps", "32"], echo=lines.append)
    assert results[0]["state"] == "skipped" and log.read_text() == before
    assert "1 finished (skipped)" in lines[0]
    results = run_sweep(only_boxing, [*TINY, "--total-steps", "64"], echo=lines.append)
    assert results[0]["state"] == "finished"
    assert f"--resume {out / 'Boxing-rnd-s1'} --total-steps 64" in log.read_text()
    records = [json.loads(line) for line in (out / "Boxing-rnd-s1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2]
    # A changed config is not silently resumed.
    results = run_sweep(only_boxing, [*TINY, "--total-steps", "64", "--learning-rate", "3e-4"], echo=lines.append)
    assert results[0]["state"] == "conflict" and "ppo.learning_rate" in results[0]["error"]


def test_grid_mode_each_varies_one_field_at_a_time_and_skips_fields_a_method_ignores(tmp_path):
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd,prend", games="Boxing", seeds="1", grid_mode="each",
                      grid=("feature-norm=true", "target-norm=center,whiten", "predictor-lr-scale=1"))
    specs = plan(cfg, [*TINY, "--total-steps", "64"])
    assert [s.name for s in specs] == [
        "Boxing-rnd-s1",  # RND ignores PreND's variants and has no predictor learning rate of its own
        "Boxing-prend-s1", "Boxing-prend-feature-normtrue-s1", "Boxing-prend-target-normcenter-s1",
        "Boxing-prend-target-normwhiten-s1", "Boxing-prend-predictor-lr-scale1-s1"]
    configs = [s.config["intrinsic"] for s in specs[1:]]
    assert [c["feature_norm"] for c in configs] == [False, True, False, False, False]
    assert [c["target_norm"] for c in configs] == ["none", "none", "center", "whiten", "none"]
    assert [c["predictor_lr_scale"] for c in configs] == [0.01, 0.01, 0.01, 0.01, 1.0]


def test_each_run_gets_a_config_file_that_resolves_to_the_planned_config(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text("[ppo]\nlearning_rate = 0.0003\n[run]\ntorch_threads = 7\n")
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd,prend", games="Boxing,prend/DeepSea-v0", seeds="2",
                      grid=("predictor-lr-scale=0.1,1", "norm-adv=false"), threads_per_run=3)
    specs = plan(cfg, ["--config", str(base), "--num-envs", "4", "--total-steps", "64"])
    assert len(specs) == 8
    for spec in specs:
        args = spec.command_args()
        assert args[:2] == ["--config", str(spec.run_dir / "sweep_config.json")]
        assert args[2:] == ["--num-envs", "4", "--total-steps", "64"]  # the user's flags, nothing re-spelt
        spec.run_dir.mkdir(parents=True)
        RunDir(spec.run_dir).write_sweep_config(spec.fields)
        config, _ = parse_train_args(args)  # what the run's `prend train` will train with
        assert config_to_dict(config) == spec.config
        assert config.ppo.learning_rate == 0.0003 and config.run.torch_threads == 3  # the sweep's over the file's
        assert config.ppo.norm_adv is False and config.run.seed == 2 and config.run.out == spec.run_dir
        assert config.env.frame_skip == (1 if config.env.game == "prend/DeepSea-v0" else 4)  # protocol defaults
    assert [s.config["intrinsic"]["predictor_lr_scale"] for s in specs[:2]] == [0.1, 1.0]
    with pytest.raises(PrendError, match="bad --grid value: config field 'intrinsic.target_norm'"):
        plan(SweepConfig(out=tmp_path / "t", games="Boxing", grid=("target-norm=centre",)), [])
    with pytest.raises(PrendError, match="names no config field 'predictor-lr-scael'"):
        plan(SweepConfig(out=tmp_path / "t", games="Boxing", grid=("predictor-lr-scael=1",)), [])


@pytest.mark.slow
def test_a_sweeps_run_trains_with_the_config_file_it_was_handed(local_sweep):
    _, out, _, _ = local_sweep
    run = RunDir(out / "Boxing-rnd-s1")
    fields = json.loads(run.sweep_config_path.read_text())
    assert fields["intrinsic"]["method"] == "rnd" and fields["run"]["out"] == str(run.path)
    assert run.config_file()["run"]["seed"] == fields["run"]["seed"] == 1
    started = next(line for line in run.train_log_path.read_text().splitlines() if line.startswith("==="))
    assert f"prend.cli train --config {run.sweep_config_path} " in started  # the start (a rerun may resume it)


@pytest.mark.slow
def test_a_killed_local_sweep_stops_its_runs_which_checkpoint_and_resume(tmp_path):
    """SIGKILL to the sweep: its run gets SIGTERM from the kernel (PR_SET_PDEATHSIG), checkpoints and stops."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "s"
    run = RunDir(out / "prend_DeepSea-v0-none-s1")
    command = [sys.executable, "-m", "prend.cli", "sweep", "--out", str(out), "--methods", "none",
               "--games", "prend/DeepSea-v0", "--seeds", "1", "--workers", "1", "--threads-per-run", "1",
               "--num-envs", "2", "--num-steps", "16", "--checkpoint-every", "1", "--probe-every", "0",
               "--no-tensorboard", "--total-steps", "10000000"]
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run.path / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert run.holder() is not None, "the run never started"
        os.kill(sweep.pid, signal.SIGKILL)  # killed outright: no handler runs, the kernel tells the run
        sweep.wait(timeout=30)
        deadline = time.time() + 60
        while run.holder() is not None and time.time() < deadline:
            time.sleep(0.2)
        assert run.holder() is None, "the run trained on after its sweep was killed"
    finally:
        sweep.kill()
    log = run.train_log_path.read_text()
    assert "stopping after this iteration (checkpointing)" in log and "continue with: prend train --resume" in log
    stopped_at = len(run.path.joinpath("metrics.jsonl").read_text().splitlines())
    assert main(["sweep", *command[4:-1], str(32 * (stopped_at + 1))]) == 0  # resumes it, one iteration more
    records = [json.loads(line) for line in run.path.joinpath("metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(1, stopped_at + 2))


@pytest.mark.slow
@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signalled_sweep_checkpoints_its_run_starts_no_other_and_records_them_interrupted(tmp_path, signum):
    """Ctrl-C (SIGINT to the terminal's whole process group) or `kill` (SIGTERM to the sweep alone).

    The run has its own process group, so it gets the signal once, from the sweep: one signal checkpoints, a
    second would stop it without saving. Then the same command resumes both runs.
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "s"
    first, second = RunDir(out / "prend_DeepSea-v0-none-s1"), RunDir(out / "prend_DeepSea-v0-none-s2")
    command = [sys.executable, "-m", "prend.cli", "sweep", "--out", str(out), "--methods", "none",
               "--games", "prend/DeepSea-v0", "--seeds", "1,2", "--workers", "1", "--threads-per-run", "1",
               "--num-envs", "2", "--num-steps", "16", "--checkpoint-every", "1", "--probe-every", "0",
               "--no-tensorboard", "--total-steps", "10000000"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)  # its own group, as a terminal gives a command
    try:
        deadline = time.time() + 120
        while not (first.path / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert first.holder() is not None, "the run never started"
        if signum == "SIGINT":
            os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C does
        else:
            os.kill(sweep.pid, signal.SIGTERM)
        output, _ = sweep.communicate(timeout=90)
    finally:
        sweep.kill()
    assert sweep.returncode == 128 + signal.Signals[signum], output
    log = first.train_log_path.read_text()
    assert "stopping after this iteration (checkpointing)" in log and "stopped by" not in log  # once only
    status = first.sweep_status()
    steps = len(first.path.joinpath("metrics.jsonl").read_text().splitlines())
    assert status["state"] == "interrupted" and status["signal"] == signum and status["global_step"] == 32 * steps
    assert not second.path.exists() or not (second.path / "metrics.jsonl").exists(), "a run started while stopping"
    assert f"INTERRUPTED prend_DeepSea-v0-none-s1 by {signum} at step" in output
    assert "interrupted: prend_DeepSea-v0-none-s1, prend_DeepSea-v0-none-s2; run the same command again" in output
    manifest = json.loads((out / "sweep.json").read_text())
    assert {r["name"]: r["state"] for r in manifest["runs"]} == {
        "prend_DeepSea-v0-none-s1": "interrupted", "prend_DeepSea-v0-none-s2": "interrupted"}
    if signum == "SIGTERM":
        return  # resuming is the same after either signal
    assert main(["sweep", *command[4:-1], str(32 * (steps + 1))]) == 0  # resumes one, starts the other
    records = [json.loads(line) for line in first.path.joinpath("metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(1, steps + 2))
    assert second.sweep_status()["state"] == "finished"
