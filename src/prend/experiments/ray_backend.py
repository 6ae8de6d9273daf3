"""The ``ray`` backend of ``prend sweep``: one Ray task per run, surviving the loss of a node.

What a cluster adds over one machine, and how each is handled:

- **Shared storage.** Every run writes its directory under the sweep's, which must be the same directory
  on every node. Before any run starts, each node that could take a run reads a token the driver wrote
  there (:func:`check_shared_storage`); a node that cannot see it stops the sweep in one line. A node that
  joins later is checked by each task before it trains (the sweep's ``sweep.json`` must be visible).
- **Node loss.** A task whose node or worker dies (a preempted instance, a crashed host) comes back from
  ``ray.get`` as a system error, not as a result. The driver then waits for the run's lock to be released
  (the training process dies with its task: :func:`prend.experiments.execution.execute_run` asks the kernel to
  send it SIGTERM when its parent goes), classifies the run again and resubmits it: a run with a
  checkpoint resumes from it on another node (``prend train --resume`` truncates the metrics written after
  the checkpoint, so no iteration is logged twice), one without starts afresh. Each retry is echoed and
  recorded in the run's result (``retries``: the node lost, the error, how it went on), up to
  ``max_retries`` per run. Ray's own task retries stay off: they would rerun the same command, a fresh start
  over a checkpoint.
- **Progress.** While runs are out, a line every ``progress_every`` seconds: runs done, running, failed,
  interrupted (when any: stopped by a signal on their node, resumed by the same command),
  retried, and the agent steps per second of all running runs together (from their ``metrics.jsonl``).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from prend.errors import PrendError
from prend.experiments.execution import execute_run
from prend.metrics import GLOBAL_STEP
from prend.rundir import RunDir, read_sweep_manifest

LOCK_WAIT_S = 120.0
"""How long the driver waits for a lost run's lock to be released before it gives up on retrying it."""


class NodeAnswer(NamedTuple):
    """What one node said when asked to read the storage token."""

    node_id: str
    host: str
    seen: str | None
    """The token's text as the node read it (``None``: no such file there, or no answer)."""


def connect(address: str | None) -> bool:
    """Connect to the cluster at ``address`` (unset: start a local instance); ``True`` if this call started it."""
    try:
        import ray
    except ImportError:
        raise PrendError("the ray backend needs Ray installed",
                         "pip install -c constraints.txt 'prend[ray]', or use --backend local") from None
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": a new instance even when another Ray runs on this machine (unset, ray.init would join it)
            ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False,
                     log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise PrendError(f"cannot connect to Ray at '{address}' ({err})",
                         "start the cluster (`ray start --head`) or pass the right --ray-address") from None
    return True


def _read_token(path: str) -> tuple[str, str | None]:
    """(host, the token's text or ``None``) on the node this runs on."""
    try:
        return socket.gethostname(), Path(path).read_text()
    except OSError:
        return socket.gethostname(), None


def probe_nodes(token: Path, min_cpus: float, timeout_s: float = 120.0) -> list[NodeAnswer]:
    """Ask every live node with at least ``min_cpus`` CPUs to read ``token`` (``seen=None``: it could not)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= min_cpus]
    read = ray.remote(num_cpus=0, max_retries=0)(_read_token)
    refs = {read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(str(token)): n for n in nodes}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    answers = []
    for ref, node in refs.items():
        host, seen = ray.get(ref) if ref in ready else (node.get("NodeManagerHostname", "?"), None)
        answers.append(NodeAnswer(node["NodeID"], host, seen))
    return answers


def check_shared_storage(out: Path, min_cpus: float,
                         probe: Callable[[Path, float], list[NodeAnswer]] | None = None) -> int:
    """Refuse (one line) a cluster where a node that could take a run does not see ``out``; returns the nodes seen.

    The driver writes a random token under ``out`` and every node reads it back through ``probe``.
    """
    token = Path(out) / f".storage-check-{uuid.uuid4().hex[:12]}"
    text = uuid.uuid4().hex
    token.write_text(text)
    try:
        answers = (probe or probe_nodes)(token, min_cpus)
    finally:
        token.unlink(missing_ok=True)
    blind = [a for a in answers if a.seen != text]
    if blind:
        where = ", ".join(f"{a.host} (node {a.node_id[:8]})" for a in blind)
        raise PrendError(f"{len(blind)} of {len(answers)} Ray nodes cannot see the sweep directory '{out}': {where}",
                         "put --out on storage every node mounts at the same path (NFS, a shared disk)")
    if not answers:
        raise PrendError(f"no live Ray node has the {min_cpus:g} CPUs a run reserves",
                         "add nodes or lower --threads-per-run")
    return len(answers)


def outcome(result: dict[str, Any]) -> str:
    """Which progress count a run's result adds to: ``done``, ``interrupted`` or ``failed``.

    An interrupted run was stopped by a signal on its node and checkpointed: the same command resumes it, so it
    is not counted as failed.

    >>> [outcome({"state": s}) for s in ("finished", "interrupted", "failed", "busy")]
    ['done', 'interrupted', 'failed', 'failed']
    """
    state = result.get("state")
    return "done" if state == "finished" else "interrupted" if state == "interrupted" else "failed"


def progress_counts(counts: dict[str, int], total: int, running: int, retried: int) -> str:
    """The counts of the sweep's progress line; interrupted runs are named only when there are some.

    >>> progress_counts({"done": 2, "failed": 0, "interrupted": 1}, 5, 2, 0)
    '2/5 done, 2 running, 0 failed, 1 interrupted, 0 retried'
    >>> progress_counts({"done": 0, "failed": 1, "interrupted": 0}, 3, 2, 1)
    '0/3 done, 2 running, 1 failed, 1 retried'
    """
    interrupted = f", {counts['interrupted']} interrupted" if counts["interrupted"] else ""
    return (f"{counts['done']}/{total} done, {running} running, {counts['failed']} failed{interrupted}, "
            f"{retried} retried")


def _execute_on_node(*args: Any) -> dict[str, Any]:
    """The Ray task: :func:`~prend.experiments.execution.execute_run` on this node, if it sees the sweep's directory."""
    import ray

    node = f"{socket.gethostname()} node {ray.get_runtime_context().get_node_id()[:8]}"
    run_dir = Path(args[1])
    if read_sweep_manifest(run_dir.parent) is None:  # a node that joined after the storage check
        return {"state": "failed", "returncode": None, "node": node,
                "error": f"{node} cannot see the sweep directory '{run_dir.parent}' (no sweep.json there)"}
    return execute_run(*args, node=node)


