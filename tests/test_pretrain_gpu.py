"""benchmarks/pretrain_gpu.sh on a machine without a GPU: options, loud failures, the budget arithmetic, the folder."""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "pretrain_gpu.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))

import pretrain_gpu as pg  # noqa: E402
import pretrain_gpu_budget as pgb  # noqa: E402
import pretrain_gpu_commands as pgc  # noqa: E402
import pretrain_gpu_outputs as pgo  # noqa: E402

from prend.nets.atari_pb import ResNetGN  # noqa: E402
from prend.nets.atari_pb_io import save_atari_pb_checkpoint  # noqa: E402
from prend.pretrain.collect import FORMAT  # noqa: E402

GPU_LINE = "GPU 0: NVIDIA H200 (UUID: GPU-fake)"


def _run(*args, path_dirs=(), cwd=None):
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=60)


def _bin(tmp_path, nvidia_smi=f"echo '{GPU_LINE}'", python=None):
    """A folder with a fake nvidia-smi and, optionally, a fake interpreter (a shell script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (("nvidia-smi", nvidia_smi), ("fakepy", python)):
        if body is not None:
            (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
            (bin_dir / name).chmod(0o755)
    return bin_dir


# An interpreter whose torch sees the GPU and that has every package; anything else it is asked to run, it
# only shows (the script's last step hands over to benchmarks/pretrain_gpu.py).
FAKE_PY_OK = """case "$2" in
  *cuda.is_available*) echo "torch 2.11.0+cu130, built for CUDA 13.0"; exit 0 ;;
  *find_spec*) echo ""; exit 0 ;;
