"""The PPO update: a minibatch's step must not depend on how many micro-batches its gradient is summed over."""

import copy

import pytest
import torch

from prend.agent.perf import choose_perf, micro_candidates
from prend.agent.ppo import micro_batches, ppo_update
from prend.agent.storage import RolloutStorage
from prend.agent.trainer import Trainer
from prend.config import IntrinsicConfig, PPOConfig
from prend.intrinsic import make_rnd
from prend.nets.policy import make_policy
from prend.train import parse_train_args

STEPS, ENVS, ACTIONS = 4, 6, 5


def _filled_storage(policy_kind: str):
    """A policy, an RND module and a rollout of random frames with random returns, all seeded."""
    torch.manual_seed(0)
    policy = make_policy(policy_kind, 4, ACTIONS)
    rnd = make_rnd(IntrinsicConfig(), num_envs=ENVS, gamma=0.99, rom=None)
    st = RolloutStorage(STEPS, ENVS, (4, 84, 84), torch.device("cpu"))
    st.obs.copy_(torch.randint(0, 256, st.obs.shape, dtype=torch.uint8))
    st.first.copy_(torch.rand(STEPS, ENVS) < 0.2)
    st.actions.copy_(torch.randint(0, ACTIONS, (STEPS, ENVS)))
    with torch.no_grad():
        out = policy(st.obs, policy.initial_state(ENVS), st.first)
        st.logprobs.copy_(out.distribution().log_prob(st.actions) + 0.05 * torch.randn(STEPS, ENVS))
    for buffer in (st.values_ext, st.values_int, st.advantages, st.returns_ext, st.returns_int):
        buffer.copy_(torch.randn(STEPS, ENVS))
    st.initial_state = tuple(s + 0.1 * torch.randn_like(s) for s in policy.initial_state(ENVS))
    rnd.observe(st.obs.flatten(0, 1))
    reward = rnd.reward(st.obs.flatten(0, 1))
    st.store_intrinsic(reward.raw, reward.update_input, reward.target)
    return policy, rnd, st


def _update(policy, rnd, storage, cfg, micro_batch):
    """Parameters and losses after ``ppo_update`` from copies of the same start, with plain SGD.

    SGD, not Adam: Adam's first step is about ``lr * sign(grad)``, blind to a wrongly scaled gradient.
    """
    policy, rnd = copy.deepcopy(policy), copy.deepcopy(rnd)
    optimizers = [torch.optim.SGD(policy.parameters(), lr=0.05), torch.optim.SGD(rnd.predictor.parameters(), lr=0.05)]
    losses = ppo_update(policy, rnd, storage, optimizers, cfg, 0.5, torch.Generator().manual_seed(3), micro_batch)
    params = [p.detach().clone() for p in [*policy.parameters(), *rnd.predictor.parameters()]]
    return params, losses


@pytest.mark.parametrize(("policy_kind", "by_env", "micro", "max_grad_norm"), [
    ("cnn", False, 1, None), ("cnn", False, 5, 0.5), ("lstm", True, STEPS, None), ("lstm", True, 2 * STEPS, 0.5)])