def _steps_done(run_dir: Path) -> int:
    """The last global step in ``run_dir``'s ``metrics.jsonl`` (0 when it has none)."""
    try:
        with (run_dir / "metrics.jsonl").open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [line for line in f.read().splitlines() if line.strip()]
        for line in reversed(lines):
            try:
                return int(json.loads(line)[GLOBAL_STEP])
            except (ValueError, KeyError):
                continue
    except OSError:
        pass
    return 0


def _wait_for_release(run_dir: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while RunDir(run_dir).holder() is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def run_ray(specs: list[Any], threads: int, gpus: float, on_done: Callable[[Any, dict[str, Any]], None], *,
            out: Path, task_args: Callable[[Any], tuple[Any, ...]], reclassify: Callable[[Any], None],
            max_retries: int = 3, progress_every: float = 30.0, echo: Callable[[str], None] = print,
            lock_wait_s: float = LOCK_WAIT_S) -> None:
    """Run ``specs`` (planned :class:`~prend.experiments.sweep.RunSpec` s) as Ray tasks on the connected cluster.

    ``task_args(spec)`` gives :func:`~prend.experiments.execution.execute_run`'s arguments for a spec in its
    current state; ``reclassify(spec)`` sets that state again from its directory (the sweep's ``classify``).
    """
    import ray

    check_shared_storage(out, threads)
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(_execute_on_node)
    pending = {task.remote(*task_args(s)): s for s in specs}
    retries: dict[str, list[dict[str, Any]]] = {}
    counts = {"done": 0, "failed": 0, "interrupted": 0}
    last = (time.monotonic(), sum(_steps_done(s.run_dir) for s in specs))
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=progress_every)
        if not done:
            done_steps = {s.name: _steps_done(s.run_dir) for s in specs}  # each metrics file read once
            now, steps = time.monotonic(), sum(done_steps[s.name] for s in pending.values())
            steps_all = sum(done_steps.values())
            rate = max(0, steps_all - last[1]) / max(now - last[0], 1e-9)
            last = (now, steps_all)
            echo(f"  ray: {progress_counts(counts, len(specs), len(pending), len(retries))}; "
                 f"{rate:,.0f} agent steps/s over all runs ({steps:,} steps in the running)")
            continue
        spec = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except ray.exceptions.RayTaskError as err:  # execute_run itself raised: a bug, not a lost node
            result = {"state": "failed", "returncode": None, "error": f"{type(err).__name__}: {err}"}
        except Exception as err:  # noqa: BLE001 - the node or worker died under the task
            status = RunDir(spec.run_dir).sweep_status() or {}
            lost = {"node": status.get("node", status.get("host", "?")), "error": type(err).__name__,
                    "at_step": _steps_done(spec.run_dir), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            retries.setdefault(spec.name, []).append(lost)
            if len(retries[spec.name]) <= max_retries and _wait_for_release(spec.run_dir, lock_wait_s):
                reclassify(spec)
                if spec.state in ("start", "resume"):
                    lost["then"] = spec.state
                    how = "resumes from its checkpoint" if spec.state == "resume" else "starts afresh (no checkpoint)"
                    echo(f"  RETRY {spec.name}: lost {lost['node']} ({lost['error']}) at step {lost['at_step']:,}; "
                         f"it {how} on another node (retry {len(retries[spec.name])} of {max_retries})")
                    pending[task.remote(*task_args(spec))] = spec
                    continue
                result = {"state": "finished" if spec.state == "finished" else "failed",
                          "error": spec.message or None}
            else:
                result = {"state": "failed", "returncode": None,
                          "error": f"{type(err).__name__} on {lost['node']}; not retried "
                                   f"({max_retries} retries used or its lock was not released)"}
            RunDir(spec.run_dir).write_sweep_status({**status, **result, "retries": retries[spec.name]})
        if spec.name in retries:
            result = {**result, "retries": retries[spec.name]}
        counts[outcome(result)] += 1
        on_done(spec, result)
