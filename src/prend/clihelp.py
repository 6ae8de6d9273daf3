"""How the ``prend`` subcommands turn their dataclass configs into ``--help`` text (through tyro).

tyro renders each field's docstring as that flag's help. Two habits of tyro would garble prend's help:

- it keeps a docstring's line breaks wherever the next source line is indented (every continuation line of
  an attribute docstring is), so long help texts came out as ragged fragments;
- it prints RST markup verbatim, so ````rnd```` showed its double backticks.

:func:`cli` is ``tyro.cli`` with the field docstrings first made plain: paragraphs reflowed onto one line
each, double backticks turned into single ones and Sphinx roles (``:class:`x```) into ```x```. Flags whose
default needs words rather than a value (``--out``: ``runs/<game>-<method>-s<seed>``) say so through
:func:`default_hint` instead of repeating ``(default: ...)`` in their docstring.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

import tyro
import tyro._docstrings

from prend.errors import PrendError

T = TypeVar("T")

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_DOUBLE_BACKTICKS = re.compile(r"``(.+?)``")


def plain_text(docstring: str) -> str:
    r"""A docstring as help text: paragraphs on one line each, code in single backticks.

    Example:
        >>> plain_text("Use ``rnd`` (see\n    :class:`~prend.config.RunConfig`) or\n    ``prend``.")
        'Use `rnd` (see `prend.config.RunConfig`) or `prend`.'
    """
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(docstring))
    text = "\n\n".join(" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in paragraphs)
    return _DOUBLE_BACKTICKS.sub(r"`\1`", _ROLE.sub(r"`\1`", text))


def _install_plain_docstrings() -> None:
    """Route tyro's field-docstring lookup through :func:`plain_text` (once per process)."""
    original = getattr(tyro._docstrings, "parse_docstring_from_object", None)
    if original is None or getattr(original, "prend_plain", False):
        return  # another tyro layout: help stays as tyro renders it (tests/test_cli_help.py would say so)

    def parse_plain(obj: object) -> dict[str, str]:
        return {name: plain_text(text) for name, text in original(obj).items()}

    parse_plain.prend_plain = True  # type: ignore[attr-defined]
    tyro._docstrings.parse_docstring_from_object = parse_plain


def default_hint(words: str) -> Callable[[str], str]:
    """A tyro ``help_behavior_hint`` that shows ``words`` while the default is ``None`` or empty, else the value.

    Example:
        >>> hint = default_hint("runs/<game>-<method>-s<seed>")
        >>> hint("None"), hint("runs/mine")
        ('(default: runs/<game>-<method>-s<seed>)', '(default: runs/mine)')
    """
    return lambda label: f"(default: {words})" if label in ("None", "") else f"(default: {label})"


def cli(config_type: type[T], args: list[str], prog: str, **kwargs: Any) -> T:
    """``tyro.cli(config_type, args=args, prog=prog, **kwargs)`` with plain help text."""
    _install_plain_docstrings()
    return tyro.cli(config_type, args=args, prog=prog, **kwargs)


def pop_flag(argv: list[str], flag: str) -> str | None:
    """Remove ``flag VALUE`` (or ``flag=VALUE``) from ``argv`` and return ``VALUE``; ``None`` if absent.

    For the flags a command handles itself before tyro parses the rest (``--config``, ``--resume``, ``--file``).

    Example:
        >>> argv = ["--seed", "1", "--config=a.toml"]
        >>> pop_flag(argv, "--config"), argv, pop_flag(argv, "--resume")
        ('a.toml', ['--seed', '1'], None)
    """
    for i, arg in enumerate(argv):
        if arg == flag:
            if i + 1 >= len(argv):
                raise PrendError(f"{flag} needs a value")
            value = argv[i + 1]
            del argv[i:i + 2]
            return value
        if arg.startswith(flag + "="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None
