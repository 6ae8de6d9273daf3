"""The PPO update: clipped policy loss, two value losses, entropy, and the predictor's distillation loss."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import torch
from torch import nn

from prend.agent.storage import PPOBatch, RolloutStorage
from prend.config import PPOConfig
from prend.errors import TrainingDiverged
from prend.intrinsic.base import DistillationReward, TargetBatch, check_update_loss


def first_nonfinite(named: Iterable[tuple[str, torch.Tensor | None]]) -> str | None:
    """The name of the first floating-point tensor holding NaN or inf, or ``None`` if all are finite.

    One fused ``torch._foreach_norm`` over all tensors and a single check of their sum: a norm is finite
    exactly when every element is (a norm overflowing float range counts as divergence too), so the
    common all-finite case costs one pass over the values and one synchronisation.
    """
    items = [(name, t.detach()) for name, t in named if t is not None and t.is_floating_point() and t.numel()]
    if not items:
        return None
    norms = torch._foreach_norm([t for _, t in items])
    if torch.isfinite(torch.stack([n.float() for n in norms]).sum()):
        return None
    return next((name for (name, _), n in zip(items, norms, strict=True) if not torch.isfinite(n)), items[0][0])


def _parameter_names(policy: nn.Module, intrinsic: DistillationReward | None) -> dict[int, str]:
    names = {id(p): f"policy.{n}" for n, p in policy.named_parameters()}
    if intrinsic is not None:
        names |= {id(p): f"intrinsic.predictor.{n}" for n, p in intrinsic.predictor.named_parameters()}
        names |= {id(p): f"intrinsic.target.{n}" for n, p in intrinsic.target.named_parameters()}
        if intrinsic.target_objective is not None:
            objective = intrinsic.target_objective.named_parameters()
            names |= {id(p): f"intrinsic.target_objective.{n}" for n, p in objective}
    return names


def ppo_loss(policy: nn.Module, batch: PPOBatch, cfg: PPOConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped-surrogate PPO loss with an extrinsic and an intrinsic value head, as a mean over ``batch``.

    The value losses are unclipped (the original RND) unless ``cfg.clip_vloss`` (PPO2's Atari setting).
    ``batch.advantages`` are used as given: :func:`ppo_update` normalises them over the whole minibatch
    (``cfg.norm_adv``) before it splits the minibatch into micro-batches.
    """
    device = batch.obs.device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.bf16):
        out = policy(batch.obs, batch.initial_state, batch.first)
    # No argument validation: non-finite logits must reach the loss, where ppo_update names them.
    dist = torch.distributions.Categorical(logits=out.logits.float(), validate_args=False)
    logprob = dist.log_prob(batch.actions)
    entropy = dist.entropy().mean()
    log_ratio = logprob - batch.logprobs
    ratio = log_ratio.exp()
    adv = batch.advantages
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
    v_ext_loss = value_loss(out.value_ext.float(), batch.values_ext, batch.returns_ext, cfg)
    v_int_loss = value_loss(out.value_int.float(), batch.values_int, batch.returns_int, cfg)
    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * (v_ext_loss + v_int_loss)
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()  # http://joschu.net/blog/kl-approx.html
        clip_fraction = ((ratio - 1).abs() > cfg.clip_coef).float().mean()
    return loss, {
        "losses/policy": pg_loss.item(), "losses/value_ext": v_ext_loss.item(),
        "losses/value_int": v_int_loss.item(), "losses/entropy": entropy.item(),
        "losses/approx_kl": approx_kl.item(), "losses/clip_fraction": clip_fraction.item(),
    }


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, cfg: PPOConfig) -> torch.Tensor:
    """``0.5 * mean((V - R)^2)``, or with ``clip_vloss`` PPO2's pessimistic clipped form.

    Example:
        >>> cfg = PPOConfig(clip_coef=0.1, clip_vloss=True)
        >>> value_loss(torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([0.0]), cfg)  # max(1.0, 0.6^2)
        tensor(0.5000)
        >>> value_loss(torch.tensor([0.0]), torch.tensor([0.5]), torch.tensor([1.0]), cfg)  # max(1.0, 0.6^2)
        tensor(0.5000)
        >>> value_loss(torch.tensor([0.8]), torch.tensor([0.5]), torch.tensor([1.0]), cfg)  # max(0.04, 0.4^2)
        tensor(0.0800)
    """
    loss = (values - returns).square()
    if cfg.clip_vloss:
        clipped = old_values + (values - old_values).clamp(-cfg.clip_coef, cfg.clip_coef)
        loss = torch.max(loss, (clipped - returns).square())
    return 0.5 * loss.mean()


