"""Atari-PB backbone and neck (prend.nets.atari_pb) and their checkpoint I/O (prend.nets.atari_pb_io)."""

from __future__ import annotations

import os

import pytest
import torch

import prend
from prend.errors import PrendError
from prend.nets.atari_pb import AtariPBNeck, ResNetGN
from prend.nets.atari_pb_io import (
    CHECKPOINT_KEYS,
    infer_arch,
    load_atari_pb_backbone,
    read_atari_pb_checkpoint,
    save_atari_pb_checkpoint,
    strip_prefixes,
)

TINY = ("resnet18", 0.25)


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return ResNetGN(*TINY).state_dict()


def atari_pb_style_checkpoint(path, backbone_state, prefix=""):
    """What Atari-PB's trainer writes: torch.save of the module state_dicts plus training state."""
    torch.save({"backbone": {prefix + k: v for k, v in backbone_state.items()}, "neck": {}, "head": {},
                "optimizer": {"state": {}, "param_groups": [{"lr": 3e-4, "params": [0, 1]}]},
                "lr_scheduler": {"last_epoch": 7}, "scaler": {"scale": 65536.0}, "epoch": 10, "step": 7},
               path)
    return path


# ----------------------------------------------------------------------------------------------------------
# Backbone


def expected_resnet50_params(in_channels=4, width=1.0):
    """Conv weights only (GroupNorm has no affine, convs no bias), counted from the layer recipe."""
    total = in_channels * 64 * 7 * 7  # stem
    in_planes = 64
    for base, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        planes = int(base * width)
        for i in range(blocks):
            s = stride if i == 0 else 1
            total += in_planes * planes + planes * planes * 3 * 3 + planes * 4 * planes
            if s != 1 or in_planes != 4 * planes:
                total += in_planes * 4 * planes  # 1x1 projection shortcut
            in_planes = 4 * planes
    return total


def test_resnet50_output_and_parameter_count():
    model = ResNetGN("resnet50").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 4, 84, 84))
    assert out.shape == (1, 2048, 6, 6)
    assert (model.out_channels, model.out_spatial) == (2048, (6, 6))
    n = sum(p.numel() for p in model.parameters())  # parameters() counts the shared stem conv once
    assert n == expected_resnet50_params() == 23_458_048
    assert out.min() >= 0  # final ReLU of the last block


def test_resnet18_output_shape():
    model = ResNetGN("resnet18").eval()
    with torch.no_grad():
        assert model(torch.rand(2, 4, 84, 84)).shape == (2, 512, 6, 6)
    assert model.out_channels == 512
    assert "layer1.0.shortcut.0.weight" not in model.state_dict()  # width 1: 64 -> 64 needs no projection


@pytest.mark.parametrize(("arch", "width", "channels"), [
    ("resnet18", 0.25, 128), ("resnet18", 0.5, 256), ("resnet34", 0.5, 256), ("resnet50", 0.5, 1024),
    ("resnet50", 0.75, 1536),
])
def test_width_multiplier_scales_stages_not_stem(arch, width, channels):
    model = ResNetGN(arch, width)
    sd = model.state_dict()
    assert model.out_channels == channels
    assert sd["conv1.weight"].shape == (64, 4, 7, 7)  # Atari-PB never scales the stem
    assert sd["layer1.0.conv1.weight"].shape[0] == int(64 * width)
    assert sd["layer4.0.conv1.weight"].shape[0] == int(512 * width)
    # the unscaled 64-channel stem feeds a narrower layer1, so its first block gets a projection
    assert "layer1.0.shortcut.0.weight" in sd


def test_width_multiplier_forward():
    model = ResNetGN(*TINY).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 4, 84, 84)).shape == (2, 128, 6, 6)