def test_micro_batches_give_the_whole_minibatchs_step(policy_kind, by_env, micro, max_grad_norm):
    # Advantage normalisation, the clipped value loss and the gradient-norm clip all see the whole
    # minibatch: normalising per piece, or summing pieces without their shares, changes the step. (With
    # the clip, equal pieces summed without shares only scale the gradient the clip then rescales: hence
    # uneven pieces there, and no clip with equal ones.)
    cfg = PPOConfig(update_epochs=2, num_minibatches=2, norm_adv=True, clip_vloss=True, max_grad_norm=max_grad_norm,
                    minibatch_by_env=by_env, policy=policy_kind)
    policy, rnd, storage = _filled_storage(policy_kind)
    start = [p.detach().clone() for p in [*policy.parameters(), *rnd.predictor.parameters()]]
    whole, whole_losses = _update(policy, rnd, storage, cfg, 0)
    pieces, piece_losses = _update(policy, rnd, storage, cfg, micro)
    moved = max((a - b).abs().max().item() for a, b in zip(whole, start, strict=True))
    assert moved > 1e-3  # the update does move the parameters
    for got, want in zip(pieces, whole, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert piece_losses.keys() == whole_losses.keys() and "losses/predictor" in whole_losses
    for key, value in whole_losses.items():
        assert piece_losses[key] == pytest.approx(value, rel=1e-4, abs=1e-7), key


def test_micro_batches_split_by_environment_keep_each_environments_sequence_and_state():
    _, _, storage = _filled_storage("lstm")
    batch = next(storage.minibatches(1, True, torch.Generator().manual_seed(0)))
    state = (torch.arange(ENVS, dtype=torch.float32).unsqueeze(1),)
    pieces = micro_batches(batch._replace(initial_state=state), 2 * STEPS, by_env=True)
    assert [p.obs.shape[:2] for p in pieces] == [(STEPS, 2)] * 3  # 2 environments' 4 steps each
    assert torch.equal(torch.cat([p.obs for p in pieces], 1), batch.obs)
    assert [p.initial_state[0].flatten().tolist() for p in pieces] == [[0, 1], [2, 3], [4, 5]]
    assert micro_batches(batch, 1, by_env=True)[0].obs.shape[:2] == (STEPS, 1)  # never less than one env


def test_the_start_up_check_times_micro_batches_and_keeps_the_fastest_per_sample():
    chosen = choose_perf(torch.device("cpu"), 1, "channels-last", minibatch=4096)
    per_sample = {int(k.split()[-1]): v for k, v in chosen["timings_ms"].items() if k.startswith("micro-batch")}
    assert sorted(per_sample) == list(micro_candidates(4096)) == [64, 128, 256]
    assert chosen["micro_batch"] == min(per_sample, key=per_sample.__getitem__)
    # Given sizes are taken, capped at the minibatch; nothing to choose below 64 samples.
    assert choose_perf(torch.device("cpu"), 1, "channels-last", minibatch=4096, micro_batch=100)["micro_batch"] == 100
    given = choose_perf(torch.device("cpu"), 1, "channels-last", minibatch=512, micro_batch=10_000)
    assert given["micro_batch"] == 512 and not given["measured"]
    tiny = choose_perf(torch.device("cpu"), 1, "channels-last", minibatch=48)
    assert tiny["micro_batch"] == 48 and not tiny["measured"]


def test_the_fused_adam_the_trainer_uses_steps_as_the_per_tensor_loop_does():
    policy, rnd, storage = _filled_storage("cnn")
    cfg = PPOConfig(update_epochs=2, num_minibatches=2, norm_adv=True, max_grad_norm=0.5)
    results = []
    for fused in (False, True):
        net = copy.deepcopy(policy)
        loop = {"fused": True} if fused else {"foreach": False}
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-5, **loop)
        ppo_update(net, None, storage, [optimizer], cfg, 0.25, torch.Generator().manual_seed(3), 5)
        results.append([p.detach() for p in net.parameters()])
    moved = max((a - b).abs().max().item() for a, b in zip(results[0], policy.parameters(), strict=True))
    assert moved > 1e-4
    for loop, fused in zip(*results, strict=True):
        torch.testing.assert_close(fused, loop, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("channels_last", [True, False])
def test_frames_keep_the_runs_layout_from_rollout_to_micro_batch(channels_last):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    st = RolloutStorage(3, 4, (4, 84, 84), torch.device("cpu"), channels_last=channels_last)
    frames = torch.randint(0, 256, (3, 4, 4, 84, 84), dtype=torch.uint8)
    for t in range(3):
        st.obs[t] = frames[t]  # as the rollout writes them: (envs, C, H, W) from the emulators
    st.last_obs.copy_(frames[0])
    st.final_obs[(1, 2)] = frames[2, 3]
    assert torch.equal(st.obs, frames)  # the values, whatever the layout
    batch = next(st.minibatches(2, False, torch.Generator().manual_seed(0)))
    pieces = micro_batches(batch, 2, by_env=False)
    assert all(x.is_contiguous(memory_format=layout) for x in [batch.obs, *(p.obs for p in pieces)])
    nxt = st.next_observations()
    assert nxt.is_contiguous(memory_format=layout)
    assert torch.equal(nxt[4 * 1 + 2], frames[2, 3]) and torch.equal(nxt[4 * 2 + 1], frames[0, 1])
    assert torch.equal(nxt[0], frames[1, 0])


def test_with_bf16_the_bootstrap_value_is_computed_as_the_rollouts_values_are(tmp_path, tiny_args):
    # GAE mixes the rollout's values with the value of the observation after it: both under the same autocast.
    flags = ["--out", str(tmp_path), "--no-tensorboard", "--bf16", "--torch-threads", "1"]
    cfg, _ = parse_train_args([*tiny_args, *flags])
    trainer = Trainer(cfg)
    trainer.start()
    trainer.collect_rollout()
    st = trainer.storage
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = trainer.policy.eval()(st.last_obs.unsqueeze(0), trainer.policy_state, trainer.first.unsqueeze(0))
    trainer.close()
    assert torch.equal(trainer.next_values[0], out.value_ext[0].float())
    assert torch.equal(trainer.next_values[1], out.value_int[0].float())
