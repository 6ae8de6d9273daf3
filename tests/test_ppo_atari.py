"""The ``ppo-atari`` preset: PPO's standard Atari protocol, learning-rate annealing, value clipping, Nature CNN."""

import dataclasses
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from prend.agent.ppo import value_loss
from prend.agent.trainer import Trainer
from prend.cli import main
from prend.config import EnvConfig, PPOConfig, preset_config
from prend.envs.vector import FireReset, make_env
from prend.metrics import read_metrics
from prend.nets.policy import make_policy
from prend.train import load_policy, parse_train_args

FIRE = 1

# The settings named by PPO's Atari protocol (Schulman et al. 2017, Table 5; baselines' ppo2 Atari defaults;
# CleanRL's ppo_atari), written out here independently of the preset table in prend.config.
PPO_ATARI = {
    "env.sticky_action_prob": 0.0, "env.noop_max": 30, "env.life_loss_done": True, "env.fire_reset": True,
    "env.max_episode_steps": 27_000, "env.frame_skip": 4, "env.frame_stack": 4, "env.clip_reward": True,
    "env.num_envs": 8, "ppo.num_steps": 128, "ppo.learning_rate": 2.5e-4, "ppo.anneal_lr": True,
    "ppo.adam_eps": 1e-5, "ppo.gamma_ext": 0.99, "ppo.gae_lambda": 0.95, "ppo.clip_coef": 0.1,
    "ppo.clip_vloss": True, "ppo.ent_coef": 0.01, "ppo.vf_coef": 0.5, "ppo.max_grad_norm": 0.5,
    "ppo.update_epochs": 4, "ppo.num_minibatches": 4, "ppo.norm_adv": True, "ppo.policy": "nature",
    "intrinsic.method": "none",
}


def test_preset_holds_the_published_ppo_atari_settings():
    cfg = preset_config("ppo-atari")
    for key, expected in PPO_ATARI.items():
        section, name = key.split(".")
        assert getattr(getattr(cfg, section), name) == expected, key
    assert cfg.env.max_episode_steps * cfg.env.frame_skip == 108_000  # the 108k-frame cap


def test_nature_policy_has_the_parameter_count_of_ppos_atari_network():
    # Conv 4->32 8x8: 8,224; 32->64 4x4: 32,832; 64->64 3x3: 36,928; FC 3136->512: 1,606,144;
    # logits 512->4: 2,052; one value head 512->1: 513.  Total for Breakout's 4 actions: 1,686,693.
    one_head = make_policy("nature", 4, 4, intrinsic_head=False)
    assert sum(p.numel() for p in one_head.parameters()) == 1_686_693
    two_heads = make_policy("nature", 4, 4, intrinsic_head=True)
    assert sum(p.numel() for p in two_heads.parameters()) == 1_686_693 + 513
    obs = torch.randint(0, 256, (3, 2, 4, 84, 84), dtype=torch.uint8)
    out = one_head(obs)
    assert out.logits.shape == (3, 2, 4) and out.value_ext.shape == (3, 2)
    assert torch.equal(out.value_int, torch.zeros(3, 2))  # plain PPO has no intrinsic value to learn
    # the value layers start at scale 1, the policy layer at 0.01 (ppo2's init)
    assert one_head.heads.logits.weight.norm(dim=1).max() < 0.011
    assert one_head.heads.value_ext.weight.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_clipped_value_loss_matches_hand_computed_values():
    cfg = PPOConfig(clip_coef=0.2, clip_vloss=True)
    values = torch.tensor([1.0, 0.0, 2.0, -1.0])
    old = torch.tensor([0.5, 0.5, 1.9, 0.0])
    returns = torch.tensor([0.0, 1.0, 3.0, -2.0])
    # unclipped squared errors: 1.0, 1.0, 1.0, 1.0
    # clipped values (old + clamp(v - old, +-0.2)): 0.7, 0.3, 2.0, -0.2 -> squared errors 0.49, 0.49, 1.0, 3.24
    # elementwise max: 1.0, 1.0, 1.0, 3.24 -> mean 1.56 -> x 0.5
    assert value_loss(values, old, returns, cfg).item() == pytest.approx(0.78)
    cfg.clip_vloss = False
    assert value_loss(values, old, returns, cfg).item() == pytest.approx(0.5)


def test_learning_rate_anneals_linearly_for_every_optimizer_and_across_a_resume(tmp_path, tiny_args):
    out = tmp_path / "run"
    flags = [*tiny_args, "--preset", "ppo-atari", "--method", "rnd-lr", "--num-envs", "2", "--learning-rate", "3e-4",
             "--no-tensorboard", "--out", str(out)]
    assert main(["train", *flags, "--total-steps", "64"]) == 0  # 2 of the 4 iterations of a 128-step budget...
    assert main(["train", "--resume", str(out), "--total-steps", "128"]) == 0  # ...then the other 2
    records = read_metrics(out / "metrics.jsonl")
    # a 64-step budget is 2 iterations: 3e-4 x (1, 1/2); the resume stretches the rest over 4: 3e-4 x (2/4, 1/4)
    assert [r["charts/learning_rate"] for r in records] == pytest.approx([3e-4, 1.5e-4, 1.5e-4, 0.75e-4])
    cfg, _ = parse_train_args(["--resume", str(out)])
    trainer = Trainer(cfg)
    trainer.iteration = 3
    assert trainer._set_learning_rates() == pytest.approx(0.75e-4)
    assert trainer.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.75e-4 * 0.01)  # the predictor's own
    trainer.close()


