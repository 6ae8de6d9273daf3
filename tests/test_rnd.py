import math

import torch

from prend.agent.ppo import predictor_subset
from prend.agent.storage import RolloutStorage
from prend.config import IntrinsicConfig
from prend.intrinsic import make_rnd
from prend.intrinsic.rnd import LastFrameNormalizer
from prend.nets.rnd import rnd_predictor, rnd_target


def test_observation_normalisation_uses_last_frame_and_clips_to_five():
    enc = LastFrameNormalizer()
    obs = torch.zeros(4, 4, 84, 84, dtype=torch.uint8)
    obs[:, -1] = torch.arange(4, dtype=torch.uint8).view(4, 1, 1) * 10  # last frames 0, 10, 20, 30
    obs[:, 0] = 255  # an earlier frame that must be ignored
    enc.observe(obs)
    assert torch.allclose(enc.obs_rms.mean, torch.full((1, 84, 84), 15.0, dtype=torch.float64), atol=1e-3)
    x = enc.expand(enc.compact(obs))
    assert x.shape == (4, 1, 84, 84)
    std = math.sqrt(125 * 4 / (4 + 1e-4) + 1e-4 * (1 + 15**2) / (4 + 1e-4))
    assert torch.allclose(x[:, 0, 0, 0], torch.tensor([-15, -5, 5, 15]) / std, atol=1e-3)
    far = torch.full((1, 4, 84, 84), 255, dtype=torch.uint8)
    assert enc.expand(enc.compact(far)).max().item() == 5.0


def test_networks_match_the_original_architecture():
    target, predictor = rnd_target(), rnd_predictor()
    assert not any(p.requires_grad for p in target.parameters())
    convs = [m for m in target.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [(32, 8, 4), (64, 4, 2), (64, 3, 1)]
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in target.modules())
    linears = [m for m in predictor.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(3136, 512), (512, 512), (512, 512)]
    # orthogonal init with gain sqrt(2): W W^T = 2 I for a wide matrix
    w = linears[1].weight
    assert torch.allclose(w @ w.T, 2 * torch.eye(512), atol=1e-4)
    assert target(torch.zeros(2, 1, 84, 84)).shape == (2, 512)


def test_reward_is_mean_squared_error_on_next_observations():
    rnd = make_rnd(IntrinsicConfig(), num_envs=2, gamma=0.99, rom=None)
    obs = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8)
    rnd.observe(obs)
    out = rnd.reward(obs)
    x = rnd.encoder.expand(obs[:, -1:])
    expected = (rnd.target(x) - rnd.predictor(x)).square().mean(-1)
    assert torch.allclose(out.raw, expected.detach(), rtol=1e-5)
    assert out.update_input.dtype == torch.uint8 and out.update_input.shape == (6, 1, 84, 84)
    assert torch.allclose(rnd.predictor_loss(out.update_input, out.target), expected.mean(), rtol=1e-5)


def test_predictor_learns_and_target_stays_fixed():
    torch.manual_seed(0)
    rnd = make_rnd(IntrinsicConfig(), num_envs=1, gamma=0.99, rom=None)
    obs = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8)
    rnd.observe(obs)
    before = {k: v.clone() for k, v in rnd.target.state_dict().items()}
    out = rnd.reward(obs)
    opt = torch.optim.Adam(rnd.predictor.parameters(), lr=1e-3)
    for _ in range(20):
        opt.zero_grad()
        rnd.predictor_loss(out.update_input, out.target).backward()
        opt.step()
    assert rnd.reward(obs).raw.mean() < 0.5 * out.raw.mean()
    assert all(torch.equal(before[k], v) for k, v in rnd.target.state_dict().items())


def test_predictor_subset_is_drawn_before_the_forward_pass():
    storage = RolloutStorage(4, 2, (4, 84, 84), torch.device("cpu"))
    storage.store_intrinsic(torch.zeros(8), torch.arange(8).view(8, 1).float(), torch.arange(8).view(8, 1).float())
    batch = next(storage.minibatches(1, by_env=False, generator=torch.Generator().manual_seed(0)))
    inputs, targets = predictor_subset(batch, 0.25, torch.Generator().manual_seed(1))
    assert inputs.shape[0] == 2  # 25% of 8
    assert torch.equal(inputs, targets)  # rows stay paired


def test_next_observations_use_the_final_frame_where_an_episode_ended():
    st = RolloutStorage(3, 2, (1, 2, 2), torch.device("cpu"))
    st.obs[:] = torch.arange(3).view(3, 1, 1, 1, 1).to(torch.uint8)
    st.last_obs[:] = 3
    st.final_obs[(1, 0)] = torch.full((1, 2, 2), 99, dtype=torch.uint8)
    nxt = st.next_observations().view(3, 2, -1)[..., 0]
    assert nxt.tolist() == [[1, 1], [99, 2], [3, 3]]


def test_the_reward_does_not_depend_on_its_pass_size():
    # The trainer sets the pass size per device (prend.agent.perf.REWARD_CHUNK); the rewards, the stored
    # predictor inputs and the target outputs must come out the same whatever it is.
    torch.manual_seed(0)
    rnd = make_rnd(IntrinsicConfig(), num_envs=2, gamma=0.99, rom=None)
    obs = torch.randint(0, 256, (10, 4, 84, 84), dtype=torch.uint8)
    rnd.observe(obs)
    whole = rnd.reward(obs)
    rnd.chunk_size = 3  # 3, 3, 3, 1
    pieces = rnd.reward(obs)
    for got, want in zip(pieces, whole, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # errors of order 1, cancelling
