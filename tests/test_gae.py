import pytest
import torch

from prend.agent.gae import gae


def test_episodic_extrinsic_stream_matches_hand_computation():
    # Two envs, three steps; env 0's episode ends at step 1 (no bootstrap across it).
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    values = torch.tensor([[0.5, 1.0], [0.2, 0.0], [1.0, 2.0]])
    next_value = torch.tensor([3.0, -1.0])
    dones = torch.tensor([[False, False], [True, False], [False, False]])
    gamma, lam = 0.9, 0.8
    adv, ret = gae(rewards, values, next_value, dones, gamma, lam)
    # env 0: d2 = 2 + .9*3 - 1 = 3.7; d1 = 0 - 0.2 = -0.2 (done); d0 = 1 + .9*.2 - .5 = 0.68
    #        A2 = 3.7; A1 = -0.2; A0 = 0.68 + .72*(-0.2) = 0.536
    # env 1: d2 = 0 + .9*(-1) - 2 = -2.9; d1 = 1 + .9*2 - 0 = 2.8; d0 = 0 + 0 - 1 = -1
    #        A2 = -2.9; A1 = 2.8 + .72*(-2.9) = 0.712; A0 = -1 + .72*0.712 = -0.48736
    expected = torch.tensor([[0.536, -0.48736], [-0.2, 0.712], [3.7, -2.9]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, expected + values, atol=1e-6)


def test_non_episodic_intrinsic_stream_bootstraps_through_episode_ends():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.2], [1.0]])
    next_value = torch.tensor([3.0])
    gamma, lam = 0.9, 0.8
    adv, _ = gae(rewards, values, next_value, None, gamma, lam)
    # d2 = 3.7; d1 = 0 + .9*1 - .2 = 0.7; d0 = 0.68
    # A2 = 3.7; A1 = 0.7 + .72*3.7 = 3.364; A0 = 0.68 + .72*3.364 = 3.10208
    assert adv.squeeze(1).tolist() == pytest.approx([3.10208, 3.364, 3.7], abs=1e-5)
    episodic, _ = gae(rewards, values, next_value, torch.tensor([[False], [True], [False]]), gamma, lam)
    assert episodic[1, 0].item() == pytest.approx(-0.2)


def test_lambda_one_gives_discounted_monte_carlo_return():
    rewards = torch.rand(5, 3)
    values = torch.rand(5, 3)
    next_value = torch.rand(3)
    _, ret = gae(rewards, values, next_value, None, gamma=0.7, lam=1.0)
    expected = next_value.clone()
    for t in reversed(range(5)):
        expected = rewards[t] + 0.7 * expected
    assert torch.allclose(ret[0], expected, atol=1e-5)
