"""benchmarks/gpu_check.sh on a machine without a GPU: argument handling, loud failures, the plan and the table."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402
import throughput  # noqa: E402


def _run(*args, path_dirs=(), env_extra=None):
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])}
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def _fake_nvidia_smi(tmp_path, output, code=0):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    tool.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--torch", "rocm"], "--torch must be cuda, pinned or cpu"),
    (["--setup", "maybe"], "--setup must be auto, yes or no"),
    (["--iterations", "0"], "--iterations must be a positive integer"),
    (["--out"], "--out needs a directory"),
    (["--wheels", "/tmp"], "--wheels installs into the interpreter of --python"),
])
def test_bad_arguments_exit_2_with_one_clear_line(args, message):
    proc = _run(*args)
    assert proc.returncode == 2
    assert f"gpu_check: {message}" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(any(Path(d, "nvidia-smi").exists() for d in ("/usr/bin", "/bin")),
                    reason="this machine has nvidia-smi in /usr/bin")
def test_no_nvidia_smi_fails_loudly_before_anything_runs(tmp_path):
    proc = _run("--out", str(tmp_path / "out"))
    assert proc.returncode == 3
    assert "no NVIDIA GPU" in proc.stderr and "never falls back to the CPU" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_failing_or_empty_nvidia_smi_fails_loudly(tmp_path):
    bin_dir = _fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed because it could not communicate with the driver", 9)
    proc = _run("--out", str(tmp_path / "out"), path_dirs=[bin_dir])
    assert proc.returncode == 3 and "nvidia-smi failed" in proc.stderr and "communicate" in proc.stderr
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'No devices were found'\n")
    proc = _run("--out", str(tmp_path / "out"), path_dirs=[bin_dir])
    assert proc.returncode == 3 and "lists no GPU" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure of a torch without CUDA")
def test_a_gpu_that_torch_cannot_use_fails_loudly_and_never_trains_on_the_cpu(tmp_path):
    bin_dir = _fake_nvidia_smi(tmp_path, "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-fake)")
    proc = _run("--out", str(tmp_path / "out"), "--python", sys.executable, path_dirs=[bin_dir])
    assert proc.returncode == 4, proc.stderr
    assert "torch cannot use it" in proc.stderr and torch.__version__ in proc.stderr
    assert "gpu_check: GPU 0: NVIDIA H100" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_the_plan_trains_every_method_on_cuda_and_measures_both_backbones_with_and_without_bf16(tmp_path):
    steps = gpu_check.plan(tmp_path, 2, throughput=True)
    trains = [command for name, command, _ in steps if name.startswith("train")]
    assert [c[c.index("--method") + 1] for c in trains] == ["rnd", "rnd-lr", "prend", "none"]
    for command in trains:
        assert command[command.index("--device") + 1] == "cuda"
        cfg_steps = int(command[command.index("--total-steps") + 1])
        assert cfg_steps == 2 * 8 * 128  # two iterations of 8 envs x 128 steps
    name, command, timeout = steps[-1]
    args = throughput.parse_args(command[2:])
    assert name == "throughput" and args.device == "cuda" and args.methods == ["rnd", "prend"]
    assert args.backbones == ["compact", "resnet50"] and args.configs == ["8x128", "128x128"]
    assert args.bf16 == ["off", "on"] and args.jsonl == tmp_path / "throughput.jsonl"
    train_caps = sum(cap for name, _, cap in steps if name.startswith("train"))
    assert train_caps <= gpu_check.BUDGET_S / 2 and timeout == gpu_check.BUDGET_S == 8 * 60
    # Each step gets its cap cut to what is left of the budget, so the whole check ends in time.
    assert gpu_check.step_timeout(timeout, deadline=1000.0, now=1000.0 - 200) == 200
    assert gpu_check.step_timeout(60, deadline=1000.0, now=999.5) == 1.0
    assert [n for n, _, _ in gpu_check.plan(tmp_path, 2, throughput=False)][-1] == "train none"


def test_the_table_reads_training_runs_and_throughput_rows(tmp_path):
    run_dir = tmp_path / "train-rnd"
    run_dir.mkdir()
    records = [{"charts/steps_per_second": sps, "time/rollout_s": 0.5, "time/intrinsic_s": 0.1, "time/update_s": u}
               for sps, u in ((1000.0, 0.2), (3000.0, 0.4))]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "run_info.json").write_text(json.dumps({"started": {"perf": {"threads": 16,
                                                                             "memory_format": "channels-last",
                                                                             "micro_batch": 256}}}))
    ok = gpu_check.train_record(run_dir, "train rnd", "ok")
    assert ok["steps_per_s"] == 2000.0 and ok["update_s"] == pytest.approx(0.3) and ok["threads"] == 16
    # A run the time budget stopped mid-write: its torn last line is left out, not a crash of the whole table.
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write('{"charts/steps_per_second": 9')
    torn = gpu_check.train_record(run_dir, "train rnd", "ok")
    assert torn["result"] == "ok" and torn["steps_per_s"] == 2000.0 and torn["update_s"] == pytest.approx(0.3)
    short = gpu_check.train_record(tmp_path / "train-none", "train none", "ok")  # nothing was written
    assert short["result"] == "FAILED: 0 iterations logged, not 2"
    lines = gpu_check.table([ok, short]).splitlines()
    assert lines[0].startswith("| check | result | method | envs x steps |") and len(lines) == 4
    assert lines[2] == ("| train rnd | ok | rnd | 8x128 | 16 | channels-last | 256 | off | 2,000 | — | 0.50 | 0.10 "
                        "| 0.30 | — | cuda |")
    assert lines[3].startswith("| train none | FAILED: 0 iterations logged, not 2 | none | 8x128 | — | — | — | off "
                               "| — |")


def test_throughput_rejects_cuda_without_a_gpu_and_bad_configs(capsys):
    if not torch.cuda.is_available():
        assert throughput.main(["--device", "cuda"]) == 2
        assert "--device cuda" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        throughput.parse_args(["--configs", "8by128"])
    assert err.value.code == 2


@pytest.mark.parametrize(("setting", "policy_and_backbone", "reward"),
                         [("off", False, False), ("on", True, False), ("reward", False, True), ("all", True, True)])
def test_throughputs_bf16_settings_map_to_the_three_autocast_flags(setting, policy_and_backbone, reward):
    args = throughput.parse_args(["--methods", "snd-vic", "--bf16", setting])
    cfg = throughput.build_config(args, "snd-vic", None, 8, 128, 1, "auto", setting)
    assert (cfg.ppo.bf16, cfg.intrinsic.backbone_bf16, cfg.intrinsic.reward_bf16) == (
        policy_and_backbone, policy_and_backbone, reward)


def test_a_throughput_table_reads_old_records_whose_bf16_is_a_bool():
    old = {"method": "rnd", "config": "8x128", "threads": 1, "memory_format": "channels-last",
           "bf16": True, "steps_per_s": 412.3, "env_steps_per_s": float("nan"), "rollout_s": 0.5,
           "intrinsic_s": 0.1, "update_s": 1.0, "backbone_fps": float("nan"), "device": "cpu"}
    new = {**old, "bf16": "reward"}
    lines = throughput.markdown_table([old, new]).splitlines()
    assert "| on |" in lines[2] and "| reward |" in lines[3]


def test_the_script_is_valid_bash():
    assert shutil.which("bash")
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_run_writes_one_table_and_fails_when_any_check_fails(tmp_path, monkeypatch, capsys):
    row = {"method": "rnd", "config": "8x128", "threads": 16, "memory_format": "channels-last", "micro_batch": 256,
           "bf16": True,
           "steps_per_s": 900.0, "env_steps_per_s": None, "rollout_s": 0.5, "intrinsic_s": 0.1, "update_s": 0.2,
           "backbone_fps": None, "device": "NVIDIA H100"}
    write_metrics = ("import json, pathlib, sys; d = pathlib.Path(sys.argv[1]); d.mkdir(); (d / 'metrics.jsonl')"
                     ".write_text(''.join(json.dumps({'charts/steps_per_second': 1e3, 'time/rollout_s': 1.0,"
                     " 'time/intrinsic_s': 0.0, 'time/update_s': 0.5}) + '\\n' for _ in range(2)))")
    steps = [("train rnd", [sys.executable, "-c", write_metrics, str(tmp_path / "train-rnd")], 60),
             ("train none", [sys.executable, "-c", "raise SystemExit(3)"], 60),
             ("throughput", [sys.executable, "-c", f"open({str(tmp_path / 'throughput.jsonl')!r}, 'w').write("
                                                   f"{json.dumps(json.dumps(row))} + '\\n')"], 60)]
    monkeypatch.setattr(gpu_check, "plan", lambda out, iterations, throughput: steps)
    assert gpu_check.run(tmp_path, 2, True, budget_s=100) == 1
    table = (tmp_path / "gpu_check.md").read_text().splitlines()
    assert len(table) == 5 and table[2].startswith("| train rnd | ok | rnd | 8x128 | — | — | — | off | 1,000 |")
    assert table[3].startswith("| train none | FAILED: exit 3, see ")
    assert table[4].startswith("| throughput | ok | rnd | 8x128 | 16 | channels-last | 256 | on | 900 |")
    assert "FAILED; table in" in capsys.readouterr().out


def test_with_a_gpu_the_script_hands_over_to_python_with_paths_from_the_callers_directory(tmp_path):
    bin_dir = _fake_nvidia_smi(tmp_path, "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-fake)")
    fake_python = bin_dir / "python-with-cuda"  # answers the CUDA probe yes, then shows what it was given
    fake_python.write_text('#!/bin/sh\nif [ "$1" = "-c" ]; then echo "torch fake"; exit 0; fi\necho "ARGS $*"\n')
    fake_python.chmod(0o755)
    env = {**os.environ, "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])}
    proc = subprocess.run(["bash", str(SCRIPT), "--out", "mine", "--python", "bin/python-with-cuda",
                           "--iterations", "3", "--skip-throughput"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = proc.stdout.strip().splitlines()[-1].split()
    assert args[:2] == ["ARGS", "benchmarks/gpu_check.py"]
    assert args[args.index("--out") + 1] == str(tmp_path / "mine") and (tmp_path / "mine").is_dir()
    assert args[args.index("--iterations") + 1] == "3" and "--skip-throughput" in args
    assert 60 <= int(args[args.index("--budget-s") + 1]) <= 480


def test_throughput_writes_one_record_per_row_naming_the_cpu_and_the_choices(tmp_path, capsys):
    jsonl = tmp_path / "rows.jsonl"
    assert throughput.main(["--methods", "none", "--configs", "2x8", "--iterations", "1", "--env-seconds", "0",
                            "--device", "cpu", "--torch-threads", "1", "--memory-formats", "contiguous",
                            "--jsonl", str(jsonl)]) == 0
    (row,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    cpu = throughput.cpu_summary()
    assert row["device"] == cpu and row["threads"] == 1 and row["memory_format"] == "contiguous"
    assert row["micro_batch"] == 4  # 16 samples in 4 minibatches: nothing smaller to choose
    assert row["steps_per_s"] > 0 and row["update_s"] > 0
    printed = capsys.readouterr().out.splitlines()
    assert cpu in printed[0] and printed[-1].startswith("none") and printed[-1].endswith(cpu)
    assert throughput.main(["--table", str(jsonl)]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| none | 2x8 | 1 | contiguous | 4 | off |")


def _fake_python(bin_dir, deps_missing=""):
    """An interpreter whose torch sees the GPU, lacking ``deps_missing``; it only shows anything else it is asked."""
    tool = bin_dir / "fakepy"
    tool.write_text(f"""#!/bin/sh
