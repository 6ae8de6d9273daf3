import hashlib
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from prend.agent.trainer import Trainer
from prend.checkpoint import load_checkpoint, sha256_file
from prend.cli import main
from prend.config import config_from_dict
from prend.metrics import read_metrics
from prend.pretrain import shipped_backbone
from prend.train import parse_train_args, record_run_info, run_info, source_commit, train

TIMING = ("time/", "charts/steps_per_second")


def _stable(records):
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in records]


def test_two_iterations_on_boxing_write_the_run_directory(tiny_run):
    out = tiny_run  # `prend train` of 2 iterations, 2 envs x 16 steps
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.jsonl", "tb", "checkpoint.pt", "diagnostics.npz"}
    records = read_metrics(out / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2]
    assert [r["charts/global_step"] for r in records] == [32, 64]
    assert records[-1]["charts/frames"] == 256
    for key in ("charts/episode_score_mean", "charts/episode_score_max", "charts/episode_length_mean",
                "intrinsic/raw_mean", "intrinsic/raw_std", "intrinsic/norm_mean", "intrinsic/norm_std",
                "losses/value_ext", "losses/value_int", "losses/policy", "losses/entropy", "losses/approx_kl",
                "losses/clip_fraction", "losses/predictor", "charts/steps_per_second", "intrinsic/probe_mean"):
        assert key in records[-1], key
    assert np.isfinite(records[-1]["losses/predictor"]) and records[-1]["intrinsic/raw_mean"] > 0
    # Every metric lies in one of the fixed namespaces (prend.metrics): TensorBoard groups by them.
    outside = {k for r in records for k in r if k != "iteration"
               and not k.startswith(("charts/", "losses/", "intrinsic/", "time/"))}
    assert not outside, outside
    assert list((out / "tb").glob("events.out.tfevents.*"))
    saved = json.loads((out / "config.json").read_text())
    assert saved["env"]["num_envs"] == 2 and saved["intrinsic"]["method"] == "rnd"
    diag = np.load(out / "diagnostics.npz")
    assert diag["frame"].shape == (2, 84, 84) and diag["probe_rewards"].shape == (2, 8)
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed"] == [] and info["started"]["torch"] == torch.__version__
    assert "backbone" not in info["started"]  # RND has none


def test_run_info_names_prends_backbone_by_sha256_and_lists_resumes(tmp_path, tiny_args):
    cfg, _ = parse_train_args([*tiny_args, "--method", "prend"])
    record_run_info(tmp_path, cfg, resumed=False)
    record_run_info(tmp_path, cfg, resumed=True)
    info = json.loads((tmp_path / "run_info.json").read_text())
    weights = shipped_backbone()[0]
    assert info["started"]["backbone"] == {"name": "compact", "weights": str(weights),
                                           "sha256": sha256_file(weights)}
    assert len(info["resumed"]) == 1 and info["resumed"][0]["backbone"] == info["started"]["backbone"]
    other = tmp_path / "mine.pt"
    other.write_bytes(b"any weights file")
    cfg, _ = parse_train_args([*tiny_args, "--method", "prend", "--backbone-weights", str(other)])
    assert run_info(cfg)["backbone"]["sha256"] == hashlib.sha256(b"any weights file").hexdigest()


def _tiny_config(tmp_path, tiny_args, *extra):
    cfg, _ = parse_train_args([*tiny_args, "--out", str(tmp_path / "run"), "--no-tensorboard", *extra])
    return cfg


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _flatten(v, f"{prefix}{i}.")
    else:
        yield prefix, obj


def test_state_after_loading_equals_state_saved(tiny_run):
    state = load_checkpoint(tiny_run / "checkpoint.pt")  # after 2 iterations of 32 steps
    restored = Trainer(config_from_dict(json.loads(state["config"])))
    restored.load_state_dict(state)
    again = dict(_flatten(restored.state_dict()))
    saved = dict(_flatten({k: v for k, v in state.items() if k not in ("format", "version")}))
    assert again.keys() == saved.keys()
    for key, value in saved.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(again[key], value), key
        else:
            assert again[key] == value, key
    assert restored.iteration == 2 and restored.global_step == 64
    assert restored.intrinsic.return_rms.count.item() > 1  # the normalisers came back too
    restored.close()


