import os

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
