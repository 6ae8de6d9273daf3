"""``--reward-bf16``: the reward's networks under bfloat16 autocast, its rewards and losses in float32.

Off (the default), the reward is the float32 computation it always was; on, the networks' outputs differ from
float32's by bfloat16 rounding, every tensor that leaves the module is float32, and a self-trained target's
loss terms are float32 arithmetic on those outputs (a covariance or a softmax over the batch at 8 bits of
mantissa would differ by far more than the tolerances below).
"""

import pytest
import torch

from prend.config import IntrinsicConfig
from prend.intrinsic import TargetBatch
from prend.intrinsic.base import DistillationReward
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.methods import BUILTIN_METHODS
from prend.intrinsic.snd import stdim_terms, vicreg_terms
from prend.train import parse_train_args


def _obs(n: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 4, 84, 84), dtype=torch.uint8, generator=g)


def _reward(method: str, bf16: bool) -> DistillationReward:
    torch.manual_seed(0)
    module = make_intrinsic(IntrinsicConfig(method=method, feature_dim=32, reward_bf16=bf16), num_envs=2,
                            gamma=0.99, rom=None)
    assert module is not None and module.bf16 is bf16
    return module


@pytest.mark.parametrize("method", ["rnd", "snd-vic"])
def test_off_the_reward_is_the_plain_float32_computation(method):
    module = _reward(method, bf16=False)
    obs = _obs()
    x = module.encoder.expand(module.encoder.compact(obs))
    with torch.no_grad():
        expected = (module.predictor(x) - module.target(x)).square().mean(-1)
    assert torch.equal(module.reward(obs).raw, expected)


@pytest.mark.parametrize("method", ["rnd", "snd-vic"])
def test_on_the_networks_run_in_bfloat16_and_everything_they_hand_out_is_float32(method):
    obs = _obs()
    full, half = _reward(method, bf16=False).reward(obs), _reward(method, bf16=True).reward(obs)
    for name in ("raw", "target", "error"):
        assert getattr(half, name).dtype == torch.float32, name
    assert not torch.equal(half.target, full.target)  # bfloat16 ran: its rounding shows
    # ... and it is only rounding: 8 bits of mantissa through a few layers, about 1% of the outputs' scale
    scale = full.target.abs().mean()
    assert (half.target - full.target).abs().mean() < 0.02 * scale
    assert half.raw.mean().item() == pytest.approx(full.raw.mean().item(), rel=0.05)


def test_on_the_predictors_loss_is_float32_and_trains_float32_parameters():
    module = _reward("rnd", bf16=True)
    out = module.reward(_obs())
    loss = module.predictor_loss(out.update_input, out.target)
    assert loss.dtype == torch.float32 and loss.requires_grad
    loss.backward()
    grads = [p.grad for p in module.predictor.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def _batch(n: int = 32) -> TargetBatch:
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, n, 1, 84, 84), dtype=torch.uint8, generator=g)
    return TargetBatch(frames[0], frames[1], torch.zeros(n, dtype=torch.bool))


def _update(method: str) -> tuple[DistillationReward, torch.Tensor, torch.Tensor, dict[str, float]]:
    """A bf16 reward's update on a batch of pairs: the module, the target's inputs (s_t, then s_t+1), the loss
    and its logged terms."""
    module, batch = _reward(method, bf16=True), _batch()
    loss, terms = module.update_loss(batch)
    return module, torch.cat([module.encoder.expand(batch.inputs), module.encoder.expand(batch.pairs)]), loss, terms


def test_on_vicregs_terms_are_float32_arithmetic_on_the_bfloat16_features():
    module, x, loss, terms = _update("snd-vic")
    with torch.no_grad(), module.networks_autocast():
        z = module.target(x)
    assert z.dtype == torch.bfloat16
    z, n = z.float(), len(x) // 2
    invariance, variance, covariance = vicreg_terms(z[:n], z[n:])  # float32, outside autocast
    assert terms["losses/target_invariance"] == pytest.approx(invariance.item(), rel=1e-5)
    assert terms["losses/target_variance"] == pytest.approx(variance.item(), rel=1e-5, abs=1e-7)
    assert terms["losses/target_covariance"] == pytest.approx(covariance.item(), rel=1e-5)
    assert loss.dtype == torch.float32
    loss.backward()
    for p in [*module.target.parameters(), *module.predictor.parameters()]:
        assert p.dtype == torch.float32 and p.grad is not None and torch.isfinite(p.grad).all()


def test_on_st_dims_cross_entropies_are_float32_arithmetic_on_the_bfloat16_features():
    module, x, _, terms = _update("snd-std")
    with torch.no_grad(), module.networks_autocast():
        local = module.target.local_features(x)
        out = module.target.head_from_local(local)
    n, objective = len(x) // 2, module.target_objective
    with torch.no_grad():
        global_local, local_local, _ = stdim_terms(out[n:].float(), local[:n].float(), local[n:].float(),
                                                   objective.classifier1, objective.classifier2)
    assert terms["losses/target_global_local"] == pytest.approx(global_local.item(), rel=1e-5)
    assert terms["losses/target_local_local"] == pytest.approx(local_local.item(), rel=1e-5)


def test_every_built_in_reward_reads_the_flag_and_the_cli_sets_it():
    cfg, _ = parse_train_args(["--method", "snd-vic", "--reward-bf16"])
    assert cfg.intrinsic.reward_bf16 is True
    assert parse_train_args(["--method", "snd-vic"])[0].intrinsic.reward_bf16 is False
    for method in BUILTIN_METHODS.values():
        if method.build is not None:
            assert method.reads("reward_bf16", IntrinsicConfig(method=method.name)), method.name
