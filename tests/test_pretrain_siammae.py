"""SiamMAE pieces: patches, masking, position embedding, learning, Atari-PB-format checkpoints, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone, read_atari_pb_checkpoint
from prend.pretrain import trainer as trainer_mod
from prend.pretrain.collect import CollectConfig, collect
from prend.pretrain.siammae import (
    SiamMAE,
    SiamMAEHead,
    SiamMAENeck,
    augment,
    num_kept_tokens,
    patchify,
    random_keep,
    random_shift,
    sincos_pos_embed_2d,
    unpatchify,
)
from prend.pretrain.trainer import PretrainConfig, lr_factor, pretrain

TINY = dict(arch="resnet18", width=0.125, neck_hidden=32, dim=16, encoder_depth=1, decoder_depth=1, heads=2,
            mlp_dim=32)


def tiny_model(mask_ratio=0.95, aug=True):
    torch.manual_seed(0)
    backbone = ResNetGN("resnet18", 0.125)
    neck = SiamMAENeck(backbone.out_channels, hidden_dim=32, dim=16, depth=1, heads=2, mlp_dim=32,
                       mask_ratio=mask_ratio)
    head = SiamMAEHead(16, dim=16, depth=1, heads=2, mlp_dim=32)
    return SiamMAE(backbone, neck, head, aug_pad=4 if aug else 0, aug_intensity=0.05 if aug else 0.0)


def test_patchify_is_inverted_by_unpatchify_and_uses_atari_pb_layout():
    x = torch.rand(3, 4, 84, 84)
    p = patchify(x)
    assert p.shape == (3, 36, 784)
    assert torch.equal(unpatchify(p), x)
    # Patch 7 is grid cell (row 1, col 1); its element (f, y, x) is pixel (f, 14 + y, 14 + x).
    assert torch.equal(p[:, 7].view(3, 4, 14, 14), x[:, :, 14:28, 14:28])
    assert torch.equal(patchify(unpatchify(p)), p)


@pytest.mark.parametrize("ratio,kept", [(0.95, 1), (0.75, 9), (0.5, 18), (0.0, 36)])
def test_mask_keeps_exactly_the_stated_number_of_tokens(ratio, kept):
    assert num_kept_tokens(36, ratio) == kept == int(36 * (1 - ratio))
    model = tiny_model(mask_ratio=ratio)
    feats = torch.rand(5, model.backbone.out_channels, 6, 6)
    tokens, restore = model.neck(feats, torch.zeros(5, dtype=torch.long), mask=True)
    assert tokens.shape == (5, 1 + kept, 16)
    full, none = model.neck(feats, torch.zeros(5, dtype=torch.long))
    assert full.shape == (5, 37, 16) and none is None
    # restore_idx is a permutation per sample, and it inverts the shuffle.
    keep, restore = random_keep(5, 36, kept, generator=torch.Generator().manual_seed(1))
    assert (restore.sort(1).values == torch.arange(36)).all()
    shuffled = torch.cat([keep, restore.argsort(1)[:, kept:]], 1)
    assert torch.equal(torch.gather(shuffled, 1, restore), torch.arange(36).expand(5, 36))


def test_sincos_position_embedding_matches_the_mae_formula():
    e = sincos_pos_embed_2d(16, 6)
    assert e.shape == (37, 16) and e[0].abs().max() == 0  # zero CLS row
    # token (row 2, col 5): first half encodes the column, second half the row.
    omega = 1 / 10000 ** (np.arange(4) / 4)
    expect = np.concatenate([np.sin(5 * omega), np.cos(5 * omega), np.sin(2 * omega), np.cos(2 * omega)])
    np.testing.assert_allclose(e[1 + 2 * 6 + 5].numpy(), expect, atol=1e-6)
    model = tiny_model()
    assert torch.equal(model.neck.cls_token.view(-1), torch.zeros(16))
    assert "pos_embed" not in dict(model.neck.named_parameters())  # fixed, never trained


def test_augmentations_shift_by_whole_pixels_and_scale_intensity():
    x = torch.arange(84.0).view(1, 1, 1, 84).expand(6, 4, 84, 84).contiguous()
    shifted = random_shift(x, pad=4, generator=torch.Generator().manual_seed(0))
    # Each sample is x translated by an integer in [-4, 4] with replicated borders: compare interiors.
    for i in range(6):
        d = shifted[i, 0, 40, 40] - 40
        assert d == int(d) and -4 <= d <= 4
        assert torch.equal(shifted[i, :, :, 10:74], (x[i, :, :, 10:74] + d).clamp(0, 83))
    y = augment(torch.ones(1000, 1, 2, 2), pad=0, scale=0.05, generator=torch.Generator().manual_seed(0))
    assert y.min() >= 0.9 - 1e-6 and y.max() <= 1.1 + 1e-6 and abs(float(y.std()) - 0.05) < 0.01


def test_game_linear_uses_each_samples_own_game():
    head = SiamMAEHead(16, dim=16, depth=1, heads=2, mlp_dim=32)
    x = torch.rand(4, 37, 16)
    gid = torch.tensor([3, 7, 3, 12])
    out = head.game_linear(x, gid)
    for i, g in enumerate(gid.tolist()):
        w = head.recon_w.weight[g].view(16, 784)
        torch.testing.assert_close(out[i], x[i] @ w + head.recon_b.weight[g])
    assert abs(float(head.recon_w.weight.detach().std()) - 2 / math.sqrt(16 + 784)) < 0.005


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    model = tiny_model(aug=False)
    torch.manual_seed(1)
    obs, fut = torch.rand(8, 4, 84, 84), torch.rand(8, 4, 84, 84)
    fut[:, :, :42] = 0.9  # structure to learn: a bright top half
    gid = torch.tensor([0, 1] * 4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(12):
        loss, pred = model(obs, fut, gid, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    pred = pred.detach()
    assert pred.shape == (8, 36, 784) and 0 <= float(pred.min()) and float(pred.max()) <= 1
    assert all(b < a for a, b in zip(losses[:-1], losses[1:], strict=True)), losses  # every step lowers it
    assert losses[-1] < 0.8 * losses[0], losses


def test_lr_schedule_is_atari_pbs_cosine_with_warmup():
    assert lr_factor(0, 1000) == pytest.approx(0.1)
    assert lr_factor(50, 1000) == pytest.approx(0.55)
    assert lr_factor(100, 1000) == pytest.approx(1.0)
    assert lr_factor(550, 1000) == pytest.approx(0.55)
    assert lr_factor(1000, 1000) == pytest.approx(0.1)
    assert all(lr_factor(s, 1000) >= 0.1 - 1e-12 for s in range(1001))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "d"
    collect(CollectConfig(out=root, games=("breakout", "pong"), frames_per_game=160, num_envs=2,
                          chunk_frames=40, max_episode_steps=60, progress=False))
    return root


def run_cfg(frames, out, **kw):
    base = dict(data=frames, out=out, batch_size=8, steps=4, save_every=100, log_every=1, probe_data=None,
                progress=False, **TINY)
    base.update(kw)
    return PretrainConfig(**base)


def test_pretrained_checkpoint_loads_through_the_atari_pb_loader(frames, tmp_path):
    summary = pretrain(run_cfg(frames, tmp_path / "run"))
    assert summary["step"] == 4 and math.isfinite(summary["loss_ema"])
    full = read_atari_pb_checkpoint(tmp_path / "run" / "latest.pth")
    assert {"backbone", "neck", "head", "optimizer", "lr_scheduler", "scaler", "epoch", "step"} <= set(full)
    assert full["step"] == 4 and full["neck"] and full["head"] and full["optimizer"]
    assert torch.load(tmp_path / "run" / "latest.pth", weights_only=True)["extra"]["prend"]["cursor"]["step"] == 4
    for name in ("latest.pth", "backbone.pth"):
        backbone = load_atari_pb_backbone(tmp_path / "run" / name, arch=None, width=None)
        assert (backbone.arch, backbone.width) == ("resnet18", 0.125)
        for key, value in backbone.state_dict().items():
            assert torch.equal(value, full["backbone"][key])
    # The weights moved away from the initialisation.
    torch.manual_seed(0)
    init = ResNetGN("resnet18", 0.125).state_dict()
    assert not torch.equal(init["layer1.0.conv1.weight"], full["backbone"]["layer1.0.conv1.weight"])
    assert (tmp_path / "run" / "tb").is_dir() and any((tmp_path / "run" / "tb").iterdir())


def test_the_final_probe_is_stored_beside_and_inside_the_backbone_checkpoint(frames, tmp_path):
    summary = pretrain(run_cfg(frames, tmp_path / "run", steps=2, probe_data=frames))
    saved = json.loads((tmp_path / "run" / "probe.json").read_text())
    assert saved["details"]["games"] == ["breakout", "pong"] and summary["probe"] == saved
    inside = read_atari_pb_checkpoint(tmp_path / "run" / "backbone.pth")["extra"]["prend"]["probe"]
    assert "details" not in inside
    assert json.dumps(inside, sort_keys=True) == json.dumps({k: v for k, v in saved.items() if k != "details"},
                                                            sort_keys=True)  # NaN-safe: compared as JSON
    assert load_atari_pb_backbone(tmp_path / "run" / "backbone.pth", arch=None, width=None).width == 0.125


class _StopAfter:
    """Stands in for the SIGINT/SIGTERM flag: 'raised' after ``n`` completed steps."""

    n = 2

    def __enter__(self):
        self.checks = 0
        return self

    def __exit__(self, *exc):
        pass

    @property
    def raised(self):
        self.checks += 1
        return 15 if self.checks == self.n else None


def test_interrupted_run_resumes_to_the_same_weights(frames, tmp_path, monkeypatch):
    straight = pretrain(run_cfg(frames, tmp_path / "a", steps=5))
    with monkeypatch.context() as m:
        m.setattr(trainer_mod, "_StopFlag", _StopAfter)
        first = pretrain(run_cfg(frames, tmp_path / "b", steps=5))
    assert first.get("interrupted") and first["step"] == 2
    assert not (tmp_path / "b" / "backbone.pth").exists()
    resumed = pretrain(run_cfg(frames, tmp_path / "b", steps=5))
    assert resumed["step"] == 5
    a = read_atari_pb_checkpoint(tmp_path / "a" / "latest.pth")
    b = read_atari_pb_checkpoint(tmp_path / "b" / "latest.pth")
    for part in ("backbone", "neck", "head"):
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=0, atol=1e-6)
    assert straight["loss_ema"] == pytest.approx(resumed["loss_ema"], rel=1e-4)


def test_resuming_with_another_model_is_refused(frames, tmp_path):
    pretrain(run_cfg(frames, tmp_path / "r", steps=1))
    from prend.errors import PrendError

    with pytest.raises(PrendError, match="different model"):
        pretrain(run_cfg(frames, tmp_path / "r", steps=1, dim=32))
    with pytest.raises(PrendError, match="--steps"):
        pretrain(run_cfg(frames, tmp_path / "r", steps=3))