def test_two_resumes_of_one_checkpoint_produce_identical_metrics(tmp_path, tiny_args):
    cfg = _tiny_config(tmp_path, tiny_args, "--total-steps", "32", "--checkpoint-every", "1")
    run_dir = train(cfg)
    copies = []
    for name in ("a", "b"):
        copy = tmp_path / name
        shutil.copytree(run_dir, copy)
        assert main(["train", "--resume", str(copy), "--total-steps", "96"]) == 0
        copies.append(_stable(read_metrics(copy / "metrics.jsonl")))
    assert [r["iteration"] for r in copies[0]] == [1, 2, 3]
    assert copies[0] == copies[1]


def test_a_resume_may_change_how_it_computes_but_not_what_it_learns(tmp_path, tiny_args, capsys):
    pinned = ("--torch-threads", "1", "--memory-format", "contiguous", "--micro-batch", "8")
    first = train(_tiny_config(tmp_path / "first", tiny_args, *pinned, "--total-steps", "32"))
    same, other = shutil.copytree(first, tmp_path / "same"), shutil.copytree(first, tmp_path / "other")
    assert main(["train", "--resume", str(same), "--total-steps", "96", *pinned]) == 0
    reference = _stable(read_metrics(same / "metrics.jsonl"))
    # The same resume with micro-batches of 3 (each minibatch of 8 in passes of 3, 3 and 2): float rounding only.
    assert main(["train", "--resume", str(other), "--total-steps", "96", "--micro-batch", "3"]) == 0
    resumed = _stable(read_metrics(other / "metrics.jsonl"))
    assert resumed[0] == reference[0]  # trained before the resume
    for ours, theirs in zip(resumed[1:], reference[1:], strict=True):
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-6, nan_ok=True), key
    info = json.loads((other / "run_info.json").read_text())
    assert info["started"]["perf"]["micro_batch"] == 8 and info["resumed"][0]["perf"]["micro_batch"] == 3
    # The choice holds from that resume on: its checkpoints keep it, and a plain resume is not refused.
    assert json.loads(load_checkpoint(other / "checkpoint.pt")["config"])["run"]["micro_batch"] == 3
    assert main(["train", "--resume", str(other), "--total-steps", "128"]) == 0
    assert json.loads((other / "run_info.json").read_text())["resumed"][1]["perf"]["micro_batch"] == 3
    capsys.readouterr()
    assert main(["train", "--resume", str(other), "--micro-batch", "-1"]) == 2
    assert "micro_batch must be >= 0" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_kill_9_continues_from_the_checkpoint(tmp_path, tiny_args):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "prend.cli", "train", *tiny_args, "--checkpoint-every", "1",
           "--total-steps", "100000", "--out", str(out), "--no-tensorboard"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (out / "checkpoint.pt").exists() and len(read_metrics(out / "metrics.jsonl")) >= 3:
                break
            time.sleep(0.2)
    finally:
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
    saved_iteration = load_checkpoint(out / "checkpoint.pt")["iteration"]
    assert saved_iteration >= 1
    target = (saved_iteration + 2) * 32
    assert main(["train", "--resume", str(out), "--total-steps", str(target)]) == 0
    iterations = [r["iteration"] for r in read_metrics(out / "metrics.jsonl")]
    assert iterations == list(range(1, saved_iteration + 3))  # lines past the checkpoint were replaced


def test_sigterm_checkpoints_and_stops(tmp_path, tiny_args):
    import signal

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "prend.cli", "train", *tiny_args, "--checkpoint-every", "1000",
           "--total-steps", "100000", "--out", str(out), "--no-tensorboard"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143  # 128 + SIGTERM
    assert "--resume" in err
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["iteration"] == len(read_metrics(out / "metrics.jsonl"))


def test_run_info_names_the_git_commit_of_the_checkout_it_runs_from(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True)

    (tmp_path / "__init__.py").write_text("")
    assert source_commit(tmp_path) is None  # not in a checkout
    git("init", "-q")
    assert source_commit(tmp_path) is None  # in a checkout, but not tracked (e.g. a wheel inside a project)
    git("add", "__init__.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = git("rev-parse", "HEAD").stdout.strip()
    assert source_commit(tmp_path) == head
    (tmp_path / "__init__.py").write_text("changed = True\n")
    assert source_commit(tmp_path) == head + "+dirty"
