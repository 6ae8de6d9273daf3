"""Per-machine speed choices: which CPU this is, and how many threads and which conv memory layout to use.

None of these choices changes what is computed, only how fast: the same run under another choice gives the
same losses up to float rounding (``tests/test_perf.py``). Choices that do change the numbers, bfloat16
autocast (``--bf16``, ``--backbone-bf16``), stay opt-in even where the CPU has native bfloat16 (AMX,
AVX512-BF16); :func:`cpu_info` says whether it has.

With ``run.torch_threads 0``, ``run.memory_format auto`` or ``run.micro_batch 0``, :func:`choose_perf` times
the policy's forward and backward pass at the run's pass size (:func:`probe_batch`) under each candidate and
keeps the fastest, then the time per sample at a few micro-batch sizes (:func:`micro_candidates`) (about 1-2 s
on the 2-core machines measured). Why measure rather than read the machine: on a CPU
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


MICRO_BATCHES = (64, 128, 256)
"""Micro-batch sizes the start-up check times, below the run's minibatch (see :func:`micro_candidates`)."""


def micro_candidates(minibatch: int) -> tuple[int, ...]:
    """Micro-batch sizes worth timing for a run whose update minibatch is ``minibatch`` samples.

    Those of :data:`MICRO_BATCHES` below the minibatch, and the whole minibatch when it is no larger than
    the largest of them (beyond 256 samples a pass only got slower per sample on the CPUs measured, as its
    activations leave the caches: docs/performance.md). Empty when there is nothing to choose.

    Example:
        >>> micro_candidates(4096), micro_candidates(256), micro_candidates(100), micro_candidates(64)
        ((64, 128, 256), (64, 128, 256), (64, 100), ())
    """
    below = tuple(size for size in MICRO_BATCHES if size < minibatch)
    whole = (minibatch,) if minibatch <= MICRO_BATCHES[-1] else ()
    return below + whole if below else ()


@functools.cache
def _measure(threads: tuple[int, ...], formats: tuple[str, ...], rounds: int, batch: int,
             micros: tuple[int, ...] = ()) -> tuple[int, str, int, dict[str, float]]:
    """The fastest (threads, format, micro-batch), each candidate timed by its minimum over ``rounds``.

    Formats are compared at the fewest threads, interleaved (one 1.3x slower than the other is not timed
    again); then more threads with the faster format, in ascending order, until a count is not faster than
    the best so far by 10% (on a busy machine a second thread can make a step 10x slower, so the slow
    candidates are timed once); then, with those, the time per sample of consecutive passes over the largest
    of ``micros`` in pieces of each size (interleaved, at most 2 rounds; 0 when ``micros`` is empty). Returns
    every time taken, in ms per pass (``"<n> threads, <format>"``) and per sample (``"micro-batch <n>"``).
    """
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # building the probe network must not move the run's seeds
        torch.manual_seed(0)
        policy = CnnPolicy(4, 18)
        obs = torch.randint(0, 256, (max((batch, *micros)), 4, 84, 84), dtype=torch.uint8)
    times: dict[tuple[int, str], float] = {}
    per_sample: dict[int, float] = {}

    # The frames in each layout's memory order, as the rollout stores them for that layout.
    laid_out = {name: obs.contiguous(memory_format=MEMORY_FORMATS[name]) for name in formats}

    def time_candidate(count: int, name: str) -> float:
        torch.set_num_threads(count)
        elapsed = _timed_step(apply_memory_format(policy, name), laid_out[name][:batch])
        times[(count, name)] = min(times.get((count, name), elapsed), elapsed)
        return times[(count, name)]

    try:
        torch.set_num_threads(threads[0])
        for name in formats:  # oneDNN builds its kernels on first use: not part of any candidate's time
            _timed_step(apply_memory_format(policy, name), laid_out[name][:batch])
        timed = list(formats)
        for _ in range(rounds):
            for name in timed:
                time_candidate(threads[0], name)
            fastest = min(times[(threads[0], name)] for name in timed)
            timed = [name for name in timed if times[(threads[0], name)] < 1.3 * fastest]  # clear losers once
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
        torch.set_num_threads(best)
        apply_memory_format(policy, fmt)
        frames = laid_out[fmt]
        for size in micros:  # first use of each size: oneDNN's kernels for it
            _timed_step(policy, frames[:size])
        for _ in range(min(rounds, 2) if micros else 0):
            for size in micros:  # consecutive passes over the same samples, as the update makes them
                elapsed = sum(_timed_step(policy, piece) for piece in frames.split(size)) / len(frames)
                per_sample[size] = min(per_sample.get(size, elapsed), elapsed)
    finally:
        torch.set_num_threads(before)
    micro = min(per_sample, key=per_sample.__getitem__) if per_sample else 0
    return best, fmt, micro, ({f"{t} threads, {f}": round(1000 * s, 2) for (t, f), s in times.items()}
                              | {f"micro-batch {n}": round(1000 * s, 4) for n, s in per_sample.items()})


