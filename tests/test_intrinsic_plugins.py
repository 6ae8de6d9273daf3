"""Intrinsic-reward methods: the registry's declarations, and a user's own reward plugged in from outside prend.

The plug-in is the worked example of docs/architecture.md ("Adding an intrinsic reward"),
examples/pixel_bonus/pixel_bonus.py: RND with a fixed random projection of 21x21 pixels as the target. It is
imported as a user's package would be, from its own folder on the path, never from ``src/prend``.
"""

import ast
import json
import math
import re
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from prend.agent.trainer import Trainer
from prend.checkpoint import checkpoint_config, load_checkpoint
from prend.cli import main
from prend.config import IntrinsicConfig
from prend.experiments.diagnose import diagnose
from prend.experiments.runs import find_runs
from prend.experiments.sweep import SweepConfig, plan, run_sweep
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.methods import BUILTIN_METHODS, NONE, PREND, RND, RND_LR, resolve_method
from prend.rundir import RunDir
from prend.train import parse_train_args

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pixel_bonus"
TINY = ["--num-envs", "2", "--num-steps", "16", "--obs-norm-init-iters", "1", "--probe-size", "8",
        "--probe-every", "1", "--no-tensorboard", "--no-progress"]
PIXEL = "pixel_bonus:PIXEL_RND"


