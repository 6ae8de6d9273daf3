"""PreND's reward decomposition, its variants (issue 9) and bring-your-own backbones."""

import math

import pytest
import torch
from torch import nn

from prend.agent.trainer import Trainer
from prend.cli import main
from prend.config import IntrinsicConfig
from prend.errors import PrendError
from prend.intrinsic import pretrained as prend_module
from prend.intrinsic.base import reward_decomposition
from prend.intrinsic.methods import PREND, RND
from prend.intrinsic.pretrained import make_backbone, make_prend
from prend.metrics import read_metrics
from prend.train import parse_train_args

BYO = ["--backbone", "byo_encoders:tiny_conv"]  # tests/byo_encoders.py: (N, 4, 84, 84) -> (N, 5, 3, 3)


def _obs(n, seed=0):
    return torch.randint(0, 256, (n, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _module(**fields):
    torch.manual_seed(0)
    return make_prend(IntrinsicConfig(method="prend", backbone="byo_encoders:tiny_conv", **fields),
                      num_envs=2, gamma=0.99, rom="boxing")


def _trainer(tmp_path, tiny_args, *flags):
    cfg, _ = parse_train_args([*tiny_args, "--out", str(tmp_path / "run"), "--no-tensorboard", "--method", "prend",
                               *flags])
    return Trainer(cfg)


# ------------------------------------------------------------------------------------ decomposition
def test_decomposition_matches_a_hand_computed_example():
    d = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])  # m = (1, 1); r = (2, 0, 5), mean 7/3
    t = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])  # mean (2, 0); spread sqrt(8/3)
    parts = reward_decomposition(d, t)
    assert parts["offset"] == pytest.approx(1.0)  # |m|^2 / K = 2 / 2
    assert parts["state_part"] == pytest.approx(4 / 3)  # |d_i - m|^2 = 2, 2, 4 -> mean 8/3, / K
    assert parts["offset_share"] == pytest.approx(3 / 7)
    assert parts["raw_cv"] == pytest.approx(math.sqrt(114 / 27) / (7 / 3))
    assert parts["target_spread"] == pytest.approx(math.sqrt(8 / 3) / 2)


def test_trainer_logs_the_decomposition_of_its_rollout(tmp_path, tiny_args):
    trainer = _trainer(tmp_path, tiny_args, *BYO)
    trainer.start()
    record = trainer.train_iteration()
    raw = trainer.storage.rewards_int_raw.double()
    assert record["intrinsic/offset"] + record["intrinsic/state_part"] == pytest.approx(raw.mean().item(), rel=1e-5)
    assert 0 < record["intrinsic/offset_share"] < 1
    assert record["intrinsic/raw_cv"] == pytest.approx((raw.std(unbiased=False) / raw.mean()).item(), rel=1e-5)
    targets = trainer.storage.int_target.flatten(0, 1).double()
    spread = (targets - targets.mean(0)).square().sum(1).mean().sqrt() / targets.mean(0).norm()
    assert record["intrinsic/target_spread"] == pytest.approx(spread.item(), rel=1e-5)
    trainer.close()


# ------------------------------------------------------------------------------------------ variants
def test_paper_default_has_no_warmup_and_no_variant_parts():
    module = _module()
    assert not module.needs_warmup and module.target_norm is None and module.encoder.feature_norm is None
    assert isinstance(module.predictor.neck.mlp[-1], nn.ReLU)
    assert [m.out_features for m in module.predictor.neck.mlp if isinstance(m, nn.Linear)] == [1024, 512]


def test_feature_norm_whitens_and_clips_the_backbone_features_as_rnd_does_pixels():
    module = _module(feature_norm=True)
    assert module.needs_warmup
    obs = _obs(64)
    module.observe(obs)
    features = module.encoder.compact(obs).double()
    stats = module.encoder.feature_norm.rms
    assert torch.allclose(stats.mean, features.mean(0), atol=1e-5)
    assert stats.count.item() == pytest.approx(64, abs=1e-3)
    expected = ((features - stats.mean) / stats.std).clamp(-5, 5).float()
    assert torch.allclose(module.encoder.expand(features.float()), expected, atol=1e-4)
    assert "encoder.feature_norm.rms.var" in module.state_dict()


