"""ST-DIM (``prend pretrain --objective stdim``): the InfoNCE scores against a loop written from the paper's
formulas, learning on a batch, one-game batches, and the trainer's checkpoints and exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_pretrain_pixelpred import fit_fixed_batch, frames  # noqa: F401  (frames: the module-scoped fixture)
from test_pretrain_siammae import _StopAfter

from prend.errors import PrendError
from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone, read_atari_pb_checkpoint
from prend.pretrain import trainer as trainer_mod
from prend.pretrain.dataset import FrameData, FuturePairSampler
from prend.pretrain.stdim import STDIM, STDIMHead, info_nce
from prend.pretrain.trainer import PretrainConfig, pretrain


def test_info_nce_of_a_hand_worked_2x2():
    scores = torch.tensor([[[2.0, 0.0], [1.0, 1.0]]])
    # row 0: -log(e^2 / (e^2 + 1)); row 1: -log(e / (e + e)) = log 2
    expected = 0.5 * (math.log(1 + math.exp(-2.0)) + math.log(2.0))
    assert info_nce(scores).item() == pytest.approx(expected, rel=1e-6)


def test_head_losses_equal_the_papers_sums_written_as_loops():
    torch.manual_seed(0)
    n, c, h, w = 3, 5, 2, 2
    head = STDIMHead(c, h * w, global_dim=4)
    now, future = torch.randn(n, c, h, w), torch.randn(n, c, h, w)
    loss_g, loss_l = head(now, future)
    g = head.to_global(now.flatten(1))  # (n, 4)
    wg, bg = head.global_local.weight, head.global_local.bias  # W_g: (c, 4)
    wl, bl = head.local_local.weight, head.local_local.bias
    total_g = total_l = 0.0
    with torch.no_grad():
        for y in range(h):
            for x in range(w):
                for i in range(n):
                    # stack i's score of stack j's future cell (y, x): (W_g g_i + b)^T f_j / sqrt(C)
                    sg = [float((wg @ g[i] + bg) @ future[j, :, y, x]) / math.sqrt(c) for j in range(n)]
                    sl = [float((wl @ now[i, :, y, x] + bl) @ future[j, :, y, x]) / math.sqrt(c) for j in range(n)]
                    total_g += -sg[i] + math.log(sum(math.exp(v) for v in sg))
                    total_l += -sl[i] + math.log(sum(math.exp(v) for v in sl))
    assert loss_g.item() == pytest.approx(total_g / (h * w * n), rel=1e-4)
    assert loss_l.item() == pytest.approx(total_l / (h * w * n), rel=1e-4)


def test_a_few_steps_teach_the_map_to_tell_the_stacks_apart():
    torch.manual_seed(0)
    model = STDIM(ResNetGN("resnet18", 0.125), global_dim=32)
    # sparse random dots that move one pixel right: every cell of every stack differs from the others'
    obs = (torch.rand(8, 4, 84, 84, generator=torch.Generator().manual_seed(1)) > 0.9).float()
    fut = torch.roll(obs, 1, dims=3)
    losses, _ = fit_fixed_batch(model, obs, fut, lr=3e-4)
    # the scaled scores start at chance (log 8 = 2.08); the positives must then be found well above it
    # (0.55 measured on a Zen 4 after 15 steps)
    assert abs(losses[0] - math.log(8)) < 0.2 and losses[-1] < 0.5 * math.log(8), losses


def two_games() -> FrameData:
    data = FrameData.synthetic(episode_lengths=[10, 3, 12, 20])
    data.game_ids[:13] = 7  # episodes 0 and 1 are game 7, episodes 2 and 3 game 0
    return data


def test_one_game_batches_hold_one_game_and_replay_from_the_step_alone():
    data = two_games()
    sampler = FuturePairSampler(data, batch_size=4, n_step=3, seed=0, one_game=True)
    seen = set()
    for step in range(30):
        anchor, target = sampler.indices(step)
        assert len(np.unique(data.game_ids[anchor])) == 1 and len(set(anchor.tolist())) == 4
        assert (data.episode[anchor] == data.episode[target]).all() and ((target - anchor) <= 3).all()
        seen.add(int(data.game_ids[anchor][0]))
    assert seen == {0, 7}
    again = FuturePairSampler(data, batch_size=4, n_step=3, seed=0, one_game=True).indices(11)
    assert all(np.array_equal(a, b) for a, b in zip(sampler.indices(11), again, strict=True))
    # game 7 has 7 + 0 anchors, game 0 has 9 + 17: with batches of 8 only game 0 is drawn
    big = FuturePairSampler(data, batch_size=8, n_step=3, seed=0, one_game=True)
    assert {int(data.game_ids[big.indices(s)[0]][0]) for s in range(20)} == {0}
    with pytest.raises(PrendError, match="one-game batches"):
        FuturePairSampler(data, batch_size=30, n_step=3, seed=0, one_game=True)  # 33 anchors, 26 at most per game


def run_cfg(data, out, **kw):
    base = dict(data=data, out=out, objective="stdim", arch="resnet18", width=0.125, global_dim=16,
                aug_pad=0, aug_intensity=0.0, n_step=1, batch_size=8, steps=4, save_every=100, log_every=1,
                probe_data=None, progress=False)
    base.update(kw)
    return PretrainConfig(**base)


def test_stdim_run_checkpoints_logs_its_loss_and_resumes_exactly(frames, tmp_path, monkeypatch):  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    straight = pretrain(run_cfg(frames, tmp_path / "a", steps=5))
    assert straight["step"] == 5 and math.isfinite(straight["loss_ema"])
    full = read_atari_pb_checkpoint(tmp_path / "a" / "latest.pth")
    assert full["neck"] == {} and set(full["head"]) >= {"to_global.weight", "global_local.weight"}
    assert full["extra"]["prend"]["objective"] == "stdim"
    backbone = load_atari_pb_backbone(tmp_path / "a" / "backbone.pth", arch=None, width=None)
    assert (backbone.arch, backbone.width) == ("resnet18", 0.125)
    events = EventAccumulator(str(tmp_path / "a" / "tb"))
    events.Reload()
    assert "loss/infonce" in events.Tags()["scalars"] and "loss/mse" not in events.Tags()["scalars"]
    with monkeypatch.context() as m:
        m.setattr(trainer_mod, "_StopFlag", _StopAfter)
        assert pretrain(run_cfg(frames, tmp_path / "b", steps=5)).get("interrupted")
    resumed = pretrain(run_cfg(frames, tmp_path / "b", steps=5))
    b = read_atari_pb_checkpoint(tmp_path / "b" / "latest.pth")
    for part in ("backbone", "head"):
        for key in full[part]:
            torch.testing.assert_close(full[part][key], b[part][key], rtol=0, atol=1e-6)
    assert straight["loss_ema"] == pytest.approx(resumed["loss_ema"], rel=1e-4)
    with pytest.raises(PrendError, match="--batches"):
        pretrain(run_cfg(frames, tmp_path / "b", steps=5, batches="mixed"))
    with pytest.raises(PrendError, match="different model"):
        pretrain(run_cfg(frames, tmp_path / "b", steps=5, global_dim=32))


def test_batches_auto_means_one_game_for_stdim_only():
    assert PretrainConfig(objective="stdim").one_game_batches
    assert not PretrainConfig(objective="pixelpred").one_game_batches
    assert PretrainConfig(objective="pixelpred", batches="one-game").one_game_batches
    assert not PretrainConfig(objective="stdim", batches="mixed").one_game_batches
