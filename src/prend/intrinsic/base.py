"""The interface of prediction-based intrinsic rewards, and the machinery RND, RND+LR, PreND and SND share.

A distillation reward is three modules and two normalisers:

``encoder``
    maps uint8 observations to the target's input. RND: the last frame, normalised per pixel by running
    statistics and clipped to [-5, 5]. PreND: a frozen pre-trained backbone on the frame stack in [0, 1].
``target``
    what ``predictor`` is trained to match: frozen for RND and PreND (RND's randomly initialised, PreND's a
    head on the pre-trained backbone), or trained online by its own self-supervised loss when the reward has
    a ``target_objective`` (:class:`TargetObjective`; SND).
reward normalisation
    the reward is divided by the running std of each environment's discounted intrinsic return
    (:class:`~prend.intrinsic.normalizers.RewardForwardFilter`), as in the original RND, or, with
    ``reward_norm="clip"``, clipped to [0, 1] after a fixed scale (SND's).

Two optional parts serve PreND's variants (off by default, and for RND): a ``target_norm`` that centres or
whitens the target's outputs by running statistics before they are compared, and an :class:`OutputBias` at
the end of the predictor that :meth:`DistillationReward.end_warmup` sets so the predictor starts at the
target's mean output. :func:`reward_decomposition` splits a batch's mean reward into the state-independent
offset and the part that tells states apart (logged every iteration as ``intrinsic/offset_share``).

The work splits like TorchRL's RND transform/loss pair, but in one module that owns its state:
:meth:`DistillationReward.reward` runs at collection time and returns, besides the raw reward, the
cheapest tensors the predictor's update needs (the encoder's *compact* input and the target's output), so
the update never runs the target or an expensive encoder again.

Example (one's own training loop, with a tiny fake batch):
    >>> import torch
    >>> from prend.config import IntrinsicConfig
    >>> from prend.intrinsic import make_rnd
    >>> rnd = make_rnd(IntrinsicConfig(), num_envs=2, gamma=0.99, rom=None)
    >>> obs = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8)   # (time*envs, stack, 84, 84)
    >>> rnd.observe(obs)                               # update observation statistics
    >>> out = rnd.reward(obs)                          # raw novelty of each next-observation
    >>> out.raw.shape, out.target.shape
    (torch.Size([6]), torch.Size([6, 512]))
    >>> rewards = rnd.normalize(out.raw.reshape(3, 2)) # (time, envs) -> divided by the return std
    >>> opt = torch.optim.Adam(rnd.predictor.parameters(), lr=1e-4)
    >>> loss = rnd.predictor_loss(out.update_input, out.target)
    >>> loss.backward(); opt.step()
    >>> state = rnd.state_dict()                       # networks and normalisers, for torch.save
"""

from __future__ import annotations

import abc
from typing import Literal, NamedTuple

import torch
from torch import nn

from prend.errors import PrendError
from prend.intrinsic.normalizers import RewardForwardFilter, RunningMeanStd


class RewardOutput(NamedTuple):
    """What :meth:`DistillationReward.reward` returns for a batch of B next-observations."""

    raw: torch.Tensor
    """(B,) mean squared prediction error over the output features: the un-normalised reward."""
    update_input: torch.Tensor
    """(B, ...) the encoder's compact input, to be stored for the predictor's update."""
    target: torch.Tensor
    """(B, feature_dim) the target's output (before any ``target_norm``): reused by the predictor's update when the
    target is frozen; a trained target's update runs it again (:meth:`DistillationReward.update_loss`)."""
    error: torch.Tensor
    """(B, feature_dim) prediction minus (normalised) target per state; ``raw`` is its mean square."""


CONTRACT = "docs/architecture.md, 'The contract'"
"""Where the reward contract that :func:`check_reward_output` and :func:`check_update_loss` enforce is written."""


def _shape(t: object) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else f"a {type(t).__name__}, not a tensor"


