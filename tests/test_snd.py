"""SND (issue 32): its three target losses against values worked out by hand, a target that moves only
through its own loss, exact resume with the target's optimizer state, losses that fall on a toy problem, and
``prend train --method snd-*`` runs that checkpoint, resume, sweep, report and diagnose like RND's."""

import dataclasses
import json
import math
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prend.agent.trainer import Trainer
from prend.checkpoint import FORMAT, atomic_torch_save, load_checkpoint
from prend.cli import main
from prend.config import IntrinsicConfig
from prend.envs.games import atari_pb_game_id
from prend.errors import PrendError
from prend.experiments.diagnose import diagnose
from prend.intrinsic import TargetBatch, TargetObjective
from prend.intrinsic.factory import make_intrinsic
from prend.intrinsic.methods import BUILTIN_METHODS, SND_VIC, resolve_method
from prend.intrinsic.pretrained import make_prend
from prend.intrinsic.snd import (
    ContrastiveObjective,
    NewestFrame,
    STDIMObjective,
    VICRegObjective,
    augment,
    contrastive_loss,
    make_snd,
    mask_tiles,
    stdim_terms,
    vicreg_terms,
)
from prend.metrics import read_metrics
from prend.nets.snd import snd_target
from prend.train import parse_train_args, train

TIMING = ("time/", "charts/steps_per_second")


# ------------------------------------------------------------------------------------- the losses by hand
def test_vicreg_terms_by_hand():
    za = torch.tensor([[1.0, 0.0], [3.0, 1.0], [2.0, 2.0]])
    zb = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    inv, var, cov = vicreg_terms(za, zb)
    # invariance: squared differences 0, 1, 4, 0, 1, 1 over 6 elements
    assert inv.item() == pytest.approx(7 / 6)
    # za's columns have unbiased variance 1 and 1 -> relu(1 - sqrt(1.0001)) = 0; zb's are constant -> 1 - 0.01 each
    assert var.item() == pytest.approx(1 - math.sqrt(1e-4), rel=1e-6)
    # za centred: (-1, -1), (1, 0), (0, 1): covariance 0.5 off the diagonal; 2 entries squared / D=2; zb: 0
    assert cov.item() == pytest.approx(2 * 0.5**2 / 2)
    total, _ = VICRegObjective()(nn.Identity(), za, zb, None)
    assert total.item() == pytest.approx(7 / 6 + (1 - 0.01) + 0.25 / 25, rel=1e-6)


def _identity_linear(n: int) -> nn.Linear:
    layer = nn.Linear(n, n)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
        layer.bias.zero_()
    return layer


def test_stdim_cross_entropies_with_in_batch_negatives_by_hand():
    # One cell, one channel, B = 2: s_t's patches p, s_t+1's global features g and patches q.
    p, g, q = torch.tensor([1.0, 2.0]), torch.tensor([1.0, -1.0]), torch.tensor([0.5, 1.0])
    local_t, local_next = p.reshape(2, 1, 1, 1), q.reshape(2, 1, 1, 1)
    gl, ll, norm = stdim_terms(g.reshape(2, 1), local_t, local_next, _identity_linear(1), _identity_linear(1))
    # logits[i, j] = g_i p_j = [[1, 2], [-1, -2]]; patch j picks its partner i = j among the column
    assert gl.item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(1 + math.exp(4))) / 2, rel=1e-6)
    # logits[i, j] = q_i p_j = [[0.5, 1], [1, 2]]
    assert ll.item() == pytest.approx((math.log(1 + math.exp(0.5)) + math.log(1 + math.exp(-1))) / 2, rel=1e-6)
    assert norm.item() == pytest.approx(math.sqrt(10) + math.sqrt(6.25), rel=1e-6)