esac
if [ "$1" = "-m" ]; then echo "PIP $*"; exit 0; fi
echo "PYTHONPATH $PYTHONPATH"
printf 'ARG %s\n' "$@"
"""


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--out"], "--out needs a value"),
    (["--arch", "resnet101"], "--arch must be resnet18, resnet34 or resnet50"),
    (["--width", "0"], "--width must be a positive number"),
    (["--width", "wide"], "--width must be a positive number"),
    (["--budget", "9m"], "--budget must be a positive integer"),
    (["--budget", "300"], "--budget 300 leaves under 240 s beside the probe's 180 s"),
    (["--batch-size", "1"], "--batch-size must be at least 2"),
    (["--frames-per-game", "-5"], "--frames-per-game must be a positive integer"),
    (["--seed", "x"], "--seed must be a non-negative integer"),
    (["--objective", "Pixel Pred"], "--objective must be a name such as siammae"),
    (["--data", "/nonexistent/frames"], "--data '/nonexistent/frames' is not a prend collect folder"),
])
def test_bad_options_exit_2_with_one_clear_line(args, message):
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert f"pretrain_gpu: {message}" in proc.stderr.strip().splitlines()[-1]


def test_wheels_must_hold_wheels(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = _run("--wheels", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "holds no .whl files" in proc.stderr


@pytest.mark.skipif(any(Path(d, "nvidia-smi").exists() for d in ("/usr/bin", "/bin")),
                    reason="this machine has nvidia-smi in /usr/bin")
def test_no_gpu_fails_loudly_before_anything_is_written(tmp_path):
    proc = _run("--out", str(tmp_path / "out"))
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [
        "pretrain_gpu: no NVIDIA GPU: nvidia-smi is not on PATH. This recipe needs a GPU and never falls back to "
        "the CPU."]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.work").exists()


def test_a_failing_or_empty_nvidia_smi_fails_loudly(tmp_path):
    bin_dir = _bin(tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the driver'; exit 9")
    proc = _run("--out", str(tmp_path / "out"), path_dirs=[bin_dir])
    assert proc.returncode == 3 and "nvidia-smi failed" in proc.stderr and "communicate" in proc.stderr
    _bin(tmp_path, "echo 'No devices were found'")
    proc = _run("--out", str(tmp_path / "out"), path_dirs=[bin_dir])
    assert proc.returncode == 3 and "lists no GPU" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_torch_without_cuda_stops_it_instead_of_running_on_the_cpu(tmp_path):
    bin_dir = _bin(tmp_path, python='echo "torch 2.13.0+cpu, built for CUDA None"; exit 1')
    proc = _run("--out", str(tmp_path / "out"), "--python", str(bin_dir / "fakepy"), path_dirs=[bin_dir])
    assert proc.returncode == 4, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "torch cannot use it (torch 2.13.0+cpu, built for CUDA None" in line and "Not running on the CPU" in line
    assert f"pretrain_gpu: {GPU_LINE}" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_missing_packages_are_named_with_the_wheels_remedy(tmp_path):
    bin_dir = _bin(tmp_path, python='case "$2" in *cuda*) echo "torch 2.11.0+cu130"; exit 0 ;; esac\n'
                                    'echo "ale_py tyro"; exit 1')
    proc = _run("--out", str(tmp_path / "out"), "--python", str(bin_dir / "fakepy"), path_dirs=[bin_dir])
    assert proc.returncode == 4
    assert "lacks ale_py tyro" in proc.stderr and "--wheels .whl" in proc.stderr


def test_with_a_gpu_it_installs_the_wheels_and_hands_over_with_absolute_paths(tmp_path):
    bin_dir = _bin(tmp_path, python=FAKE_PY_OK)
    wheels = tmp_path / "whl"
    wheels.mkdir()
    (wheels / "tyro-1.0.17-py3-none-any.whl").write_text("")
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "manifest.json").write_text("{}")
    proc = _run("--out", "res", "--python", "bin/fakepy", "--wheels", "whl", "--data", "frames", "--budget", "500",
                "--objective", "pixelpred", "--", "--dim", "256", path_dirs=[bin_dir], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    (pip,) = [line for line in lines if line.startswith("PIP ")]
    site = tmp_path / "res.work" / "site"
    assert pip.split()[1:] == ["-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                               "--no-cache-dir", "--upgrade", "--target", str(site),
                               str(wheels / "tyro-1.0.17-py3-none-any.whl")]
    assert f"PYTHONPATH {ROOT / 'src'}:{site}" in lines
    args = [line[4:] for line in lines if line.startswith("ARG ")]
    assert args[:2] == ["benchmarks/pretrain_gpu.py", "run"]
    value = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}
    assert value["--out"] == str(tmp_path / "res") and value["--work"] == str(tmp_path / "res.work")
    assert value["--data"] == str(frames) and value["--device"] == "cuda" and value["--objective"] == "pixelpred"
    assert 440 <= int(value["--budget-s"]) <= 500 and value["--probe-s"] == "180" and value["--gpu"] == GPU_LINE
    assert args[-3:] == ["--", "--dim", "256"] and "--probe-data" not in args
    assert (tmp_path / "res").is_dir()


def test_the_script_is_valid_bash_and_its_usage_lists_every_option():
    assert shutil.which("bash") and subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    usage = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True).stderr
    for option in ("--out", "--work", "--budget", "--objective", "--arch", "--width", "--batch-size",
                   "--frames-per-game", "--num-envs", "--data", "--probe-data", "--probe-seconds", "--seed",
                   "--python", "--wheels"):
        assert f"  {option} " in usage, option


# ------------------------------------------------------------------------------------------- arithmetic
def test_the_budget_is_split_into_phase_deadlines():
    assert pgb.deadlines(525) == pgb.Deadlines(collect=180, train=330, end=510)  # 525-15; -180 probe; -90-60
    assert pgb.deadlines(1000, probe_s=300, margin_s=0) == pgb.Deadlines(collect=550, train=700, end=1000)
    assert pgb.BUDGET_S == 9 * 60


def test_steps_come_from_the_measured_rate_and_what_is_left():
    events = [(5, 1000.0), (10, 1001.5), (20, 1004.0), (40, 1009.0)]  # the first 10 steps are left out
    assert pgb.steps_per_second(events) == pytest.approx(30 / 7.5)        # 4 steps/s
    assert pgb.startup_seconds(980.0, events, 4.0) == pytest.approx(18.75)  # 20 s, less 5 steps at 4/s
    with pytest.raises(ValueError):
        pgb.steps_per_second([(5, 1.0), (10, 2.0)])
    # 245 s left, 35.4 s start-up, three saves of 3 s: 200.6 s x 4 steps/s x 0.9 = 722.16
    assert pgb.steps_for_budget(245, 4.0, startup_s=35.4, save_s=3.0) == 722
    assert pgb.steps_for_budget(245, 4.0, startup_s=35.4, save_s=3.0, safety=1.0) == 802
    assert pgb.steps_for_budget(30, 4.0, startup_s=35.4) == 0
    assert pgb.save_every(722) == 241 and pgb.save_every(1) == 1
    assert pgb.thin(list(range(1000)), 100)[-1] == 999 and len(pgb.thin(list(range(1000)), 100)) == 100


def test_the_rate_is_read_from_the_trainers_tensorboard_wall_times(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tb"))
    for step in range(5, 45, 5):
        writer.add_scalar("loss/mse", 1.0 / step, step, walltime=500.0 + step / 8)
    writer.close()
    events = pgo.scalar_events(tmp_path / "tb", "loss/mse")
    assert [s for s, _, _ in events] == list(range(5, 45, 5)) and events[0][2] == pytest.approx(0.2)
    assert pgb.steps_per_second([(s, w) for s, w, _ in events]) == pytest.approx(8.0)
    assert pgo.scalar_events(tmp_path / "tb", "no/such") == [] and pgo.scalar_events(tmp_path / "none", "x") == []


def test_the_plan_collects_boxing_but_never_riverraid_and_probes_with_the_state_probe(tmp_path):
    opts = pgc.Options(out=tmp_path / "o", work=tmp_path / "w")
    features = {"collect_ram": True, "probe_state": True, "probe_classic_flag": True}
    games = pgc.collect_command(opts, features)
    games = games[games.index("--games") + 1:games.index("--frames-per-game")]
    assert "boxing" in games and "riverraid" not in games and len(set(games)) == len(games)
    from prend.pretrain.collect import DEFAULT_COLLECT_GAMES

    assert set(games) == {*DEFAULT_COLLECT_GAMES, "boxing"} - {"riverraid"}
    probe_frames = pgc.probe_collect_command(opts, features)
    assert probe_frames[3:] == ["collect", "--out", str(tmp_path / "w" / "probe_frames"), "--games", "boxing",
                                "riverraid", "--frames-per-game", "36000", "--num-envs", "16", "--seed", "1",
                                "--no-progress", "--ram"]
    names = [(name, command[4:]) for name, command, _ in pgc.probe_plan(opts, tmp_path / "b.pt", features)]
    assert [n for n, _ in names] == ["probe", "probe-state"]
    assert "--state" not in names[0][1] and names[1][1][-2:] == ["--state", "--no-classic"]
    old = {"collect_ram": False, "probe_state": False, "probe_classic_flag": False}
    assert "--ram" not in pgc.probe_collect_command(opts, old)
    assert [c[-1] for _, c, _ in pgc.probe_plan(opts, tmp_path / "b.pt", old)] == ["--no-progress"]
    features = pgc.prend_features()  # this prend's own flags
    assert set(features) == {"collect_ram", "probe_state", "probe_classic_flag", "objectives"}
    assert features["objectives"] is None or "siammae" in features["objectives"]


def test_the_recipe_collects_the_probe_set_the_docs_give():
    # The docs' state-probe set: 16 streams a game, each longer than a Boxing round under random play (1,786
    # agent steps), so the test episodes reach past the first screen; the recipe collects exactly that set.
    assert pgc.PROBE_FRAMES_PER_GAME // pgc.PROBE_NUM_ENVS == 2250 > 1786
    command = pgc.probe_collect_command(pgc.Options(out=Path("o"), work=Path("w")), {"collect_ram": True})
    flags = " ".join(a for a in command[command.index("--games"):] if a != "--no-progress")
    assert flags == "--games boxing riverraid --frames-per-game 36000 --num-envs 16 --seed 1 --ram"
    for doc in ("README.md", "docs/pretraining.md", "docs/reproduce.md"):
        assert flags in " ".join((ROOT / doc).read_text().replace("\\\n", " ").split()), doc


# ---------------------------------------------------------------------------------------------- the folder
def _fake_run(run_dir, step, steps, complete, batch=8):
    torch.manual_seed(0)
    config = {"arch": "resnet18", "width": 0.125, "steps": steps, "batch_size": batch, "seed": 3}
    extra = {"prend": {"config": config, "objective": "siammae", "loss_ema": 0.01}}
    backbone = ResNetGN("resnet18", 0.125)
    save_atari_pb_checkpoint(run_dir / "latest.pth", backbone=backbone, step=step, extra=extra)
    if complete:
        save_atari_pb_checkpoint(run_dir / "backbone.pth", backbone=backbone, step=step, extra=extra)
    (run_dir / "config.json").write_text(json.dumps(config))
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"))
    for s in range(10, step + 1, 10):
        writer.add_scalar("loss/mse_ema", 1.0 / s, s, walltime=100.0 + s)
        writer.add_scalar("perf/samples_per_s", 1000.0, s, walltime=100.0 + s)
    writer.close()


def test_finish_exports_a_stopped_runs_last_checkpoint_into_a_flat_folder(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _fake_run(run_dir, step=70, steps=100, complete=False)
    out = tmp_path / "out"
    out.mkdir()
    part = pgo.finish(run_dir, out, tmp_path / "work", {"gpu": GPU_LINE})
    assert sorted(p.name for p in out.iterdir()) == ["backbone.json", "backbone.pt"]
    assert part["step"] == 70 and part["steps"] == 100 and not part["completed"] and part["samples"] == 560
    assert part["checkpoint"].endswith("latest.pth") and part["loss_curve"][0] == [10, pytest.approx(0.1)]
    assert part["samples_per_s"] == 1000.0
    record = json.loads((out / "backbone.json").read_text())
    assert record["status"] == "stopped by the time budget at step 70 of 100 (the LR schedule did not finish)"
    assert record["arch"] == "resnet18" and record["width"] == 0.125 and record["gpu"] == GPU_LINE
    assert record["sha256"] == hashlib.sha256((out / "backbone.pt").read_bytes()).hexdigest()
    from prend.nets.atari_pb_io import load_atari_pb_backbone

    assert load_atari_pb_backbone(out / "backbone.pt", arch=None, width=None).width == 0.125
    _fake_run(run_dir, step=100, steps=100, complete=True)
    assert pgo.finish(run_dir, out, tmp_path / "work")["completed"]
    assert json.loads((out / "backbone.json").read_text())["status"] == "finished its 100 steps"
    with pytest.raises(FileNotFoundError):
        pgo.finish(tmp_path, out, tmp_path / "work")


def test_a_backbone_over_the_device_tools_file_limit_comes_back_in_parts(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _fake_run(run_dir, step=10, steps=10, complete=True)
    monkeypatch.setattr(pgo, "FILE_LIMIT", 20_000)
    monkeypatch.setattr(pgo, "PART_BYTES", 15_000)
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    info = pgo.finish(run_dir, out, work)["backbone"]
    whole = (work / "backbone.pt").read_bytes()
    parts = info["parts"]
    assert parts == [f"backbone.pt.part{i}" for i in range(math.ceil(len(whole) / 15_000))]
    assert not (out / "backbone.pt").exists() and pgo.backbone_file(out, work) == work / "backbone.pt"
    assert b"".join((out / p).read_bytes() for p in parts) == whole
    assert hashlib.sha256(whole).hexdigest() == info["sha256"] == json.loads((out / "backbone.json").read_text())[
        "sha256"]
    assert info["join"] == f"cat {' '.join(parts)} > backbone.pt"
    # ship joins the parts and writes package weights whose record describes the new file.
    shipped = pgo.ship(out, tmp_path / "weights" / "mine.pt")
    assert shipped["file"] == "mine.pt" and "parts" not in shipped and shipped["status"] == "finished its 10 steps"
    assert shipped["sha256"] == hashlib.sha256((tmp_path / "weights" / "mine.pt").read_bytes()).hexdigest()
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["mine.json", "mine.pt"]


# --------------------------------------------------------------------------------------- the whole pipeline
class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class _FakeJob:
    def __init__(self, clock, seconds, code=0, timed_out=False):
        self.clock, self.seconds, self.code, self.timed_out = clock, seconds, code, timed_out
        self.launched = 10_000.0 + clock.t

    def done(self):
        return True

    def wait(self, timeout_s):
        self.clock.t += self.seconds
        return pg.Outcome(self.code, self.timed_out, self.seconds, self.launched)


def _fake_launch(clock, calls, fail=()):
    """A stand-in for pg.launch: each prend command writes what the real one would, in scripted seconds."""

    def launch(command, log, stdout=None, env=None):
        calls.append(list(command))
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("fake output\n")
        verb = command[3]
        arg = {a: command[i + 1] for i, a in enumerate(command[:-1])}
        if verb == "collect":
            root = Path(arg["--out"])
            root.mkdir(parents=True, exist_ok=True)
            frames = 24_000 if "riverraid" in command else 260_000
            (root / "manifest.json").write_text(json.dumps(
                {"format": FORMAT, "games": {"g": {"chunks": [{"frames": frames, "bytes": 1}]}}}))
            return _FakeJob(clock, 60 if frames == 260_000 else 30)
        if verb == "pretrain" and arg["--out"].endswith("warmup"):
            if "warmup" in fail:
                return _FakeJob(clock, 20, code=1)
            job = _FakeJob(clock, 25)
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(Path(arg["--out"]) / "tb"))
            for s in range(5, 45, 5):  # 12 s of start-up, then 4 steps/s; 3 s of saving after step 40
                writer.add_scalar("loss/mse", 0.1, s, walltime=job.launched + 12 + s / 4)
            writer.close()
            return job
        if verb == "pretrain":
            run_dir = Path(arg["--out"])
            run_dir.mkdir(parents=True)
            steps = int(arg["--steps"])
            stopped = "pretrain" in fail
            _fake_run(run_dir, steps // 2 if stopped else steps, steps, complete=not stopped,
                      batch=int(arg["--batch-size"]))
            return _FakeJob(clock, 200, code=130 if stopped else 0, timed_out=stopped)
        if verb == "probe":
            state = "--state" in command
            figures = {"state_probe": {"mean_f1": {"pretrained": 0.4}}} if state else {
                "action_probe": {"pretrained": 0.2, "random_init": 0.1}}
            Path(arg["--out"]).write_text(json.dumps({**figures, "details": {"frames": 24_000}}))
            Path(stdout).write_text("state table\n" if state else "classic table\n")
            return _FakeJob(clock, 100 if state else 80)
        raise AssertionError(command)

    return launch


def _pipeline(tmp_path, monkeypatch, fail=()):
    clock, calls = _Clock(), []
    monkeypatch.setattr(pg, "launch", _fake_launch(clock, calls, fail))
    # Pipeline calls pretrain_games and prend_features by the names pretrain_gpu imported; collect_command calls
    # pretrain_games in its own module: each is patched where it is looked up.
    def games():
        return tuple(f"game{i}" for i in range(12)) + ("boxing",)

    monkeypatch.setattr(pgc, "pretrain_games", games)
    monkeypatch.setattr(pg, "pretrain_games", games)
    monkeypatch.setattr(pg, "prend_features", lambda: {"collect_ram": True, "probe_state": True,
                                                       "probe_classic_flag": True, "objectives": ["siammae"]})
    opts = pgc.Options(out=tmp_path / "out", work=tmp_path / "work", budget_s=525, frames_per_game=20_000,
                       gpu=GPU_LINE)
    return pg.Pipeline(opts, clock=clock), calls


def test_the_pipeline_plans_steps_from_the_warm_up_and_fills_the_folder(tmp_path, monkeypatch, capsys):
    pipeline, calls = _pipeline(tmp_path, monkeypatch)
    assert pipeline.run() == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["backbone.json", "backbone.pt", "log.txt", "probe.json",
                                                     "probe.md", "summary.json"]
    (pretrain,) = [c for c in calls if c[3] == "pretrain" and not c[c.index("--out") + 1].endswith("warmup")]
    # At 85 s (60 s collecting, 25 s warming up) 330 - 85 = 245 s are left before the probe; start-up 12 s plus
    # 234,000 frames more to load at 10,000/s; saves of 3 s; 4 steps/s: (245 - 35.4 - 9) x 4 x 0.9 = 722.16.
    assert pretrain[pretrain.index("--steps") + 1] == "722" and pretrain[pretrain.index("--save-every") + 1] == "241"
    assert pretrain[pretrain.index("--device") + 1] == "cuda" and pretrain[pretrain.index("--probe-data") + 1] == "None"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["result"] == "ok" and summary["problems"] == [] and summary["gpu"] == GPU_LINE
    warmup = summary["warmup"]
    assert warmup["steps_per_s"] == pytest.approx(4.0) and warmup["startup_s"] == pytest.approx(12)
    assert warmup["save_s"] == pytest.approx(3.0) and summary["plan"]["steps"] == 722
    assert summary["pretrain"]["completed"] and summary["pretrain"]["step"] == 722
    assert set(summary["phases"]) == {"collect", "warmup", "pretrain", "collect-probe", "probe", "probe-state"}
    assert summary["phases"]["pretrain"]["command"].startswith("prend pretrain --objective siammae")
    probe = json.loads((out / "probe.json").read_text())
    assert probe["action_probe"]["pretrained"] == 0.2 and probe["state_probe"]["mean_f1"]["pretrained"] == 0.4
    record = json.loads((out / "backbone.json").read_text())
    assert record["probe"]["state_probe"] and record["recipe"][0].startswith("prend collect")
    md = (out / "probe.md").read_text()
    assert "classic table\n\nstate table" in md and "722 of 722 steps x 512 pairs (finished)" in md
    assert "result: ok" in capsys.readouterr().out


def test_a_run_stopped_by_the_budget_keeps_its_last_checkpoint(tmp_path, monkeypatch):
    pipeline, _ = _pipeline(tmp_path, monkeypatch, fail=("pretrain",))
    assert pipeline.run() == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["result"] == "partial" and not summary["pretrain"]["completed"]
    assert summary["pretrain"]["step"] == 361 and (tmp_path / "out" / "backbone.pt").exists()
    assert "stopped at the budget's probe time" in summary["problems"][0]
    assert (tmp_path / "out" / "probe.json").exists()


def test_a_failed_warm_up_stops_before_the_long_run(tmp_path, monkeypatch):
    pipeline, calls = _pipeline(tmp_path, monkeypatch, fail=("warmup",))
    assert pipeline.run() == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["result"] == "failed" and "warm-up run failed" in summary["problems"][0]
    assert [c[3] for c in calls] == ["collect", "collect", "pretrain"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["log.txt", "summary.json"]


def test_an_objective_prend_does_not_know_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    pipeline, calls = _pipeline(tmp_path, monkeypatch)
    pipeline.opts.objective = "pixelpred"
    assert pipeline.run() == 2 and calls == []
    assert capsys.readouterr().err.strip() == "pretrain_gpu: --objective 'pixelpred' is not one prend pretrain " \
                                              "knows (siammae)"


def test_the_wheels_are_pinned_to_the_versions_tested_here():
    command = pg.wheel_command(Path(".whl"), pg.local_versions(), "python3")
    pins = [a for a in command if "==" in a]
    assert [p.split("==")[0] for p in pins] == list(pg.WHEEL_PACKAGES)
    assert "tyro==1.0.17" in pins  # constraints.txt's pin
    assert command[command.index("--python-version") + 1] == "3.12" and "--no-deps" in command


@pytest.mark.parametrize("module", [pg, pgb, pgc, pgo], ids=lambda m: m.__name__)
def test_the_helpers_examples_hold(module):
    import doctest

    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_a_job_over_its_deadline_gets_sigterm_and_time_to_save(tmp_path):
    # Like `prend pretrain`: on SIGTERM it saves, then exits 130; the job waits for that rather than killing it.
    child = ("import pathlib, signal, sys, time\n"
             "def save(*_):\n"
             f"    pathlib.Path({str(tmp_path / 'latest.pth')!r}).write_text('saved'); sys.exit(130)\n"
             "signal.signal(signal.SIGTERM, save)\n"
             "print('table', flush=True); print('progress', file=sys.stderr, flush=True); time.sleep(30)\n")
    job = pg.launch([sys.executable, "-c", child], tmp_path / "logs" / "x.log", tmp_path / "x.txt")
    outcome = job.wait(1.0)
    assert outcome.timed_out and outcome.code == 130 and not outcome.ok and 1.0 <= outcome.seconds < 10
    assert (tmp_path / "latest.pth").read_text() == "saved"
    assert (tmp_path / "x.txt").read_text() == "table\n" and "progress" in (tmp_path / "logs" / "x.log").read_text()
    quick = pg.launch([sys.executable, "-c", "pass"], tmp_path / "logs" / "y.log")
    while not quick.done():
        time.sleep(0.01)
    outcome = quick.wait(60)
    assert outcome.ok and outcome.seconds < 5
