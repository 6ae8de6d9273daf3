"""The intrinsic-reward methods, each declared once, and how a ``--method`` value finds its declaration.

A method is an :class:`IntrinsicMethod`: its name, the builder of its reward module, and every fact the rest
of prend asks about it: whether the predictor has its own optimizer, whether the policy gets an intrinsic
value head, which config fields it reads, where it sorts in reports. The trainer, ``prend train``, sweeps,
reports and ``prend diagnose`` ask these questions here and check no method's name themselves.

``IntrinsicConfig.method`` (``--method``, a config file's, a sweep's ``--methods``) is one of

- a built-in name: ``rnd``, ``rnd-lr``, ``prend``, ``snd-v``, ``snd-std``, ``snd-vic``, ``none``
  (:data:`BUILTIN_METHODS`);
- the name of an installed plug-in: an entry point in the :data:`ENTRY_POINT_GROUP` group naming one of
  the next;
- ``module.path:attribute``, as ``--backbone`` takes one: an :class:`IntrinsicMethod`, or a builder
  function alone (then declared with the defaults below, under that string as its name).

The config, and so every checkpoint, records that string, so a resumed run finds the same method. Every
problem finding it is one line (:class:`~prend.errors.PrendError`); an error inside a user's builder keeps
its traceback, as it is a bug in the code being written. docs/architecture.md ("Adding an intrinsic
reward") has a complete plug-in.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from prend.config import PREND_VARIANT_FIELDS, IntrinsicConfig
from prend.errors import PrendError
from prend.intrinsic.base import DistillationReward
from prend.intrinsic.pretrained import ignored_fields, make_prend
from prend.intrinsic.rnd import make_rnd
from prend.intrinsic.snd import make_snd

ENTRY_POINT_GROUP = "prend.methods"
"""The entry-point group installed packages declare their methods in (``name = "module:attribute"``)."""

SHARED_FIELDS = ("update_proportion", "separate_optimizer", "predictor_lr_scale", "reward_norm", "reward_scale",
                 "reward_bf16")
"""``IntrinsicConfig`` fields of the predictor's training, of the reward's normalisation and of its networks'
precision, which the trainer reads for every reward."""

PLUGIN_ORDER = 50
"""Where a method that declares no order sorts: after the built-in rewards, before plain PPO."""


class RewardBuilder(Protocol):
    """The one signature of every method's builder: ``build(cfg, num_envs, gamma, rom)``."""

    def __call__(self, cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None) -> DistillationReward:
        """The reward module for ``num_envs`` environments.

        Args:
            cfg: The run's intrinsic config (``feature_dim``, and any other field the method reads).
            num_envs: Environments whose discounted intrinsic returns the reward normalises by.
            gamma: Discount of the intrinsic stream (``ppo.gamma_int``).
            rom: The game's ALE ROM name (``boxing``), ``None`` for a non-Atari game.
        """
        ...


@dataclass(frozen=True)
class IntrinsicMethod:
    """One intrinsic reward: how to build it, and what the trainer and the reports need to know of it."""

    name: str
    """What labels, plots and sweep run directories call it (``<game>-<name>-s<seed>``)."""
    build: RewardBuilder | None
    """Makes its reward module (a :class:`~prend.intrinsic.base.DistillationReward`); ``None``: no intrinsic
    reward and no intrinsic value head (plain PPO), which no other method has."""
    own_optimizer: bool = False
    """Whether the predictor gets its own Adam at ``predictor_lr_scale`` x the policy's learning rate (RND+LR,
    PreND) rather than being stepped by the policy's (RND); ``--separate-optimizer`` overrides it."""
    fields: tuple[str, ...] | None = None
    """The ``IntrinsicConfig`` fields the builder reads besides :data:`SHARED_FIELDS`; run labels, one-factor
    sweeps and the backbone record leave out the others. ``None``: any of them may matter."""
    ignored: Callable[[IntrinsicConfig], Iterable[str]] | None = None
    """Those of :attr:`fields` that a given config leaves without effect (PreND: a user's backbone takes no
    weights file)."""
    order: int = PLUGIN_ORDER
    """Rank in reports and plots, lowest first (labels of one rank sort alphabetically)."""
    own_target_optimizer: bool = False
    """For a reward whose target trains (a ``target_objective``): whether the target gets its own Adam at
    :attr:`target_lr_scale` x the policy's learning rate, rather than stepping with the predictor's optimizer
    (SND's one Adam over both)."""
    target_lr_scale: float = 1.0
    """The target's learning rate over the policy's, with :attr:`own_target_optimizer`."""

    @property
    def intrinsic_head(self) -> bool:
        """Whether the policy has an intrinsic value head: exactly when there is an intrinsic reward."""
        return self.build is not None

    def uses_own_optimizer(self, cfg: IntrinsicConfig) -> bool:
        """Whether the predictor gets its own optimizer with ``cfg`` (its ``separate_optimizer`` overrides)."""
        return self.own_optimizer if cfg.separate_optimizer is None else cfg.separate_optimizer

    def unused_fields(self, cfg: IntrinsicConfig) -> frozenset[str]:
        """The ``IntrinsicConfig`` fields that have no effect on a run of this method with ``cfg``.

        Example:
            >>> sorted(PREND.unused_fields(IntrinsicConfig(method="prend", backbone="compact")))
            ['backbone_width', 'obs_norm_init_iters']
            >>> sorted(RND.unused_fields(IntrinsicConfig()))[:3]
            ['backbone', 'backbone_bf16', 'backbone_weights']
            >>> "predictor_lr_scale" in RND_LR.unused_fields(IntrinsicConfig(method="rnd-lr"))
            False
        """
        every = {f.name for f in dataclasses.fields(IntrinsicConfig)} - {"method"}
        if self.build is None:
            return frozenset(every)
        used = set(SHARED_FIELDS) | (every if self.fields is None else set(self.fields))
        unused = every - used
        if not self.uses_own_optimizer(cfg):
            unused.add("predictor_lr_scale")
        if self.ignored is not None:
            unused |= set(self.ignored(cfg))
        return frozenset(unused)

    def reads(self, field: str, cfg: IntrinsicConfig) -> bool:
        """Whether ``IntrinsicConfig.<field>`` has an effect on a run of this method with ``cfg``."""
        return field not in self.unused_fields(cfg)


