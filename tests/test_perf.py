"""Per-machine speed choices: CPU detection, the start-up check, and that no choice changes the numbers."""

import json

import pytest
import torch

from prend.agent import perf
from prend.agent.perf import choose_perf, cpu_info, cpu_summary, thread_candidates
from prend.agent.trainer import Trainer
from prend.cli import main
from prend.train import parse_train_args

ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx fma avx2 bmi2 sha_ni

processor\t: 1
model name\t: something else
flags\t\t: avx512f
"""
SAPPHIRE_RAPIDS = """processor\t: 0
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8
"""


def test_cpu_info_reads_the_model_and_vector_extensions_of_the_first_processor():
    zen3 = cpu_info(ZEN3)
    assert zen3["model"] == "AMD EPYC 7B13 (family 25, model 1)"
    assert zen3["vector"] == ["avx2"] and not zen3["bf16_native"]  # processor 1's avx512f is not read
    spr = cpu_info(SAPPHIRE_RAPIDS)
    assert spr["vector"] == ["avx2", "avx512f", "avx512_bf16", "amx_bf16"] and spr["bf16_native"]
    assert cpu_summary(spr).endswith("avx2 avx512f avx512_bf16 amx_bf16")


def test_cpu_info_degrades_without_proc_cpuinfo():
    info = cpu_info("")
    assert info["model"] and info["vector"] == [] and not info["flags_known"]
    assert "vector extensions unknown" in cpu_summary(info)


def test_fixed_choices_are_taken_as_given_and_auto_ones_are_timed():
    fixed = choose_perf(torch.device("cpu"), 3, "contiguous")
    assert fixed["threads"] == 3 and fixed["memory_format"] == "contiguous" and not fixed["measured"]
    auto = choose_perf(torch.device("cpu"), 1, "auto")
    assert auto["threads"] == 1 and auto["measured"]
    assert set(auto["timings_ms"]) == {"1 threads, channels-last", "1 threads, contiguous"}
    assert auto["memory_format"] == min(("channels-last", "contiguous"),
                                        key=lambda f: auto["timings_ms"][f"1 threads, {f}"])
    assert thread_candidates(64) == [1, 32, 64]


def test_the_check_leaves_torch_threads_and_seeds_alone():
    torch.set_num_threads(2)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    perf._measure.cache_clear()  # time it now, not from an earlier test's cache
    choose_perf(torch.device("cpu"), 0, "auto")
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.rand(3), expected)


def _losses(tmp_path, tiny_args, *flags):
    cfg, _ = parse_train_args([*tiny_args, "--out", str(tmp_path), "--no-tensorboard", "--probe-size", "0", *flags])
    trainer = Trainer(cfg)
    trainer.start()
    records = [trainer.train_iteration() for _ in range(2)]
    conv = trainer.policy.torso[0][0].weight
    trainer.close()
    losses = [{k: v for k, v in r.items() if k.startswith(("losses/", "intrinsic/"))} for r in records]
    return losses, conv.is_contiguous(), trainer.perf


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """``method -> _losses(...)`` of the one reference run (1 thread, channels-last, whole minibatches) per method.

    The memory-format and micro-batch tests compare against the same run: trained once per method, not per test.
    """
    from conftest import TINY

    cache = {}

    def get(method):
        if method not in cache:
            cache[method] = _losses(tmp_path_factory.mktemp(f"reference-{method}"), TINY, "--method", method,
                                    "--torch-threads", "1", "--memory-format", "channels-last")
        return cache[method]

    return get


@pytest.mark.parametrize("method", ["rnd", "prend"])
def test_a_runs_losses_agree_across_memory_formats(tmp_path, tiny_args, method, reference_run):
    reference, cl_contiguous, _ = reference_run(method)
    losses, contiguous, _ = _losses(tmp_path, tiny_args, "--method", method, "--torch-threads", "1",
                                    "--memory-format", "contiguous")
    assert contiguous and not cl_contiguous  # the layout really differs
    _assert_close(losses, reference)


def test_a_runs_losses_agree_across_thread_counts(tmp_path, tiny_args):
    # One update step per iteration: on a busy machine every extra-thread step can take a second.
    flags = ("--update-epochs", "1", "--num-minibatches", "1", "--memory-format", "channels-last")
    reference, _, _ = _losses(tmp_path, tiny_args, *flags, "--torch-threads", "1")
    losses, _, perf_choice = _losses(tmp_path, tiny_args, *flags, "--torch-threads", "2")
    assert perf_choice["threads"] == 2 and torch.get_num_threads() == 2
    _assert_close(losses, reference)


@pytest.mark.parametrize("method", ["rnd", "prend"])
def test_a_runs_losses_agree_across_micro_batch_sizes(tmp_path, tiny_args, method, reference_run):
    # The tiny run's minibatch is 8 samples (32 per rollout, 4 minibatches): whole against pieces of 3, 3, 2.
    flags = ("--method", method, "--torch-threads", "1", "--memory-format", "channels-last")
    reference, _, whole = reference_run(method)  # these flags, whole minibatches
    losses, _, pieces = _losses(tmp_path, tiny_args, *flags, "--micro-batch", "3")
    assert (whole["micro_batch"], pieces["micro_batch"]) == (8, 3)
    assert whole["reward_chunk"] == 64  # the tiny rollout's 32 next observations in one pass
    _assert_close(losses, reference)


def _assert_close(losses, reference):
    assert reference[0]["losses/policy"] != 0 and reference[1]["intrinsic/raw_mean"] > 0
    for got, want in zip(losses, reference, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            # Float32 losses after 2 iterations through another conv algorithm, thread split or micro-batch sum:
            # up to 8e-6 apart (relative) on an AMD EPYC Zen 4; 1e-4 leaves a 12x margin for other CPUs.
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key


def test_run_info_records_the_cpu_and_the_choices(tmp_path, tiny_args):
    out = tmp_path / "run"
    assert main(["train", *tiny_args, "--total-steps", "32", "--out", str(out), "--no-tensorboard"]) == 0
    started = json.loads((out / "run_info.json").read_text())["started"]
    assert started["cpu"]["model"] == cpu_info()["model"]
    assert started["perf"]["threads"] >= 1 and started["perf"]["memory_format"] in ("channels-last", "contiguous")
    assert started["perf"]["measured"]  # both are auto by default
    assert started["perf"]["micro_batch"] == 8  # the tiny run's whole minibatch: nothing smaller to time
    assert started["perf"]["reward_chunk"] == perf.REWARD_CHUNK["cpu"] == 64


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line_naming_the_fix(tmp_path, tiny_args, capsys):
    assert main(["train", *tiny_args, "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda" in err[0] and "--device cpu" in err[0], err
    assert not (tmp_path / "r").exists()
