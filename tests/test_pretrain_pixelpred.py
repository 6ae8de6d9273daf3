"""Pixel prediction (``prend pretrain --objective pixelpred``): the normalised target, the decoder, learning,
and the trainer's checkpoints and exact resume with this objective."""

from __future__ import annotations

import math

import pytest
import torch
from test_pretrain_siammae import _StopAfter  # the scripted stop flag of the SiamMAE resume test

from prend.errors import PrendError
from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone, read_atari_pb_checkpoint
from prend.pretrain import trainer as trainer_mod
from prend.pretrain.collect import CollectConfig, collect
from prend.pretrain.pixelpred import LinearPatchDecoder, PixelDecoder, PixelPrediction, normalise_patches
from prend.pretrain.trainer import PretrainConfig, pretrain


def test_normalised_patches_have_mean_zero_and_the_stated_variance():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 84, 84) * 0.2
    z = normalise_patches(x, eps=1e-3)
    blocks = z.reshape(2, 4, 12, 7, 12, 7)
    raw = x.reshape(2, 4, 12, 7, 12, 7)
    torch.testing.assert_close(blocks.mean(dim=(3, 5)), torch.zeros(2, 4, 12, 12), atol=1e-5, rtol=0)
    var = raw.var(dim=(3, 5), unbiased=False)
    # dividing by sqrt(var + eps) leaves a variance of var / (var + eps): ~0.77 for uniform [0, 0.2] pixels
    torch.testing.assert_close(blocks.var(dim=(3, 5), unbiased=False), var / (var + 1e-3), atol=1e-4, rtol=1e-4)
    # A patch with one bright pixel (a sprite) keeps its shape: the bright pixel is the largest value.
    y = torch.zeros(1, 1, 7, 7)
    y[0, 0, 3, 4] = 1.0
    assert normalise_patches(y).argmax().item() == 3 * 7 + 4


def test_decoder_redraws_84x84_stacks_from_the_6x6_map_and_stays_light():
    backbone = ResNetGN("resnet18", 0.125)
    decoder = PixelDecoder(backbone.out_channels, width=64)
    out = decoder(backbone(torch.rand(3, 4, 84, 84)))
    assert out.shape == (3, 4, 84, 84)
    # 1x1 64->64 (+bias), 3x3 64->32, 32->16, 16->8, 8->4: counted by hand
    expected = (64 * 64 + 64) + (9 * 64 * 32 + 32) + (9 * 32 * 16 + 16) + (9 * 16 * 8 + 8) + (9 * 8 * 4 + 4)
    assert sum(p.numel() for p in decoder.parameters()) == expected


def test_linear_decoder_draws_each_cells_own_patch():
    decoder = LinearPatchDecoder(8)
    with torch.no_grad():
        decoder.project.weight.zero_()
        decoder.project.bias.zero_()
        # output channel f*196 + r*14 + c is pixel (r, c) of frame f in every cell's 14x14 patch;
        # let channel 2 of the map drive pixel (3, 5) of frame 1
        decoder.project.weight[1 * 196 + 3 * 14 + 5, 2] = 1.0
    features = torch.zeros(1, 8, 6, 6)
    features[0, 2, 4, 1] = 7.0  # only cell (row 4, column 1) has it
    out = decoder(features)
    assert out.shape == (1, 4, 84, 84)
    assert out[0, 1, 4 * 14 + 3, 1 * 14 + 5].item() == 7.0 and out.abs().sum().item() == 7.0


def fit_fixed_batch(model, obs, fut, lr, steps=15):
    """AdamW steps of an objective on one batch: the losses seen and the last step's second output."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss, out = model(obs, fut, torch.zeros(len(obs), dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, out


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    backbone = ResNetGN("resnet18", 0.125)
    model = PixelPrediction(backbone, PixelDecoder(backbone.out_channels, 32), aug_pad=0, aug_intensity=0.0)
    obs = torch.zeros(8, 4, 84, 84)
    fut = torch.zeros(8, 4, 84, 84)
    for i in range(8):  # a bright square whose place is in the input: the map has to carry it
        obs[i, :, 10 * i:10 * i + 7, 20:27] = 1.0
        fut[i, :, 10 * i:10 * i + 7, 21:28] = 1.0
    losses, pred = fit_fixed_batch(model, obs, fut, lr=3e-3)
    assert pred.shape == (8, 4, 84, 84)
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "d"
    collect(CollectConfig(out=root, games=("breakout", "boxing"), frames_per_game=120, num_envs=2,
                          chunk_frames=40, max_episode_steps=60, progress=False))
    return root


def run_cfg(frames, out, **kw):
    base = dict(data=frames, out=out, objective="pixelpred", arch="resnet18", width=0.125, decoder_width=16,
                n_step=1, batch_size=8, steps=4, save_every=100, log_every=1, probe_data=None, progress=False)
    base.update(kw)
    return PretrainConfig(**base)


def test_pixelpred_run_checkpoints_in_atari_pb_layout_and_resumes_exactly(frames, tmp_path, monkeypatch):
    straight = pretrain(run_cfg(frames, tmp_path / "a", steps=5))
    assert straight["step"] == 5 and math.isfinite(straight["loss_ema"])
    full = read_atari_pb_checkpoint(tmp_path / "a" / "latest.pth")
    assert full["head"] and full["neck"] == {} and full["extra"]["prend"]["objective"] == "pixelpred"
    backbone = load_atari_pb_backbone(tmp_path / "a" / "backbone.pth", arch=None, width=None)
    assert (backbone.arch, backbone.width) == ("resnet18", 0.125)
    with monkeypatch.context() as m:
        m.setattr(trainer_mod, "_StopFlag", _StopAfter)
        first = pretrain(run_cfg(frames, tmp_path / "b", steps=5))
    assert first.get("interrupted") and first["step"] == 2
    resumed = pretrain(run_cfg(frames, tmp_path / "b", steps=5))
    b = read_atari_pb_checkpoint(tmp_path / "b" / "latest.pth")
    for part in ("backbone", "head"):
        for key in full[part]:
            # same machine, same process, same steps: equal up to float reordering inside the kernels
            torch.testing.assert_close(full[part][key], b[part][key], rtol=0, atol=1e-6)
    assert straight["loss_ema"] == pytest.approx(resumed["loss_ema"], rel=1e-4)


def test_a_run_saved_before_a_field_existed_resumes_with_that_fields_default(frames, tmp_path):
    pretrain(run_cfg(frames, tmp_path / "old", steps=2, save_every=1))
    ckpt = torch.load(tmp_path / "old" / "latest.pth", weights_only=True)
    del ckpt["extra"]["prend"]["config"]["decoder"]  # as written before --decoder existed
    torch.save(ckpt, tmp_path / "old" / "latest.pth")
    assert pretrain(run_cfg(frames, tmp_path / "old", steps=2))["step"] == 2
    with pytest.raises(PrendError, match="different model"):
        pretrain(run_cfg(frames, tmp_path / "old", steps=2, decoder="linear"))


def test_resuming_a_run_of_the_other_objective_is_refused(frames, tmp_path):
    pretrain(run_cfg(frames, tmp_path / "r", steps=1))
    with pytest.raises(PrendError, match="different model"):
        pretrain(run_cfg(frames, tmp_path / "r", steps=1, objective="siammae", neck_hidden=32, dim=16,
                         encoder_depth=1, decoder_depth=1, heads=2, mlp_dim=32))
