"""The training loop.

One iteration reads like the paper: rollout, intrinsic rewards, dual GAE, PPO and predictor update,
observation statistics, log.

Everything that changes during training is in :meth:`Trainer.state_dict`, so a resumed run continues from
the exact learning state. The emulators' internal state is not saved: on resume the environments restart
from a reset seeded from the checkpoint (``seed + iteration``), so two resumes of one checkpoint agree
exactly, but not with the uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from prend.agent.callbacks import Callback
from prend.agent.gae import gae
from prend.agent.perf import apply_memory_format, choose_perf, resolve_device
from prend.agent.ppo import ppo_update
from prend.agent.storage import RolloutStorage
from prend.config import TrainConfig, config_to_dict
from prend.envs.vector import ProtocolVecEnv, make_env
from prend.intrinsic.base import check_reward_output, reward_decomposition
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.methods import resolve_method
from prend.metrics import FRAMES, GLOBAL_STEP, ITERATION, RAW_MEAN, RAW_STD, SCORE, STEPS_PER_SECOND
from prend.nets.policy import make_policy

STATE_KEYS = ("config", "iteration", "global_step", "episodes", "recent_scores", "policy", "intrinsic",
              "optimizers", "rng")
"""The trainer's own entries of its state (:meth:`Trainer.state_dict`)."""
ENVELOPE_KEYS = ("format", "version")
"""Entries of a checkpoint file around the trainer's state (:mod:`prend.checkpoint`), not state themselves."""


