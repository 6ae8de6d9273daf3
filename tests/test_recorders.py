"""Trainer callbacks: the trainer runs without any, and ``prend train``'s recorder writes what the loop saw."""

import copy

import numpy as np
import torch

from prend.agent.callbacks import Callback
from prend.agent.trainer import STATE_KEYS, Trainer
from prend.checkpoint import load_checkpoint
from prend.metrics import read_metrics
from prend.recorders import DiagnosticsRecorder
from prend.train import parse_train_args, train

UNTIMED = ("time/", "charts/steps_per_second")


def _cfg(tmp_path, tiny_args, *flags):
    cfg, _ = parse_train_args([*tiny_args, "--method", "rnd", "--probe-every", "2", "--total-steps", "96",
                               "--no-tensorboard", "--out", str(tmp_path / "run"), *flags])
    return cfg


class Spy(Callback):
    """Copies what the loop exposes, independently of the recorder: the expectation, worked out by hand."""

    random_rollouts = 1

    def __init__(self):
        self.frames, self.rewards, self.probe_rewards = [], [], []

    def on_start(self, trainer, frames):
        # The recorder draws 8 of the random agent's last frames with the trainer's generator, sorted.
        pick = copy.deepcopy(trainer.np_rng).choice(len(frames), size=8, replace=False)
        self.probe_obs = frames[np.sort(pick)].clone()

    def on_intrinsic_rewards(self, trainer, rewards):
        self.frames.append(trainer.storage.last_obs[0, -1].clone())  # env 0's last observation, newest frame
        self.rewards.append(float(rewards.raw.view(trainer.cfg.ppo.num_steps, -1)[-1, 0]))

    def on_iteration_end(self, trainer):
        if trainer.iteration % 2 == 0:
            self.probe_rewards.append(trainer.intrinsic.reward(self.probe_obs).raw.clone())
        return {}


def test_recorder_writes_the_frames_rewards_and_probe_rewards_the_loop_saw(tmp_path, tiny_args):
    run_dir = train(_cfg(tmp_path, tiny_args))
    diag = np.load(run_dir / "diagnostics.npz")
    recorded = read_metrics(run_dir / "metrics.jsonl")

    spy = Spy()
    trainer = Trainer(_cfg(tmp_path / "again", tiny_args), callbacks=[spy])
    trainer.start()
    records = [trainer.train_iteration() for _ in range(3)]
    trainer.close()

    assert list(diag) == ["iteration", "frame", "frame_reward", "probe_iteration", "probe_rewards", "probe_obs"]
    assert diag["iteration"].tolist() == [1, 2, 3] and diag["probe_iteration"].tolist() == [2]
    assert diag["frame"].dtype == np.uint8 and np.array_equal(diag["frame"], torch.stack(spy.frames).numpy())
    assert diag["frame_reward"].dtype == np.float64 and diag["frame_reward"].tolist() == spy.rewards
    assert np.array_equal(diag["probe_obs"], spy.probe_obs.numpy()) and diag["probe_obs"].shape == (8, 4, 84, 84)
    assert np.array_equal(diag["probe_rewards"], torch.stack(spy.probe_rewards).numpy())
    assert recorded[1]["intrinsic/probe_mean"] == spy.probe_rewards[0].mean().item()
    assert "intrinsic/probe_mean" not in recorded[0]  # every 2nd iteration
    # The recorder only watches: the same run without it learns exactly the same.
    for mine, theirs in zip(records, recorded, strict=True):
        kept = {k: v for k, v in theirs.items() if not k.startswith(UNTIMED) and "probe" not in k}
        assert {k: v for k, v in mine.items() if k in kept} == kept and "intrinsic/probe_mean" not in mine


def test_trainer_runs_without_callbacks_and_keeps_a_recorders_state_it_does_not_own(tmp_path, tiny_args):
    run_dir = train(_cfg(tmp_path, tiny_args, "--total-steps", "32"))
    state = load_checkpoint(run_dir / "checkpoint.pt")
    bare = Trainer(_cfg(tmp_path / "bare", tiny_args))
    assert tuple(bare.state_dict()) == STATE_KEYS
    bare.load_state_dict(state)
    bare.restart_envs()
    record = bare.train_iteration()
    assert record["iteration"] == 2 and not any("probe" in key for key in record)
    saved = bare.state_dict()
    assert torch.equal(saved["probe_obs"], state["probe_obs"])
    assert saved["diagnostics"]["iteration"].tolist() == [1]  # carried over unchanged, not extended
    bare.close()

    recorder = DiagnosticsRecorder()
    again = Trainer(_cfg(tmp_path / "again", tiny_args), callbacks=[recorder])
    again.load_state_dict(state)
    assert recorder.series["iteration"] == [1] and torch.equal(recorder.probe_obs, state["probe_obs"])
    assert again.foreign_state == {}
    again.close()


def test_callback_hooks_run_in_order_and_their_metrics_join_the_record(tmp_path, tiny_args):
    calls = []

    class Hooks(Callback):
        def on_init(self, trainer):
            calls.append("init")

        def on_start(self, trainer, frames):
            calls.append(("start", tuple(frames.shape)))

        def on_intrinsic_rewards(self, trainer, rewards):
            calls.append(("rewards", tuple(rewards.raw.shape)))

        def on_iteration_end(self, trainer):
            calls.append(("end", trainer.iteration))
            return {"intrinsic/mine": 1.5}

    trainer = Trainer(_cfg(tmp_path, tiny_args, "--probe-size", "0"), callbacks=[Hooks()])
    trainer.start()
    record = trainer.train_iteration()
    trainer.close()
    # The RND warm-up plays one random rollout of 16 steps x 2 envs; the reward pass covers the same.
    assert calls == ["init", ("start", (32, 4, 84, 84)), ("rewards", (32,)), ("end", 1)]
    keys = list(record)
    assert record["intrinsic/mine"] == 1.5 and keys.index("intrinsic/mine") < keys.index("time/rollout_s")
