"""The shipped backbone: present, small, loadable through the Atari-PB loader, and as its record says."""

from __future__ import annotations

import torch

from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone, read_atari_pb_checkpoint, save_atari_pb_checkpoint
from prend.pretrain import export_backbone, shipped_backbone, shipped_backbone_info, shipped_backbone_path
from prend.pretrain.shipped import sha256_file


def test_shipped_backbone_loads_and_matches_its_record():
    path, arch, width = shipped_backbone()
    assert path == shipped_backbone_path() and path.is_file()
    assert path.stat().st_size <= 25 * 2**20
    info = shipped_backbone_info()
    assert (info["arch"], info["width"]) == (arch, width) == ("resnet18", 0.125)
    assert info["sha256"] == sha256_file(path) and info["bytes"] == path.stat().st_size
    assert any("prend pretrain" in line for line in info["recipe"])
    assert info["step"] == info["run"]["steps"] == 3600  # the finished recipe run, not an interim checkpoint
    probe = info["probe"]
    for key in ("temporal_coherence", "action_probe", "reward_probe"):
        assert set(probe[key]) == {"pretrained", "random_init"}
    assert probe["beats_random_init"] is True  # issue #4: better than its random-init twin on every measure
    assert all(probe[k]["pretrained"] > probe[k]["random_init"]
               for k in ("temporal_coherence", "action_probe", "reward_probe"))
    backbone = load_atari_pb_backbone(path, arch=arch, width=width)
    with torch.no_grad():
        out = backbone(torch.rand(2, 4, 84, 84))
    assert out.shape == (2, 64, 6, 6) and torch.isfinite(out).all()
    assert set(read_atari_pb_checkpoint(path)) >= {"backbone", "neck", "head", "optimizer", "epoch", "step"}


def test_export_backbone_keeps_only_the_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = ResNetGN("resnet18", 0.125)
    save_atari_pb_checkpoint(tmp_path / "run.pth", backbone=backbone, neck={"w": torch.ones(3)},
                             head={"w": torch.ones(3)}, step=7,
                             extra={"prend": {"config": {"seed": 0}, "loss_ema": 0.01, "torch_rng": torch.ones(2)}})
    info = export_backbone(tmp_path / "run.pth", tmp_path / "b.pt", {"recipe": ["x"]})
    assert (info["arch"], info["width"], info["step"], info["recipe"]) == ("resnet18", 0.125, 7, ["x"])
    out = read_atari_pb_checkpoint(tmp_path / "b.pt")
    assert out["neck"] == {} and out["head"] == {} and "torch_rng" not in out["extra"]["prend"]
    loaded = load_atari_pb_backbone(tmp_path / "b.pt", arch=None, width=None)
    for key, value in backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert info["sha256"] == sha256_file(tmp_path / "b.pt")


def test_every_shipped_name_has_its_file_and_record_and_unknown_names_are_refused():
    import pytest

    from prend.errors import PrendError
    from prend.nets.weights import DEFAULT_BACKBONE, SHIPPED_BACKBONES, build_shipped_backbone

    assert DEFAULT_BACKBONE in SHIPPED_BACKBONES and "compact" in SHIPPED_BACKBONES  # old runs name it
    for name, entry in SHIPPED_BACKBONES.items():
        path, arch, width = shipped_backbone(name)
        info = shipped_backbone_info(name)
        assert path.name == f"{entry.file}.pt" and info["sha256"] == sha256_file(path)
        assert path.stat().st_size <= 25 * 2**20 and info["bytes"] == path.stat().st_size
        assert (info["arch"], info["width"]) == (arch, width) == (entry.arch, entry.width)
        assert info.get("family", "atari-pb") == entry.family
        backbone = build_shipped_backbone(name)
        assert not any(p.requires_grad for p in backbone.parameters())
        with torch.no_grad():
            out = backbone(torch.rand(2, 4, 84, 84))
        assert out.shape[0] == 2 and torch.isfinite(out).all()
        if entry.family == "atari-pb":
            assert load_atari_pb_backbone(path, arch=arch, width=width).width == width
        else:  # an AtariARI encoder: a 256-d vector, with its recipe and probe figures on record
            assert out.shape == (2, 256) and info["recipe"] and info["probe"]
    with pytest.raises(PrendError, match="no shipped backbone is named 'nope'"):
        shipped_backbone("nope")
