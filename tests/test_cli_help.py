"""Every subcommand's ``--help`` as a user sees it: rendered through tyro, checked for the glitches it had."""

import re

import pytest

from prend.cli import COMMANDS, main
from prend.clihelp import default_hint, plain_text

BOX = re.compile("[│╭╮╰╯─]")
# A "(default: ...)" or "(required)" right after another one: the docstring said its default and tyro again.
DOUBLE_DEFAULT = re.compile(r"\((?:default|required)[^)]*\)\.?\s*\((?:default|required)")


def render_help(command, width, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    return re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("width", [80, 120])
def test_help_has_no_markup_or_duplicated_defaults(command, width, monkeypatch, capsys):
    text = render_help(command, width, monkeypatch, capsys)
    flat = " ".join(BOX.sub(" ", text).split())
    assert "--help" in flat and len(flat) > 200
    assert "``" not in text, "RST double backticks leak into the help"
    assert not re.search(r":(class|func|mod|data|meth):`", text), "Sphinx roles leak into the help"
    assert not DOUBLE_DEFAULT.search(flat), DOUBLE_DEFAULT.search(flat).group(0)
    assert "(default: )" not in flat, "a positional without a default shows an empty one"
    assert "{None,True,False}" not in flat
    assert not re.search(r"\b\d{1,3}, \d{3}\b", flat), "a number with a thousands comma split by the wrap"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_lines_break_only_where_the_text_is_full(command, monkeypatch, capsys):
    # tyro keeps a docstring's source line breaks unless told otherwise; the wrap alone breaks a line only
    # when the next word would not fit (lines are padded to the panel's width; at 120 columns one panel).
    lines = render_help(command, 120, monkeypatch, capsys).splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if "show this help message" in line):]  # flags only
    rows = [line[1:-1] if line.startswith("│") else line for line in lines]  # boxed on a terminal, plain here
    for prev, row in zip(rows, rows[1:], strict=False):
        text = prev.rstrip()
        flag_only = text.strip().startswith("-") and "  " not in text.strip()
        if re.match(r" {8,}\S", row) and not flag_only and "─" not in prev:
            word = row.split()[0]
            assert len(text) + 1 + len(word) > len(row) - 1, f"help text broken early: {text.strip()} / {word}"


def test_train_help_lists_preset_once_and_keeps_its_paragraphs(monkeypatch, capsys):
    text = render_help("train", 120, monkeypatch, capsys)
    assert len(re.findall(r"--preset\b", text)) == 1, "--preset is listed by the description and again by tyro"
    assert re.search(r"^Flags given explicitly override", text, re.M), "the last paragraph runs into the flag list"
    flat = " ".join(BOX.sub(" ", text).split())
    assert "--out PATH Run directory. (default: runs/<game>-<method>-s<seed>)" in flat
    assert "--separate-optimizer {True,False}" in flat
    assert "(default: the method's: shared for rnd, own for rnd-lr and prend)" in flat
    # The shipped backbone's help is one sentence across three source lines.
    assert "width 0.125, see docs/pretraining.md), `atari-pb-resnet50`" in flat


def test_sweep_and_diagnose_say_what_is_required(monkeypatch, capsys):
    flat = " ".join(BOX.sub(" ", render_help("sweep", 120, monkeypatch, capsys)).split())
    assert "--out PATH Sweep directory; each run gets a subdirectory. (default: none; required here" in flat
    flat = " ".join(BOX.sub(" ", render_help("diagnose", 120, monkeypatch, capsys)).split())
    assert "RUN_DIR ... Run directories, or directories holding them (e.g. a sweep directory). " \
           "(required, one or more)" in flat


def test_help_hints_and_plain_text():
    hint = default_hint("all")
    assert hint("None") == "(default: all)" and hint("12") == "(default: 12)"
    assert plain_text("A ``b``\n    c :func:`~x.y`.\n\n    New ``para``.") == "A `b` c `x.y`.\n\nNew `para`."


def test_flags_still_parse_after_the_help_changes():
    from prend.intrinsic.methods import resolve_method
    from prend.train import parse_train_args

    cfg, _ = parse_train_args(["--preset", "prend-paper", "--out", "runs/x", "--separate-optimizer", "False"])
    assert (cfg.preset, cfg.ppo.policy, str(cfg.run.out), cfg.intrinsic.separate_optimizer) == \
        ("prend-paper", "lstm", "runs/x", False)
    cfg, _ = parse_train_args(["--method", "rnd-lr"])
    assert cfg.preset == "rnd-original" and cfg.run.out is None
    assert resolve_method(cfg.intrinsic.method).uses_own_optimizer(cfg.intrinsic)