def test_state_dict_keys_match_atari_pb_layout(tiny_state):
    model = ResNetGN("resnet50")
    sd = model.state_dict()
    assert list(sd)[:3] == ["conv1.weight", "stem.0.weight", "layer1.0.conv1.weight"]
    assert sd["conv1.weight"].data_ptr() == sd["stem.0.weight"].data_ptr()  # one tensor, two names
    assert not [k for k in sd if "norm" in k]  # GroupNorm(affine=False) has no state
    assert all(k.endswith(".weight") and v.dim() == 4 for k, v in sd.items())  # convs only, no biases
    assert {"layer1.0.shortcut.0.weight", "layer2.0.shortcut.0.weight", "layer4.0.shortcut.0.weight",
            "layer3.5.conv3.weight"} <= set(sd)
    assert "layer1.1.shortcut.0.weight" not in sd
    assert len(sd) == 54
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_groups == 4 and not m.affine for m in norms)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_invalid_arch_and_width():
    with pytest.raises(PrendError, match="resnet101"):
        ResNetGN("resnet101")  # type: ignore[arg-type]
    with pytest.raises(PrendError, match=r"width 0\.3"):
        ResNetGN("resnet18", 0.3)  # int(64 * 0.3) = 19 channels: not divisible into 4 groups


# ----------------------------------------------------------------------------------------------------------
# Neck


def test_neck_keys_shape_and_non_negative():
    torch.manual_seed(0)
    neck = AtariPBNeck()
    assert list(neck.state_dict()) == ["spatial_embed.weight", "norm.weight", "norm.bias", "mlp.0.weight",
                                       "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
    assert neck.spatial_embed.weight.shape == (60, 2048 * 36)
    assert sum(p.numel() for p in neck.parameters()) == 60 * 2048 * 36 + 2 * 2048 + 2048 * 1024 + 1024 \
        + 1024 * 512 + 512
    assert abs(neck.spatial_embed.weight.std().item() - 1.0) < 0.01  # nn.Embedding's default N(0, 1)
    assert isinstance(neck.norm, torch.nn.GroupNorm) and neck.norm.num_groups == 1 and neck.norm.affine
    out = neck(torch.rand(3, 2048, 6, 6), game_id=12)
    assert out.shape == (3, 512) and neck.out_dim == 512
    assert out.min() >= 0 and out.max() > 0


def test_neck_game_embedding_multiplies():
    torch.manual_seed(0)
    neck = AtariPBNeck(in_channels=32, num_games=6)
    features = torch.rand(2, 32, 6, 6) + 0.5
    with torch.no_grad():
        neck.spatial_embed.weight[4] = 0
        zero_row = neck(features, game_id=4)
        zero_map = neck(torch.zeros_like(features), game_id=1)
        torch.testing.assert_close(zero_row, zero_map, rtol=0, atol=0)
        neck.spatial_embed.weight[2] = 1  # a ones row leaves the features as they are
        pooled = torch.nn.functional.group_norm(features.mean((2, 3)), 1, neck.norm.weight, neck.norm.bias)
        torch.testing.assert_close(neck(features, 2), neck.mlp(pooled))
        # an int id, a 0-d tensor and a per-sample LongTensor select the same rows
        ids = torch.tensor([3, 5])
        per_sample = neck(features, ids)
        torch.testing.assert_close(per_sample[0], neck(features[:1], 3)[0])
        torch.testing.assert_close(per_sample[1], neck(features[1:], torch.tensor(5))[0])
        assert not torch.allclose(neck(features, 3), neck(features, 5))


def test_neck_composes_with_backbone():
    backbone = ResNetGN(*TINY).eval()
    neck = AtariPBNeck(backbone.out_channels, spatial=backbone.out_spatial)
    with torch.no_grad():
        assert neck(backbone(torch.rand(2, 4, 84, 84)), torch.tensor([0, 59])).shape == (2, 512)


# ----------------------------------------------------------------------------------------------------------
# Checkpoints


@pytest.mark.parametrize("prefix", ["", "_orig_mod.", "_orig_mod.module.", "module.", "module._orig_mod."])
def test_loader_strips_prefixes_and_freezes(tmp_path, tiny_state, prefix):
    path = atari_pb_style_checkpoint(tmp_path / "epoch100.pth", tiny_state, prefix)
    model = load_atari_pb_backbone(path, *TINY)
    assert isinstance(model, ResNetGN) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, tiny_state[key], rtol=0, atol=0)
    ckpt = read_atari_pb_checkpoint(path)
    assert list(ckpt["backbone"]) == list(tiny_state)
    assert ckpt["epoch"] == 10 and ckpt["step"] == 7