@pytest.fixture
def on_path(monkeypatch):
    """The example's folder on this process's path and on its children's (a sweep's runs), as a user would."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLE))
    import pixel_bonus

    return pixel_bonus


# ------------------------------------------------------------------------------------------- built-ins
def test_the_builtin_declarations_say_what_the_name_checks_said():
    """Before the registry: own optimizer for rnd-lr and prend, no value head for none, and these unused fields."""
    assert list(BUILTIN_METHODS) == ["rnd", "rnd-lr", "prend", "snd-v", "snd-std", "snd-vic", "none"]  # SND: issue 32
    assert [m.uses_own_optimizer(IntrinsicConfig()) for m in (RND, RND_LR, PREND)] == [False, True, True]
    assert RND.uses_own_optimizer(IntrinsicConfig(separate_optimizer=True))
    assert [m.intrinsic_head for m in (RND, RND_LR, PREND, NONE)] == [True, True, True, False]
    prend_only = {"backbone", "backbone_weights", "backbone_width", "backbone_bf16", "game_id", "feature_norm",
                  "target_norm", "predictor_init", "predictor_layers", "predictor_spectral_norm"}
    assert RND.unused_fields(IntrinsicConfig()) == prend_only | {"predictor_lr_scale"}
    assert RND_LR.unused_fields(IntrinsicConfig(method="rnd-lr")) == prend_only
    assert PREND.unused_fields(IntrinsicConfig(method="prend")) == {"backbone_width", "obs_norm_init_iters"}
    assert PREND.unused_fields(IntrinsicConfig(method="prend", backbone="resnet18", feature_norm=True)) == set()


def test_no_module_checks_a_method_by_its_name():
    """Every comparison of a ``method`` with a string literal is gone from prend (but the registry's own lookup)."""
    found = []
    for path in sorted((ROOT / "src" / "prend").rglob("*.py")):
        if "pretrain" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            names_method = any(isinstance(s, ast.Attribute | ast.Name) and getattr(s, "attr", getattr(s, "id", ""))
                               == "method" for s in sides)
            literal = any(isinstance(s, ast.Constant) and isinstance(s.value, str) or
                          isinstance(s, ast.Tuple | ast.List | ast.Set) for s in sides)
            if names_method and literal:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


# ----------------------------------------------------------------------------------------- the example
def test_the_documented_example_is_the_tested_file():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    section = doc[doc.index("## Adding an intrinsic reward"):]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    assert ("python", (EXAMPLE / "pixel_bonus.py").read_text()) in blocks
    pyproject = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    entry = pyproject["project"]["entry-points"]["prend.methods"]
    assert entry == {"pixel-rnd": PIXEL}
    assert ("toml", '[project.entry-points."prend.methods"]\npixel-rnd = "pixel_bonus:PIXEL_RND"\n') in blocks


def test_the_pixel_target_is_a_fixed_projection_of_the_pooled_whitened_frame(on_path):
    torch.manual_seed(0)
    module = make_intrinsic(IntrinsicConfig(method=PIXEL, feature_dim=16), num_envs=2, gamma=0.99, rom=None)
    assert isinstance(module, on_path.DistillationReward)
    assert [name for name, _ in module.target.named_buffers()] == ["projection"]
    assert not list(module.target.parameters())  # nothing of the target is trained
    obs = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    module.observe(obs)
    out = module.reward(obs)
    # By hand: the last frame whitened by the running statistics, clipped, then 4x4 blocks averaged.
    rms = module.encoder.obs_rms
    frame = ((obs[:, -1:].double() - rms.mean) / rms.var.sqrt()).clamp(-5, 5)
    pooled = frame.reshape(6, 21, 4, 21, 4).mean(dim=(2, 4)).reshape(6, 441)
    target = pooled @ module.target.projection.double()
    assert torch.allclose(out.target.double(), target, atol=1e-5)
    prediction = module.predictor(frame.float()).double()
    assert torch.allclose(out.raw.double(), (target - prediction).square().mean(-1), rtol=1e-4)


def test_a_plugin_trains_checkpoints_resumes_sweeps_reports_and_diagnoses_like_a_builtin(on_path, tmp_path, capsys):
    out = tmp_path / "sweep"
    cfg = SweepConfig(out=out, methods=f"rnd,{PIXEL}", games="Boxing", seeds="1", workers=2, threads_per_run=1)
    results = run_sweep(cfg, [*TINY, "--total-steps", "32"], echo=lambda line: None)
    assert [(r["name"], r["state"]) for r in results] == [("Boxing-rnd-s1", "finished"),
                                                          ("Boxing-pixel-rnd-s1", "finished")]
    run = RunDir(out / "Boxing-pixel-rnd-s1")
    first = load_checkpoint(run.checkpoint_path)
    assert checkpoint_config(first, run.checkpoint_path)["intrinsic"]["method"] == PIXEL  # what a resume imports
    cfg.methods = PIXEL
    results = run_sweep(cfg, [*TINY, "--total-steps", "64"], echo=lambda line: None)  # it resumes
    assert [(r["name"], r["state"]) for r in results] == [("Boxing-pixel-rnd-s1", "finished")]
    assert f"--resume {run.path} --total-steps 64" in run.train_log_path.read_text()
    records = run.metrics()
    assert [r["iteration"] for r in records] == [1, 2]
    losses = [r["losses/predictor"] for r in records]
    assert all(math.isfinite(x) and x > 0 for x in losses)
    last = load_checkpoint(run.checkpoint_path)
    # The target is fixed across the resume; the predictor (on the policy's Adam, as declared) trained on.
    assert torch.equal(last["intrinsic"]["target.projection"], first["intrinsic"]["target.projection"])
    assert not torch.equal(last["intrinsic"]["predictor.0.0.weight"], first["intrinsic"]["predictor.0.0.weight"])
    assert len(last["optimizers"]) == 1 and run.backbone() is None  # reads no backbone: none recorded

    assert main(["report", str(out), "--reps", "100"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [(r["run"], r["label"]) for r in report["runs"]] == [("Boxing-rnd-s1", "rnd"),
                                                                ("Boxing-pixel-rnd-s1", "pixel-rnd")]
    summary = diagnose([out], tmp_path / "diagnose")
    rows = {r["run"]: r for r in summary["runs"]}
    assert rows["Boxing-pixel-rnd-s1"]["method"] == PIXEL and rows["Boxing-pixel-rnd-s1"]["iterations"] == 2
    capsys.readouterr()

    # Without the package the runs still report (labelled by the string); training on needs it, in one line.
    sys.modules.pop("pixel_bonus")
    sys.path.remove(str(EXAMPLE))
    assert [r.label for r in find_runs([out])] == ["rnd", PIXEL]
    assert main(["train", "--resume", str(run.path), "--total-steps", "96"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot import 'pixel_bonus'" in err[0] and "PYTHONPATH" in err[0]


@pytest.mark.slow
def test_a_sweeps_runs_import_a_plugin_from_where_the_sweep_did_not_from_their_working_directory(
        on_path, tmp_path, monkeypatch):
    """A folder in the working directory named like a plug-in (its source checkout) does not shadow it in the runs.

    ``python -m`` put the working directory first on a run's path; the sweep itself found the plug-in elsewhere
    and its up-front check passed, so every run failed (issue 32). And a plug-in module only the sweep's process
    has on its path (not on ``PYTHONPATH``: ``python -m prend.cli sweep`` in its folder) is still found by them.
    """
    work = tmp_path / "work"
    (work / "pixel_bonus").mkdir(parents=True)
    (work / "pixel_bonus" / "__init__.py").write_text("# the plug-in's source folder, an older copy: no PIXEL_RND\n")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lib_bonus.py").write_text("from pixel_bonus import PIXEL_RND, make_pixel_rnd\n"
                                      "from prend.intrinsic import IntrinsicMethod\n\n"
                                      "LIB = IntrinsicMethod('lib-rnd', make_pixel_rnd)\n")
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.chdir(work)
    # One run: lib_bonus is only on this process's path, and it imports pixel_bonus, shadowed in the working directory.
    cfg = SweepConfig(out=tmp_path / "s", methods="lib_bonus:LIB", games="Boxing", seeds="1", workers=1,
                      threads_per_run=1)
    results = run_sweep(cfg, [*TINY, "--total-steps", "32"], echo=lambda line: None)
    assert [(r["name"], r["state"]) for r in results] == [("Boxing-lib-rnd-s1", "finished")], \
        Path(results[0]["log"]).read_text()[-400:]
    command = json.loads((tmp_path / "s" / "Boxing-lib-rnd-s1" / "sweep_status.json").read_text())["command"]
    assert command[1:4] == ["-P", "-m", "prend.cli"]


def test_a_builder_alone_is_a_method_with_the_defaults(on_path, tmp_path):
    method = resolve_method("pixel_bonus:make_pixel_rnd")
    assert (method.name, method.own_optimizer, method.intrinsic_head) == ("pixel_bonus:make_pixel_rnd", False, True)
    assert method.unused_fields(IntrinsicConfig()) == {"predictor_lr_scale"}  # any other field may matter
    cfg, _ = parse_train_args([*TINY, "--method", "pixel_bonus:make_pixel_rnd", "--separate-optimizer", "True",
                               "--predictor-lr-scale", "0.1", "--learning-rate", "3e-4", "--policy", "nature",
                               "--out", str(tmp_path / "run")])
    trainer = Trainer(cfg)
    try:
        policy_opt, predictor_opt = trainer.optimizers
        assert predictor_opt.param_groups[0]["lr"] == pytest.approx(3e-5)
        assert {id(p) for g in predictor_opt.param_groups for p in g["params"]} == \
            {id(p) for p in trainer.intrinsic.predictor.parameters()}
        assert trainer.policy.heads.value_int is not None  # the Nature-CNN policy's intrinsic value head
    finally:
        trainer.close()


def test_an_installed_plugin_is_found_by_its_entry_point(on_path, tmp_path, monkeypatch, capsys):
    """As ``pip install examples/pixel_bonus`` would leave it: a dist-info with the pyproject's entry points."""
    dist = tmp_path / "site" / "pixel_bonus-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pixel-bonus\nVersion: 0.1\n")
    entries = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]
    (dist / "entry_points.txt").write_text("".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
                                                   for group, eps in entries.items()))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert resolve_method("pixel-rnd") is on_path.PIXEL_RND
    cfg, _ = parse_train_args(["--method", "pixel-rnd"])
    assert cfg.intrinsic.method == "pixel-rnd"
    assert main(["train", "--method", "pixel-rmd"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown method 'pixel-rmd': did you mean pixel-rnd?" in err[0]
    assert "installed: pixel-rnd" in err[0]


# ----------------------------------------------------------------------------------------------- errors
@pytest.fixture
def bad_bonuses(on_path, tmp_path, monkeypatch):
    """A user's module of mistakes, and one that fails to import."""
    (tmp_path / "bad_bonuses.py").write_text(
        "from torch import nn\nfrom prend.intrinsic import IntrinsicMethod\n"
        "from pixel_bonus import make_pixel_rnd\n\n"
        "NOT_A_METHOD = 3\nTAKES_RND = IntrinsicMethod('rnd', make_pixel_rnd)\n"
        "SPACED = IntrinsicMethod('pixel rnd', make_pixel_rnd)\n"
        "MISSPELT = IntrinsicMethod('pixel-rnd', make_pixel_rnd, fields=('feature_dims',))\n\n"
        "def returns_a_layer(cfg, num_envs, gamma, rom):\n    return nn.Linear(1, 1)\n\n"
        "def raises(cfg, num_envs, gamma, rom):\n    raise ValueError(f'no feature_dim {cfg.feature_dim}')\n\n"
        "BUILT = []\n\n"
        "def picky(cfg, num_envs, gamma, rom):\n    BUILT.append((rom, cfg.feature_dim))\n"
        "    if rom == 'riverraid' or cfg.feature_dim == 64:\n        raise ValueError('not this one')\n"
        "    return make_pixel_rnd(cfg, num_envs, gamma, rom)\n")
    (tmp_path / "broken_bonuses.py").write_text("raise RuntimeError('no GPU here')\n")
    (tmp_path / "needs_missing.py").write_text("import torch\nimport numpy_does_not_exist\n")
    (tmp_path / "typo_bonuses.py").write_text("def make(cfg, num_envs, gamma, rom)\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize("method, message", [
    ("rnd_lr", "unknown method 'rnd_lr': did you mean rnd-lr? choose rnd, rnd-lr, prend"),
    ("xyz", "unknown method 'xyz': choose rnd"),  # nothing close: no guess
    ("no_such_package:make", "--method no_such_package:make: cannot import 'no_such_package' "
                             "(ModuleNotFoundError"),
    # A module that is there but fails on import is not "missing": the line that failed, and the error.
    ("broken_bonuses:make", "the plug-in module 'broken_bonuses' was found but fails to import at "),
    ("broken_bonuses:make", "broken_bonuses.py, line 1 (RuntimeError: no GPU here): fix it there"),
    ("needs_missing:make", "needs_missing.py, line 2 (ModuleNotFoundError: No module named 'numpy_does_not_exist')"),
    ("typo_bonuses:make", "typo_bonuses.py, line 1 (SyntaxError: expected ':'"),
    ("pixel_bonus:PIXEL", "module 'pixel_bonus' has no 'PIXEL'"),
    ("bad_bonuses:NOT_A_METHOD", "'NOT_A_METHOD' is of type int, not an IntrinsicMethod or a builder"),
    ("bad_bonuses:TAKES_RND", "the plug-in is named 'rnd', as a built-in method"),
    ("bad_bonuses:SPACED", "the plug-in's name 'pixel rnd' is empty or has spaces"),
    ("bad_bonuses:MISSPELT", "its fields name no IntrinsicConfig field: feature_dims: valid fields: backbone"),
    ("bad_bonuses:returns_a_layer", "its builder returned a Linear, not a DistillationReward"),
])
def test_a_bad_method_is_one_line_and_exit_code_2(bad_bonuses, tmp_path, capsys, method, message):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--method", method, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert ("PYTHONPATH" in err[0]) == method.startswith("no_such_package")  # only a missing one is "missing"
    assert not out.exists()  # nothing left on disk


@pytest.mark.parametrize("method, line", [
    ("bad_bonuses:returns_a_layer", "prend sweep: error: --method bad_bonuses:returns_a_layer: its builder returned "
                                    "a Linear, not a DistillationReward"),
    ("bad_bonuses:raises", "prend sweep: error: --methods bad_bonuses:raises: its builder raised ValueError at "),
])
def test_a_sweep_builds_each_plugin_before_any_run_starts(bad_bonuses, tmp_path, capsys, method, line):
    """A builder's mistake stops the sweep up front (exit 2, nothing written), not inside every run of it."""
    out = tmp_path / "s"
    assert main(["sweep", "--out", str(out), "--methods", f"rnd,{method}", "--games", "Boxing", "--seeds", "1,2",
                 *TINY, "--feature-dim", "24", "--total-steps", "32"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(line)
    if method.endswith("raises"):  # its traceback first, as prend train shows it, then the one line naming it
        assert "Traceback (most recent call last)" in err and "ValueError: no feature_dim 24" in err
        assert "bad_bonuses.py, line 14 for game Boxing (no feature_dim 24; the traceback is above): fix it" in last
    else:
        assert "Traceback" not in err
    assert not out.exists()  # no run started, no run directory or manifest written
    assert main(["sweep", "--out", str(out), "--methods", f"rnd,{method}", "--games", "Boxing", "--seeds", "1",
                 "--dry-run"]) == 2  # a dry run checks it too


@pytest.mark.parametrize("games, grid, problem", [
    ("Boxing,Riverraid", ["--feature-dim", "32"], "for game Riverraid (not this one"),
    ("Boxing", ["--grid", "feature-dim=32,64"], "for game Boxing, feature_dim=64 (not this one"),
])
def test_a_sweep_builds_a_plugin_for_each_game_and_grid_value_before_any_run_starts(bad_bonuses, tmp_path, capsys,
                                                                                      games, grid, problem):
    """Not only the first run's config: a builder that fails for one game or one grid value stops the sweep."""
    out = tmp_path / "s"
    assert main(["sweep", "--out", str(out), "--methods", "rnd,bad_bonuses:picky", "--games", games, *grid,
                 "--seeds", "1,2", *TINY, "--total-steps", "32"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("prend sweep: error: --methods bad_bonuses:picky: its builder raised ValueError at ")
    assert problem in last and not out.exists()


def test_a_sweep_builds_a_plugin_once_per_game_and_intrinsic_config_not_per_seed(bad_bonuses, tmp_path):
    sys.modules.pop("bad_bonuses", None)  # a fresh BUILT
    cfg = SweepConfig(out=tmp_path / "s", methods="rnd,bad_bonuses:picky", games="Boxing,Pong", seeds="1,2,3",
                      grid=("feature-dim=16,32",))
    assert len(plan(cfg, [*TINY, "--total-steps", "32"])) == 2 * 2 * 2 * 3
    assert sorted(sys.modules["bad_bonuses"].BUILT) == [("boxing", 16), ("boxing", 32), ("pong", 16), ("pong", 32)]


def test_an_unknown_method_fails_the_same_from_a_config_file_and_a_sweep(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('[intrinsic]\nmethod = "rnd2"\n')
    assert main(["train", "--config", str(config)]) == 2
    assert main(["sweep", "--out", str(tmp_path / "s"), "--methods", "rnd,rnd2", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("unknown method 'rnd2': did you mean rnd? choose rnd, rnd-lr, prend" in e
                                 for e in err)
    assert not (tmp_path / "s").exists()


def test_a_one_factor_sweep_skips_the_fields_a_plugin_does_not_read(on_path, tmp_path):
    cfg = SweepConfig(out=tmp_path / "s", methods=f"{PIXEL},prend", games="Boxing", seeds="1", grid_mode="each",
                      grid=("backbone-width=0.5", "feature-dim=64"))
    specs = plan(cfg, [*TINY, "--total-steps", "64", "--backbone", "resnet18"])
    assert [s.name for s in specs] == [
        "Boxing-pixel-rnd-s1", "Boxing-pixel-rnd-feature-dim64-s1",  # it reads feature_dim, not the backbone's
        "Boxing-prend-s1", "Boxing-prend-backbone-width0.5-s1", "Boxing-prend-feature-dim64-s1"]


# ------------------------------------------------------------------------------------------- the contract
CONTRACT_PLUGINS = '''
"""Subclasses of DistillationReward: one that keeps the contract (a Huber loss), two that break it."""

import torch
import torch.nn.functional as F

from prend.intrinsic import DistillationReward, make_rnd

CALLS = []


def _rnd_as(cls, cfg, num_envs, gamma):
    rnd = make_rnd(cfg, num_envs, gamma, None)
    return cls(rnd.encoder, rnd.target, rnd.predictor, num_envs=num_envs, gamma=gamma)


class HuberRND(DistillationReward):
    def predictor_loss(self, update_input, target):
        CALLS.append(len(update_input))
        prediction = self.predictor(self.encoder.expand(update_input))
        return F.smooth_l1_loss(prediction, self.regression_target(target))


class NothingToLearn(DistillationReward):
    def predictor_loss(self, update_input, target):
        with torch.no_grad():  # the mistake: the loss has no graph
            return super().predictor_loss(update_input, target)


class ExtraAxis(DistillationReward):
    def reward(self, next_obs):
        out = super().reward(next_obs)  # the mistake: (B, 1, K) instead of (B, K)
        return out._replace(target=out.target[:, None], error=out.error[:, None])


def huber(cfg, num_envs, gamma, rom):
    return _rnd_as(HuberRND, cfg, num_envs, gamma)


def nothing(cfg, num_envs, gamma, rom):
    return _rnd_as(NothingToLearn, cfg, num_envs, gamma)


def extra_axis(cfg, num_envs, gamma, rom):
    return _rnd_as(ExtraAxis, cfg, num_envs, gamma)
'''


@pytest.fixture
def contract_plugins(tmp_path, monkeypatch):
    (tmp_path / "contract_plugins.py").write_text(CONTRACT_PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("contract_plugins", None)


@pytest.mark.parametrize("builder, message", [
    ("nothing", "prend train: error: method 'contract_plugins:nothing': NothingToLearn.predictor_loss returned a "
                "loss that does not require grad (computed under torch.no_grad, detached, or from no parameter): "
                "return a scalar computed from the predictor's output with gradients on; a reward with nothing "
                "left to learn returns 0 * the sum of a parameter (docs/architecture.md, 'The contract')"),
    ("extra_axis", "prend train: error: method 'contract_plugins:extra_axis': ExtraAxis.reward returned target "
                   "(32, 1, 16) and error (32, 1, 16) for 32 observations: return both as (32, K) with the same "
                   "K >= 1 features"),
])
def test_a_reward_that_breaks_the_contract_stops_at_its_first_update_in_one_line(contract_plugins, tmp_path, capsys,
                                                                                  builder, message):
    """Not torch's 25-line RuntimeError after the warm-up, nor a null offset share: the function, problem and fix."""
    out = tmp_path / "run"
    assert main(["train", *TINY, "--method", f"contract_plugins:{builder}", "--feature-dim", "16",
                 "--torch-threads", "1", "--total-steps", "32", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    assert not (out / "checkpoint.pt").exists()


def test_subclassing_distillation_reward_and_overriding_a_method_is_supported(contract_plugins, tmp_path):
    """docs/architecture.md: an override keeping the contract's signatures and shapes trains, checkpoints, resumes."""
    out = tmp_path / "run"
    flags = [*TINY, "--method", "contract_plugins:huber", "--feature-dim", "16", "--torch-threads", "1"]
    assert main(["train", *flags, "--total-steps", "32", "--out", str(out)]) == 0
    import contract_plugins

    assert sum(contract_plugins.CALLS) == 4 * 32 // 4  # the override ran: 4 epochs x 32 samples x proportion 0.25
    first = load_checkpoint(out / "checkpoint.pt")
    assert main(["train", "--resume", str(out), "--total-steps", "64"]) == 0
    last = load_checkpoint(out / "checkpoint.pt")
    assert last["iteration"] == 2 and not torch.equal(last["intrinsic"]["predictor.0.0.weight"],
                                                      first["intrinsic"]["predictor.0.0.weight"])
