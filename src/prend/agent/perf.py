"""Per-machine speed choices: which CPU this is, and how many threads and which conv memory layout to use.

None of these choices changes what is computed, only how fast: the same run under another choice gives the
same losses up to float rounding (``tests/test_perf.py``). Choices that do change the numbers, bfloat16
autocast (``--bf16``, ``--backbone-bf16``), stay opt-in even where the CPU has native bfloat16 (AMX,
AVX512-BF16); :func:`cpu_info` says whether it has.

With ``run.torch_threads 0`` or ``run.memory_format auto``, :func:`choose_perf` times the policy's forward
and backward pass at the run's minibatch size (:func:`probe_batch`) under each candidate and keeps the
fastest (about 1-2 s on the 2-core machines measured). Why measure rather than read the machine: on a CPU
shared with other jobs one torch thread can be several times faster than two (OpenMP's threads wait on each
other while a core is busy elsewhere), and channels-last convolutions won on both CPUs measured so far but
are not guaranteed to everywhere. The result is cached per process and recorded in ``run_info.json``.
Measurements: docs/performance.md.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from prend.errors import PrendError
from prend.nets.policy import CnnPolicy

VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
"""The CPU flags that decide kernel speed here: AVX2, AVX-512, and native bfloat16 (AVX512-BF16, AMX)."""

MEMORY_FORMATS = {"channels-last": torch.channels_last, "contiguous": torch.contiguous_format}
"""Config names of the conv memory layouts."""


def resolve_device(name: str) -> torch.device:
    """The torch device a ``--device`` value names (``prend train``, ``prend pretrain``, ``prend probe``).

    ``auto`` is CUDA when torch sees a GPU, else the CPU. A name torch does not know, or a CUDA device
    without a GPU, is a :class:`PrendError` naming the fix.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PrendError(f"unknown device {name!r}", "pass --device auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise PrendError(f"--device {name}, but torch {torch.__version__} ({build}) sees no CUDA GPU",
                         "run on a machine with an NVIDIA GPU and a CUDA build of torch (docs/reproduce.md, "
                         "GPU check), or pass --device cpu")
    return device


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    r"""The CPU's model, core count and vector extensions (from ``/proc/cpuinfo``; degrades elsewhere).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (read from the file when ``None``).

    Example:
        >>> text = "model name: AMD EPYC 7B13\ncpu family: 25\nmodel: 1\nflags: sse avx2 fma\n"
        >>> info = cpu_info(text)
        >>> info["model"], info["vector"], info["bf16_native"]
        ('AMD EPYC 7B13 (family 25, model 1)', ['avx2'], False)
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no flags, the model from platform
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key not in fields:
            fields[key] = value.strip()
        if not line.strip() and fields:  # the first processor's block is enough
            break
    model = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']}, model {fields['model']})"
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    vector = [flag for flag in VECTOR_FLAGS if flag in flags]
    return {"model": model, "cores": os.cpu_count(), "vector": vector,
            "bf16_native": "amx_bf16" in flags or "avx512_bf16" in flags,
            "flags_known": bool(flags), "torch_capability": torch.backends.cpu.get_cpu_capability()}


def cpu_summary(info: dict[str, Any] | None = None) -> str:
    """One line naming the CPU and its vector extensions, to print beside a figure.

    Example:
        >>> cpu_summary({"model": "X", "cores": 2, "vector": ["avx2"], "flags_known": True})
        'X, 2 cores, avx2'
    """
    info = info or cpu_info()
    vector = " ".join(info["vector"]) if info["flags_known"] else "vector extensions unknown"
    return f"{info['model']}, {info['cores']} cores, {vector or 'no avx2'}"


def thread_candidates(cores: int) -> list[int]:
    """Thread counts worth timing: one, half and all of the cores.

    Example:
        >>> thread_candidates(2), thread_candidates(16), thread_candidates(1)
        ([1, 2], [1, 8, 16], [1])
    """
    return sorted({1, max(1, cores // 2), cores})


def _timed_step(policy: CnnPolicy, obs: torch.Tensor) -> float:
    start = time.perf_counter()
    out = policy(obs)
    (out.logits.logsumexp(-1) + out.value_ext + out.value_int).sum().backward()
    return time.perf_counter() - start


@functools.cache
def _measure(threads: tuple[int, ...], formats: tuple[str, ...], rounds: int,
             batch: int) -> tuple[int, str, dict[str, float]]:
    """The fastest (threads, format), each candidate timed by its minimum over ``rounds``; with every time taken.

    Formats are compared at the fewest threads, interleaved; then more threads with the faster format, in
    ascending order, until a count is not faster than the best so far by 10% (on a busy machine a second
    thread can make a step 10x slower, so the slow candidates are timed once).
    """
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # building the probe network must not move the run's seeds
        torch.manual_seed(0)
        policy = CnnPolicy(4, 18)
        obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
    times: dict[tuple[int, str], float] = {}

    def time_candidate(count: int, name: str) -> float:
        torch.set_num_threads(count)
        elapsed = _timed_step(apply_memory_format(policy, name), obs)
        times[(count, name)] = min(times.get((count, name), elapsed), elapsed)
        return times[(count, name)]

    try:
        torch.set_num_threads(threads[0])
        for name in formats:  # oneDNN builds its kernels on first use: not part of any candidate's time
            _timed_step(apply_memory_format(policy, name), obs)
        for _ in range(rounds):
            for name in formats:
                time_candidate(threads[0], name)
        fmt = min(formats, key=lambda name: times[(threads[0], name)])
        best = threads[0]
        for count in threads[1:]:
            for _ in range(rounds):
                if time_candidate(count, fmt) > 1.5 * times[(best, fmt)]:
                    break
            if times[(count, fmt)] < 0.9 * times[(best, fmt)]:
                best = count
            else:
                break
    finally:
        torch.set_num_threads(before)
    return best, fmt, {f"{t} threads, {f}": round(1000 * s, 2) for (t, f), s in times.items()}


PROBE_BATCH = (16, 256)
"""Smallest and largest batch the start-up check times (see :func:`probe_batch`)."""


def probe_batch(minibatch: int) -> int:
    """The batch the start-up check times: the run's update minibatch, within :data:`PROBE_BATCH`.

    Thread counts must be compared at the work size they will run: at 16 frame stacks a second thread's
    start-up cost outweighs its share of the work (on the 2-core Sapphire Rapids, 2 threads timed 2x slower
    than 1 at batch 16 but 1.4x faster at 256 and 1,024, docs/performance.md), so a check at a tiny batch
    chose one thread for runs whose updates two threads make nearly twice as fast. Above 256 the ranking no
    longer changes, and the check stays under ~2 s.

    Example:
        >>> probe_batch(8), probe_batch(256), probe_batch(4096)
        (16, 256, 256)
    """
    return min(max(minibatch, PROBE_BATCH[0]), PROBE_BATCH[1])


def choose_perf(device: torch.device, torch_threads: int, memory_format: str, rounds: int = 3,
                batch: int = 16) -> dict[str, Any]:
    """Resolve ``run.torch_threads`` (0: choose) and ``run.memory_format`` (``auto``: choose) for ``device``.

    On a GPU nothing is timed: torch keeps its thread count and convolutions run channels-last. On a CPU the
    ``auto`` choices are timed (see the module docstring); fixed ones are taken as given.

    Returns:
        ``{"threads", "memory_format", "measured", "timings_ms", "seconds"}``, JSON-ready for ``run_info.json``.
    """
    start = time.perf_counter()
    threads = torch_threads if torch_threads > 0 else None
    fmt = None if memory_format == "auto" else memory_format
    timings: dict[str, float] = {}
    if device.type != "cpu":
        threads, fmt = threads or torch.get_num_threads(), fmt or "channels-last"
    elif threads is None or fmt is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        thread_set = (threads,) if threads else tuple(thread_candidates(cores))
        format_set = (fmt,) if fmt else tuple(MEMORY_FORMATS)
        threads, fmt, timings = _measure(thread_set, format_set, rounds, batch)
    return {"threads": threads, "memory_format": fmt, "measured": bool(timings), "timings_ms": timings,
            "seconds": round(time.perf_counter() - start, 3)}


def apply_memory_format(module: torch.nn.Module, name: str) -> torch.nn.Module:
    """Lay ``module``'s conv weights out as ``name`` (inputs follow: torch runs a conv in its weight's layout)."""
    return module.to(memory_format=MEMORY_FORMATS[name])
