"""AtariARI's encoder as PreND's frozen backbone: its strict loader, a shipped name of the ``atariari`` family,
``--backbone atariari-stack84``, the export of an ST-DIM run's encoder, and ``prend probe`` of one.

No test trains: an ST-DIM run's encoder files are written by building an :class:`STDIMTrainer` (which saves
``init.pt``) or the way its ``_save_encoder`` writes them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import prend.nets.weights as weights
from prend.checkpoint import FORMAT, atomic_torch_save, load_checkpoint
from prend.config import IntrinsicConfig
from prend.errors import PrendError
from prend.intrinsic.pretrained import backbone_weights_file, make_backbone, make_prend
from prend.nets.atari_pb import ResNetGN
from prend.nets.atariari import AtariARIEncoder, is_atariari_file, load_atariari_encoder
from prend.nets.weights import ShippedBackbone, build_shipped_backbone
from prend.pretrain.atariari import Episodes, STDIMSettings, STDIMTrainer, load_encoder
from prend.pretrain.probe import ProbeConfig, load_probed_backbone, random_twin
from prend.pretrain.shipped import export_atariari_backbone


def save_encoder(path, encoder: AtariARIEncoder, **extra) -> None:
    """As ``STDIMTrainer._save_encoder`` writes an encoder file."""
    atomic_torch_save({"format": FORMAT, "encoder": encoder.state_dict(), "frame": encoder.frame,
                       "size": list(encoder.size), **extra}, path)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def stack84_file(tmp_path):
    torch.manual_seed(3)
    encoder = AtariARIEncoder("stack84")
    save_encoder(tmp_path / "epoch002.pt", encoder, epoch=2)
    return tmp_path / "epoch002.pt", encoder


@pytest.fixture
def shipped_atariari(tmp_path, monkeypatch, stack84_file):
    """A temporary ``atariari``-family entry named ``ari-test``, its file exported into a temporary WEIGHTS_DIR."""
    shipped = tmp_path / "weights"
    export_atariari_backbone(stack84_file[0], shipped / "stdim_test.pt")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", shipped)
    monkeypatch.setitem(weights.SHIPPED_BACKBONES, "ari-test", ShippedBackbone(
        "stdim_test", "atariari-stack84", 1.0, "a test encoder", family="atariari"))
    return "ari-test", stack84_file[1]


# ---------------------------------------------------------------------------------------------- the loader
def test_loader_round_trips_in_eval_mode_and_float32(stack84_file):
    path, encoder = stack84_file
    loaded = load_atariari_encoder(path)
    assert same_weights(loaded, encoder) and not loaded.training
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert (loaded.frame, loaded.size, loaded.feature_dim, loaded.arch) == ("stack84", (84, 84), 256,
                                                                            "atariari-stack84")
    assert load_encoder is load_atariari_encoder  # the old name, kept in prend.pretrain.atariari
    assert is_atariari_file(path)


def test_loader_reads_a_small_full_frame_encoder_and_its_output_width(tmp_path):
    torch.manual_seed(0)
    encoder = AtariARIEncoder("full", feature_dim=32, size=(105, 80))
    save_encoder(tmp_path / "f.pt", encoder)
    loaded = load_atariari_encoder(tmp_path / "f.pt")
    assert (loaded.frame, loaded.size, loaded.feature_dim) == ("full", (105, 80), 32) and same_weights(loaded, encoder)


FIX = r": pass init\.pt, epochNNN\.pt or best\.pt of an ST-DIM run"


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["encoder"].pop("head.bias"), r"missing head\.bias.*" + FIX),
    (lambda s: s["encoder"].update(extra=torch.zeros(1)), r"unexpected extra"),
    (lambda s: s["encoder"].update({"convs.0.weight": torch.zeros(32, 1, 8, 8)}),
     r"shape mismatch .*convs\.0\.weight \(32, 1, 8, 8\) vs \(32, 4, 8, 8\)"),
    (lambda s: s["encoder"]["head.bias"].fill_(float("nan")), r"non-finite values in head\.bias: use an earlier"),
    (lambda s: s.pop("encoder"), r"no 'encoder' state dict.*" + FIX),
    (lambda s: s.update(frame="rgb"), r"the frame kind 'rgb'.*" + FIX),
    (lambda s: s.update(size=[84]), r"frame size \[84\]"),
    (lambda s: s.update(size=[20, 20]), r"frames of \[20, 20\], too small"),
    (lambda s: s.update(format="other"), r"it is no prend checkpoint.*" + FIX),
])
def test_bad_files_are_one_line_errors_with_a_fix(stack84_file, edit, message):
    path, _ = stack84_file
    state = load_checkpoint(path)
    edit(state)
    torch.save(state, path)
    with pytest.raises(PrendError, match=message) as err:
        load_atariari_encoder(path)
    assert "\n" not in str(err.value)


def test_missing_corrupt_and_pickled_files_are_one_line_errors(tmp_path, stack84_file):
    with pytest.raises(PrendError, match="no AtariARI encoder file at"):
        load_atariari_encoder(tmp_path / "nope.pt")
    data = stack84_file[0].read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 2])  # a copy cut short
    with pytest.raises(PrendError, match=r"\(not a torch file, or corrupt\): pass init\.pt") as err:
        load_atariari_encoder(tmp_path / "cut.pt")
    assert "\n" not in str(err.value)
    assert not is_atariari_file(tmp_path / "cut.pt")
    torch.save({"format": FORMAT, "encoder": {}, "frame": "stack84", "obj": np.random.default_rng(0)},
               tmp_path / "pickled.pt")
    with pytest.raises(PrendError, match="pickled objects"):
        load_atariari_encoder(tmp_path / "pickled.pt")


# ---------------------------------------------------------------------------------------- PreND's backbone
def check_prend_reward(cfg: IntrinsicConfig) -> torch.nn.Module:
    reward = make_prend(cfg, num_envs=2, gamma=0.99, rom="boxing")
    backbone = reward.encoder.backbone
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    obs = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    out = reward.reward(obs)
    assert out.raw.shape == (5,) and torch.isfinite(out.raw).all()
    assert out.update_input.shape == (5, 256, 1, 1) and out.target.shape == (5, cfg.feature_dim)
    loss = reward.predictor_loss(out.update_input, out.target)
    loss.backward()
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training
    reward.train()
    assert not backbone.training
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())
    return backbone


def test_prend_rewards_on_a_random_atariari_backbone():
    backbone = check_prend_reward(IntrinsicConfig(method="prend", backbone="atariari-stack84", feature_dim=64))
    assert isinstance(backbone, AtariARIEncoder)


def test_atariari_stack84_loads_any_stdim_run_file_as_weights(stack84_file):
    path, encoder = stack84_file
    cfg = IntrinsicConfig(method="prend", backbone="atariari-stack84", backbone_weights=str(path), feature_dim=64)
    assert same_weights(check_prend_reward(cfg), encoder)
    assert backbone_weights_file(cfg) == path


def test_a_shipped_atariari_name_builds_and_takes_an_override(shipped_atariari, tmp_path):
    name, encoder = shipped_atariari
    cfg = IntrinsicConfig(method="prend", backbone=name, feature_dim=64)
    assert same_weights(check_prend_reward(cfg), encoder)
    assert backbone_weights_file(cfg) == tmp_path / "weights" / "stdim_test.pt"
    torch.manual_seed(9)
    other = AtariARIEncoder("stack84")
    save_encoder(tmp_path / "other.pt", other)
    overridden = make_backbone(IntrinsicConfig(method="prend", backbone=name,
                                               backbone_weights=str(tmp_path / "other.pt")))
    assert same_weights(overridden, other)


def test_the_compact_backbone_is_built_as_before():
    path, arch, width = weights.shipped_backbone("compact")
    built = build_shipped_backbone("compact")
    assert isinstance(built, ResNetGN) and (built.arch, built.width) == (arch, width) == ("resnet18", 0.125)
    assert same_weights(make_backbone(IntrinsicConfig(method="prend", backbone="compact")), built)


def test_prend_refuses_a_full_frame_encoder(tmp_path):
    save_encoder(tmp_path / "full.pt", AtariARIEncoder("full", size=(105, 80)))
    cfg = IntrinsicConfig(method="prend", backbone="atariari-stack84", backbone_weights=str(tmp_path / "full.pt"))
    with pytest.raises(PrendError, match="'full' frames at 105x80.*84x84 4-stacks"):
        make_backbone(cfg)


# ----------------------------------------------------------------------------------------------- the export
def test_export_writes_the_encoder_alone_with_its_record(tmp_path, stack84_file):
    path, encoder = stack84_file
    atomic_torch_save({**load_checkpoint(path), "optimizer": {"state": {}}, "settings": {"seed": 7}}, path)
    info = export_atariari_backbone(path, tmp_path / "out" / "b.pt", {"recipe": ["x"]})
    out = tmp_path / "out" / "b.pt"
    state = torch.load(out, weights_only=True)
    assert set(state) == {"format", "encoder", "frame", "size"} and state["size"] == [84, 84]
    assert all(v.dtype == torch.float32 for v in state["encoder"].values())
    assert (out.stat().st_mode & 0o777) == 0o644
    assert json.loads(out.with_suffix(".json").read_text()) == info
    assert {k: info[k] for k in ("family", "arch", "width", "frame", "epoch", "seed", "recipe")} == {
        "family": "atariari", "arch": "atariari-stack84", "width": 1.0, "frame": "stack84", "epoch": 2, "seed": 7,
        "recipe": ["x"]}
    assert info["bytes"] == out.stat().st_size and len(info["sha256"]) == 64
    assert same_weights(load_atariari_encoder(out), encoder)


def test_export_refuses_a_full_frame_encoder(tmp_path):
    save_encoder(tmp_path / "full.pt", AtariARIEncoder("full", size=(105, 80)))
    with pytest.raises(PrendError, match="PreND's backbone .*sees 84x84 4-stacks") as err:
        export_atariari_backbone(tmp_path / "full.pt", tmp_path / "b.pt")
    assert "\n" not in str(err.value) and not (tmp_path / "b.pt").exists()


# ------------------------------------------------------------------------------------------------ the probe
def stdim_run(tmp_path, seed: int | None = None) -> STDIMTrainer:
    """An ST-DIM run that trains nothing: building the trainer writes ``init.pt``."""
    episodes = Episodes([np.zeros((70, 84, 84), np.uint8)] * 2, [np.zeros((70, 128), np.uint8)] * 2,
                        "boxing", "stack84")
    settings = STDIMSettings() if seed is None else STDIMSettings(seed=seed)
    return STDIMTrainer(episodes, episodes, tmp_path / "run", settings, log=lambda line: None)


def test_the_twin_of_a_run_file_is_its_init_under_the_default_seed(tmp_path):
    trainer = stdim_run(tmp_path)
    assert trainer.settings.seed == 42
    init = load_atariari_encoder(tmp_path / "run" / "init.pt")
    assert same_weights(random_twin(init, 42), init)
    torch.manual_seed(0)  # the twin does not depend on the RNG's state before it
    backbone, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=tmp_path / "run" / "init.pt"))
    assert facts["init_seed"] == 42 and same_weights(twin, init) and same_weights(backbone, init)
    assert (facts["arch"], facts["epoch"], facts["step"]) == ("atariari-stack84", None, None)
    _, other, facts = load_probed_backbone(ProbeConfig(checkpoint=tmp_path / "run" / "init.pt", init_seed=1))
    assert facts["init_seed"] == 1 and not same_weights(other, init)


def test_the_probe_reads_the_runs_recorded_seed_and_the_epoch(tmp_path):
    stdim_run(tmp_path, seed=5)
    run = tmp_path / "run"
    init = load_atariari_encoder(run / "init.pt")
    # checkpoint.pt records the settings (fit() writes it; here its settings alone say the seed)
    atomic_torch_save({"format": FORMAT, "settings": {"seed": 5}}, run / "checkpoint.pt")
    save_encoder(run / "epoch003.pt", AtariARIEncoder("stack84"), epoch=3)
    _, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=run / "epoch003.pt"))
    assert facts["init_seed"] == 5 and facts["epoch"] == 3 and same_weights(twin, init)
    info = export_atariari_backbone(run / "epoch003.pt", tmp_path / "b.pt")
    assert info["seed"] == 5  # and an exported file keeps it in its record, which the probe reads
    _, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=tmp_path / "b.pt"))
    assert facts["init_seed"] == 5 and same_weights(twin, init)


def test_the_probe_takes_a_shipped_atariari_name_and_the_random_architecture(shipped_atariari, tmp_path):
    name, encoder = shipped_atariari
    backbone, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=name))
    assert same_weights(backbone, encoder) and isinstance(twin, AtariARIEncoder)
    assert facts["checkpoint"] == str(tmp_path / "weights" / "stdim_test.pt") and facts["arch"] == "atariari-stack84"
    backbone, twin, facts = load_probed_backbone(ProbeConfig(checkpoint="atariari-stack84", init_seed=4))
    torch.manual_seed(4)
    assert isinstance(backbone, AtariARIEncoder) and same_weights(twin, AtariARIEncoder("stack84"))
    assert (facts["arch"], facts["step"], facts["init_seed"]) == ("atariari-stack84", 0, 4)


def test_the_probe_refuses_a_full_frame_encoder(tmp_path):
    save_encoder(tmp_path / "full.pt", AtariARIEncoder("full", size=(105, 80)))
    with pytest.raises(PrendError, match="84x84 4-stacks"):
        load_probed_backbone(ProbeConfig(checkpoint=tmp_path / "full.pt"))