def check_reward_output(out: object, batch: int, where: str) -> None:
    """Raise a one-line :class:`~prend.errors.PrendError` unless ``out`` keeps :class:`RewardOutput`'s shapes.

    For ``batch`` observations: ``raw`` (B,), ``update_input`` (B, ...), ``target`` and ``error`` both (B, K) with
    the same K >= 1. ``where`` names what returned it (the method and its function). Reads shapes only: no
    synchronisation, so the trainer checks every rollout.

    Example:
        >>> check_reward_output(RewardOutput(torch.zeros(3), torch.zeros(3, 1), torch.zeros(3, 8),
        ...                                  torch.zeros(3, 8, 1)), 3, "M.reward")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        prend.errors.PrendError: M.reward returned target (3, 8) and error (3, 8, 1) for 3 observations: ...
    """
    if not isinstance(out, RewardOutput):
        raise PrendError(f"{where} returned a {type(out).__name__}, not a RewardOutput",
                         f"return RewardOutput(raw, update_input, target, error) ({CONTRACT})")
    raw, update_input, target, error = out
    if not isinstance(raw, torch.Tensor) or raw.shape != (batch,):
        raise PrendError(f"{where} returned raw {_shape(raw)} for {batch} observations",
                         f"return raw as ({batch},): one un-normalised reward per observation ({CONTRACT})")
    if not isinstance(update_input, torch.Tensor) or update_input.dim() == 0 or len(update_input) != batch:
        raise PrendError(f"{where} returned update_input {_shape(update_input)} for {batch} observations",
                         f"return update_input with {batch} rows, one per observation ({CONTRACT})")
    good = (isinstance(target, torch.Tensor) and isinstance(error, torch.Tensor) and target.dim() == 2
            and target.shape == error.shape and target.shape[0] == batch and target.shape[1] >= 1)
    if not good:
        raise PrendError(f"{where} returned target {_shape(target)} and error {_shape(error)} for {batch} "
                         "observations", f"return both as ({batch}, K) with the same K >= 1 features (error is "
                         f"prediction minus target per state, raw its mean square over K): flatten any other "
                         f"dimensions ({CONTRACT})")


def check_update_loss(loss: object, where: str) -> None:
    """Raise a one-line :class:`~prend.errors.PrendError` unless ``loss`` is a scalar tensor that requires grad.

    What the update calls ``backward()`` on (``predictor_loss``, ``update_loss``): a loss computed under
    ``torch.no_grad``, detached, or from no trainable parameter would end in torch's long RuntimeError instead.
    Reads attributes only: no synchronisation, so the update checks every loss.

    Example:
        >>> check_update_loss(torch.tensor(0.5), "M.predictor_loss")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        prend.errors.PrendError: M.predictor_loss returned a loss that does not require grad (...
    """
    if not isinstance(loss, torch.Tensor):
        problem = f"a {type(loss).__name__}, not a tensor"
    elif loss.numel() != 1 or not loss.is_floating_point():
        problem = f"a {loss.dtype} tensor of shape {tuple(loss.shape)}, not a floating-point scalar"
    elif not loss.requires_grad:
        problem = "a loss that does not require grad (computed under torch.no_grad, detached, or from no parameter)"
    else:
        return
    raise PrendError(f"{where} returned {problem}",
                     "return a scalar computed from the predictor's output with gradients on; a reward with nothing "
                     f"left to learn returns 0 * the sum of a parameter ({CONTRACT})")


class TargetBatch(NamedTuple):
    """What a target's own loss reads (:class:`TargetObjective`): B states' compact inputs from the rollout.

    Single states are ``inputs`` alone (a loss that augments them draws from torch's global generators, the
    CPU's and, on a GPU, the CUDA ones, which checkpoints save); consecutive pairs (s_t, s_t+1) add ``pairs``
    and ``ends``.
    """

    inputs: torch.Tensor
    """(B, ...) the encoder's compact form of the states the reward rates (what the predictor trains on)."""
    pairs: torch.Tensor | None = None
    """(B, ...) the other member of each consecutive pair: s_t+1 when the reward rates s_t (``rates="current"``),
    s_t when it rates s_t+1; ``None`` unless the objective asks for ``pairs``."""
    ends: torch.Tensor | None = None
    """(B,) bool: s_t+1 is the last observation of an episode that ended at step t (the pair is still
    consecutive: it is never the next episode's reset observation); ``None`` with ``pairs``."""