def predictor_subset(
    batch: PPOBatch, proportion: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``proportion`` of the minibatch's stored predictor inputs and target outputs.

    The subset is drawn before any forward pass, so the predictor never runs on samples it will not
    learn from (the original masks 75% of a full forward pass away).
    """
    assert batch.int_update_input is not None and batch.int_target is not None
    inputs = batch.int_update_input.reshape(-1, *batch.int_update_input.shape[batch.advantages.dim():])
    targets = batch.int_target.reshape(-1, batch.int_target.shape[-1])
    count = max(1, round(proportion * inputs.shape[0]))
    keep = torch.randperm(inputs.shape[0], generator=generator)[:count]
    return inputs[keep], targets[keep]


def target_subset(batch: PPOBatch, proportion: float, generator: torch.Generator) -> TargetBatch:
    """A random ``proportion`` of the minibatch's stored states for a reward whose target trains.

    Drawn as :func:`predictor_subset` draws (one ``randperm`` of the minibatch), so at the defaults (4 epochs
    x 0.25) the predictor and the target each see every sample of the rollout once per iteration on average.
    """
    assert batch.int_update_input is not None
    lead = batch.advantages.dim()
    inputs = batch.int_update_input.reshape(-1, *batch.int_update_input.shape[lead:])
    count = max(1, round(proportion * inputs.shape[0]))
    keep = torch.randperm(inputs.shape[0], generator=generator)[:count]
    if batch.int_pair_input is None or batch.int_ends is None:
        return TargetBatch(inputs[keep])
    pairs = batch.int_pair_input.reshape(-1, *batch.int_pair_input.shape[lead:])
    return TargetBatch(inputs[keep], pairs[keep], batch.int_ends.reshape(-1)[keep])


def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """Advantages shifted and scaled to mean 0 and (sample) std 1 over the minibatch, as PPO2 does.

    Example:
        >>> normalize_advantages(torch.tensor([1.0, 2.0, 3.0]))
        tensor([-1.,  0.,  1.])
    """
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def micro_batches(batch: PPOBatch, size: int, by_env: bool) -> list[PPOBatch]:
    """``batch`` in consecutive pieces of at most ``size`` samples (views, no copies).

    Split by sample, or, for a minibatch of whole environments (``by_env``: fields lead with (T, B)),
    by environment, at least one environment's T steps per piece, with the recurrent state split alike.

    Example:
        >>> fields = {name: torch.arange(5.0) for name in PPOBatch._fields}
        >>> batch = PPOBatch(**fields | {"int_update_input": None, "int_target": None, "int_pair_input": None,
        ...                                  "int_ends": None, "initial_state": ()})
        >>> [piece.advantages.tolist() for piece in micro_batches(batch, 2, by_env=False)]
        [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """
    axis = 1 if by_env else 0
    units = batch.advantages.shape[axis]
    per_piece = max(1, size // batch.advantages.shape[0]) if by_env else max(1, size)
    if per_piece >= units:
        return [batch]
    pieces = []
    for start in range(0, units, per_piece):
        part = slice(start, start + per_piece)
        fields = [None if f is None else f[:, part] if by_env else f[part] for f in batch[:-1]]
        pieces.append(PPOBatch(*fields, initial_state=tuple(s[part] for s in batch.initial_state)))
    return pieces


def ppo_update(policy: nn.Module, intrinsic: DistillationReward | None, storage: RolloutStorage,
               optimizers: list[torch.optim.Optimizer], cfg: PPOConfig, update_proportion: float,
               generator: torch.Generator, micro_batch: int = 0, reward_name: str | None = None) -> dict[str, float]:
    """``update_epochs`` passes of minibatch updates; returns the mean of each logged loss.

    Each minibatch's gradient is accumulated over micro-batches of ``micro_batch`` samples (0: the whole
    minibatch at once), each loss weighted by its share of the minibatch, so the step is the same up to float
    rounding whatever the size; small pieces keep the convolutions' activations in cache and run faster on a
    CPU (``run.micro_batch``, chosen per machine: docs/performance.md).

    Raises :class:`~prend.errors.TrainingDiverged` before a step that a non-finite loss or gradient would
    poison, and after the update if any parameter is non-finite; a :class:`~prend.errors.PrendError` naming
    ``reward_name`` (default: the reward's class) and its function when its loss is no scalar that requires grad
    (the contract).
    """
    by_env = cfg.minibatch_by_env or getattr(policy, "recurrent", False)
    reward_name = reward_name or type(intrinsic).__qualname__
    update_loss_name, predictor_loss_name = f"{reward_name}.update_loss", f"{reward_name}.predictor_loss"
    names = _parameter_names(policy, intrinsic)
    params = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
    sums: dict[str, float] = defaultdict(float)
    count = 0
    for _ in range(cfg.update_epochs):
        for batch in storage.minibatches(cfg.num_minibatches, by_env, generator):
            if cfg.norm_adv:
                batch = batch._replace(advantages=normalize_advantages(batch.advantages))
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            size = micro_batch or batch.advantages.numel()
            metrics: dict[str, float] = defaultdict(float)
            for piece in micro_batches(batch, size, by_env):
                share = piece.advantages.numel() / batch.advantages.numel()
                loss, piece_metrics = ppo_loss(policy, piece, cfg)
                _backward(loss, share, piece_metrics, metrics)
            if intrinsic is not None and intrinsic.trains_target:
                # Whole, not in micro-batches: a self-supervised loss's terms are statistics of its batch.
                loss, terms = intrinsic.update_loss(target_subset(batch, update_proportion, generator))
                check_update_loss(loss, update_loss_name)
                _backward(loss, 1.0, terms, metrics)
            elif intrinsic is not None:
                inputs, targets = predictor_subset(batch, update_proportion, generator)
                for piece_inputs, piece_targets in zip(inputs.split(size), targets.split(size), strict=True):
                    loss = intrinsic.predictor_loss(piece_inputs, piece_targets)
                    check_update_loss(loss, predictor_loss_name)
                    _backward(loss, len(piece_inputs) / len(inputs), {"losses/predictor": loss.item()}, metrics)
            bad = first_nonfinite((names.get(id(p), "parameter"), p.grad) for p in params)
            if bad is not None:
                raise TrainingDiverged(f"non-finite gradient of {bad} before an optimizer step")
            for opt in optimizers:
                if cfg.max_grad_norm is not None:  # per optimizer, as each clips its own parameters
                    nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]],
                                             cfg.max_grad_norm)
                opt.step()
            for key, value in metrics.items():
                sums[key] += value
            count += 1
    bad = first_nonfinite((names.get(id(p), "parameter"), p) for p in params)
    if bad is not None:
        raise TrainingDiverged(f"non-finite parameter {bad} after the update")
    return {key: value / count for key, value in sums.items()}


def _backward(loss: torch.Tensor, share: float, piece_metrics: dict[str, float], metrics: dict[str, float]) -> None:
    """Accumulate one micro-batch's gradient and metrics, weighted by its ``share`` of the minibatch."""
    bad = next((key for key, value in piece_metrics.items() if not math.isfinite(value)), None)
    if bad is not None:
        raise TrainingDiverged(f"non-finite {bad} ({piece_metrics[bad]}) before an optimizer step")
    (loss * share).backward()
    for key, value in piece_metrics.items():
        metrics[key] += share * value
