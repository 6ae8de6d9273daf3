import os
import shutil

import pytest
import torch

# Tests run on whatever cores CI has; two threads keep timings stable and results reproducible.
torch.set_num_threads(2)
os.environ.setdefault("TQDM_DISABLE", "1")

TINY = ["--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--probe-size", "8",
        "--probe-every", "1", "--no-progress"]


@pytest.fixture
def tiny_args():
    """Flags of a tiny Boxing run (2 envs x 16 steps)."""
    return list(TINY)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny Boxing run, trained once per test session: 2 iterations of 32 steps (TINY, with TensorBoard).

    Read it, never change it: a test that changes a run takes :func:`tiny_run_copy`.
    """
    from prend.cli import main

    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["train", *TINY, "--total-steps", "64", "--out", str(out)]) == 0
    return out


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path):
    """This test's own copy of :func:`tiny_run`, to change as it likes."""
    return shutil.copytree(tiny_run, tmp_path / "run")


@pytest.fixture(scope="session")
def ram_frames(tmp_path_factory):
    """480 Boxing frames with RAM labels (4 streams, episodes capped at 120 steps): the state probe's input."""
    from prend.pretrain.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("ram") / "d"
    collect(CollectConfig(out=root, games=("boxing",), frames_per_game=480, num_envs=4, chunk_frames=60,
                          max_episode_steps=120, seed=1, ram=True, progress=False))
    return root