RND = IntrinsicMethod("rnd", make_rnd, own_optimizer=False, fields=("feature_dim", "obs_norm_init_iters"), order=0)
"""RND (Burda et al. 2019): the predictor steps with the policy's Adam, as in the original."""
RND_LR = dataclasses.replace(RND, name="rnd-lr", own_optimizer=True, order=1)
"""RND+LR: RND's networks, the predictor on its own Adam at ``predictor_lr_scale`` (0.01)."""
PREND = IntrinsicMethod("prend", make_prend, own_optimizer=True, order=2,
                        fields=("feature_dim", "obs_norm_init_iters", "backbone", "backbone_weights",
                                "backbone_width", "backbone_bf16", "game_id", *PREND_VARIANT_FIELDS),
                        ignored=ignored_fields)
"""PreND (Davoodabadi et al. 2024): a frozen backbone's features, a random neck as target; own Adam at 0.01."""
SND_V = IntrinsicMethod("snd-v", functools.partial(make_snd, variant="snd-v"), own_optimizer=False,
                        fields=("feature_dim",), order=3)
"""SND-V (Pecháč et al. 2024): a contrastively trained target; predictor and target on the policy's Adam."""
SND_STD = dataclasses.replace(SND_V, name="snd-std", build=functools.partial(make_snd, variant="snd-std"), order=4)
"""SND-STD: the target trained by spatio-temporal DeepInfoMax on consecutive states."""
SND_VIC = dataclasses.replace(SND_V, name="snd-vic", build=functools.partial(make_snd, variant="snd-vic"), order=5)
"""SND-VIC: the target trained by VICReg on consecutive states."""
NONE = IntrinsicMethod("none", None, order=90)
"""Plain PPO: no intrinsic reward."""

BUILTIN_METHODS: dict[str, IntrinsicMethod] = {m.name: m for m in (RND, RND_LR, PREND, SND_V, SND_STD, SND_VIC,
                                                                    NONE)}
"""prend's own methods by name, in report order."""

_plugins: dict[str, IntrinsicMethod] = {}
"""The plug-ins resolved in this process by their names, so labels that name one sort by its order."""


def resolve_method(spec: str, strict: bool = True) -> IntrinsicMethod:
    """The declaration a ``method`` value names (see the module docstring for what it may be).

    Args:
        spec: The config's ``intrinsic.method``.
        strict: Raise a one-line :class:`PrendError` when it names nothing that can be found; ``False``
            (reading finished runs, whose plug-in may not be installed here) gives a stand-in instead: named
            ``spec``, reading any field, sorted with the plug-ins, and raising that error if built.

    Example:
        >>> resolve_method("rnd-lr").own_optimizer, resolve_method("none").intrinsic_head
        (True, False)
        >>> resolve_method("rnb")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        prend.errors.PrendError: unknown method 'rnb': did you mean rnd? choose rnd, rnd-lr, prend, snd-v, ...
    """
    if spec in BUILTIN_METHODS:
        return BUILTIN_METHODS[spec]
    try:
        method = _load_plugin(spec)
    except PrendError as err:
        if strict:
            raise
        return IntrinsicMethod(spec, _unavailable(err))
    _plugins[method.name] = method
    return method


def method_by_name(name: str) -> IntrinsicMethod | None:
    """A built-in method, or a plug-in resolved in this process, by its :attr:`IntrinsicMethod.name`."""
    return BUILTIN_METHODS.get(name) or _plugins.get(name)


