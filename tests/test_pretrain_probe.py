"""The probe's statistics on synthetic data with known answers, and the probe end to end on a tiny run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import save_atari_pb_checkpoint
from prend.pretrain.dataset import FrameData
from prend.pretrain.probe import (
    ProbeConfig,
    balanced_accuracy,
    episode_spearman,
    linear_probe,
    probe,
    probe_backbone,
    spearman,
    split_episodes,
    temporal_coherence,
)


def test_spearman_known_values():
    x = np.arange(20.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(20)))
    # ties get average ranks: ranks (1.5, 1.5, 3) vs (1, 2, 3) -> Pearson of the ranks
    assert spearman(np.array([1.0, 1, 2]), np.array([1.0, 2, 3])) == pytest.approx(np.sqrt(3) / 2)


def test_temporal_coherence_is_one_when_features_are_the_time_index():
    t = np.concatenate([np.arange(60), np.arange(45)])
    episode = np.repeat([0, 1], [60, 45])
    feats = np.stack([t * 0.5, np.zeros_like(t)], 1).astype(float)
    value, n = temporal_coherence(feats, episode, t, frames_per_episode=30)
    assert n == 2 and value == pytest.approx(1.0)
    # A feature that jumps back and forth is not ordered in time: about zero.
    rng = np.random.default_rng(0)
    value, _ = temporal_coherence(rng.normal(size=(105, 8)), episode, t)
    assert abs(value) < 0.1
    # A circular trajectory: distance grows with time up to half a period, so pairs spanning less than
    # half a loop keep the time order (up to float rounding between pairs with equal time gaps).
    angle = np.arange(20) / 40 * 2 * np.pi
    circle = np.stack([np.cos(angle), np.sin(angle)], 1)
    assert episode_spearman(circle, np.arange(20)) > 0.99


def test_linear_probe_gets_separable_labels_exactly_and_noise_at_chance():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 800)
    x = np.concatenate([np.eye(4)[y] * 3.0, rng.normal(size=(800, 6))], 1)
    episode = np.arange(800) // 40
    result = linear_probe(x, y, episode, 4)
    assert result["balanced_accuracy"] == 1.0 and result["accuracy"] == 1.0
    assert result["train"] + result["test"] == 800 and result["chance"] == 0.25
    noise = linear_probe(rng.normal(size=(800, 10)), y, episode, 4)
    assert abs(noise["balanced_accuracy"] - 0.25) < 0.08


def test_balanced_accuracy_ignores_class_frequency():
    target = np.array([0] * 98 + [1, 2])
    assert balanced_accuracy(np.zeros(100, int), target) == pytest.approx(1 / 3)
    assert balanced_accuracy(target, target) == 1.0


def test_episode_split_never_shares_an_episode():
    episode = np.repeat(np.arange(10), 30)
    train, test = split_episodes(episode, 0.3, seed=3)
    assert not set(episode[train]) & set(episode[test])
    assert 0.2 <= test.mean() <= 0.5 and (train | test).all()
    train, test = split_episodes(np.zeros(10, int), 0.3)  # one episode: time split
    assert test.tolist() == [False] * 7 + [True] * 3


class _TimeNet(nn.Module):
    """A 'backbone' whose features encode the newest frame's value (= its time index + 1)."""

    def forward(self, x):
        v = x[:, -1:, :6, :6] * 255.0
        return torch.cat([v, torch.zeros_like(v)], 1)


def test_probe_backbone_on_synthetic_frames():
    data = FrameData.synthetic(episode_lengths=[40, 50, 30, 60, 45])
    data.actions = (data.t % 3).astype(np.int64)  # a label that is no linear function of time
    result = probe_backbone(_TimeNet(), data, ProbeConfig(checkpoint=None, progress=False, pool=1))
    assert result["temporal_coherence"] == pytest.approx(1.0)
    assert 0.0 <= result["action_probe"] <= 1.0


def test_probe_end_to_end_compares_with_the_random_twin(tmp_path):
    from prend.pretrain.collect import CollectConfig, collect

    collect(CollectConfig(out=tmp_path / "held", games=("pong",), frames_per_game=240, num_envs=2,
                          chunk_frames=60, max_episode_steps=40, progress=False))
    torch.manual_seed(5)
    backbone = ResNetGN("resnet18", 0.125)
    save_atari_pb_checkpoint(tmp_path / "b.pth", backbone=backbone, extra={"prend": {"config": {"seed": 5}}})
    figures = probe(ProbeConfig(checkpoint=tmp_path / "b.pth", data=tmp_path / "held", progress=False,
                                out=tmp_path / "probe.json", frames_per_episode=20))
    saved = json.loads((tmp_path / "probe.json").read_text())
    assert saved["details"]["arch"] == "resnet18" and saved["details"]["init_seed"] == 5
    # The twin is built from the stored seed, so an untrained checkpoint *is* its twin: identical figures.
    for key in ("temporal_coherence", "action_probe", "reward_probe"):
        assert figures[key]["pretrained"] == pytest.approx(figures[key]["random_init"])
    assert figures["beats_random_init"] is False
    diff = figures["temporal_coherence_difference"]
    assert diff["mean"] == pytest.approx(0.0) and diff["ci95"] == pytest.approx([0.0, 0.0])
    assert diff["episodes"] == figures["details"]["per_game"]["pretrained"]["pong"]["episodes"]


def test_local_temporal_coherence_sees_only_short_gaps():
    from prend.pretrain.probe import local_temporal_coherence

    t = np.arange(300)
    # A feature that drifts locally but repeats every 50 steps: perfectly ordered within 16 steps, not
    # over the whole episode.
    phase = (t % 50).astype(float)
    feats = np.stack([np.cos(phase / 50 * 2 * np.pi), np.sin(phase / 50 * 2 * np.pi)], 1)
    local, n = local_temporal_coherence(feats, np.zeros(300, int), t, max_gap=16)
    whole, _ = temporal_coherence(feats, np.zeros(300, int), t, frames_per_episode=300)
    assert n == 1 and local > 0.99 and abs(whole) < 0.2


def test_paired_difference_ci_worked_examples():
    from prend.pretrain.probe import paired_difference_ci

    # Constant differences: no spread to resample.
    assert paired_difference_ci([np.full(5, 0.3), np.full(2, -0.1)]) == pytest.approx((0.1, 0.1, 0.1))
    # One game, episodes at -1 and +1: bootstrap means -1, 0, +1 with odds 1:2:1, so the 95% interval is
    # [-1, 1]; with three episodes at 0, 0, 3 the mean is 1 and the interval's ends are 0 and 3
    # (P(all zeros) = 8/27 > 2.5%, P(all threes) = 1/27 > 2.5%).
    assert paired_difference_ci([np.array([-1.0, 1.0])]) == pytest.approx((0.0, -1.0, 1.0))
    assert paired_difference_ci([np.array([0.0, 0.0, 3.0])]) == pytest.approx((1.0, 0.0, 3.0))
    # Games are averaged after their own episodes: 1 (one episode) and 0 (four episodes) give 0.5.
    assert paired_difference_ci([np.array([1.0]), np.zeros(4)])[0] == pytest.approx(0.5)
