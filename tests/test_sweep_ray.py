"""``prend sweep --backend ray``: on a local Ray instance, and on a real multi-node Ray cluster
(``ray.cluster_utils.Cluster`` on 127.0.0.1) where a run whose node dies goes on from its checkpoint on another
node; a cluster whose nodes cannot see the sweep's directory is refused before any run starts.

Every Ray test lives in this file so that pytest-xdist (``--dist loadfile``) runs them one after another: two Ray
instances starting at once on a 2-core machine took minutes instead of seconds."""

from __future__ import annotations

import json
import threading
import time

import pytest

from prend.cli import main
from prend.experiments import ray_backend
from prend.experiments.sweep import SweepConfig, run_sweep

TINY = ["--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--probe-size", "8",
        "--probe-every", "1", "--no-tensorboard", "--checkpoint-every", "2"]
ITERATIONS = 6


@pytest.mark.slow
def test_ray_backend_runs_two_tiny_runs(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # not another test's
    try:
        cfg = SweepConfig(out=tmp_path / "ray", methods="rnd,rnd-lr", games="Boxing", seeds="1", backend="ray")
        results = run_sweep(cfg, [*TINY, "--total-steps", "32"], echo=lambda line: None)
    finally:
        ray.shutdown()
    assert [(r["name"], r["state"]) for r in results] == [("Boxing-rnd-s1", "finished"),
                                                           ("Boxing-rnd-lr-s1", "finished")]
    for r in results:
        status = json.loads((tmp_path / "ray" / r["name"] / "sweep_status.json").read_text())
        assert status["state"] == "finished" and status["returncode"] == 0
        assert (tmp_path / "ray" / r["name"] / "checkpoint.pt").exists()


def _node_of(run_dir) -> str:
    try:
        return json.loads((run_dir / "sweep_status.json").read_text()).get("node", "")
    except (OSError, ValueError):
        return ""


@pytest.mark.slow
def test_a_run_on_a_lost_node_resumes_from_its_checkpoint_on_another_node(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    # Keep every node and the driver on 127.0.0.1: unset, Ray swaps a loopback address for the host's own
    # (read at import, hence the constant as well as the variable the nodes' processes inherit).
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    # A head that runs nothing and two one-CPU workers: the two runs go one to each worker.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
    workers = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    out, lines, results = tmp_path / "sweep", [], {}
    cfg = SweepConfig(out=out, methods="rnd,rnd-lr", games="Boxing", seeds="1", backend="ray",
                      ray_address=cluster.address, threads_per_run=1, progress_every=1.0)
    args = [*TINY, "--total-steps", str(ITERATIONS * 32)]
    sweep = threading.Thread(target=lambda: results.update(r=run_sweep(cfg, args, echo=lines.append)))
    try:
        sweep.start()
        victim, deadline = None, time.monotonic() + 600
        while victim is None and time.monotonic() < deadline and sweep.is_alive():
            for run_dir in sorted(out.glob("Boxing-*")):
                node = _node_of(run_dir)
                if (run_dir / "checkpoint.pt").exists():
                    victim = next(((run_dir, w) for w in workers if node.endswith(w.node_id[:8])), None)
                    if victim:
                        break
            time.sleep(0.2)
        assert victim is not None, "no run reached its first checkpoint"
        lost_dir, lost_node = victim
        first_nodes = {_node_of(d) for d in out.glob("Boxing-*")}
        cluster.remove_node(lost_node, allow_graceful=False)
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")  # the replacement
        sweep.join(timeout=400)
        assert not sweep.is_alive()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert len(first_nodes) == 2  # the runs were spread over both workers
    by_name = {r["name"]: r for r in results["r"]}
    assert {r["state"] for r in by_name.values()} == {"finished"}
    lost = by_name[lost_dir.name]
    (retry,) = lost["retries"]
    assert retry["then"] == "resume" and retry["node"].endswith(lost_node.node_id[:8])
    assert not lost["node"].endswith(lost_node.node_id[:8])  # it finished elsewhere
    assert [r for r in by_name.values() if r is not lost and r.get("retries")] == []
    # It went on from its checkpoint, not from scratch, and no iteration was logged twice or lost.
    log = (lost_dir / "train.log").read_text()
    assert log.count("=== ") == 2 and f"--resume {lost_dir}" in log
    for run_dir in out.glob("Boxing-*"):
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["iteration"] for r in records] == list(range(1, ITERATIONS + 1))
        assert json.loads((run_dir / "sweep_status.json").read_text())["state"] == "finished"
    text = "\n".join(lines)
    assert f"RETRY {lost_dir.name}" in text and "resumes from its checkpoint" in text
    assert f"retried {lost_dir.name}" in text and "agent steps/s over all runs" in text
    manifest = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in manifest["runs"] if r.get("retries")] == [lost_dir.name]


def test_a_cluster_whose_nodes_cannot_see_the_sweep_directory_is_refused_before_any_run(tmp_path, monkeypatch,
                                                                                         capsys):
    seen_paths = []

    def probe(token, min_cpus):  # node b mounts no shared storage: the token is not there for it
        seen_paths.append(token)
        return [ray_backend.NodeAnswer("a" * 16, "host-a", token.read_text()),
                ray_backend.NodeAnswer("b" * 16, "host-b", None)]

    monkeypatch.setattr(ray_backend, "connect", lambda address: False)
    monkeypatch.setattr(ray_backend, "probe_nodes", probe)
    code = main(["sweep", "--out", str(tmp_path / "s"), "--methods", "rnd", "--games", "Boxing", "--seeds", "1",
                 "--backend", "ray", "--ray-address", "auto", *TINY, "--total-steps", "32"])
    err = capsys.readouterr().err
    assert code == 2 and "1 of 2 Ray nodes cannot see the sweep directory" in err and "host-b" in err
    assert not (tmp_path / "s" / "Boxing-rnd-s1").exists()  # no run started
    assert seen_paths and not seen_paths[0].exists()  # the token was cleaned up


def test_shared_storage_check_counts_the_nodes_that_see_it(tmp_path):
    answers = lambda token, cpus: [ray_backend.NodeAnswer(f"{i}" * 8, f"h{i}", token.read_text()) for i in range(3)]  # noqa: E731
    assert ray_backend.check_shared_storage(tmp_path, 1, probe=answers) == 3
    with pytest.raises(Exception, match="no live Ray node has the 4 CPUs"):
        ray_backend.check_shared_storage(tmp_path, 4, probe=lambda token, cpus: [])
    assert list(tmp_path.iterdir()) == []
