"""How the ``prend`` subcommands turn their dataclass configs into ``--help`` text (through tyro).

tyro renders each field's docstring as that flag's help. Two habits of tyro would garble prend's help:

- it keeps a docstring's line breaks wherever the next source line is indented (every continuation line of
  an attribute docstring is), so long help texts came out as ragged fragments;
- it prints RST markup verbatim, so ````rnd```` showed its double backticks.

:func:`cli` is ``tyro.cli`` with the field docstrings first made plain: paragraphs reflowed onto one line
each, double backticks turned into single ones and Sphinx roles (``:class:`x```) into ```x```. Flags whose
default needs words rather than a value (``--out``: ``runs/<game>-<method>-s<seed>``) say so through
:func:`default_hint` instead of repeating ``(default: ...)`` in their docstring. A flag tyro cannot parse (an
unknown flag, a value outside a flag's choices, a missing argument) becomes one :class:`PrendError` line, as
every other bad input does, instead of tyro's framed box (:func:`parse_error_line`).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import sys
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
    """``tyro.cli(config_type, args=args, prog=prog, **kwargs)`` with plain help text and one-line parse errors.

    Raises:
        PrendError: tyro could not parse ``args``: its message as one line (:func:`parse_error_line`).
    """
    _install_plain_docstrings()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            parsed = tyro.cli(config_type, args=args, prog=prog, **kwargs)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            message, similar = parse_error_line(captured.getvalue())
            fix = f"did you mean {' or '.join(similar)}? " if similar else ""
            raise PrendError(message, f"{fix}see `{prog} --help`") from None
        sys.stderr.write(captured.getvalue())
        raise
    sys.stderr.write(captured.getvalue())  # whatever tyro warned about on the way
    return parsed


_FRAME = "│╭╮╰╯┃|"
_RULE = re.compile("^[─━-]{3,}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SUGGESTS = ("Perhaps you meant", "Arguments similar to")


def parse_error_line(text: str) -> tuple[str, list[str]]:
    r"""The framed parse-error message tyro prints, as one line, and the flags it suggests instead.

    tyro prints a title, then sections between rules: the message, perhaps the flags it takes the mistyped
    one for, a flag's help text, and a pointer to ``--help``. Its frame is box-drawing characters on a
    terminal and plain dashes where rich falls back to ASCII; both read the same here.

    Example:
        >>> frame = ["╭─ Unrecognized options ─╮", "│ Unrecognized options: --rep, 4 │", "│ ────── │",
        ...          "│ Perhaps you meant: │", "│     --reps INT │", "│         Bootstrap resamples. │",
        ...          "│ ────── │", "│ For full helptext, run prend report --help │", "╰────╯"]
        >>> parse_error_line("\n".join(frame))
        ('Unrecognized options: --rep, 4', ['--reps'])
        >>> parse_error_line("\n".join([" Invalid choice ", " ------ ", " invalid choice 'x' for '--y'. ",
        ...                             " Expected one of ('a', ", " 'b'). ", " ------ ", " For full helptext "]))
        ("invalid choice 'x' for '--y'. Expected one of ('a', 'b')", [])
    """
    sections: list[list[str]] = [[]]
    for raw in _ANSI.sub("", text).splitlines():
        line = " ".join(raw.translate({ord(c): " " for c in _FRAME}).split())
        if _RULE.match(line.replace(" ", "")):
            sections.append([])
        elif line.strip("─━- "):
            sections[-1].append(line.strip("─━ "))
    sections = [section for section in sections if section]
    if sections:
        sections[0] = sections[0][1:]  # the title: what kind of error, which the message says again
    sections = [section for section in sections if section]
    message = " ".join(sections[0]).rstrip(". ") if sections else "the arguments do not parse"
    similar = [line.split()[0] for section in sections[1:] if section[0].startswith(_SUGGESTS)
               for line in section[1:] if line.startswith("--")]
    return message, list(dict.fromkeys(similar))


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
