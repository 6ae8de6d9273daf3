import os

import pytest
import torch

from prend.cli import main


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_unknown_game_names_close_matches(tmp_path, capsys, tiny_args):
    assert main(["train", *tiny_args, "--game", "Boxng", "--out", str(tmp_path / "r")]) == 2
    line = _one_line_error(capsys)
    assert "unknown game 'Boxng'" in line and "'Boxing'" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, field", [
    (["--num-envs", "0"], "num_envs"),
    (["--sticky-action-prob", "1.5"], "sticky_action_prob"),
    (["--update-proportion", "0"], "update_proportion"),
    (["--num-minibatches", "3"], "num_minibatches"),
])
def test_bad_values_are_one_line_with_a_fix(tmp_path, capsys, tiny_args, flags, field):
    assert main(["train", *tiny_args, *flags, "--out", str(tmp_path / "r")]) == 2
    line = _one_line_error(capsys)
    assert field in line and ("pass" in line or "choose" in line)


def test_unknown_command_exits_2(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_config_file_with_unknown_field(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"ppo": {"learning_rat": 0.1}}')
    assert main(["train", "--config", str(cfg)]) == 2
    assert "ppo.learning_rat" in _one_line_error(capsys)


def test_config_file_sets_defaults_and_flags_override(tmp_path):
    from prend.train import parse_train_args

    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('preset = "prend-paper"\n[env]\nnum_envs = 4\n[ppo]\nlearning_rate = 0.5\n')
    cfg, _ = parse_train_args(["--config", str(cfg_file), "--learning-rate", "0.25"])
    assert cfg.env.num_envs == 4 and cfg.ppo.learning_rate == 0.25 and cfg.ppo.policy == "lstm"


def _snapshot(directory):
    return {p.name: (p.stat().st_size, p.read_bytes() if p.is_file() else None) for p in directory.iterdir()}


@pytest.fixture
def finished_run(tiny_run_copy):
    return tiny_run_copy  # a copy of the session's tiny run: these tests break it


def test_corrupt_checkpoint_is_one_line_and_leaves_the_run_untouched(finished_run, capsys):
    ckpt = finished_run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    before = _snapshot(finished_run)
    capsys.readouterr()
    assert main(["train", "--resume", str(finished_run)]) == 2
    assert "corrupt" in _one_line_error(capsys)
    assert _snapshot(finished_run) == before


def test_mismatched_checkpoint_is_one_line_and_leaves_the_run_untouched(finished_run, capsys):
    ckpt = finished_run / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    state["policy"].pop(next(iter(state["policy"])))
    torch.save(state, ckpt)
    before = _snapshot(finished_run)
    capsys.readouterr()
    assert main(["train", "--resume", str(finished_run)]) == 2
    assert "does not match" in _one_line_error(capsys)
    assert _snapshot(finished_run) == before


def test_missing_checkpoint_and_existing_run(finished_run, tmp_path, capsys, tiny_args):
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in _one_line_error(capsys)
    assert main(["train", *tiny_args, "--out", str(finished_run)]) == 2
    assert "--resume" in _one_line_error(capsys)


def test_resume_rejects_other_flags(finished_run, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(finished_run), "--num-envs", "4"]) == 2
    assert "only --total-steps" in _one_line_error(capsys)
    assert os.path.exists(finished_run / "checkpoint.pt")


@pytest.mark.parametrize("argv, expected", [
    (["report", "SWEEP", "--published", "atari-pb"],
     "prend report: error: invalid choice 'atari-pb' for argument '--published'. Expected one of ('none', "
     "'dopamine'): see `prend report --help`"),
    (["report", "SWEEP", "--rep", "4"],
     "prend report: error: Unrecognized options: --rep, 4: did you mean --reps? see `prend report --help`"),
    (["train", "--num-envs", "eight"],
     "prend train: error: Error parsing --num-envs: invalid literal for int() with base 10: 'eight': "
     "see `prend train --help`"),
])
def test_flags_tyro_cannot_parse_are_one_line_exit_2(argv, expected, tmp_path, capsys):
    argv = [str(tmp_path) if a == "SWEEP" else a for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == expected and not captured.out