REWARD_CHUNK = {"cpu": 64, "other": 2048}
"""Observations per forward pass of the intrinsic reward over a rollout (no autograd), by device type.

On a CPU small passes keep the activations in cache: on the Sapphire Rapids machine PreND's compact
backbone ran 1,540 frames/s in passes of 64 against 1,075 at 256 and 900 at 512, while RND's reward was
within 10% from 64 to 256 (docs/performance.md). Not timed at start-up: one candidate's pass of PreND's
backbone costs about as much as the whole check. On a GPU large passes keep it busy.
"""

PROBE_BATCH = (16, 256)
"""Smallest and largest batch the start-up check times (see :func:`probe_batch`)."""


def probe_batch(minibatch: int) -> int:
    """The batch the start-up check times threads and layouts at: the run's pass size, within :data:`PROBE_BATCH`.

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
                minibatch: int = 16, micro_batch: int = 0) -> dict[str, Any]:
    """Resolve the speed choices for ``device`` and a run whose update minibatch is ``minibatch`` samples.

    ``torch_threads`` 0, ``memory_format`` ``auto`` and ``micro_batch`` 0 (``run.*``) mean: choose.

    On a GPU nothing is timed: torch keeps its thread count, convolutions run channels-last and a minibatch
    runs whole. On a CPU the automatic choices are timed (see the module docstring); fixed ones are taken as
    given.

    Returns:
        ``{"threads", "memory_format", "micro_batch", "reward_chunk", "measured", "timings_ms", "seconds"}``,
        JSON-ready for ``run_info.json``; ``micro_batch`` is the pass size the update will use (the minibatch
        when whole), ``reward_chunk`` the intrinsic reward's (:data:`REWARD_CHUNK`).
    """
    start = time.perf_counter()
    threads = torch_threads if torch_threads > 0 else None
    fmt = None if memory_format == "auto" else memory_format
    micros = () if micro_batch > 0 or device.type != "cpu" else micro_candidates(minibatch)
    micro = None if micros else min(micro_batch or minibatch, minibatch)
    timings: dict[str, float] = {}
    if device.type != "cpu":
        threads, fmt = threads or torch.get_num_threads(), fmt or "channels-last"
    elif threads is None or fmt is None or micro is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        thread_set = (threads,) if threads else tuple(thread_candidates(cores))
        format_set = (fmt,) if fmt else tuple(MEMORY_FORMATS)
        threads, fmt, timed_micro, timings = _measure(thread_set, format_set, rounds,
                                                      probe_batch(micro or minibatch), micros)
        micro = micro or timed_micro
    reward_chunk = REWARD_CHUNK["cpu" if device.type == "cpu" else "other"]
    return {"threads": threads, "memory_format": fmt, "micro_batch": micro, "reward_chunk": reward_chunk,
            "measured": bool(timings), "timings_ms": timings, "seconds": round(time.perf_counter() - start, 3)}


def apply_memory_format(module: torch.nn.Module, name: str) -> torch.nn.Module:
    """Lay ``module``'s conv weights out as ``name`` (inputs follow: torch runs a conv in its weight's layout)."""
    return module.to(memory_format=MEMORY_FORMATS[name])
