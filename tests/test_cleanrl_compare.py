"""benchmarks/cleanrl_compare.py without CleanRL: arguments, set-up errors, log parsing, the table, a fake run."""

import doctest
import json
import math
import stat
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import cleanrl_compare as cc  # noqa: E402

# What CleanRL's ppo_rnd_envpool.py printed on this machine (stdout; 4 envs x 16 steps, 3 updates), with
# made-up arrival times: the warm-up update ends at 11.5 s, the timed ones take 2.0 s and 2.5 s.
CAPTURED = [
    (0.00, "Start to initialize observation normalization parameter....."),
    (0.06, "End to initialize..."),
    (11.50, "SPS: 52"),
    (12.10, "global_step=1088, episodic_return=-3.0, curiosity_reward=0.0123"),
    (13.50, "SPS: 55"),
    (16.00, "SPS: 57"),
]


def _write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _fake_cleanrl(tmp_path: Path, updates_printed: int | None = None, code: int = 0) -> tuple[Path, Path]:
    """A stand-in for CleanRL's script and its python: records its argv and threads, prints like CleanRL."""
    record = tmp_path / "record.json"
    script = tmp_path / "fake_ppo_rnd.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys, time
        args = sys.argv[1:]
        updates = int(args[args.index("--total-timesteps") + 1]) // (
            int(args[args.index("--num-envs") + 1]) * int(args[args.index("--num-steps") + 1]))
        with open({str(record)!r}, "w") as f:
            json.dump({{"argv": args, "omp": os.environ.get("OMP_NUM_THREADS"), "cwd": os.getcwd()}}, f)
        print("Start to initialize observation normalization parameter.....")
        print("End to initialize...")
        for k in range({updates_printed!r} if {updates_printed!r} is not None else updates):
            time.sleep(0.02)
            print("SPS:", 50 + k)
        print("RuntimeError: fake failure", file=sys.stderr)
        sys.exit({code})
    """))
    python = _write_executable(tmp_path / "python", textwrap.dedent(f"""\
        #!/usr/bin/env bash
        if [ "$1" = "-c" ]; then echo "2.13.0+cpu 0.8.4 0.23.1"; exit 0; fi
        exec {sys.executable} "$@"
    """))
    return script, python


def test_doctests():
    assert doctest.testmod(cc).failed == 0


def test_parse_args_defaults_and_bad_input(capsys):
    args = cc.parse_args(["--cleanrl-script", "s.py", "--cleanrl-python", "py"])
    assert (args.configs, args.iterations, args.rounds, args.game, args.methods) == (
        ["8x128", "128x128"], 3, 2, "Boxing", ["rnd"])
    for bad, why in ((["--configs", "8by128"], "not ENVSxSTEPS"), (["--configs", "3x3"], "not divisible"),
                     (["--iterations", "0"], ">= 1"), (["--game", "ALE/Boxing-v5"], "plain Atari game")):
        with pytest.raises(SystemExit) as exit_info:
            cc.parse_args(["--cleanrl-script", "s.py", "--cleanrl-python", "py", *bad])
        assert exit_info.value.code == 2
        assert why in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cc.parse_args(["--cleanrl-python", "py"])  # the script is required
    for bad, why in (("rnb", "unknown method 'rnb'"), ("none", "no intrinsic reward to time"),
                     ("no_such_module:M", "no_such_module")):
        with pytest.raises(SystemExit) as exit_info:
            cc.parse_args(["--cleanrl-script", "s.py", "--cleanrl-python", "py", "--methods", "rnd", bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert why in err and "--methods" in err


def test_methods_take_a_users_plugin_as_prend_train_does(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "pixel_bonus"))  # the documented example plug-in
    args = cc.parse_args(["--cleanrl-script", "s.py", "--cleanrl-python", "py", "--methods", "rnd",
                          "pixel_bonus:PIXEL_RND"])
    assert [cc.side_label(m) for m in args.methods] == ["prend RND", "prend pixel-rnd"]
    cfg = cc.prend_config(2, 8, 1, "Boxing", 1, "cpu", 1, "pixel_bonus:PIXEL_RND")
    assert cfg.intrinsic.method == "pixel_bonus:PIXEL_RND" and cfg.env.num_envs == 2


def test_missing_script_or_python_exit_2_with_one_line(tmp_path, capsys):
    script, python = _fake_cleanrl(tmp_path)
    cases = ((tmp_path / "nope.py", python, "--cleanrl-script"), (script, tmp_path / "nope", "--cleanrl-python"),
             (script, script, "--cleanrl-python"))  # not executable
    for script_path, python_path, named in cases:
        code = cc.main(["--cleanrl-script", str(script_path), "--cleanrl-python", str(python_path)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and named in err and err.startswith("error:")


def test_python_without_cleanrl_dependencies_exit_2(tmp_path, capsys):
    script, _ = _fake_cleanrl(tmp_path)
    bare = _write_executable(tmp_path / "bare", "#!/usr/bin/env bash\necho 'ModuleNotFoundError: envpool' >&2\n"
                             "exit 1\n")
    assert cc.main(["--cleanrl-script", str(script), "--cleanrl-python", str(bare)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot import" in err and "ModuleNotFoundError: envpool" in err and len(err.splitlines()) == 1


def test_cleanrl_rates_from_captured_output():
    # batch 64: the two timed iterations took 13.5 - 11.5 = 2.0 s and 16.0 - 13.5 = 2.5 s.
    assert cc.cleanrl_rates(CAPTURED, 64) == [32.0, 25.6]
    assert cc.cleanrl_rates(CAPTURED[:3], 64) == []  # only the warm-up finished
    with pytest.raises(cc.RunFailed, match="buffered"):
        cc.cleanrl_rates([(1.0, "SPS: 5"), (1.0, "SPS: 6")], 64)


def test_cleanrl_command_passes_every_shared_hyperparameter():
    cmd = cc.cleanrl_command("py", "s.py", 8, 128, 3, "Boxing", 7, "cpu")
    assert cmd[:3] == ["py", "-u", "s.py"]

    def value(flag):
        return cmd[cmd.index(flag) + 1]

    assert (value("--env-id"), value("--num-envs"), value("--num-steps"), value("--seed")) == (
        "Boxing-v5", "8", "128", "7")
    assert value("--total-timesteps") == str(4 * 8 * 128)  # 3 timed updates + the warm-up
    assert (value("--update-epochs"), value("--num-minibatches"), value("--vf-coef")) == ("4", "4", "0.5")
    assert {"--no-cuda", "--anneal-lr", "--norm-adv", "--clip-vloss"} <= set(cmd)
    assert "--cuda" in cc.cleanrl_command("py", "s.py", 8, 128, 3, "Boxing", 7, "cuda")


def test_prend_config_matches_cleanrl():
    cfg = cc.prend_config(128, 128, 2, "Boxing", 1, "cpu", 1)
    assert (cfg.env.num_envs, cfg.ppo.num_steps, cfg.run.total_steps) == (128, 128, 3 * 128 * 128)
    assert (cfg.ppo.update_epochs, cfg.ppo.num_minibatches, cfg.ppo.vf_coef, cfg.ppo.max_grad_norm) == (4, 4, 0.5, 0.5)
    assert (cfg.ppo.adam_eps, cfg.ppo.anneal_lr, cfg.ppo.clip_vloss, cfg.ppo.norm_adv) == (1e-5, True, True, True)
    assert (cfg.ppo.gamma_ext, cfg.ppo.gamma_int, cfg.ppo.ext_coef, cfg.ppo.int_coef) == (0.999, 0.99, 2.0, 1.0)
    assert (cfg.env.sticky_action_prob, cfg.env.noop_max, cfg.env.max_episode_steps) == (0.25, 30, 27_000)
    assert cfg.env.life_loss_done and cfg.env.backend == "ale" and cfg.intrinsic.obs_norm_init_iters == 1
    assert cc.prend_config(8, 128, 2, "Boxing", 1, "cpu", 1, "prend").intrinsic.method == "prend"


def test_summary_rows_against_hand_computed_medians():
    rows = [cc.Row(1, "8x128", cc.PREND_RND, 300.0, "1"), cc.Row(1, "8x128", "prend PreND", 240.0, "1"),
            cc.Row(1, "8x128", cc.CLEANRL, 100.0, "default"),
            cc.Row(2, "8x128", cc.PREND_RND, 200.0, "1"), cc.Row(2, "8x128", "prend PreND", 180.0, "2"),
            cc.Row(2, "8x128", cc.CLEANRL, 80.0, "default"),
            cc.Row(3, "8x128", cc.PREND_RND, 260.0, "1"), cc.Row(3, "8x128", "prend PreND", 200.0, "1"),
            cc.Row(3, "8x128", cc.CLEANRL, 130.0, "default")]
    table = cc.summary_rows(rows)
    assert table[3] == ["2", "8x128", "prend RND", "1", "200", "2.50", "1.00"]
    assert table[4] == ["2", "8x128", "prend PreND", "2", "180", "2.25", "0.90"]
    # PreND / CleanRL: 2.4, 2.25, 200/130 = 1.54; PreND / RND: 0.8, 0.9, 200/260 = 0.77.
    assert table[7] == ["3", "8x128", "prend PreND", "1", "200", "1.54", "0.77"]
    # Medians: RND rate 260 and ratio median(3.0, 2.5, 2.0) = 2.5 (not 260 / 100 = 2.6: the rounds' ratios).
    assert table[9:] == [["median", "8x128", "prend RND", "1", "260", "2.50", "1.00"],
                         ["median", "8x128", "prend PreND", "1/2", "200", "2.25", "0.80"],
                         ["median", "8x128", "CleanRL RND", "default", "100", "1.00", "—"]]
    text = cc.format_table(table)
    assert text.splitlines()[0].startswith("| round | envs x steps | side |")
    assert "| median | 8x128 | prend RND | 1 | 260 | 2.50 | 1.00 |" in text
    # Without a CleanRL row in a round its ratio is missing, not made up.
    assert cc.summary_rows([cc.Row(1, "8x128", cc.PREND_RND, 5.0, "1")])[0][5] == "—"


def test_run_cleanrl_with_fake_script(tmp_path, monkeypatch):
    script, python = _fake_cleanrl(tmp_path)
    cmd = cc.cleanrl_command(str(python), str(script), 4, 16, 2, "Boxing", 1, "cpu")
    rates = cc.run_cleanrl(cmd, 64, 2, threads=1)
    assert len(rates) == 2 and all(math.isfinite(r) and r > 0 for r in rates)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["argv"] == cmd[3:] and record["omp"] == "1"
    assert not Path(record["cwd"]).exists()  # its temporary working directory (TensorBoard files) is gone
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cc.run_cleanrl(cmd, 64, 2, threads=0)
    assert json.loads((tmp_path / "record.json").read_text())["omp"] is None  # torch's own default


@pytest.mark.parametrize("printed, code, match", [(3, 1, "exit code 1.*fake failure"), (2, 0, "1 timed iterations")])
def test_run_cleanrl_failures(tmp_path, printed, code, match):
    script, python = _fake_cleanrl(tmp_path, updates_printed=printed, code=code)
    cmd = cc.cleanrl_command(str(python), str(script), 4, 16, 2, "Boxing", 1, "cpu")
    with pytest.raises(cc.RunFailed, match=match):
        cc.run_cleanrl(cmd, 64, 2, threads=1)


def test_main_end_to_end_with_fake_cleanrl(tmp_path, capsys):
    script, python = _fake_cleanrl(tmp_path)
    code = cc.main(["--cleanrl-script", str(script), "--cleanrl-python", str(python), "--configs", "2x8",
                    "--iterations", "1", "--rounds", "2", "--torch-threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "device: " in out and ("avx" in out.lower() or "vector extensions unknown" in out)
    assert "envpool 0.8.4" in out and "differs: " in out
    medians = [line for line in out.splitlines() if line.startswith("| median | 2x8 |")]
    assert [m.split(" | ")[2] for m in medians] == ["prend RND", "CleanRL RND"]
    assert out.count("| 1 | 2x8 |") == 2 and out.count("| 2 | 2x8 |") == 2