def test_feature_norm_reuses_the_stored_features_after_a_rollout(tmp_path, tiny_args, monkeypatch):
    calls = []
    real = make_backbone

    def counting(cfg):
        backbone = real(cfg)
        backbone.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
        return backbone

    monkeypatch.setattr(prend_module, "make_backbone", counting)
    trainer = _trainer(tmp_path, tiny_args, *BYO, "--feature-norm", "--obs-norm-init-iters", "2", "--probe-every", "0")
    trainer.start()
    stats = trainer.intrinsic.encoder.feature_norm.rms
    assert stats.count.item() == pytest.approx(2 * 2 * 16, abs=1e-3)  # 2 warm-up rollouts of 2 envs x 16 steps
    calls.clear()
    trainer.train_iteration()
    assert sum(calls) == 32  # one backbone pass per next-observation: the statistics use the stored features
    assert stats.count.item() == pytest.approx(3 * 32, abs=1e-3)
    trainer.close()


@pytest.mark.parametrize("mode", ["center", "whiten"])
def test_target_norm_centres_or_whitens_the_target_and_unclamps_the_predictor(mode):
    module = _module(target_norm=mode)
    assert module.needs_warmup and isinstance(module.predictor.neck.mlp[-1], nn.Linear)
    obs = _obs(64)
    module.observe(obs)
    target = module.reward(obs).target
    assert (target >= 0).all()  # stored raw: the target network itself is the paper's
    normalised = module.regression_target(target)
    # the running statistics start at mean 0, var 1 with weight 1e-4 (as the original RND's)
    n, c, t = 64, 1e-4, target.double()
    mean = t.mean(0) * n / (n + c)
    var = (c + n * t.var(0, unbiased=False) + t.mean(0) ** 2 * c * n / (n + c)) / (n + c)
    centred = (t - mean).float()
    if mode == "whiten":  # per element, clipped to [-5, 5] as RND's pixels
        expected = ((t - mean) / var.sqrt()).clamp(-5, 5).float()
        assert torch.allclose(normalised, expected, atol=1e-4)
        assert (normalised.abs() <= 5).all() and (normalised.abs() == 5).any()
    else:
        assert torch.allclose(normalised, centred, atol=1e-5)
    loss = module.predictor_loss(module.encoder.compact(obs), target)
    assert loss.item() == pytest.approx(module.reward(obs).raw.mean().item(), rel=1e-5)
    assert "target_norm.rms.mean" in module.state_dict()


def test_predictor_starts_at_the_targets_mean_output_after_the_warmup():
    module = _module(predictor_init="target-mean")
    assert module.needs_warmup
    obs = _obs(64)
    before = reward_decomposition(module.reward(obs).error, module.reward(obs).target)
    assert before["offset_share"] > 0.5  # two random necks: mostly offset
    module.end_warmup(obs)
    out = module.reward(obs)
    after = reward_decomposition(out.error, out.target)
    # The offset left is float32 rounding of the mean: 6e-17 under every kernel path of scripts/test_kernels.sh,
    # against 0.025 before; the state part moves by 1e-9 relative (float32 sums in another order).
    assert after["offset"] < 1e-10 and after["state_part"] == pytest.approx(before["state_part"], rel=1e-4)
    bias = module.predictor[-1].bias
    assert any(p is bias for p in module.predictor.parameters())  # trained with the rest of the predictor


def test_paper_ablations_smaller_predictor_and_spectral_norm():
    small = _module(predictor_layers=1)
    assert [m.out_features for m in small.predictor.neck.mlp if isinstance(m, nn.Linear)] == [512]
    assert [m.out_features for m in small.target.neck.mlp if isinstance(m, nn.Linear)] == [1024, 512]
    spectral = _module(predictor_spectral_norm=True)
    linears = [m for m in spectral.predictor.neck.mlp if isinstance(m, nn.Linear)]
    assert len(linears) == 2
    features = spectral.encoder.compact(_obs(2))
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one more power iteration
            spectral.predictor(features)
    for layer in linears:
        assert torch.linalg.matrix_norm(layer.weight.detach(), 2).item() == pytest.approx(1.0, rel=0.01)
    assert not any(isinstance(m, nn.Linear) and hasattr(m, "parametrizations") for m in spectral.target.modules())


