"""Typed, nested run configuration.

One dataclass tree is at once the CLI (through tyro), the ``--help`` text, the file written to every run
directory and the record stored in every checkpoint. Each field's docstring says what it does; the source
of each default is tabulated in ``docs/hyperparameters.md``.

Presets (``--preset``) replace defaults before command-line flags are applied:

- ``rnd-original``: the original RND (Burda et al. 2019, openai/random-network-distillation), the default.
- ``prend-paper``: the settings of the code the PreND authors ran (FARCuriosity, rlpyt).
- ``ppo-atari``: the standard PPO Atari protocol (Schulman et al. 2017 as in baselines' ``ppo2``, CleanRL's
  ``ppo_atari``): plain PPO (``--method none``) with a Nature-CNN policy; ``--method rnd`` etc. work on top.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from prend.clihelp import default_hint
from prend.errors import PrendError

PresetName = Literal["rnd-original", "prend-paper", "ppo-atari"]


@dataclass
class EnvConfig:
    """The environment protocol (defaults: the original RND's Atari protocol)."""

    game: str = "Boxing"
    """Atari game: a name such as ``Boxing``/``boxing``/``ALE/Boxing-v5``, or any gymnasium id of an image env
    (e.g. ``prend/DeepSea-v0``; some games change the protocol defaults, see docs/hyperparameters.md)."""
    game_kwargs: Annotated[dict[str, int | float | bool | str], tyro.conf.arg(
        metavar="KEY VALUE [KEY VALUE ...]", help_behavior_hint=default_hint("none"))] = field(default_factory=dict)
    """Keyword arguments for ``gymnasium.make`` of a non-Atari game, e.g. ``--game-kwargs size 20``."""
    num_envs: int = 8
    """Parallel environments (the PreND paper uses 8; the original RND 32 per GPU, 128 in CleanRL)."""
    sticky_action_prob: float = 0.25
    """Probability of repeating the previous action (Machado et al. 2018); 0 disables sticky actions."""
    life_loss_done: bool = False
    """Treat the loss of a life as the end of an episode for learning (the game itself continues)."""
    noop_max: int = 0
    """Up to this many random no-op actions after each reset (0 disables no-op starts)."""
    max_episode_steps: int = 4500
    """Episode cap in agent steps (4500 agent steps are 18000 frames at frame skip 4)."""
    frame_skip: int = 4
    """Emulator frames per agent step; the observation is the max over the last two of them."""
    frame_stack: int = 4
    """Consecutive 84x84 grayscale frames stacked into one observation."""
    clip_reward: bool = True
    """Learn from sign(r); the raw game score is logged regardless."""
    full_action_space: bool = False
    """Use all 18 Atari actions instead of the game's minimal set."""
    fire_reset: bool = False
    """Press FIRE when a game starts in games that have it, and also after every lost life when `life_loss_done`
    (baselines' FireResetEnv; the original RND does not)."""
    backend: Literal["auto", "ale", "gymnasium"] = "auto"
    """``ale``: ale-py's native vector env; ``gymnasium``: a gymnasium vector env of single envs;
    ``auto``: ``ale`` for Atari games (``gymnasium`` when `fire_reset` and `life_loss_done` are both on, as only
    its wrapper presses FIRE after a lost life), ``gymnasium`` otherwise."""
    env_threads: int = 0
    """Threads for the native ALE vector env (0: one per core)."""


@dataclass
class PPOConfig:
    """PPO with two value heads (defaults: the original RND's CNN policy)."""

    num_steps: int = 128
    """Rollout length per environment and iteration."""
    learning_rate: float = 1e-4
    """Adam learning rate of the policy (and of the predictor when it shares the optimizer)."""
    anneal_lr: bool = False
    """Anneal every learning rate linearly to 0 over the run: iteration k of n uses lr x (1 - (k-1)/n)."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per pass."""
    minibatch_by_env: bool = False
    """Split minibatches by environment (whole 128-step sequences) instead of by sample; recurrent
    policies always split by environment."""
    clip_coef: float = 0.1
    """PPO ratio clipping."""
    ent_coef: float = 0.001
    """Entropy bonus coefficient."""
    vf_coef: float = 1.0
    """Value loss coefficient; each head's loss is ``0.5 * vf_coef * mean((V - R)^2)``."""
    clip_vloss: bool = False
    """Clip each value head's loss as PPO2 does: the larger of (V - R)^2 and (V_old + clip(V - V_old) - R)^2,
    with ``clip_coef`` as the clip range."""
    max_grad_norm: float | None = None
    """Global gradient-norm clip; ``None`` disables clipping (the original RND does not clip)."""
    norm_adv: bool = False
    """Standardise the combined advantage per minibatch."""
    gamma_ext: float = 0.999
    """Discount of the extrinsic stream (episodic)."""
    gamma_int: float = 0.99
    """Discount of the intrinsic stream (non-episodic unless ``int_episodic``)."""
    gae_lambda: float = 0.95
    """GAE lambda for both streams."""
    ext_coef: float = 2.0
    """Weight of the extrinsic advantage in the combined advantage."""
    int_coef: float = 1.0
    """Weight of the intrinsic advantage in the combined advantage."""
    int_episodic: bool = False
    """Cut the intrinsic return at episode ends (FARCuriosity does, through life-loss dones)."""
    policy: Literal["cnn", "lstm", "nature"] = "cnn"
    """``cnn``: the original RND's feed-forward policy; ``lstm``: a conv torso + LSTM(512) (FARCuriosity);
    ``nature``: the Nature-CNN actor-critic of PPO's Atari experiments (3 convs, FC512, linear heads; the
    intrinsic value head only when there is an intrinsic reward)."""
    bf16: bool = False
    """Run the policy's forward/backward under bfloat16 autocast (CPU with AVX-512 BF16, or GPU)."""


@dataclass
class IntrinsicConfig:
    """The intrinsic reward and its predictor's training."""

    method: Annotated[str, tyro.conf.arg(
        metavar="{rnd,rnd-lr,prend,snd-v,snd-std,snd-vic,none,NAME,MODULE:ATTR}")] = "rnd"
    """``rnd``: random CNN target; ``rnd-lr``: RND with the predictor on its own, slower optimizer;
    ``prend``: frozen pre-trained backbone + random neck target; ``snd-v``, ``snd-std``, ``snd-vic``: SND, a
    target trained online by a self-supervised loss (contrastive, ST-DIM, VICReg); ``none``: plain PPO; or your
    own reward: an installed plug-in's name, or ``module.path:attribute`` naming an ``IntrinsicMethod`` or a
    builder function (docs/architecture.md, "Adding an intrinsic reward"). Each is declared in
    ``prend.intrinsic.methods``."""
    update_proportion: float = 0.25
    """Fraction of each minibatch the predictor is trained on (drawn at random before the forward pass)."""
    separate_optimizer: Annotated[bool | None, tyro.conf.arg(
        metavar="{True,False}",
        help_behavior_hint=default_hint("the method's: shared for rnd, own for rnd-lr and prend"))] = None
    """Give the predictor its own Adam (True) or step it with the policy's Adam (False)."""
    predictor_lr_scale: float = 0.01
    """Predictor learning rate = policy learning rate x this, when it has its own optimizer."""
    obs_norm_init_iters: int = 50
    """Random-agent rollouts (each ``num_steps`` vector steps) used to initialise the observation statistics."""
    feature_dim: int = 512
    """Size of the target's and predictor's output."""
    backbone: str = "compact"
    """PreND backbone: ``compact`` (the shipped default: a SiamMAE-pre-trained ResNet-18 at width 0.125, see
    docs/pretraining.md), ``atari-pb-resnet50`` (the paper's, needs ``--backbone-weights``), the other shipped
    AtariARI-recipe encoders ``stdim-boxing``, ``stdim-20games`` (ST-DIM) and ``supervised-ram-boxing`` (a
    supervised control, trained on Boxing's RAM; docs/results/prend-backbones), an Atari-PB architecture such as
    ``resnet18``/``resnet50`` or ``atariari-stack84`` (AtariARI's encoder on 84x84 4-stacks to a 256-d vector;
    each random init unless ``--backbone-weights`` is given), or ``module.path:factory``: a function called with
    no arguments that returns any torch module mapping float (N, 4, 84, 84) in [0, 1] to features
    (N, C, H, W), (N, tokens, D) or (N, D)."""
    backbone_weights: str | None = None
    """Weights file for the PreND backbone, replacing a shipped one's: an Atari-PB-format checkpoint, or for
    ``atariari-stack84`` (or a shipped AtariARI name) an ST-DIM run's ``init.pt``/``epochNNN.pt``/``best.pt``."""
    backbone_width: float = 1.0
    """Width multiplier of an Atari-PB ResNet backbone named by architecture."""
    backbone_bf16: bool = False
    """Run the frozen backbone under bfloat16 autocast (see docs for the measured effect on rewards)."""
    game_id: int | None = None
    """Atari-PB game id fed to the neck's per-game embedding (``None``: looked up from the game name)."""
    feature_norm: bool = False
    """PreND variant: whiten the backbone's features per element by running mean/std and clip to [-5, 5], as
    RND does for pixels (statistics from ``obs_norm_init_iters`` random-agent rollouts, then every rollout)."""
    target_norm: Literal["none", "center", "whiten"] = "none"
    """PreND variant: subtract the running mean of the target's outputs (``center``), or also divide by their
    running std and clip to [-5, 5] (``whiten``), before the predictor is compared with them; the predictor's
    last layer is then linear. ``none``: the paper's."""
    predictor_init: Literal["random", "target-mean"] = "random"
    """PreND variant: ``target-mean`` gives the predictor a trainable output bias, set after the random-agent
    warm-up so that its mean output equals the target's (no state-independent offset at the start)."""
    predictor_layers: int = 2
    """PreND: linear layers of the predictor's neck (2: Atari-PB's neck; 1: the paper's smaller-predictor
    ablation). The target keeps two."""
    predictor_spectral_norm: bool = False
    """PreND: spectral normalisation on the predictor's linear layers (the paper's other ablation)."""
    reward_norm: Literal["auto", "return-std", "clip"] = "auto"
    """How raw intrinsic rewards become the ones the agent learns from: ``return-std`` divides them by the running
    std of the discounted intrinsic return (the original RND); ``clip`` takes ``clip(reward_scale x raw, 0, 1)``
    (SND, Iskandor/SND); ``auto``: the method's own (``clip`` for the snd-* methods, ``return-std`` otherwise)."""
    reward_scale: float | None = None
    """The factor of ``--reward-norm clip`` (SND's eta; ``None``: the method's: snd-v 0.5, snd-std 1, snd-vic
    0.25, as Iskandor/SND's Montezuma configs; 1 otherwise). ``return-std`` is unchanged by any scale."""
    reward_bf16: bool = False
    """Run the reward's target and predictor (and a self-trained target's passes) under bfloat16 autocast, with
    rewards and losses in float32 (a CPU with AVX-512 BF16 or AMX, or a GPU; docs/performance.md). Changes the
    numbers: off by default."""


PREND_VARIANT_FIELDS = ("feature_norm", "target_norm", "predictor_init", "predictor_layers",
                        "predictor_spectral_norm")
"""IntrinsicConfig fields of PreND's variants (docs/hyperparameters.md); the defaults are the paper's PreND."""


@dataclass
class RunConfig:
    """Budget, seeding, outputs and checkpoints."""

    total_steps: int = 10_000_000
    """Agent steps (summed over envs; x frame_skip for emulator frames) to train for."""
    seed: int = 1
    """Seed of torch, numpy and the environments."""
    out: Annotated[Path | None, tyro.conf.arg(
        metavar="PATH", help_behavior_hint=default_hint("runs/<game>-<method>-s<seed>"))] = None
    """Run directory."""
    checkpoint_every: int = 10
    """Write a checkpoint every this many iterations (and on SIGINT/SIGTERM and at the end)."""
    probe_every: int = 10
    """Evaluate the intrinsic reward on the fixed probe set every this many iterations (0 disables)."""
    probe_size: int = 64
    """Observations in the fixed probe set gathered at the start of a run."""
    torch_threads: int = 0
    """Threads torch may use (0: chosen at start-up by timing 1, half and all cores; see docs/performance.md)."""
    memory_format: Literal["auto", "channels-last", "contiguous"] = "auto"
    """Memory layout of the conv weights and activations (``auto``: timed at start-up on a CPU,
    channels-last on a GPU). Changes speed only, not the numbers beyond float rounding."""
    micro_batch: int = 0
    """Samples per forward and backward pass in the update: each minibatch's gradient is accumulated over
    pieces this size (0: timed at start-up on a CPU, the whole minibatch on a GPU; a size at or above the
    minibatch runs it whole). Changes speed only, not the numbers beyond float rounding."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the networks run."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files."""


@dataclass
class TrainConfig:
    """Everything a training run needs; saved resolved as ``config.json`` in the run directory."""

    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    intrinsic: IntrinsicConfig = field(default_factory=IntrinsicConfig)
    run: RunConfig = field(default_factory=RunConfig)
    preset: Annotated[PresetName, tyro.conf.Suppress] = "rnd-original"
    """The preset whose defaults this config started from (set by ``--preset``, which the DESCRIPTION of
    ``prend train --help`` lists, so tyro does not list it again)."""

    @property
    def batch_size(self) -> int:
        """Samples per iteration."""
        return self.env.num_envs * self.ppo.num_steps

    @property
    def num_iterations(self) -> int:
        """Iterations needed to reach ``run.total_steps`` (rounded up)."""
        return -(-self.run.total_steps // self.batch_size)

    def validate(self) -> TrainConfig:
        """Check values a run cannot start with; raise :class:`PrendError` naming the field and the fix."""
        checks: list[tuple[bool, str, str]] = [
            (self.env.num_envs >= 1, "env.num_envs must be >= 1", "pass --num-envs 8"),
            (self.ppo.num_steps >= 1, "ppo.num_steps must be >= 1", "pass --num-steps 128"),
            (self.run.total_steps >= 1, "run.total_steps must be >= 1", "pass --total-steps 100000"),
            (0.0 <= self.env.sticky_action_prob <= 1.0, "env.sticky_action_prob must be in [0, 1]",
             "pass e.g. --sticky-action-prob 0.25"),
            (0.0 < self.intrinsic.update_proportion <= 1.0, "intrinsic.update_proportion must be in (0, 1]",
             "pass e.g. --update-proportion 0.25"),
            (self.intrinsic.predictor_lr_scale > 0, "intrinsic.predictor_lr_scale must be > 0",
             "pass e.g. --predictor-lr-scale 0.01"),
            (0 < self.ppo.learning_rate < math.inf, "ppo.learning_rate must be a finite number > 0",
             "pass e.g. --learning-rate 1e-4"),
            (self.intrinsic.reward_scale is None or 0 < self.intrinsic.reward_scale < math.inf,
             "intrinsic.reward_scale must be a finite number > 0", "pass e.g. --reward-scale 0.25"),
            (self.intrinsic.predictor_layers >= 1, "intrinsic.predictor_layers must be >= 1",
             "pass --predictor-layers 2 (the paper's) or 1"),
            (0.0 <= self.ppo.gamma_ext <= 1.0 and 0.0 <= self.ppo.gamma_int <= 1.0,
             "discounts must be in [0, 1]", "pass e.g. --gamma-ext 0.999 --gamma-int 0.99"),
            (self.ppo.num_minibatches >= 1, "ppo.num_minibatches must be >= 1", "pass --num-minibatches 4"),
            (self.ppo.update_epochs >= 1, "ppo.update_epochs must be >= 1", "pass --update-epochs 4"),
            (self.run.torch_threads >= 0, "run.torch_threads must be >= 0",
             "pass 0 to have it chosen, or e.g. --torch-threads 1"),
            (self.run.micro_batch >= 0, "run.micro_batch must be >= 0",
             "pass 0 to have it chosen, or e.g. --micro-batch 128"),
            (self.env.max_episode_steps >= 1, "env.max_episode_steps must be >= 1",
             "pass e.g. --max-episode-steps 4500"),
        ]
        for ok, problem, fix in checks:
            if not ok:
                raise PrendError(problem, fix)
        by_env = self.ppo.minibatch_by_env or self.ppo.policy == "lstm"
        units = self.env.num_envs if by_env else self.batch_size
        if units % self.ppo.num_minibatches:
            what = "num_envs" if by_env else "num_envs x num_steps"
            raise PrendError(
                f"{what} ({units}) is not divisible by num_minibatches ({self.ppo.num_minibatches})",
                "choose --num-minibatches that divides it",
            )
        return self


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "rnd-original": {},
    "prend-paper": {
        "env": {"num_envs": 8, "sticky_action_prob": 0.0, "life_loss_done": True, "max_episode_steps": 4500},
        "ppo": {
            "num_steps": 128, "learning_rate": 1e-4, "update_epochs": 4, "num_minibatches": 4,
            "clip_coef": 0.1, "ent_coef": 0.001, "max_grad_norm": 1.0, "gamma_ext": 0.99,
            "gamma_int": 0.99, "ext_coef": 1.0, "int_coef": 1.0, "policy": "lstm", "norm_adv": True,
            "int_episodic": True,
        },
        "intrinsic": {"update_proportion": 0.25},
    },
    "ppo-atari": {
        "env": {"num_envs": 8, "sticky_action_prob": 0.0, "noop_max": 30, "life_loss_done": True,
                "fire_reset": True, "max_episode_steps": 27_000},
        "ppo": {
            "num_steps": 128, "learning_rate": 2.5e-4, "anneal_lr": True, "adam_eps": 1e-5, "update_epochs": 4,
            "num_minibatches": 4, "clip_coef": 0.1, "clip_vloss": True, "ent_coef": 0.01, "vf_coef": 0.5,
            "max_grad_norm": 0.5, "norm_adv": True, "gamma_ext": 0.99, "gae_lambda": 0.95, "policy": "nature",
        },
        "intrinsic": {"method": "none"},
    },
}
"""Preset overrides, section by section, applied to the dataclass defaults."""


def _merge(obj: Any, overrides: dict[str, Any], where: str) -> Any:
    """Return a copy of dataclass ``obj`` with ``overrides`` (a nested dict) applied, checking every key."""
    names = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise PrendError(f"unknown config field '{where}{key}'", f"valid fields: {', '.join(names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise PrendError(f"config field '{where}{key}' must be a table of fields")
            value = _merge(current, value, f"{where}{key}.")
        else:
            value = _typed(value, hints[key], f"{where}{key}")
        changes[key] = value
    return dataclasses.replace(obj, **changes)


def _typed(value: Any, annotation: Any, name: str) -> Any:
    """``value`` checked against a field's annotation (and an integral float made an int, a string a path).

    Config files and saved configs bypass the CLI's parser, so a wrong type would otherwise reach training.
    """
    if annotation is Any:
        return value
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if typing.get_origin(option) is dict and isinstance(value, dict):
            key_type, value_type = typing.get_args(option) or (Any, Any)
            return {_typed(k, key_type, name): _typed(v, value_type, f"{name}.{k}") for k, v in value.items()}
        if typing.get_origin(option) is Literal and value in typing.get_args(option):
            return value
        if option is bool and isinstance(value, bool):
            return value
        if option is int and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer() and float not in options:
                return int(value)
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option in (str, Path) and isinstance(value, str):
            return option(value)
    wanted = " or ".join(_type_name(o) for o in options)
    raise PrendError(f"config field '{name}' must be {wanted}, got {json.dumps(value, default=str)}",
                     "fix its value in the config file")


def _type_name(option: Any) -> str:
    if typing.get_origin(option) is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(option))
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", Path: "a path",
            type(None): "null"}.get(option, "a table" if typing.get_origin(option) is dict else str(option))


