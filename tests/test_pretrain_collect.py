"""prend collect: chunked storage, exact round trip of the observation stacks, resume after interruption."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from prend.errors import PrendError
from prend.pretrain.collect import CallableActions, CollectConfig, RandomActions, StickyRandomActions, collect
from prend.pretrain.dataset import FrameData, FuturePairSampler


class Recorder:
    """Random actions that remember every observation stack they were shown (env by env)."""

    def __init__(self, stop_after: int | None = None):
        self.seen: list[np.ndarray] = []
        self.calls, self.stop_after = 0, stop_after
        self.rng = np.random.default_rng(0)

    def __call__(self, obs, first):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt  # what Ctrl-C mid-collection looks like
        self.seen.append(obs.copy())
        return self.rng.integers(0, 4, size=len(obs))


def small(tmp_path, **kw) -> CollectConfig:
    base = dict(out=tmp_path / "frames", games=("breakout",), frames_per_game=300, num_envs=2, chunk_frames=64,
                max_episode_steps=40, progress=False, sticky_action_prob=0.0)
    base.update(kw)
    return CollectConfig(**base)


def test_round_trip_reproduces_the_env_stacks(tmp_path):
    rec = Recorder()
    manifest = collect(small(tmp_path), action_source=CallableActions(rec))
    entry = manifest["games"]["breakout"]
    assert entry["game_id"] == 13 and entry["num_actions"] == 4
    assert sum(c["frames"] for c in entry["chunks"]) == 300
    assert all(c["frames"] <= 64 for c in entry["chunks"])
    on_disk = json.loads((tmp_path / "frames" / "manifest.json").read_text())
    assert on_disk["games"]["breakout"]["chunks"] == entry["chunks"]

    data = FrameData.load(tmp_path / "frames")
    assert len(data) == 300 and data.frames.dtype == np.uint8 and data.frames.shape[1:] == (84, 84)
    # Env 0's stream comes first (streams in order); its stacks rebuilt from single frames must equal the
    # stacks ALE handed to the policy, zero padding at episode starts included.
    seen0 = np.stack([obs[0] for obs in rec.seen])[:150]
    np.testing.assert_array_equal(data.stacks(np.arange(150)), seen0)
    # 40-step episodes: boundaries every 40 frames within each stream, t counts from 0.
    assert data.t[:81].tolist() == list(range(40)) + list(range(40)) + [0]
    assert data.left[39] == 0 and data.left[0] == 39
    assert (data.game_ids == 13).all()  # breakout in Atari-PB's sorted 60-game list
    assert data.stacks(np.array([40]))[0, :3].max() == 0  # an episode's first stack has 3 zero frames


def test_resume_after_interruption_completes_without_rewriting(tmp_path):
    cfg = small(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        collect(cfg, action_source=CallableActions(Recorder(stop_after=100)))
    manifest = json.loads((tmp_path / "frames" / "manifest.json").read_text())
    done = manifest["games"]["breakout"]["chunks"]
    stored = sum(c["frames"] for c in done)
    assert 0 < stored < 300 and all(c["frames"] == 64 for c in done)  # only complete chunks were listed
    digests = {c["file"]: hashlib.sha256((tmp_path / "frames" / c["file"]).read_bytes()).hexdigest()
               for c in done}
    assert not list((tmp_path / "frames").rglob("*.tmp"))

    manifest = collect(cfg)  # same command again: continues with new streams
    chunks = manifest["games"]["breakout"]["chunks"]
    assert sum(c["frames"] for c in chunks) == 300
    assert {c["stream"] for c in chunks[len(done):]}.isdisjoint({c["stream"] for c in done})
    for name, digest in digests.items():
        assert hashlib.sha256((tmp_path / "frames" / name).read_bytes()).hexdigest() == digest
    assert collect(cfg)["games"]["breakout"]["chunks"] == chunks  # complete: nothing more to do
    assert len(FrameData.load(tmp_path / "frames")) == 300


def test_sticky_random_repeats_at_the_stated_rate():
    src = StickyRandomActions(0.75)
    src.start(1000, 18, np.random.default_rng(0))
    prev = src(None, np.ones(1000, bool)).copy()
    repeats = []
    for _ in range(20):
        cur = src(None, np.zeros(1000, bool)).copy()
        repeats.append((cur == prev).mean())
        prev = cur
    # P(same) = 0.75 + 0.25/18
    assert abs(np.mean(repeats) - (0.75 + 0.25 / 18)) < 0.01
    rnd = RandomActions()
    rnd.start(1000, 4, np.random.default_rng(1))
    a, b = rnd(None, np.zeros(1000, bool)).copy(), rnd(None, np.zeros(1000, bool)).copy()
    assert abs((a == b).mean() - 0.25) < 0.05


def test_future_pairs_stay_inside_episodes():
    data = FrameData.synthetic(episode_lengths=[10, 3, 12])
    sampler = FuturePairSampler(data, batch_size=4, n_step=3, seed=0)
    assert set(sampler.anchors.tolist()) == set(range(7)) | set(range(13, 22))
    for step in range(10):
        anchor, target = sampler.indices(step)
        assert ((target - anchor >= 1) & (target - anchor <= 3)).all()
        assert (data.episode[anchor] == data.episode[target]).all()
    a1, t1 = sampler.indices(7)
    a2, t2 = FuturePairSampler(data, batch_size=4, n_step=3, seed=0).indices(7)  # cursor = step number
    assert np.array_equal(a1, a2) and np.array_equal(t1, t2)


def test_bad_input_is_a_prend_error(tmp_path):
    with pytest.raises(PrendError, match="unknown game"):
        collect(small(tmp_path, games=("Breakuot",)))
    with pytest.raises(PrendError, match="frames-per-game"):
        collect(small(tmp_path, frames_per_game=0))
    with pytest.raises(PrendError, match="no manifest"):
        FrameData.load(tmp_path / "nowhere")


def test_collect_with_a_trained_policy_follows_its_distribution(tmp_path, monkeypatch):
    import torch

    from prend.cli import main
    from prend.train import load_policy

    run = tmp_path / "run"
    flags = ["--game", "Breakout", "--method", "none", "--num-envs", "2", "--num-steps", "16", "--total-steps", "32",
             "--probe-size", "0", "--no-progress", "--no-tensorboard", "--out", str(run)]
    assert main(["train", *flags]) == 0
    policy, _ = load_policy(run)
    # make the policy all but deterministic: action 3 gets a huge logit
    with torch.no_grad():
        policy.heads.logits.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 50.0]))
    monkeypatch.setattr("prend.train.load_policy", lambda run_dir: (policy, _))
    collect(small(tmp_path, policy_run=run, frames_per_game=64))
    data = FrameData.load(tmp_path / "frames")
    assert (data.actions == 3).all()
    with pytest.raises(PrendError, match="actions"):
        collect(small(tmp_path, out=tmp_path / "other", games=("pong",), policy_run=run, frames_per_game=16))