def test_loader_infers_architecture(tmp_path, tiny_state):
    path = atari_pb_style_checkpoint(tmp_path / "c.pth", tiny_state, "_orig_mod.")
    model = load_atari_pb_backbone(path, arch=None, width=None)
    assert (model.arch, model.width) == TINY


@pytest.mark.parametrize(("arch", "width"), [("resnet18", 1.0), ("resnet34", 0.5), ("resnet50", 0.25),
                                             ("resnet18", 0.75), ("resnet50", 1.0)])
def test_infer_arch(arch, width):
    sd = {"_orig_mod." + k: v for k, v in ResNetGN(arch, width).state_dict().items()}
    assert infer_arch(sd) == (arch, width)


def test_infer_arch_rejects_other_layouts(tiny_state):
    sd = {k: v for k, v in tiny_state.items() if not k.startswith("layer4.1.")}
    with pytest.raises(ValueError, match=r"\[2, 2, 2, 1\]"):
        infer_arch(sd)


def _load_error(path, *arch) -> str:
    with pytest.raises(PrendError) as info:
        load_atari_pb_backbone(path, *arch)
    message = str(info.value)
    assert "\n" not in message  # printed by the CLI as one line
    return message


def test_loader_missing_key(tmp_path, tiny_state):
    state = {k: v for k, v in tiny_state.items() if k != "layer2.0.conv1.weight"}
    message = _load_error(atari_pb_style_checkpoint(tmp_path / "c.pth", state), *TINY)
    assert "does not match resnet18 (width 0.25)" in message
    assert "missing layer2.0.conv1.weight" in message


def test_loader_missing_duplicate_stem_key(tmp_path, tiny_state):
    state = {k: v for k, v in tiny_state.items() if k != "stem.0.weight"}
    assert "missing stem.0.weight" in _load_error(atari_pb_style_checkpoint(tmp_path / "c.pth", state), *TINY)


def test_loader_unexpected_key(tmp_path, tiny_state):
    state = {**tiny_state, "fc.weight": torch.zeros(18, 128)}
    message = _load_error(atari_pb_style_checkpoint(tmp_path / "c.pth", state, "_orig_mod."), *TINY)
    assert "unexpected fc.weight" in message and "missing" not in message


def test_loader_shape_mismatch_names_key_and_real_architecture(tmp_path, tiny_state):
    path = atari_pb_style_checkpoint(tmp_path / "c.pth", tiny_state)
    message = _load_error(path, "resnet18", 0.5)
    assert "shape mismatch" in message and "layer1.0.conv1.weight (16, 64, 3, 3) vs (32, 64, 3, 3)" in message
    assert "looks like resnet18 (width 0.25)" in message and "--backbone" in message


def test_loader_wrong_architecture(tmp_path, tiny_state):
    message = _load_error(atari_pb_style_checkpoint(tmp_path / "c.pth", tiny_state), "resnet50", 0.25)
    assert "does not match resnet50 (width 0.25): missing layer1.0.conv3.weight" in message
    assert "unexpected" in message and "looks like resnet18 (width 0.25)" in message