def preset_config(name: str) -> TrainConfig:
    """Defaults of a preset.

    Example:
        >>> preset_config("prend-paper").ppo.policy
        'lstm'
        >>> preset_config("rnd-original").ppo.gamma_ext
        0.999
    """
    if name not in PRESETS:
        raise PrendError(f"unknown preset '{name}'", f"choose one of: {', '.join(PRESETS)}")
    return _merge(TrainConfig(preset=name), PRESETS[name], "")  # type: ignore[arg-type]


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of any config dataclass: paths as strings, tuples as lists.

    prend's one dataclass-to-JSON conversion (train, sweep, collect and pretrain configs).

    Example:
        >>> @dataclasses.dataclass
        ... class C:
        ...     out: Path = Path("runs/a")
        ...     games: tuple[str, ...] = ("Boxing",)
        >>> config_to_dict(C())
        {'out': 'runs/a', 'games': ['Boxing']}
    """
    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    return convert(dataclasses.asdict(cfg))


def config_from_dict(data: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from a nested dict (e.g. a ``config.json``), checking every key.

    A ``preset`` key selects the base defaults, then every other key overrides them.
    """
    data = dict(data)
    preset = data.pop("preset", None)
    if base is None or preset is not None:
        base = preset_config(preset or "rnd-original")
    return _merge(base, data, "")


def load_config_file(path: str | Path) -> TrainConfig:
    """Read a JSON or TOML config file (any subset of fields) into a :class:`TrainConfig`."""
    return config_from_dict(read_config_file(path))


def read_config_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The nested table of fields a JSON or TOML file sets (TOML for a ``.toml`` suffix, else JSON).

    prend's one reader of config files (``prend train --config``, ``prend sweep --file``); ``what`` names the
    file in the one-line errors.
    """
    path = Path(path)
    if not path.is_file():
        raise PrendError(f"{what} '{path}' does not exist", "pass the path of a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PrendError(f"{what} '{path}' is not UTF-8 text (byte {err.start})",
                         "save it as UTF-8 (TOML and JSON must be)") from None
    except OSError as err:
        raise PrendError(f"{what} '{path}' cannot be read ({err.strerror or err})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except ValueError as err:
        raise PrendError(f"{what} '{path}' cannot be parsed ({err})", "fix its syntax") from None
    if not isinstance(data, dict):
        raise PrendError(f"{what} '{path}' must hold a table of fields")
    return data