class TargetObjective(nn.Module, abc.ABC):
    """A target's own, self-supervised loss: with one, :class:`DistillationReward` trains its target.

    Its parameters (heads the loss needs, such as ST-DIM's classifiers) train with the target's and are
    checkpointed with the reward module. It is called inside the reward's :meth:`DistillationReward.networks_autocast`:
    with ``bf16`` on, the target's passes run in bfloat16, and an objective computes its terms from their outputs
    cast to float32 inside :func:`float32_losses` (a batch statistic such as a covariance or a softmax over the
    batch is not one to take at 8 bits of mantissa).
    """

    pairs: bool = False
    """Whether the loss reads consecutive pairs (s_t, s_t+1); otherwise single states."""

    @abc.abstractmethod
    def forward(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss (a scalar with gradient towards the target) and any terms to log.

        Args:
            target: The reward's target network.
            x: (B, ...) the target's inputs of s_t (the encoder's expanded form).
            x_next: (B, ...) those of s_t+1 when :attr:`pairs`, else ``None``.
            ends: (B,) bool, s_t+1 ends its episode, when :attr:`pairs`.
        """

    def loss_and_outputs(self, target: nn.Module, x: torch.Tensor, x_next: torch.Tensor | None,
                         ends: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float], TargetOutputs]:
        """:meth:`forward`'s loss and terms, with the target's outputs on ``x`` and ``x_next`` where it ran them.

        An objective that runs the whole target on the states the predictor trains on overrides this to hand
        those outputs back (computed with the target's weights before the step, so exactly the regression
        target the predictor needs): :meth:`DistillationReward.update_loss` then skips a target forward pass.
        The default hands back none (``(None, None)``), and the update runs the target itself.
        """
        loss, terms = self(target, x, x_next, ends)
        return loss, terms, (None, None)


def float32_losses(like: torch.Tensor) -> torch.autocast:
    """A context that turns autocast off on ``like``'s device, for loss arithmetic on float32 tensors."""
    return torch.autocast(like.device.type, enabled=False)


TargetOutputs = tuple[torch.Tensor | None, torch.Tensor | None]
"""The target's whole outputs on s_t and on s_t+1 that an objective computed (``None`` where it did not)."""