class Trainer:
    """PPO with two value heads and a prediction-based intrinsic reward, on a vector of Atari envs.

    Args:
        cfg: The run's config.
        env: The vector env to train on (default: :func:`~prend.envs.vector.make_env` of ``cfg.env``).
        callbacks: Hooks into the loop (:class:`~prend.agent.callbacks.Callback`), called in this order.
    """

    def __init__(self, cfg: TrainConfig, env: ProtocolVecEnv | None = None, callbacks: Sequence[Callback] = ()):
        self.cfg = cfg.validate()
        self.callbacks = list(callbacks)
        self.device = resolve_device(cfg.run.device)
        # Before the seed is set: made per machine, the speed choices must not depend on, or move, the run's RNG.
        self.perf = choose_perf(self.device, cfg.run.torch_threads, cfg.run.memory_format,
                                minibatch=cfg.batch_size // cfg.ppo.num_minibatches, micro_batch=cfg.run.micro_batch)
        torch.set_num_threads(self.perf["threads"])
        torch.manual_seed(cfg.run.seed)
        self.env = env or make_env(cfg.env)
        num_envs, steps = cfg.env.num_envs, cfg.ppo.num_steps
        self.method = resolve_method(cfg.intrinsic.method)
        self.policy = make_policy(cfg.ppo.policy, self.env.obs_shape[0], self.env.num_actions,
                                  intrinsic_head=self.method.intrinsic_head).to(self.device)
        apply_memory_format(self.policy, self.perf["memory_format"])
        self.intrinsic = make_intrinsic(cfg.intrinsic, num_envs, cfg.ppo.gamma_int, self.env.rom)
        if self.intrinsic is not None:
            apply_memory_format(self.intrinsic.to(self.device), self.perf["memory_format"])
            self.intrinsic.chunk_size = self.perf["reward_chunk"]
        self.reward_name = f"method {self.method.name!r}: {type(self.intrinsic).__qualname__}"
        """How the reward contract's errors name this run's reward (its method and class)."""
        self.optimizers = self._make_optimizers()
        self.base_learning_rates = [opt.param_groups[0]["lr"] for opt in self.optimizers]
        self.generator = torch.Generator().manual_seed(cfg.run.seed)
        self.np_rng = np.random.default_rng(cfg.run.seed)
        self.storage = RolloutStorage(steps, num_envs, self.env.obs_shape, self.device,
                                      channels_last=self.perf["memory_format"] == "channels-last")
        self.iteration = 0
        self.global_step = 0
        self.episodes = 0
        self.recent_scores: deque[float] = deque(maxlen=100)
        self.foreign_state: dict[str, Any] = {}
        self.obs: np.ndarray | None = None
        self.first = torch.ones(num_envs, dtype=torch.bool)
        self.policy_state = tuple(s.to(self.device) for s in self.policy.initial_state(num_envs))
        for callback in self.callbacks:
            callback.on_init(self)

    def _make_optimizers(self) -> list[torch.optim.Optimizer]:
        ppo, icfg = self.cfg.ppo, self.cfg.intrinsic

        def adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
            # Fused: one kernel over all parameters, the per-tensor loop's arithmetic (the same steps to float
            # rounding: tests/test_ppo_update.py) at 1.75 instead of 8.8 ms per step on a CPU (RND's 3.6M
            # parameters, Sapphire Rapids): the loop was 7% of an 8 x 128 iteration.
            return torch.optim.Adam(params, lr=lr, eps=ppo.adam_eps, fused=True)

        policy_params = list(self.policy.parameters())
        if self.intrinsic is None:
            return [adam(policy_params, ppo.learning_rate)]
        predictor_params = list(self.intrinsic.predictor.parameters())
        # A trained target steps with the predictor's optimizer (SND's one Adam over both), or with its own, last.
        target_params = self.intrinsic.target_parameters()
        own_target = self.method.own_target_optimizer and bool(target_params)
        if not own_target:
            predictor_params += target_params
        if not self.method.uses_own_optimizer(icfg):
            # The original RND adds the predictor's loss to PPO's and steps both with one Adam.
            optimizers = [adam(policy_params + predictor_params, ppo.learning_rate)]
        else:
            optimizers = [adam(policy_params, ppo.learning_rate),
                          adam(predictor_params, ppo.learning_rate * icfg.predictor_lr_scale)]
        if own_target:
            optimizers.append(adam(target_params, ppo.learning_rate * self.method.target_lr_scale))
        return optimizers

    def learning_rate_fraction(self) -> float:
        """The share of each optimizer's configured rate the coming iteration uses (1 unless ``anneal_lr``).

        Like baselines' ``ppo2``: the first iteration runs at the full rate, the last at 1/n of it. It depends
        only on the iteration count and budget, so a resumed run anneals exactly as an uninterrupted one
        (extending the budget with ``--resume --total-steps`` stretches the rest of the schedule).
        """
        if not self.cfg.ppo.anneal_lr:
            return 1.0
        return max(0.0, 1.0 - self.iteration / self.cfg.num_iterations)

    def _set_learning_rates(self) -> float:
        """Apply :meth:`learning_rate_fraction` to every optimizer; returns the policy's rate."""
        fraction = self.learning_rate_fraction()
        for opt, base in zip(self.optimizers, self.base_learning_rates, strict=True):
            for group in opt.param_groups:
                group["lr"] = base * fraction
        return self.base_learning_rates[0] * fraction

    # ------------------------------------------------------------------------------------------- start
    def start(self) -> None:
        """Reset the environments, initialise observation statistics from a random agent, start the callbacks.

        The random agent plays the intrinsic reward's warm-up rollouts, or more if a callback asks for them;
        the callbacks get the last rollout's frames.
        """
        self.obs = self.env.reset(self.cfg.run.seed)
        warmup = self.cfg.intrinsic.obs_norm_init_iters
        if self.intrinsic is None or not self.intrinsic.needs_warmup:
            warmup = 0
        wanted = [cb for cb in self.callbacks if cb.random_rollouts > 0]
        rollouts = max([warmup, *(cb.random_rollouts for cb in wanted)])
        # Seconds to a minute of random play before the first iteration: say what it is for.
        what = " + ".join(["observation statistics"] * bool(warmup) + [cb.purpose for cb in wanted if cb.purpose])
        bar = tqdm(total=rollouts * self.cfg.ppo.num_steps * self.env.num_envs, unit="step", unit_scale=True,
                   dynamic_ncols=True, desc=f"random agent ({what})", disable=not self.cfg.run.progress or not rollouts)
        frames = torch.zeros(0, *self.env.obs_shape, dtype=torch.uint8)
        for i in range(rollouts):
            batch = []
            for _ in range(self.cfg.ppo.num_steps):
                actions = self.np_rng.integers(0, self.env.num_actions, self.env.num_envs)
                step = self.env.step(actions)
                batch.append(step.obs)
                self.obs = step.obs
                bar.update(self.env.num_envs)
            observations = torch.from_numpy(np.concatenate(batch))
            if i < warmup:
                self.intrinsic.observe(observations.to(self.device))
            frames = observations
        bar.close()
        if warmup:
            self.intrinsic.end_warmup(frames.to(self.device))
        for callback in self.callbacks:
            callback.on_start(self, frames)
        self.first = torch.ones(self.env.num_envs, dtype=torch.bool)

    def restart_envs(self) -> None:
        """After loading a checkpoint: fresh episodes, seeded from the checkpoint's counters."""
        # Seeds stay below 2**31 (the emulator's seed type); env i gets seed + i.
        self.obs = self.env.reset((self.cfg.run.seed + 1_000_003 * self.iteration) % (2**31 - self.env.num_envs))
        self.first = torch.ones(self.env.num_envs, dtype=torch.bool)
        self.policy_state = tuple(s.to(self.device) for s in self.policy.initial_state(self.env.num_envs))

    # --------------------------------------------------------------------------------------- iteration
    def train_iteration(self) -> dict[str, Any]:
        """One PPO iteration; returns its metrics record."""
        t0 = time.perf_counter()
        learning_rate = self._set_learning_rates()
        finished = self.collect_rollout()
        t1 = time.perf_counter()
        int_stats = self.compute_intrinsic_rewards()
        t2 = time.perf_counter()
        self.compute_advantages()
        losses = ppo_update(self.policy, self.intrinsic, self.storage, self.optimizers, self.cfg.ppo,
                            self.cfg.intrinsic.update_proportion, self.generator, self.perf["micro_batch"],
                            reward_name=self.reward_name)
        if self.intrinsic is not None:
            st = self.storage
            self.intrinsic.observe(st.obs.reshape(-1, *self.env.obs_shape), compact=st.int_update_input.flatten(0, 1),
                                   target=st.int_target.flatten(0, 1))
        t3 = time.perf_counter()
        self.iteration += 1
        self.global_step += self.cfg.batch_size
        recorded: dict[str, float] = {}
        for callback in self.callbacks:
            recorded |= callback.on_iteration_end(self)
        return self._record(finished, int_stats, losses | {"charts/learning_rate": learning_rate}, recorded,
                            (t0, t1, t2, t3))

    def collect_rollout(self) -> list[tuple[float, int]]:
        """Act for ``num_steps`` in every environment, filling the storage; returns the games that ended."""
        st, finished = self.storage, []
        st.final_obs.clear()
        st.initial_state = tuple(s.clone() for s in self.policy_state)
        self.policy.eval()
        for t in range(self.cfg.ppo.num_steps):
            st.obs[t] = torch.from_numpy(self.obs)  # into the storage's frames, in the conv layout the policy reads
            with torch.inference_mode(), self._autocast():
                out = self.policy(st.obs[t : t + 1], self.policy_state, self.first.unsqueeze(0).to(self.device))
            with torch.inference_mode():
                logp_all = torch.log_softmax(out.logits[0].float(), -1)
                actions = torch.multinomial(logp_all.exp().cpu(), 1, generator=self.generator).squeeze(1)
            step = self.env.step(actions.numpy())
            st.first[t] = self.first
            st.actions[t] = actions
            st.logprobs[t] = logp_all.gather(1, actions.to(self.device).unsqueeze(1)).squeeze(1)
            st.values_ext[t] = out.value_ext[0]
            st.values_int[t] = out.value_int[0]
            st.rewards_ext[t] = torch.from_numpy(step.reward)
            st.dones[t] = torch.from_numpy(step.done)
            for env in np.flatnonzero(step.episode_end):
                st.final_obs[(t, int(env))] = torch.from_numpy(step.next_obs[env]).to(self.device)
            self.policy_state = out.state
            self.obs, self.first = step.obs, torch.from_numpy(step.done)
            finished.extend(step.finished)
        st.last_obs.copy_(torch.from_numpy(self.obs))
        with torch.inference_mode(), self._autocast():  # as the rollout's values: GAE mixes the two
            out = self.policy(st.last_obs.unsqueeze(0), self.policy_state, self.first.unsqueeze(0).to(self.device))
        self.next_values = (out.value_ext[0].float(), out.value_int[0].float())
        self.policy.train()
        return finished

    def _autocast(self):
        """bfloat16 autocast for the policy when ``ppo.bf16`` (the update uses the same, so ratios start at 1)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.ppo.bf16)

    def compute_intrinsic_rewards(self) -> dict[str, float]:
        """Raw rewards of the whole rollout in one batched pass, then the return-std normalisation."""
        st = self.storage
        if self.intrinsic is None:
            st.rewards_int.zero_()
            return {}
        nxt = st.next_observations()
        obs = None if self.intrinsic.rates == "next" and not self.intrinsic.target_pairs else st.obs.reshape(nxt.shape)
        out = self.intrinsic.reward(nxt if self.intrinsic.rates == "next" else obs)
        check_reward_output(out, len(nxt), f"{self.reward_name}.reward")
        pair = None
        if self.intrinsic.target_pairs:  # the compact form of each transition's other state, for the target's loss
            pair = self.intrinsic.encoder.compact(obs if self.intrinsic.rates == "next" else nxt)
        st.store_intrinsic(out.raw, out.update_input, out.target, pair)
        st.rewards_int.copy_(self.intrinsic.normalize(st.rewards_int_raw))
        for callback in self.callbacks:
            callback.on_intrinsic_rewards(self, out)
        # How much of the raw reward is one offset shared by all states (from tensors the pass already made).
        parts = reward_decomposition(out.error, self.intrinsic.regression_target(out.target))
        return {
            RAW_MEAN: st.rewards_int_raw.mean().item(),
            RAW_STD: st.rewards_int_raw.std().item(),
            "intrinsic/norm_mean": st.rewards_int.mean().item(), "intrinsic/norm_std": st.rewards_int.std().item(),
            "intrinsic/return_std": self.intrinsic.return_rms.std.item(),
            **{f"intrinsic/{key}": value for key, value in parts.items()},
        }

    def compute_advantages(self) -> None:
        """Dual GAE: episodic extrinsic, (by default) non-episodic intrinsic; combined with fixed weights."""
        st, ppo = self.storage, self.cfg.ppo
        next_ext, next_int = self.next_values
        adv_ext, ret_ext = gae(st.rewards_ext, st.values_ext, next_ext, st.dones, ppo.gamma_ext, ppo.gae_lambda)
        int_dones = st.dones if ppo.int_episodic else None
        adv_int, ret_int = gae(st.rewards_int, st.values_int, next_int, int_dones, ppo.gamma_int, ppo.gae_lambda)
        int_coef = ppo.int_coef if self.intrinsic is not None else 0.0
        st.advantages.copy_(ppo.ext_coef * adv_ext + int_coef * adv_int)
        st.returns_ext.copy_(ret_ext)
        st.returns_int.copy_(ret_int)

    def _record(self, finished, int_stats, losses, recorded, times) -> dict[str, Any]:
        scores = [s for s, _ in finished]
        self.recent_scores.extend(scores)
        self.episodes += len(finished)
        t0, t1, t2, t3 = times
        return {
            ITERATION: self.iteration,
            GLOBAL_STEP: self.global_step,
            FRAMES: self.global_step * self.cfg.env.frame_skip,
            "charts/episodes": self.episodes,
            "charts/episode_score_mean": float(np.mean(scores)) if scores else math.nan,
            "charts/episode_score_max": float(np.max(scores)) if scores else math.nan,
            "charts/episode_length_mean": float(np.mean([n for _, n in finished])) if finished else math.nan,
            SCORE: float(np.mean(self.recent_scores)) if self.recent_scores else math.nan,
            STEPS_PER_SECOND: self.cfg.batch_size / (t3 - t0),
            **int_stats, **losses, **recorded,
            "time/rollout_s": t1 - t0, "time/intrinsic_s": t2 - t1, "time/update_s": t3 - t2,
        }

    # ------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (tensors, numbers and strings only).

        The callbacks' entries follow the trainer's own, then those of a loaded state that no callback here
        owns, so loading and saving a checkpoint without its recorders loses nothing.
        """
        state = {
            "config": json.dumps(config_to_dict(self.cfg)),
            "iteration": self.iteration, "global_step": self.global_step, "episodes": self.episodes,
            "recent_scores": torch.tensor(list(self.recent_scores), dtype=torch.float64),
            "policy": self.policy.state_dict(),
            "intrinsic": None if self.intrinsic is None else self.intrinsic.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "rng": self._rng_state(),
        }
        for callback in self.callbacks:
            state |= callback.state_dict()
        return state | {k: v for k, v in self.foreign_state.items() if k not in state}

    def _rng_state(self) -> dict[str, Any]:
        """The random streams a run draws from.

        Torch's global CPU generator, the trainer's own (actions, minibatches), numpy's (the random agent), and,
        on a GPU, every CUDA generator (``cuda``: a loss that draws on its batch's device, such as SND-V's
        augmentation and pair sampling, draws from those).
        """
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
               "numpy": json.dumps(self.np_rng.bit_generator.state)}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return rng

    def _load_rng_state(self, rng: dict[str, Any]) -> None:
        """Restore :meth:`_rng_state`.

        A checkpoint without ``cuda`` (a CPU run, or one saved before prend kept it) leaves the CUDA generators
        where the seed put them; a CUDA run's checkpoint resumed on the CPU ignores them (nothing here draws from
        them), and one resumed on fewer GPUs restores those it has.
        """
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        self.np_rng.bit_generator.state = json.loads(rng["numpy"])
        cuda = rng.get("cuda")
        if cuda is not None and self.device.type == "cuda":
            for index, cuda_state in enumerate(cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, index)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (strict: every network key and shape must match)."""
        self.iteration, self.global_step, self.episodes = state["iteration"], state["global_step"], state["episodes"]
        self.recent_scores = deque(state["recent_scores"].tolist(), maxlen=100)
        self.policy.load_state_dict(state["policy"])
        if self.intrinsic is not None:
            self.intrinsic.load_state_dict(state["intrinsic"])
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError("checkpoint has a different number of optimizers")
        for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        self._load_rng_state(state["rng"])
        for callback in self.callbacks:
            callback.load_state_dict(state)
        owned = {*STATE_KEYS, *ENVELOPE_KEYS, *(key for callback in self.callbacks for key in callback.state_keys)}
        self.foreign_state = {k: v for k, v in state.items() if k not in owned}

    def close(self) -> None:
        """Release the environments."""
        self.env.close()