case "$2" in
  *cuda.is_available*) echo "torch 2.11.0+cu130, built for CUDA 13.0"; exit 0 ;;
  *find_spec*) echo "{deps_missing}"; [ -z "{deps_missing}" ]; exit $? ;;
esac
if [ "$1" = "-m" ]; then echo "PIP $*"; exit 0; fi
echo "PYTHONPATH $PYTHONPATH"
echo "ARGS $*"
""")
    tool.chmod(0o755)
    return tool


def test_wheels_must_hold_wheels(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = _run("--python", sys.executable, "--wheels", str(tmp_path / "empty"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"gpu_check: --wheels '{tmp_path / 'empty'}' holds no .whl files"


def test_missing_packages_are_named_with_the_wheels_remedy_before_anything_runs(tmp_path):
    bin_dir = _fake_nvidia_smi(tmp_path, "GPU 0: NVIDIA H200 (UUID: GPU-fake)")
    _fake_python(bin_dir, deps_missing="ale_py tyro")
    proc = _run("--out", str(tmp_path / "out"), "--python", str(bin_dir / "fakepy"), path_dirs=[bin_dir])
    assert proc.returncode == 4
    line = proc.stderr.strip().splitlines()[-1]
    assert "lacks ale_py tyro" in line and "--wheels .whl" in line
    assert not (tmp_path / "out").exists()


def test_with_wheels_it_installs_them_beside_out_and_puts_them_on_the_path(tmp_path):
    bin_dir = _fake_nvidia_smi(tmp_path, "GPU 0: NVIDIA H200 (UUID: GPU-fake)")
    _fake_python(bin_dir)
    wheels = tmp_path / "whl"
    wheels.mkdir()
    (wheels / "tyro-1.0.17-py3-none-any.whl").write_text("")
    env = {**os.environ, "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])}
    proc = subprocess.run(["bash", str(SCRIPT), "--out", "res", "--python", "bin/fakepy", "--wheels", "whl",
                           "--skip-throughput"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    (pip,) = [line for line in lines if line.startswith("PIP ")]
    site = tmp_path / "res.work" / "site"  # not under OUT: what comes back from a device is the results only
    assert pip.split()[1:] == ["-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                               "--no-cache-dir", "--upgrade", "--target", str(site),
                               str(wheels / "tyro-1.0.17-py3-none-any.whl")]
    assert f"PYTHONPATH {ROOT / 'src'}:{site}" in lines
    args = lines[-1].split()
    assert args[:2] == ["ARGS", "benchmarks/gpu_check.py"] and args[args.index("--out") + 1] == str(tmp_path / "res")