def test_stdim_terms_match_cross_entropy_over_the_prediction_axis_on_many_cells():
    torch.manual_seed(0)
    b, c, h, w, d = 5, 3, 2, 3, 7
    g, lt, ln = torch.randn(b, d), torch.randn(b, c, h, w), torch.randn(b, c, h, w)
    c1, c2 = nn.Linear(d, c), nn.Linear(c, c)
    gl, ll, _ = stdim_terms(g, lt, ln, c1, c2)
    # Cell by cell: logits (B predictions x B patches); cross_entropy's class axis is the predictions' (dim 1)
    cells = [(y, x) for y in range(h) for x in range(w)]
    logits1 = torch.stack([c1(g) @ lt[:, :, y, x].T for y, x in cells])
    logits2 = torch.stack([c2(ln[:, :, y, x]) @ lt[:, :, y, x].T for y, x in cells])
    labels = torch.arange(b).repeat(len(cells), 1)
    assert gl.item() == pytest.approx(F.cross_entropy(logits1, labels).item(), rel=1e-5)
    assert ll.item() == pytest.approx(F.cross_entropy(logits2, labels).item(), rel=1e-5)


def test_snd_std_gradients_stay_finite_on_mostly_black_frames():
    """Deep Sea's frames are black but for one white block: many of the third conv's cells are 0 for every
    state of a batch, so their logit matrices are all 0. The logits' norm must then pass a zero gradient (as
    the official torch.norm does), not sqrt's infinite one: all five SND-STD Deep Sea runs once diverged at
    their first update on it."""
    torch.manual_seed(0)
    snd = make_snd(IntrinsicConfig(), num_envs=2, gamma=0.99, rom=None, variant="snd-std")
    frames = torch.zeros(2, 16, 1, 84, 84, dtype=torch.uint8)
    for i in range(16):
        row, col = divmod(i, 4)
        frames[0, i, :, 8 * row:8 * row + 8, 8 * col:8 * col + 8] = 255
        frames[1, i, :, 8 * row + 8:8 * row + 16, 8 * col + 8:8 * col + 16] = 255
    loss, terms = snd.update_loss(TargetBatch(frames[0], frames[1], torch.zeros(16, dtype=torch.bool)))
    loss.backward()
    assert math.isfinite(loss.item()) and terms["losses/target_logit_norm"] > 0
    assert all(torch.isfinite(p.grad).all() for p in snd.parameters() if p.grad is not None)


def test_snd_v_contrastive_form_by_hand():
    za = torch.tensor([[1.0, 3.0], [0.0, 0.0], [11.0, 11.0]])
    zb = torch.tensor([[1.0, 1.0], [0.0, 0.0], [11.0, 11.0]])
    # distances: mean((0, 2)^2) = 2, 0, 0; labels 1, 0, 1 -> ((1-2)^2 + 0 + 1) / 3
    # magnitude: mean(za^2) = (1+9+0+0+121+121)/6 = 42, mean(zb^2) = (1+1+242)/6: together 82.67 < 200
    loss = contrastive_loss(za, zb, torch.tensor([1.0, 0.0, 1.0]))
    assert loss.item() == pytest.approx(2 / 3, rel=1e-6)
    big = torch.full((1, 2), 11.0)  # mean squares 121 + 121 = 242: 42 over the limit
    assert contrastive_loss(big, big, torch.tensor([1.0])).item() == pytest.approx(1 + 42)


def test_snd_v_augmentation_masks_tiles_and_adds_bounded_noise():
    torch.manual_seed(0)
    x = torch.full((64, 1, 84, 84), 0.5)
    masked = mask_tiles(x, 12, drop=0.1)
    tiles = masked.reshape(64, 7, 12, 7, 12)[:, :, 0, :, 0]  # each 12x12 tile is all kept or all zero
    assert torch.equal(masked.reshape(64, 7, 12, 7, 12), tiles[:, :, None, :, None].expand(64, 7, 12, 7, 12))
    assert 0.05 < (tiles == 0).float().mean().item() < 0.15
    assert mask_tiles(x, 16).shape == x.shape  # 84 is no multiple of 16: edge tiles are cut
    y = augment(x)
    assert y.shape == x.shape and (y - x).abs().max().item() <= 0.5 + 0.2 + 1e-6  # a zeroed pixel, plus noise
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert 0.5 < changed < 0.95  # each of two augmentations with probability 1/2: 3/4 of frames on average


# --------------------------------------------------------------------------------- the reward and its update
def _pairs(n: int = 16, seed: int = 0) -> TargetBatch:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 1, 84, 84), dtype=torch.uint8, generator=g)
    nxt = torch.randint(0, 256, (n, 1, 84, 84), dtype=torch.uint8, generator=g)
    return TargetBatch(frames, nxt, torch.zeros(n, dtype=torch.bool))


