"""RND+LR and PreND over the shared trainer, the presets, and recurrent PPO."""

import pytest
import torch

from prend.agent.trainer import Trainer
from prend.cli import main
from prend.config import IntrinsicConfig
from prend.intrinsic import pretrained as prend_module
from prend.intrinsic.pretrained import make_prend
from prend.metrics import read_metrics
from prend.nets.atari_pb import ResNetGN
from prend.train import parse_train_args

TINY_BACKBONE = ["--backbone", "resnet18", "--backbone-width", "0.25"]


def _trainer(tmp_path, tiny_args, *flags):
    cfg, _ = parse_train_args([*tiny_args, "--out", str(tmp_path / "run"), "--no-tensorboard", *flags])
    return Trainer(cfg)


def test_rnd_shares_one_adam_with_the_policy(tmp_path, tiny_args):
    trainer = _trainer(tmp_path, tiny_args, "--method", "rnd")
    assert len(trainer.optimizers) == 1
    params = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert all(id(p) in params for p in trainer.intrinsic.predictor.parameters())
    trainer.close()


@pytest.mark.parametrize("method", ["rnd-lr", "prend"])
def test_separate_predictor_optimizer_has_the_scaled_rate(tmp_path, tiny_args, method):
    trainer = _trainer(tmp_path, tiny_args, "--method", method, "--learning-rate", "3e-4", *TINY_BACKBONE)
    policy_opt, predictor_opt = trainer.optimizers
    assert [g["lr"] for g in policy_opt.param_groups] == [3e-4]
    assert [g["lr"] for g in predictor_opt.param_groups] == [pytest.approx(3e-6)]
    policy_ids = {id(p) for g in policy_opt.param_groups for p in g["params"]}
    predictor_ids = {id(p) for g in predictor_opt.param_groups for p in g["params"]}
    assert not policy_ids & predictor_ids
    assert policy_ids == {id(p) for p in trainer.policy.parameters()}
    assert predictor_ids == {id(p) for p in trainer.intrinsic.predictor.parameters()}
    # nothing frozen is optimised: target and backbone stay out of both
    frozen = {id(p) for p in trainer.intrinsic.target.parameters()} | {
        id(p) for p in trainer.intrinsic.encoder.parameters()}
    assert not frozen & (policy_ids | predictor_ids)
    trainer.close()


def test_predictor_lr_scale_flag_changes_only_the_predictor(tmp_path, tiny_args):
    trainer = _trainer(tmp_path, tiny_args, "--method", "rnd-lr", "--predictor-lr-scale", "0.1")
    assert trainer.optimizers[0].param_groups[0]["lr"] == 1e-4
    assert trainer.optimizers[1].param_groups[0]["lr"] == pytest.approx(1e-5)
    trainer.close()


class CountingBackbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = ResNetGN("resnet18", width=0.25)
        self.frames = 0

    def forward(self, x):
        self.frames += x.shape[0]
        return self.net(x)


def test_prend_reward_shapes_inputs_and_normalisation():
    backbone = CountingBackbone()
    cfg = IntrinsicConfig(method="prend")
    module = make_prend(cfg, num_envs=2, gamma=0.99, rom="riverraid", backbone=backbone)
    assert module.target.game_id.item() == 43 and module.predictor.game_id.item() == 43
    assert not any(p.requires_grad for p in module.target.parameters())
    assert not any(p.requires_grad for p in module.encoder.parameters())
    # the target and predictor are independently initialised
    assert not torch.equal(module.target.neck.mlp[0].weight, module.predictor.neck.mlp[0].weight)
    obs = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8)
    out = module.reward(obs)
    assert out.raw.shape == (6,) and out.target.shape == (6, 512)
    assert out.update_input.shape == (6, 128, 6, 6)
    # the backbone sees the whole stack scaled to [0, 1]
    expected_features = backbone.net(obs.float() / 255)
    assert torch.allclose(out.update_input, expected_features, atol=1e-5)
    expected = (module.target(expected_features) - module.predictor(expected_features)).square().mean(-1)
    assert torch.allclose(out.raw, expected, rtol=1e-4)
    normalised = module.normalize(out.raw.reshape(3, 2))
    returns = torch.stack([out.raw[:2], out.raw[:2] * 0.99 + out.raw[2:4],
                           (out.raw[:2] * 0.99 + out.raw[2:4]) * 0.99 + out.raw[4:]]).double()
    var = (returns.var(unbiased=False) * 6 + 1e-4 + returns.mean() ** 2 * 6 * 1e-4 / (6 + 1e-4)) / (6 + 1e-4)
    assert torch.allclose(normalised, (out.raw.reshape(3, 2) / var.sqrt()).float(), rtol=1e-4)


def test_backbone_runs_once_per_observation(tmp_path, tiny_args, monkeypatch):
    backbone = CountingBackbone()
    monkeypatch.setattr(prend_module, "make_backbone", lambda cfg: backbone)
    trainer = _trainer(tmp_path, tiny_args, "--method", "prend", "--probe-every", "0")
    trainer.start()
    backbone.frames = 0
    trainer.train_iteration()
    assert backbone.frames == 16 * 2  # each next-observation once; the update reuses the stored features
    trainer.close()


def test_recurrent_update_reproduces_rollout_logprobs_across_episode_ends(tmp_path, tiny_args):
    trainer = _trainer(tmp_path, tiny_args, "--preset", "prend-paper", "--num-envs", "4", "--max-episode-steps", "5")
    trainer.start()
    trainer.collect_rollout()
    st = trainer.storage
    assert st.first[1:].any()  # episodes ended inside the rollout
    for batch in st.minibatches(2, by_env=True, generator=torch.Generator().manual_seed(0)):
        with torch.no_grad():
            out = trainer.policy(batch.obs, batch.initial_state, batch.first)
        logprobs = torch.log_softmax(out.logits, -1).gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        assert torch.allclose(logprobs, batch.logprobs, atol=1e-5)
    # the state is zeroed at episode starts: evaluating from step t with a zero state where first[t] agrees
    t_env = st.first[1:].nonzero()[0]
    t, env = int(t_env[0]) + 1, int(t_env[1])
    zero = tuple(torch.zeros_like(s[env:env + 1]) for s in st.initial_state)
    with torch.no_grad():
        out = trainer.policy(st.obs[t:, env:env + 1], zero, st.first[t:, env:env + 1])
    logprobs = torch.log_softmax(out.logits, -1).gather(-1, st.actions[t:, env:env + 1].unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(logprobs, st.logprobs[t:, env:env + 1], atol=1e-5)
    trainer.close()


@pytest.mark.parametrize("flags", [
    ["--method", "rnd-lr"],
    ["--method", "prend", *TINY_BACKBONE],
    ["--method", "none"],
    ["--preset", "prend-paper", "--num-envs", "4", "--method", "rnd"],
    ["--preset", "prend-paper", "--num-envs", "4", "--method", "prend", *TINY_BACKBONE],
])
def test_two_iterations_end_to_end(tmp_path, tiny_args, flags):
    out = tmp_path / "run"
    assert main(["train", *tiny_args, *flags, "--total-steps", "64", "--out", str(out), "--no-tensorboard"]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert len(records) >= 1 and records[-1]["charts/global_step"] >= 64
    if "none" not in flags:
        assert records[-1]["losses/predictor"] > 0


def test_prend_without_weights_for_the_paper_backbone_says_how_to_get_them(tmp_path, tiny_args, capsys):
    assert main(["train", *tiny_args, "--method", "prend", "--backbone", "atari-pb-resnet50",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--backbone-weights" in err[0]