def test_unused_fields_follow_the_variants():
    paper = PREND.unused_fields(IntrinsicConfig(method="prend"))
    assert "obs_norm_init_iters" in paper and "feature_norm" not in paper
    assert "obs_norm_init_iters" not in PREND.unused_fields(IntrinsicConfig(method="prend", target_norm="center"))
    assert {"feature_norm", "target_norm", "predictor_init", "predictor_layers",
            "predictor_spectral_norm"} <= RND.unused_fields(IntrinsicConfig(method="rnd"))
    byo = IntrinsicConfig(method="prend", backbone="a.b:c")
    assert {"backbone_weights", "backbone_width"} <= PREND.unused_fields(byo)


def test_variant_run_trains_and_resumes_its_statistics(tmp_path, tiny_args):
    out = tmp_path / "run"
    flags = [*tiny_args, *BYO, "--method", "prend", "--target-norm", "whiten", "--predictor-init", "target-mean",
             "--feature-norm", "--no-tensorboard", "--out", str(out)]
    assert main(["train", *flags, "--total-steps", "32"]) == 0
    assert main(["train", "--resume", str(out), "--total-steps", "64"]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2]
    state = torch.load(out / "checkpoint.pt", weights_only=True)["intrinsic"]
    # warm-up (1 rollout of 32) + 2 rollouts
    assert state["encoder.feature_norm.rms.count"].item() == pytest.approx(96, abs=1e-3)
    assert state["target_norm.rms.count"].item() == pytest.approx(96, abs=1e-3)


# ----------------------------------------------------------------------------------- your own backbone
@pytest.mark.parametrize("factory, shape", [("tiny_conv", (5, 3, 3)), ("tiny_tokens", (6, 9, 1)),
                                            ("tiny_vector", (7, 1, 1))])
def test_any_module_can_be_the_backbone(factory, shape):
    module = make_prend(IntrinsicConfig(method="prend", backbone=f"byo_encoders:{factory}"), num_envs=2,
                        gamma=0.99, rom="boxing")
    out = module.reward(_obs(3))
    assert out.update_input.shape == (3, *shape) and out.target.shape == (3, 512) and out.raw.shape == (3,)
    assert module.target.neck.in_channels == shape[0] and module.target.neck.spatial == shape[1:]


def test_a_users_backbone_keeps_its_layout_when_the_reward_module_goes_channels_last():
    module = make_prend(IntrinsicConfig(method="prend", backbone="byo_encoders:views_its_map"), num_envs=2,
                        gamma=0.99, rom="boxing")
    module.to(memory_format=torch.channels_last)  # what the trainer does when channels-last is faster
    assert module.encoder.backbone.conv.weight.is_contiguous()
    assert module.reward(_obs(3)).update_input.shape == (3, 147, 1, 1)


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
    ("byo_encoders:missing", "module 'byo_encoders' has no 'missing'"),
    ("byo_encoders:broken", "the factory failed (RuntimeError: weights not found)"),
    ("byo_encoders:not_a_module", "returned a str, not a torch module"),
    ("byo_encoders:wrong_input", "fails on float (2, 4, 84, 84) input"),
    ("byo_encoders:wrong_output", "maps (2, 4, 84, 84) to (56448,)"),
])
def test_bad_backbone_factories_are_one_line_errors(spec, message):
    with pytest.raises(PrendError) as err:
        make_backbone(IntrinsicConfig(method="prend", backbone=spec))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_reports_a_bad_backbone_in_one_line(tmp_path, tiny_args, capsys):
    assert main(["train", *tiny_args, "--method", "prend", "--backbone", "no_such_module_xyz:f",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot import" in err[0]
