"""``prend check-backbone PATH``: a downloaded Atari-PB backbone file checked before a run, on synthetic files."""

import torch

from prend.cli import main
from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import save_atari_pb_checkpoint

# Atari-PB's SiamMAE head decodes with cross-attention (q_embed) and a game-wise reconstruction (recon_w);
# its MAE head has recon_w and self-attention only (src/models/heads/*_head.py, src/models/layers.py).
SIAMMAE_HEAD = {"recon_w.weight": torch.zeros(60, 8), "transformer_decoder.layers.0.0.fn.q_embed.weight": torch.eye(2)}
MAE_HEAD = {"recon_w.weight": torch.zeros(60, 8), "transformer_decoder.layers.0.0.fn.to_qkv.weight": torch.eye(2)}
SMALL = ["--backbone", "resnet18", "--backbone-width", "0.25"]


def run(capsys, *argv):
    code = main(["check-backbone", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_siammae_file_of_the_expected_architecture_passes_and_says_what_it_is(tmp_path, capsys):
    torch.manual_seed(0)
    backbone = ResNetGN("resnet18", 0.25)
    path = save_atari_pb_checkpoint(tmp_path / "siammae.pth", backbone=backbone, neck={"cls_token": torch.zeros(1)},
                                    head=SIAMMAE_HEAD, epoch=100, step=7)
    code, out, _ = run(capsys, path, *SMALL)
    assert code == 0
    # 22 keys and 717,824 parameters: docs/atari_pb.md's table for ResNet-18 at width 0.25; 128 x 6 x 6 output.
    assert "backbone: resnet18, width 0.25: all 22 keys and shapes match" in out
    assert "717,824 parameters; output 128x6x6" in out and "epoch 100, step 7" in out
    assert "objective: SiamMAE (its head" in out and "note:" not in out
    assert f"use: prend train --method prend --backbone resnet18 --backbone-width 0.25 --backbone-weights {path}" in out
    code, out, _ = run(capsys, path, *SMALL, "--keys")
    listed = [line.split(" ", 3)[2:] for line in out.splitlines() if line.startswith("  ")]
    assert listed == [[k, str(tuple(v.shape))] for k, v in backbone.state_dict().items()]


def test_a_file_of_another_architecture_is_one_line_exit_2(tmp_path, capsys):
    path = save_atari_pb_checkpoint(tmp_path / "small.pth", backbone=ResNetGN("resnet18", 0.25), head=SIAMMAE_HEAD)
    code, out, err = run(capsys, path)  # the default expects the paper's ResNet-50 at width 1.0
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert "does not match resnet50 (width 1.0)" in err and "looks like resnet18 (width 0.25)" in err
    code, out, _ = run(capsys, path, "--backbone", "any")  # taken from the file
    assert code == 0 and "resnet18, width 0.25" in out


def test_the_objective_is_told_by_the_record_or_the_head_or_not_at_all(tmp_path, capsys):
    backbone = ResNetGN("resnet18", 0.25)
    cases = {"mae": ({"head": MAE_HEAD}, "objective: MAE (its head"),
             "record": ({"extra": {"prend": {"objective": "pixelpred"}}}, "objective: pixelpred (prend pretrain's"),
             "alone": ({}, "objective: cannot be told (the file holds the backbone alone")}
    for name, (parts, expected) in cases.items():
        path = save_atari_pb_checkpoint(tmp_path / f"{name}.pth", backbone=backbone, **parts)
        code, out, _ = run(capsys, path, *SMALL)
        assert code == 0 and expected in out, (name, out)
        assert ("note: the PreND paper distils Atari-PB's SiamMAE backbone" in out) == (name != "alone"), name


def test_a_file_that_is_no_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    for name, content in {"text.pth": b"not a torch file", "empty.pth": b""}.items():
        (tmp_path / name).write_bytes(content)
        code, _, err = run(capsys, tmp_path / name)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "prend check-backbone: error:" in err
    code, _, err = run(capsys, tmp_path / "missing.pth")
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, tmp_path / "text.pth", "--backbone", "vit")
    assert code == 2 and "names no Atari-PB architecture" in err
    bad = {k: v.clone() for k, v in ResNetGN("resnet18", 0.25).state_dict().items()}
    bad["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    path = save_atari_pb_checkpoint(tmp_path / "nan.pth", backbone=bad)
    code, _, err = run(capsys, path, *SMALL)
    assert code == 2 and "non-finite" in err and len(err.strip().splitlines()) == 1
