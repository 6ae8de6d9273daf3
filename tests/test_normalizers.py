import numpy as np
import torch

from prend.intrinsic.normalizers import RewardForwardFilter, RunningMeanStd


def test_running_mean_std_matches_numpy_over_a_known_sequence():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (5, 17, 1, 40)]
    rms = RunningMeanStd(shape=(4,))
    for b in batches:
        rms.update(torch.from_numpy(b))
    data = np.concatenate(batches)
    eps = 1e-4  # the baselines initial pseudo-count at mean 0, var 1
    n = len(data)
    mean = data.sum(0) / (n + eps)
    # population variance of the data plus the prior pseudo-sample (mean 0, var 1, weight eps)
    var = (eps * 1.0 + eps * (0 - mean) ** 2 + ((data - mean) ** 2).sum(0)) / (n + eps)
    # Float64 sums of 63 values in another order (batch by batch): 4e-16 apart under every kernel path of
    # scripts/test_kernels.sh; a float32 step or a wrong count or eps (1.6e-6 of the mean) moves them further.
    np.testing.assert_allclose(rms.mean.numpy(), mean, rtol=1e-10)
    np.testing.assert_allclose(rms.var.numpy(), var, rtol=1e-8)
    assert rms.count.item() == n + eps


def test_running_mean_std_chunking_is_exact():
    x = torch.randn(1000, 3, dtype=torch.float64)
    a, b = RunningMeanStd((3,)), RunningMeanStd((3,))
    a.update(x, chunk_size=7)
    b.update(x, chunk_size=1000)
    assert torch.allclose(a.mean, b.mean) and torch.allclose(a.var, b.var)


def test_reward_forward_filter_runs_over_time_per_env_and_persists():
    f = RewardForwardFilter(gamma=0.9, num_envs=2)
    r = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    out = f(r)
    expected = [[1.0, 0.0], [0.9, 2.0], [0.81 + 1.0, 1.8 + 1.0]]
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float64))
    # the next rollout continues from the last filtered value (never reset at episode ends)
    out2 = f(torch.tensor([[0.0, 0.0]]))
    assert torch.allclose(out2, torch.tensor([[0.9 * 1.81, 0.9 * 2.8]], dtype=torch.float64))


def test_normalisation_matches_a_numpy_transcription_of_the_original():
    from prend.config import IntrinsicConfig
    from prend.intrinsic import make_rnd

    rnd = make_rnd(IntrinsicConfig(), num_envs=3, gamma=0.99, rom=None)
    rng = np.random.default_rng(1)
    # original: rffs = [rff.update(rew) for rew in buf_rews_int.T]  (buf is (envs, steps): loop over time)
    rewems = None
    count, mean, var = 1e-4, 0.0, 1.0
    for _ in range(3):
        raw = rng.random((5, 3)) * 4  # (time, envs)
        got = rnd.normalize(torch.from_numpy(raw).float())
        rffs = []
        for rew in raw:
            rewems = rew if rewems is None else rewems * 0.99 + rew
            rffs.append(rewems)
        rffs = np.array(rffs).ravel()
        bm, bv, bc = rffs.mean(), rffs.var(), len(rffs)
        delta, tot = bm - mean, count + bc
        mean, var = mean + delta * bc / tot, (var * count + bv * bc + delta**2 * count * bc / tot) / tot
        count = tot
        np.testing.assert_allclose(got.numpy(), raw / np.sqrt(var), rtol=1e-5)