def test_snd_reads_the_newest_frame_raw_and_rates_the_current_state():
    snd = make_snd(IntrinsicConfig(), num_envs=2, gamma=0.99, rom=None, variant="snd-v")
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    compact = snd.encoder.compact(obs)
    assert isinstance(snd.encoder, NewestFrame) and torch.equal(compact, obs[:, 3:])
    assert torch.equal(snd.encoder.expand(compact), obs[:, 3:].float() / 255)
    out = snd.reward(obs)
    expected = (snd.predictor(compact.float() / 255) - snd.target(compact.float() / 255)).square().mean(1)
    assert torch.allclose(out.raw, expected, rtol=1e-5) and out.target.shape == (3, 512) and out.error.shape == (3, 512)
    assert snd.rates == "current" and not snd.needs_warmup
    raw = torch.tensor([[0.5, 4.0], [0.0, 1.0]])
    assert torch.allclose(snd.normalize(raw), torch.tensor([[0.25, 1.0], [0.0, 0.5]]))  # clip(0.5 x raw, 0, 1)


@pytest.mark.parametrize(("method", "eta"), [("snd-v", 0.5), ("snd-std", 1.0), ("snd-vic", 0.25)])
def test_each_variant_declares_its_networks_loss_and_scale(method, eta):
    snd = make_intrinsic(IntrinsicConfig(method=method), num_envs=2, gamma=0.99, rom="boxing")
    channels = [16, 32, 64, 64] if method == "snd-v" else [32, 64, 64, 128]
    for net in (snd.target, snd.predictor):
        assert [m.out_channels for m in net.convs if isinstance(m, nn.Conv2d)] == channels
        assert [m.in_features for m in net.head.modules() if isinstance(m, nn.Linear)][0] == channels[-1] * 11 * 11
    assert sum(isinstance(m, nn.Linear) for m in snd.predictor.head.modules()) == 3 and isinstance(snd.target.head,
                                                                                                  nn.Linear)
    assert snd.reward_norm == "clip" and snd.reward_scale == eta
    # Orthogonal init with gain g makes a square layer's W W^T = g^2 I: the predictor's gain is the official model
    # class's (STDModelAtari 0.5; SNDVModelAtari and VICRegModelAtari sqrt(2)), the target's its family's
    predictor_gain, target_gain = {"snd-v": (2 ** 0.5, 2 ** 0.5), "snd-std": (0.5, 0.5),
                                   "snd-vic": (2 ** 0.5, 0.5)}[method]
    last = [m for m in snd.predictor.head.modules() if isinstance(m, nn.Linear)][-1].weight
    assert torch.allclose(last @ last.T, predictor_gain ** 2 * torch.eye(512), atol=1e-4)
    first_conv = snd.target.convs[0].weight.flatten(1)  # (channels, 9): orthonormal columns times the gain
    assert torch.allclose(first_conv.T @ first_conv, target_gain ** 2 * torch.eye(9), atol=1e-4)
    objective = {"snd-v": ContrastiveObjective, "snd-std": STDIMObjective, "snd-vic": VICRegObjective}[method]
    assert type(snd.target_objective) is objective and snd.target_pairs == (method != "snd-v")
    if method == "snd-vic":  # the config's choice replaces the method's
        other = make_intrinsic(IntrinsicConfig(method=method, reward_norm="return-std", reward_scale=2.0), 2, 0.99,
                               None)
        assert (other.reward_norm, other.reward_scale) == ("return-std", 2.0)


class _Nothing(TargetObjective):
    """A target loss of zero that still reaches the target's graph."""

    pairs = True

    def forward(self, target, x, x_next, ends):
        return 0.0 * target(x).sum(), {}