def test_loader_inconsistent_stem_and_non_finite(tmp_path, tiny_state):
    state = {**tiny_state, "stem.0.weight": tiny_state["conv1.weight"] + 1}
    message = _load_error(atari_pb_style_checkpoint(tmp_path / "a.pth", state), *TINY)
    assert "stem.0.weight and conv1.weight differ" in message
    bad = tiny_state["layer3.1.conv2.weight"].clone()
    bad[0, 0, 0, 0] = float("nan")
    state = {**tiny_state, "layer3.1.conv2.weight": bad}
    assert "non-finite values in layer3.1.conv2.weight" in _load_error(
        atari_pb_style_checkpoint(tmp_path / "b.pth", state), *TINY)


def test_loader_unreadable_files(tmp_path, tiny_state):
    assert "not found" in _load_error(tmp_path / "nope.pth")
    good = atari_pb_style_checkpoint(tmp_path / "good.pth", tiny_state)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "not a torch file or corrupt" in _load_error(truncated)
    text = tmp_path / "text.pth"
    text.write_text("hello\n")
    assert "not a torch file or corrupt" in _load_error(text)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "not a torch file or corrupt" in _load_error(empty)
    torch.save({"model": tiny_state}, tmp_path / "other.pth")
    assert "not in Atari-PB format" in _load_error(tmp_path / "other.pth")
    torch.save({"backbone": tiny_state, "args": torch.optim.SGD}, tmp_path / "pickled.pth")
    assert "pickled torch.optim.sgd.SGD" in _load_error(tmp_path / "pickled.pth")


def test_save_round_trip(tmp_path, tiny_state):
    torch.manual_seed(1)
    neck = AtariPBNeck(128, num_games=3, hidden_dims=(16, 8))
    optimizer = torch.optim.Adam(neck.parameters(), lr=1e-3)
    neck(torch.rand(2, 128, 6, 6), 1).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    compiled_names = {"_orig_mod." + k: v for k, v in tiny_state.items()}
    path = tmp_path / "sub" / "latest.pth"
    for epoch in (1, 2):  # the second save replaces the first
        written = save_atari_pb_checkpoint(path, backbone=compiled_names, neck=neck, optimizer=optimizer,
                                           lr_scheduler=scheduler, scaler={"scale": 1024.0}, epoch=epoch,
                                           step=100 * epoch, extra={"config": {"game": "Boxing", "seed": 3}})
    assert written == path and os.listdir(path.parent) == ["latest.pth"]  # no temp files left
    raw = torch.load(path, weights_only=True)
    assert list(raw) == [*CHECKPOINT_KEYS, "extra"]
    assert raw["head"] == {} and raw["epoch"] == 2 and raw["step"] == 200
    assert raw["extra"]["config"]["game"] == "Boxing"
    assert list(raw["backbone"]) == list(tiny_state)  # saved without the compile prefix
    ckpt = read_atari_pb_checkpoint(path)
    for key, value in neck.state_dict().items():
        torch.testing.assert_close(ckpt["neck"][key], value, rtol=0, atol=0)
    assert ckpt["optimizer"]["state"][0]["step"] == 1
    model = load_atari_pb_backbone(path, *TINY)
    torch.testing.assert_close(model.conv1.weight, tiny_state["conv1.weight"], rtol=0, atol=0)


def test_save_refuses_unsafe_objects(tmp_path, tiny_state):
    path = tmp_path / "c.pth"
    with pytest.raises(TypeError, match=r"extra\['fn'\]"):
        save_atari_pb_checkpoint(path, backbone=tiny_state, extra={"fn": print})
    assert not list(tmp_path.iterdir())


def test_strip_prefixes_only_at_the_front():
    assert list(strip_prefixes({"_orig_mod.module.layer1.0.conv1.weight": 0, "a.module.b": 1})) == [
        "layer1.0.conv1.weight", "a.module.b"]


def test_package_exports():
    assert prend.load_atari_pb_backbone is load_atari_pb_backbone
    assert prend.ResNetGN is ResNetGN and prend.AtariPBNeck is AtariPBNeck