def _load_plugin(spec: str) -> IntrinsicMethod:
    """The plug-in ``spec`` names: ``module.path:attribute``, or an entry point of :data:`ENTRY_POINT_GROUP`."""
    if ":" not in spec:
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            raise _unknown(spec)
        entry = found[0]
        target = _import_plugin(spec, entry.module, "reinstall the package that declares it")
        for part in entry.attr.split(".") if entry.attr else ():
            if not hasattr(target, part):
                raise PrendError(f"--method {spec}: its entry point names '{entry.value}', but module "
                                 f"'{entry.module}' has no '{entry.attr}' (imported from {_origin(entry.module)})",
                                 "reinstall the package that declares it; a folder of that name in the working "
                                 "directory shadows the installed package")
            target = getattr(target, part)
        return _declaration(spec, target)
    module_name, _, attr = spec.partition(":")
    module = _import_plugin(spec, module_name, "install it, or put its directory on PYTHONPATH")
    if not hasattr(module, attr):
        raise PrendError(f"--method {spec}: module '{module_name}' has no '{attr}' (imported from "
                         f"{_origin(module_name)})",
                         "name an IntrinsicMethod or a builder function of that module after the colon")
    return _declaration(spec, getattr(module, attr))


def _import_plugin(spec: str, module_name: str, fix_missing: str) -> object:
    """Import a plug-in's module; one line when it is missing, another when it is there but fails to import.

    The two need different fixes: a missing module is installed or put on the path, while a module that raises
    while importing (a missing dependency of its own, a syntax error, any exception at its top level) is fixed
    at the line named, which the user should not have to find by importing it by hand.
    """
    try:
        return importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - ImportError, or any error the module raises while importing
        missing = isinstance(err, ModuleNotFoundError) and err.name is not None and \
            (module_name == err.name or module_name.startswith(err.name + "."))
        if missing:
            raise PrendError(f"--method {spec}: cannot import '{module_name}' ({type(err).__name__}: {err})",
                             fix_missing) from None
        where = _failing_line(err)
        raise PrendError(f"--method {spec}: the plug-in module '{module_name}' was found but fails to import"
                         + (f" at {where}" if where else "") + f" ({type(err).__name__}: {err})",
                         f"fix it there; python -c 'import {module_name}' shows the whole traceback") from None


def _failing_line(err: BaseException) -> str | None:
    """``FILE, line N`` where an import failed: a syntax error's own place, else the innermost frame of Python code.

    Frames of the import machinery (``<frozen importlib._bootstrap>``) are skipped, so an ``import`` of a missing
    package inside the plug-in points at that ``import`` line.
    """
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}, line {err.lineno}"
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith("<")]
    return f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else None


def _origin(module_name: str) -> str:
    """Where an imported module came from: its file, or its folder when it is a namespace package.

    A folder of that name in the working directory shadows an installed package of that name (as a namespace
    package when it has no ``__init__.py``); this is what tells them apart.
    """
    module = sys.modules.get(module_name)
    if getattr(module, "__file__", None):
        return str(module.__file__)
    folders = list(getattr(module, "__path__", []))
    return f"the folder {folders[0]}, with no __init__.py" if folders else "an unknown place"


def _declaration(spec: str, target: object) -> IntrinsicMethod:
    """``target`` as a declaration: itself, or a builder function declared with the defaults under ``spec``."""
    if isinstance(target, IntrinsicMethod):
        if target.name in BUILTIN_METHODS:
            raise PrendError(f"--method {spec}: the plug-in is named '{target.name}', as a built-in method",
                             "give its IntrinsicMethod another name")
        if not target.name or target.name.split() != [target.name]:  # a label's first word is its method's name
            raise PrendError(f"--method {spec}: the plug-in's name {target.name!r} is empty or has spaces",
                             "name it like pixel-rnd")
        valid = {f.name for f in dataclasses.fields(IntrinsicConfig)}
        unknown = sorted(set(target.fields or ()) - valid)
        if unknown:
            raise PrendError(f"--method {spec}: its fields name no IntrinsicConfig field: {', '.join(unknown)}",
                             f"valid fields: {', '.join(sorted(valid))}")
        return target
    if callable(target):
        return IntrinsicMethod(spec, target)
    attr = spec.rpartition(":")[2] or spec
    raise PrendError(f"--method {spec}: '{attr}' is of type {type(target).__name__}, not an IntrinsicMethod or a "
                     "builder",
                     "name a prend.intrinsic.IntrinsicMethod, or a function (cfg, num_envs, gamma, rom) -> "
                     "DistillationReward")


def _unknown(spec: str) -> PrendError:
    names = list(BUILTIN_METHODS)
    installed = sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
    known = f"{', '.join(names[:-1])} or {names[-1]}" + (f", installed: {', '.join(installed)}" if installed else "")
    close = difflib.get_close_matches(spec, names + installed, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return PrendError(f"unknown method '{spec}'", f"{guess}choose {known}, or name your own as module.path:attribute "
                      "(docs/architecture.md, \"Adding an intrinsic reward\")")


def _unavailable(err: PrendError) -> RewardBuilder:
    def build(cfg: IntrinsicConfig, num_envs: int, gamma: float, rom: str | None) -> DistillationReward:
        raise err

    return build