@pytest.mark.parametrize("method", ["snd-v", "snd-std", "snd-vic"])
def test_the_target_moves_only_through_its_own_loss(method):
    torch.manual_seed(0)
    snd = make_snd(IntrinsicConfig(feature_dim=32), num_envs=2, gamma=0.99, rom=None, variant=method)
    batch = _pairs()
    objective = snd.target_objective
    snd.target_objective = _Nothing()  # the predictor's loss alone: no gradient reaches the target
    loss, terms = snd.update_loss(batch)
    loss.backward()
    assert terms["losses/predictor"] > 0
    assert all(p.grad is None or not p.grad.any() for p in snd.target.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in snd.predictor.parameters())
    snd.zero_grad(set_to_none=True)
    # Its own loss alone gives the target the same gradient as the joint update does, and the predictor none
    snd.target_objective = objective
    x, other = snd.encoder.expand(batch.inputs), snd.encoder.expand(batch.pairs)
    torch.manual_seed(1)
    own, _ = objective(snd.target, x, other if objective.pairs else None, batch.ends)
    own.backward()
    alone = [p.grad.clone() for p in snd.target_parameters()]
    assert all(p.grad is None for p in snd.predictor.parameters())
    snd.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    snd.update_loss(batch)[0].backward()
    for grad, p in zip(alone, snd.target_parameters(), strict=True):
        assert torch.allclose(p.grad, grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("method", ["snd-v", "snd-std", "snd-vic"])
def test_the_predictor_regresses_on_the_targets_output_before_the_step_in_one_target_pass(method):
    """STD and VIC hand back the target outputs their loss computed, so the update runs the target once (SND-V,
    whose loss reads augmented states, runs it again on the plain ones); the loss and every gradient match
    the predictor regressing on a separate no-grad pass of the target, as before issue 32 part 3."""
    torch.manual_seed(0)
    snd = make_snd(IntrinsicConfig(feature_dim=32), num_envs=2, gamma=0.99, rom=None, variant=method)
    batch = _pairs()
    calls = []
    hook = snd.target.convs[0].register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    torch.manual_seed(1)
    loss, terms = snd.update_loss(batch)
    loss.backward()
    hook.remove()
    assert calls == ([2 * len(batch.inputs), len(batch.inputs)] if method == "snd-v" else [2 * len(batch.inputs)])
    grads = {name: p.grad.clone() for name, p in snd.named_parameters() if p.grad is not None}
    snd.zero_grad(set_to_none=True)
    # The update as written before the reuse: a separate pass for the regression target
    x, other = snd.encoder.expand(batch.inputs), snd.encoder.expand(batch.pairs)
    with torch.no_grad():
        regression = snd.target(x)
    predictor = (snd.predictor(x) - regression).square().mean()
    torch.manual_seed(1)
    own, _ = snd.target_objective(snd.target, x, other if snd.target_objective.pairs else None, batch.ends)
    (predictor + own).backward()
    assert terms["losses/predictor"] == pytest.approx(predictor.item(), rel=1e-5)
    assert loss.item() == pytest.approx((predictor + own).item(), rel=1e-5)
    assert grads.keys() == {name for name, p in snd.named_parameters() if p.grad is not None}
    for name, p in snd.named_parameters():
        if p.grad is not None:
            assert torch.allclose(p.grad, grads[name], rtol=1e-4, atol=1e-7), name


@pytest.mark.parametrize("method", ["snd-v", "snd-std", "snd-vic"])
def test_each_target_loss_falls_on_a_toy_problem(method):
    """Eight distinct frames, each paired with itself slightly shifted: a target can separate the frames and
    keep each pair together, so the loss falls far (40 Adam steps on 16x16 frames)."""
    torch.manual_seed(0)
    frames = torch.rand(8, 1, 16, 16)
    shifted = frames.roll(1, dims=3)
    target = snd_target("v" if method == "snd-v" else "std", feature_dim=16, frame=(16, 16))
    objective = {"snd-v": ContrastiveObjective, "snd-vic": VICRegObjective,
                 "snd-std": lambda: STDIMObjective(16, target.local_channels)}[method]()
    opt = torch.optim.Adam([*target.parameters(), *objective.parameters()], lr=1e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss, _ = objective(target, frames, shifted if objective.pairs else None, None)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


# --------------------------------------------------------------------------------------- training end to end
TINY = ["--num-envs", "2", "--num-steps", "16", "--probe-size", "8", "--probe-every", "1", "--no-progress",
        "--no-tensorboard", "--torch-threads", "1", "--update-proportion", "1"]


def _stable(records):
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in records]


@pytest.mark.parametrize(("method", "term"), [("snd-v", None), ("snd-std", "losses/target_global_local"),
                                            ("snd-vic", "losses/target_variance")])
def test_snd_trains_checkpoints_and_resumes_exactly(tmp_path, method, term):
    """Each variant: SND-V's loss draws random augmentations and pairs, STD's and VIC's read stored pairs."""
    cfg, _ = parse_train_args(["--method", method, *TINY, "--total-steps", "32", "--checkpoint-every", "1",
                               "--out", str(tmp_path / "run")])
    run = train(cfg)
    first = load_checkpoint(run / "checkpoint.pt")
    assert len(first["optimizers"]) == 1  # policy, predictor and target on one Adam, as RND's predictor
    state = first["optimizers"][0]["state"]
    assert len(state) == len(first["optimizers"][0]["param_groups"][0]["params"])  # every parameter stepped
    assert "cuda" not in first["rng"]  # a CPU run draws nothing on a GPU
    records = read_metrics(run / "metrics.jsonl")
    assert records[0]["losses/target"] != 0 and (term is None or records[0][term] >= 0)

    # Loading restores the target, its objective and the Adam moments exactly (one process: bitwise)
    trainer = Trainer(cfg)
    trainer.load_state_dict(first)
    for name, tensor in first["intrinsic"].items():
        assert torch.equal(trainer.intrinsic.state_dict()[name], tensor), name
    loaded = trainer.optimizers[0].state_dict()["state"]
    for key, moments in state.items():
        for which in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(loaded[key][which], moments[which])
    trainer.close()

    copies = []
    for name in ("a", "b"):
        copy = tmp_path / name
        shutil.copytree(run, copy)
        assert main(["train", "--resume", str(copy), "--total-steps", "64"]) == 0
        copies.append(_stable(read_metrics(copy / "metrics.jsonl")))
    assert [r["iteration"] for r in copies[0]] == [1, 2] and copies[0] == copies[1]
    last = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    targets = [k for k in last["intrinsic"] if k.startswith("target.")]
    assert any(not torch.equal(last["intrinsic"][k], first["intrinsic"][k]) for k in targets)  # it trained on


def _rng_trainer(device: str = "cpu") -> Trainer:
    cfg, _ = parse_train_args(["--method", "snd-v", *TINY, "--device", device, "--total-steps", "32"])
    return Trainer(cfg)


def test_a_checkpoint_with_or_without_cuda_generator_states_resumes_on_the_cpu(tmp_path):
    """A CPU run saves no CUDA state; one written on a GPU (``rng.cuda``) or before prend kept it (no entry)
    loads on the CPU, through ``weights_only``, and restores the CPU streams exactly."""
    trainer = _rng_trainer()
    state = trainer.state_dict() | {"format": FORMAT}
    assert set(state["rng"]) == {"torch", "generator", "numpy"}
    drawn = torch.rand(4), torch.rand(4, generator=trainer.generator)
    for cuda in ([torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)], None):
        saved = state | {"rng": state["rng"] | ({} if cuda is None else {"cuda": cuda})}
        atomic_torch_save(saved, tmp_path / "checkpoint.pt")
        trainer.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
        assert torch.equal(torch.rand(4), drawn[0]) and torch.equal(torch.rand(4, generator=trainer.generator),
                                                                  drawn[1])
    trainer.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_runs_checkpoint_restores_the_cuda_generators(tmp_path):
    """SND-V's augmentation and pair sampling draw on the batch's device: on a GPU, from the CUDA generators."""
    trainer = _rng_trainer("cuda")
    atomic_torch_save(trainer.state_dict() | {"format": FORMAT}, tmp_path / "checkpoint.pt")
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    assert len(saved["rng"]["cuda"]) == torch.cuda.device_count()
    drawn = torch.rand(8, device="cuda")
    augmented = augment(torch.full((4, 1, 84, 84), 0.5, device="cuda"))
    trainer.load_state_dict(saved)
    assert torch.equal(torch.rand(8, device="cuda"), drawn)
    assert torch.equal(augment(torch.full((4, 1, 84, 84), 0.5, device="cuda")), augmented)
    trainer.close()