def test_without_annealing_the_rate_stays(tmp_path, tiny_args):
    cfg, _ = parse_train_args([*tiny_args, "--method", "rnd", "--total-steps", "64"])
    trainer = Trainer(cfg)
    trainer.iteration = 1
    assert trainer.learning_rate_fraction() == 1.0 and trainer._set_learning_rates() == 1e-4
    trainer.close()


@pytest.mark.parametrize("method", ["none", "rnd"])
def test_ppo_atari_trains_plain_ppo_and_rnd_on_top(tmp_path, tiny_args, method):
    out = tmp_path / method
    assert main(["train", *tiny_args, "--preset", "ppo-atari", "--method", method, "--game", "Breakout",
                 "--total-steps", "64", "--out", str(out), "--no-tensorboard"]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert len(records) == 2
    policy, cfg = load_policy(out)
    assert cfg.preset == "ppo-atari" and cfg.ppo.policy == "nature"
    has_int_head = any(name.startswith("heads.value_int") for name, _ in policy.named_parameters())
    assert has_int_head == (method != "none")
    if method == "none":
        assert records[-1]["losses/value_int"] == 0.0 and "losses/predictor" not in records[-1]
    else:
        assert records[-1]["losses/predictor"] > 0


class ScriptedAtari(gym.Env):
    """A stand-in Atari game: LEFT loses a life, FIRE scores 1, the game ends when no lives are left."""

    observation_space = gym.spaces.Box(0, 255, (2,), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self):
        self.pressed: list = []
        self.lives = 0
        self.ale = SimpleNamespace(lives=lambda: self.lives)

    def get_action_meanings(self):
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def reset(self, *, seed=None, options=None):
        self.lives = 2
        self.pressed.append("reset")
        return np.zeros(2, np.uint8), {"lives": self.lives}

    def step(self, action):
        self.pressed.append(int(action))
        self.lives -= int(action == 3)
        return np.zeros(2, np.uint8), float(action == 1), self.lives == 0, False, {"lives": self.lives}


def test_fire_reset_serves_at_the_start_and_after_every_lost_life():
    env = FireReset(ScriptedAtari(), after_life_loss=True)
    env.reset()
    assert env.unwrapped.pressed == ["reset", FIRE]
    _, reward, *_ = env.step(0)
    assert env.unwrapped.pressed[-1] == 0 and reward == 0.0
    _, reward, terminated, _, info = env.step(3)  # a life lost, the game goes on: FIRE within the same step
    assert env.unwrapped.pressed[-2:] == [3, FIRE] and reward == 1.0 and not terminated and info["lives"] == 1
    _, reward, terminated, _, _ = env.step(3)  # the last life: the game is over, nothing more is pressed
    assert env.unwrapped.pressed[-1] == 3 and terminated and reward == 0.0
    only_start = FireReset(ScriptedAtari(), after_life_loss=False)
    only_start.reset()
    only_start.step(3)
    assert only_start.unwrapped.pressed == ["reset", FIRE, 3]


@pytest.mark.parametrize(("flags", "backend"), [
    ({}, "ale"),  # rnd-original: no FIRE at all, the native vector env
    ({"fire_reset": True}, "ale"),  # FIRE only when a game starts: the native env does that itself
    ({"fire_reset": True, "life_loss_done": True}, "gymnasium"),  # ppo-atari: FIRE after each life needs a wrapper
])
def test_backend_follows_the_fire_protocol(flags, backend):
    cfg = dataclasses.replace(EnvConfig(game="Breakout", num_envs=1, env_threads=1), **flags)
    env = make_env(cfg)
    assert env.backend == backend
    env.close()


def test_a_config_file_layers_on_the_preset_and_flags_on_both(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[ppo]\nlearning_rate = 3e-4\n[env]\nnum_envs = 4\n')
    cfg, _ = parse_train_args(["--preset", "ppo-atari", "--config", str(path), "--num-envs", "2"])
    assert cfg.preset == "ppo-atari" and cfg.ppo.policy == "nature" and cfg.ppo.clip_vloss  # the preset's
    assert cfg.ppo.learning_rate == 3e-4  # the file's, over the preset's 2.5e-4
    assert cfg.env.num_envs == 2  # the flag's, over the file's
    path.write_text('preset = "ppo-atari"\n[ppo]\nent_coef = 0.02\n')
    cfg, _ = parse_train_args(["--config", str(path)])
    assert cfg.ppo.policy == "nature" and cfg.ppo.ent_coef == 0.02  # a preset named inside the file