class OutputBias(nn.Module):
    """A trainable bias added to a network's output (zero at first), so its mean output can be set directly."""

    def __init__(self, dim: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + bias``."""
        return x + self.bias


@torch.no_grad()
def reward_decomposition(error: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """How much of a batch's mean reward is a constant, and how much the target varies across its states.

    With ``d_i`` the prediction error of state i (a row of ``error``), ``m`` their mean and ``K`` the
    feature size, the mean raw reward splits exactly as ``mean_i |d_i|^2/K = |m|^2/K + mean_i |d_i - m|^2/K``:
    the first term is the same for every state (an offset between predictor and target), only the second
    tells states apart.

    Args:
        error: (B, K) prediction minus target, per state.
        target: (B, K) the target's outputs on the same states (as the predictor is trained to match them).

    Returns:
        ``offset`` (|m|^2/K), ``state_part`` (mean_i |d_i - m|^2/K), ``offset_share`` (offset over the mean
        raw reward), ``raw_cv`` (population std over mean of the raw rewards) and ``target_spread``
        (sqrt(mean_i |t_i - t_mean|^2) / |t_mean|: how much the target moves across states relative to its
        common part).

    Example:
        >>> d = torch.tensor([[1.0, 2.0], [3.0, 2.0]])          # m = (2, 2); r = (2.5, 6.5)
        >>> t = torch.tensor([[3.0, 4.0], [3.0, 4.0]])          # constant target: spread 0
        >>> {k: round(v, 4) for k, v in reward_decomposition(d, t).items()}
        {'offset': 4.0, 'state_part': 0.5, 'offset_share': 0.8889, 'raw_cv': 0.4444, 'target_spread': 0.0}
    """
    error, target = error.double().flatten(1), target.double().flatten(1)
    k = error.shape[1]
    raw = error.square().sum(1) / k
    m = error.mean(0)
    offset = m.square().sum().item() / k
    state_part = (error - m).square().sum(1).mean().item() / k
    mean_raw = raw.mean().item()
    t_mean = target.mean(0)
    t_spread = (target - t_mean).square().sum(1).mean().sqrt().item()
    t_norm = t_mean.norm().item()
    return {
        "offset": offset, "state_part": state_part,
        "offset_share": offset / mean_raw if mean_raw > 0 else float("nan"),
        "raw_cv": raw.std(unbiased=False).item() / mean_raw if mean_raw > 0 else float("nan"),
        "target_spread": t_spread / t_norm if t_norm > 0 else float("nan"),
    }


class Encoder(nn.Module, abc.ABC):
    """Maps observations to the target's input in two stages, so the first can be cached.

    ``compact(obs)`` gives the cheapest tensor to keep per observation; ``expand(compact)`` turns it into
    the target's input. ``observe(obs)`` updates any statistics (after each rollout).
    """

    @abc.abstractmethod
    def compact(self, obs: torch.Tensor) -> torch.Tensor:
        """The tensor kept per observation (uint8 observations (B, C, H, W) in)."""

    @abc.abstractmethod
    def expand(self, compact: torch.Tensor) -> torch.Tensor:
        """The target's input from the kept tensor."""

    def observe(self, obs: torch.Tensor, compact: torch.Tensor | None = None) -> None:
        """Update statistics from a batch of observations (no-op by default).

        ``compact`` is the compact form of the rollout's observations when the caller already has it, so an
        encoder whose statistics live on an expensive compact form need not compute it again.
        """

    needs_warmup: bool = False
    """Whether :meth:`observe` should be fed random-agent observations before training."""


class DistillationReward(nn.Module):
    """Prediction error of a trained predictor against a target, frozen or trained by its own loss.

    Args:
        encoder: observations -> target input (see :class:`Encoder`).
        target: the network the predictor matches; frozen here (``requires_grad_(False)``) unless a
            ``target_objective`` trains it.
        predictor: the trained network.
        num_envs: environments whose discounted intrinsic returns are tracked.
        gamma: discount of the reward forward filter (the intrinsic discount).
        chunk_size: observations per forward pass in :meth:`reward`, to bound memory (the trainer sets it
            per device: :data:`prend.agent.perf.REWARD_CHUNK`).
        target_norm: applied to the target's outputs before they are compared (e.g. an
            :class:`~prend.intrinsic.normalizers.OutputNormalizer`); it has an ``update(target)`` method,
            called from :meth:`observe`.
        start_at_target_mean: the predictor ends in an :class:`OutputBias`, which :meth:`end_warmup` sets so
            that the predictor's mean output equals the target's on the warm-up observations.
        target_objective: the target's own loss (:class:`TargetObjective`): the target then trains too (its
            parameters that require grad, with the objective's), and the update calls :meth:`update_loss`
            instead of :meth:`predictor_loss`. ``None``: the target is frozen (RND, PreND).
        rates: which state of each transition the reward rates: ``next`` (s_t+1, RND's) or ``current`` (s_t,
            SND's, computed on the state the agent acts from).
        reward_norm: ``return-std``: divide by the running std of the discounted intrinsic return (RND's);
            ``clip``: ``clip(reward_scale x raw, 0, 1)`` (SND's).
        reward_scale: the factor of ``clip`` (SND's eta); ``return-std`` is unchanged by any scale.
        bf16: run the target and the predictor (and a trained target's network passes) under bfloat16 autocast;
            their outputs are cast back to float32, so rewards, stored targets and every loss are float32
            arithmetic (``IntrinsicConfig.reward_bf16``; off by default: it changes the numbers).
    """

    episodic = False
    """A description, read by nothing: whether the intrinsic return stops at episode ends is the run's
    ``ppo.int_episodic`` (``--int-episodic``), not the reward's."""

    def __init__(self, encoder: Encoder, target: nn.Module, predictor: nn.Module, num_envs: int,
                 gamma: float = 0.99, chunk_size: int = 2048, target_norm: nn.Module | None = None,
                 start_at_target_mean: bool = False, target_objective: TargetObjective | None = None,
                 rates: Literal["next", "current"] = "next",
                 reward_norm: Literal["return-std", "clip"] = "return-std", reward_scale: float = 1.0,
                 bf16: bool = False):
        super().__init__()
        ends_in_bias = isinstance(predictor, nn.Sequential) and isinstance(predictor[-1], OutputBias)
        if start_at_target_mean and not ends_in_bias:
            raise ValueError("start_at_target_mean needs a predictor that ends in an OutputBias")
        if target_objective is not None and not any(p.requires_grad for p in target.parameters()):
            raise ValueError("a target_objective needs a target with parameters that require grad")
        if rates not in ("next", "current") or reward_norm not in ("return-std", "clip"):
            raise ValueError(f"rates must be 'next' or 'current' and reward_norm 'return-std' or 'clip', got "
                             f"{rates!r}, {reward_norm!r}")
        self.encoder = encoder
        # A frozen target's parameters leave every optimizer; a trained one keeps its own requires_grad flags.
        self.target = target if target_objective is not None else target.requires_grad_(False)
        self.target_objective = target_objective
        self.rates = rates
        self.reward_norm = reward_norm
        self.reward_scale = reward_scale
        self.predictor = predictor
        self.target_norm = target_norm
        self.start_at_target_mean = start_at_target_mean
        self.forward_filter = RewardForwardFilter(gamma, num_envs)
        self.return_rms = RunningMeanStd(shape=())
        self.chunk_size = chunk_size
        self.bf16 = bf16

    def networks_autocast(self) -> torch.autocast:
        """The context the target and predictor run in: bfloat16 autocast when :attr:`bf16`, else a no-op."""
        param = next(self.parameters(), None)
        return torch.autocast(param.device.type if param is not None else "cpu", dtype=torch.bfloat16,
                              enabled=self.bf16)

    @property
    def trains_target(self) -> bool:
        """Whether the target trains by its own loss (a :class:`TargetObjective` was given)."""
        return self.target_objective is not None

    @property
    def target_pairs(self) -> bool:
        """Whether the target's loss reads consecutive pairs, which the trainer then stores."""
        return self.target_objective is not None and self.target_objective.pairs

    def target_parameters(self) -> list[nn.Parameter]:
        """The parameters the target's loss trains: the target's that require grad, then the objective's."""
        if self.target_objective is None:
            return []
        params = [*self.target.parameters(), *self.target_objective.parameters()]
        return [p for p in params if p.requires_grad]

    @property
    def needs_warmup(self) -> bool:
        """Whether random-agent observations should be fed to :meth:`observe` and :meth:`end_warmup` first."""
        return self.encoder.needs_warmup or self.target_norm is not None or self.start_at_target_mean

    def regression_target(self, target: torch.Tensor) -> torch.Tensor:
        """What the predictor is trained to output, from the target's raw outputs."""
        return target if self.target_norm is None else self.target_norm(target)

    @torch.no_grad()
    def reward(self, next_obs: torch.Tensor) -> RewardOutput:
        """Raw rewards of B next-observations (uint8, (B, C, H, W)), with what the update will need."""
        parts = [self._reward_chunk(chunk) for chunk in next_obs.split(self.chunk_size)]
        return RewardOutput(*(torch.cat(p) for p in zip(*parts, strict=True)))

    def _reward_chunk(self, obs: torch.Tensor) -> RewardOutput:
        compact = self.encoder.compact(obs)
        x = self.encoder.expand(compact)
        with self.networks_autocast():
            target, prediction = self.target(x).float(), self.predictor(x).float()
        error = prediction - self.regression_target(target)
        return RewardOutput(error.square().mean(-1), compact, target, error)

    @torch.no_grad()
    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Divide a rollout's raw rewards, (time, envs), by the running std of the discounted return.

        Or, with ``reward_norm="clip"``, ``clip(reward_scale x raw, 0, 1)``. Updates the forward filter and the
        return statistics either way, so call it once per rollout, in order.
        """
        returns = self.forward_filter(raw)
        self.return_rms.update(returns.reshape(-1))
        if self.reward_norm == "clip":  # SND's: the statistics above are kept for the logs only
            return (raw * self.reward_scale).clamp(0.0, 1.0).to(raw.dtype)
        return (raw / self.return_rms.std).to(raw.dtype)

    @torch.no_grad()
    def observe(self, obs: torch.Tensor, compact: torch.Tensor | None = None,
                target: torch.Tensor | None = None) -> None:
        """Update the statistics from a batch: a rollout's, after its update, or a random agent's (warm-up).

        Args:
            obs: uint8 observations (B, C, H, W).
            compact: the encoder's compact form of the rollout's observations, when already computed (the
                trainer passes the stored ones: no second backbone pass).
            target: the target's raw outputs on them, likewise; computed here, after the encoder's
                statistics have moved, when ``None`` and a ``target_norm`` needs them.
        """
        self.encoder.observe(obs, compact)
        if self.target_norm is not None:
            self.target_norm.update(target if target is not None else self.reward(obs).target)

    @torch.no_grad()
    def end_warmup(self, obs: torch.Tensor) -> None:
        """After the warm-up's :meth:`observe` calls: start the predictor at the target's mean output on ``obs``.

        Only with ``start_at_target_mean``: the predictor's output bias moves by minus the mean prediction
        error over ``obs``, so the state-independent offset of :func:`reward_decomposition` is zero there.
        """
        if self.start_at_target_mean:
            self.predictor[-1].bias.sub_(self.reward(obs).error.mean(0))

    def predictor_loss(self, update_input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predictor against stored target outputs (averaged over features, batch).

        The update of a frozen target's reward: a scalar that requires grad (a reward with nothing to learn
        still returns one, e.g. ``0 * sum of a parameter``).
        """
        x = self.encoder.expand(update_input)
        with self.networks_autocast():
            prediction = self.predictor(x).float()
        return (prediction - self.regression_target(target)).square().mean()

    def update_loss(self, batch: TargetBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """The update of a trained target's reward: predictor loss + the target's own loss, and their values.

        The predictor regresses on the target's *current* outputs (detached: its loss moves only the
        predictor), as the stored ones are stale once the target has moved; the target moves only through
        its objective. Run on the whole batch at once: a self-supervised loss's terms are batch statistics.
        """
        assert self.target_objective is not None, "update_loss needs a target_objective"
        x = self.encoder.expand(batch.inputs)
        x_t, x_next = x, None
        if self.target_objective.pairs:
            if batch.pairs is None:
                raise ValueError("this target's objective reads consecutive pairs: the batch has none")
            other = self.encoder.expand(batch.pairs)
            x_t, x_next = (x, other) if self.rates == "current" else (other, x)
        with self.networks_autocast():  # objectives compute their loss terms in float32 (see TargetObjective)
            target, terms, outputs = self.target_objective.loss_and_outputs(self.target, x_t, x_next, batch.ends)
            # The target's output on the predictor's states before this step: the objective's own when it ran
            # the target on them (one forward pass fewer, issue 32 part 3), else a pass here.
            reused = outputs[0] if self.rates == "current" or not self.target_objective.pairs else outputs[1]
            if reused is None:
                with torch.no_grad():
                    reused = self.target(x)
            prediction = self.predictor(x).float()
        regression = self.regression_target(reused.detach().float())
        predictor = (prediction - regression).square().mean()
        return predictor + target, {"losses/predictor": predictor.item(), "losses/target": target.item(), **terms}