SND_VIC_OWN = dataclasses.replace(SND_VIC, name="snd-vic-own", own_target_optimizer=True, target_lr_scale=0.5)
"""SND-VIC with the target on its own Adam at half the policy's rate (a plug-in's declaration)."""


def test_a_target_on_its_own_optimizer_resumes_its_state(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    cfg, _ = parse_train_args(["--method", "test_snd:SND_VIC_OWN", *TINY, "--total-steps", "32",
                               "--out", str(tmp_path / "run")])
    run = train(cfg)
    saved = load_checkpoint(run / "checkpoint.pt")
    assert len(saved["optimizers"]) == 2 and saved["optimizers"][1]["param_groups"][0]["lr"] == pytest.approx(5e-5)
    trainer = Trainer(cfg)
    targets = trainer.intrinsic.target_parameters()
    assert trainer.optimizers[1].param_groups[0]["params"] == targets
    trainer.load_state_dict(saved)
    for key, moments in saved["optimizers"][1]["state"].items():
        for which, value in moments.items():
            assert torch.equal(trainer.optimizers[1].state_dict()["state"][key][which], value)
    trainer.close()
    sys.modules.pop("test_snd", None)


def test_snd_methods_sweep_report_and_diagnose_like_rnd(tmp_path, capsys):
    assert [m for m in BUILTIN_METHODS] == ["rnd", "rnd-lr", "prend", "snd-v", "snd-std", "snd-vic", "none"]
    assert [resolve_method(m).order for m in ("snd-v", "snd-std", "snd-vic")] == [3, 4, 5]
    out = tmp_path / "sweep"
    assert main(["sweep", "--out", str(out), "--methods", "rnd,snd-std", "--games", "Boxing", "--seeds", "1",
                 "--workers", "1", *TINY[:-4], *TINY[-2:], "--total-steps", "32"]) == 0  # its own threads
    assert main(["report", str(out), "--reps", "100"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [(r["run"], r["label"]) for r in report["runs"]] == [("Boxing-rnd-s1", "rnd"),
                                                                ("Boxing-snd-std-s1", "snd-std")]
    rows = {r["run"]: r for r in diagnose([out], tmp_path / "diagnose")["runs"]}
    assert rows["Boxing-snd-std-s1"]["method"] == "snd-std"
    capsys.readouterr()


# ------------------------------------------------------------------------------------------ ROM names (part 1)
def test_an_atari_pb_game_id_comes_from_any_spelling_and_an_unknown_rom_is_one_line():
    assert atari_pb_game_id("Boxing") == atari_pb_game_id("boxing") == atari_pb_game_id("ALE/Boxing-v5") == 12
    assert atari_pb_game_id(None) == 0  # not an Atari game (Deep Sea)
    backbone = nn.Conv2d(4, 8, 8, stride=8)
    neck = make_prend(IntrinsicConfig(method="prend", feature_dim=8), 2, 0.99, rom="Boxing", backbone=backbone)
    assert neck.target.game_id.item() == 12
    with pytest.raises(PrendError) as err:
        make_prend(IntrinsicConfig(method="prend", feature_dim=8), 2, 0.99, rom="notagame", backbone=backbone)
    assert err.value.exit_code == 2 and "notagame" in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------- the documented plug-in (part 1)
def test_the_documented_plugin_whose_target_trains_trains_checkpoints_and_resumes(tmp_path, monkeypatch):
    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    section = doc[doc.index("## Adding an intrinsic reward"):]
    block = next(b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "SLOW_RND = " in b)
    (tmp_path / "slow_target.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    flags = [*TINY[:-2], "--obs-norm-init-iters", "1", "--checkpoint-every", "1"]
    assert main(["train", "--method", "slow_target:SLOW_RND", *flags, "--total-steps", "32", "--out", str(out)]) == 0
    first = load_checkpoint(out / "checkpoint.pt")
    assert len(first["optimizers"]) == 2  # policy + predictor, then the target's own at 0.1 x 1e-4
    assert first["optimizers"][1]["param_groups"][0]["lr"] == pytest.approx(1e-5)
    assert main(["train", "--resume", str(out), "--total-steps", "64"]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [1, 2] and all(r["losses/target_slowness"] >= 0 for r in records)
    last = load_checkpoint(out / "checkpoint.pt")
    assert not torch.equal(last["intrinsic"]["target.1.weight"], first["intrinsic"]["target.1.weight"])
    sys.modules.pop("slow_target", None)
