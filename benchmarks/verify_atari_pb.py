"""Check prend's Atari-PB backbone, neck and checkpoint loader against Atari-PB's own code.

Needs your own clone of https://github.com/dojeon-ai/Atari-PB and ``einops`` importable (Atari-PB imports
it; prend does not depend on it). Nothing from Atari-PB is copied here: its modules are imported from the
clone you point at. Only the files the models need are imported (``src/models/layers.py``,
``src/models/backbones/{base,resnet}.py``, ``src/models/necks/{base,mh_spatial_mlp}.py``,
``src/common/schedulers.py``), so hydra, wandb and the rest of Atari-PB's requirements are not needed.

    pip install --target /tmp/einops einops==0.8.0
    PYTHONPATH=/tmp/einops python benchmarks/verify_atari_pb.py --atari-pb-src ~/src/Atari-PB

For each architecture it checks that the state_dict keys (in order) and shapes are identical, copies
weights both ways with ``load_state_dict(strict=True)``, and prints the max abs difference of the backbone
map and of the neck's output on random frames. It then saves checkpoints the way Atari-PB's trainer does
(``torch.save`` of ``{'backbone', 'neck', 'head', 'optimizer', 'lr_scheduler', 'scaler', 'epoch', 'step'}``),
with plain, ``_orig_mod.`` (torch.compile) and ``_orig_mod.module.`` (DDP, then compile) keys, loads each with
:func:`prend.nets.atari_pb_io.load_atari_pb_backbone` and compares outputs; and it loads a checkpoint written by
:func:`prend.nets.atari_pb_io.save_atari_pb_checkpoint` into Atari-PB's model. Exit code 1 if any difference
exceeds ``--tol``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
import torch.distributed as dist

from prend.nets.atari_pb import AtariPBNeck, ResNetGN
from prend.nets.atari_pb_io import load_atari_pb_backbone, save_atari_pb_checkpoint

OBS_SHAPE = (4, 1, 84, 84)  # Atari-PB's configs/model/base.yaml: f=4 frames, c=1 grayscale


def import_atari_pb(root: Path) -> tuple[type, type, type]:
    """Import Atari-PB's ResNet, MHSpatialMLPNeck and LR scheduler, skipping its package ``__init__``s."""
    src = root / "src"
    if not (src / "models" / "backbones" / "resnet.py").is_file():
        sys.exit(f"{root} does not look like an Atari-PB clone (no src/models/backbones/resnet.py)")
    # src/models/__init__.py imports every model and omegaconf; stand-in packages with the right __path__
    # let the two modules import their real siblings (base.py, layers.py) and nothing else.
    for name, path in [("src", src), ("src.models", src / "models"),
                       ("src.models.backbones", src / "models" / "backbones"),
                       ("src.models.necks", src / "models" / "necks"), ("src.common", src / "common")]:
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    resnet = importlib.import_module("src.models.backbones.resnet")
    neck = importlib.import_module("src.models.necks.mh_spatial_mlp")
    schedulers = importlib.import_module("src.common.schedulers")
    return resnet.ResNet, neck.MHSpatialMLPNeck, schedulers.CosineAnnealingWarmupRestarts


def theirs_forward(backbone, neck, x: torch.Tensor, game_ids: torch.Tensor):
    """Atari-PB's forward on (N, 4, 84, 84) frames: its modules take (n, t, f, c, h, w) and (n, t) ids."""
    n = x.shape[0]
    features, _ = backbone(x.view(n, 1, *OBS_SHAPE))
    out, _ = neck(features, game_ids.view(n, 1))
    return features[:, 0], out[:, 0]


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def ddp_wrap(module: torch.nn.Module, tmp: Path):
    """Wrap in DDP over a one-process gloo group, as Atari-PB's trainer does before torch.compile."""
    if not dist.is_initialized():
        dist.init_process_group("gloo", init_method=f"file://{tmp / 'ddp_init'}", rank=0, world_size=1)
    return torch.nn.parallel.DistributedDataParallel(module)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atari-pb-src", type=Path, required=True, help="root of your Atari-PB clone")
    parser.add_argument("--archs", nargs="+", default=["resnet50:1.0", "resnet18:0.5", "resnet34:0.25"],
                        help="arch:width pairs to compare")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    Theirs, TheirNeck, TheirScheduler = import_atari_pb(args.atari_pb_src.expanduser().resolve())
    worst = 0.0
    rows = []

    def record(what: str, value: float) -> None:
        nonlocal worst
        worst = max(worst, value)
        rows.append((what, value))
        print(f"  {what:<64} max|diff| = {value:.3e}", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name, torch.no_grad():
        tmp = Path(tmp_name)
        for spec in args.archs:
            arch, width = spec.split(":")[0], float(spec.split(":")[1]) if ":" in spec else 1.0
            start = time.perf_counter()
            print(f"{arch} width {width}:")
            theirs = Theirs(arch, OBS_SHAPE, 18, "gn", width_multiplier=width).eval()
            ours = ResNetGN(arch, width).eval()
            t_sd, o_sd = theirs.state_dict(), ours.state_dict()
            assert list(t_sd) == list(o_sd), f"key lists differ: {set(t_sd) ^ set(o_sd)}"
            assert all(t_sd[k].shape == o_sd[k].shape for k in t_sd), "shapes differ"
            n_t, n_o = (sum(p.numel() for p in m.parameters()) for m in (theirs, ours))
            assert n_t == n_o, (n_t, n_o)
            print(f"  identical state_dict: {len(o_sd)} keys, {n_o:,} parameters; out {ours.out_channels}x"
                  f"{ours.out_spatial[0]}x{ours.out_spatial[1]}")
            c, (h, w) = ours.out_channels, ours.out_spatial
            their_neck = TheirNeck((c, h, w), 18, num_heads=60, norm_type="ln", hidden_dims=[1024, 512])
            their_neck.eval()
            our_neck = AtariPBNeck(c, 60, (h, w)).eval()
            assert list(their_neck.state_dict()) == list(our_neck.state_dict())

            x = torch.rand(args.batch, 4, 84, 84)
            ids = torch.randint(0, 60, (args.batch,))
            # Atari-PB -> prend
            ours.load_state_dict(theirs.state_dict())
            our_neck.load_state_dict(their_neck.state_dict())
            t_feat, t_out = theirs_forward(theirs, their_neck, x, ids)
            o_feat = ours(x)
            record(f"backbone {tuple(o_feat.shape[1:])}, Atari-PB weights -> prend", max_abs(t_feat, o_feat))
            record("neck (512,), per-sample game ids", max_abs(t_out, our_neck(t_feat, ids)))
            t_same = theirs_forward(theirs, their_neck, x, torch.full_like(ids, 12))[1]
            record("neck (512,), one int game id (12)", max_abs(t_same, our_neck(t_feat, 12)))
            # prend -> Atari-PB, from fresh random weights
            ours2, our_neck2 = ResNetGN(arch, width).eval(), AtariPBNeck(c, 60, (h, w)).eval()
            theirs.load_state_dict(ours2.state_dict())
            their_neck.load_state_dict(our_neck2.state_dict())
            t_feat, t_out = theirs_forward(theirs, their_neck, x, ids)
            o_feat = ours2(x)
            record("backbone, prend weights -> Atari-PB", max_abs(t_feat, o_feat))
            record("neck, prend weights -> Atari-PB", max_abs(t_out, our_neck2(o_feat, ids)))

            # Checkpoints saved the way Atari-PB's trainer saves them, with real optimizer, scheduler and
            # scaler state, so weights_only loading meets what it would meet in their files. One AdamW step at
            # lr 0 on zero gradients fills the optimizer state without changing the weights.
            params = list(theirs.parameters()) + list(their_neck.parameters())
            optimizer = torch.optim.AdamW(params, lr=0.0, weight_decay=0.05, betas=(0.9, 0.95), eps=1e-8)
            for p in params:
                p.grad = torch.zeros_like(p)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler = TheirScheduler(optimizer, first_cycle_steps=1000, max_lr=3e-4, warmup_ratio=0.1)
            scaler = torch.amp.GradScaler("cpu")
            wrappers = {"plain": lambda m: m, "_orig_mod.": torch.compile,
                        "_orig_mod.module.": lambda m: torch.compile(ddp_wrap(m, tmp))}
            for label, wrap in wrappers.items():
                backbone_w, neck_w = wrap(theirs), wrap(their_neck)
                first_key = next(iter(backbone_w.state_dict()))
                path = tmp / f"{arch}_{label.strip('.') or 'plain'}.pth"
                torch.save({"backbone": backbone_w.state_dict(), "neck": neck_w.state_dict(), "head": {},
                            "optimizer": optimizer.state_dict(), "lr_scheduler": scheduler.state_dict(),
                            "scaler": scaler.state_dict(), "epoch": 100, "step": 1953}, path)
                loaded = load_atari_pb_backbone(path, arch, width)
                frozen = not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
                record(f"torch.save'd ckpt ({first_key.split('conv1')[0] or 'no prefix'}) -> "
                       f"load_atari_pb_backbone{'' if frozen else ' NOT FROZEN'}", max_abs(t_feat, loaded(x)))
            # prend's own writer -> Atari-PB's strict load_state_dict
            path = save_atari_pb_checkpoint(tmp / "prend.pth", backbone=torch.compile(ours2), neck=our_neck2)
            ckpt = torch.load(path, weights_only=True)
            fresh = Theirs(arch, OBS_SHAPE, 18, "gn", width_multiplier=width).eval()
            fresh.load_state_dict(ckpt["backbone"])
            record("save_atari_pb_checkpoint -> Atari-PB load_state_dict",
                   max_abs(fresh(x.view(-1, 1, *OBS_SHAPE))[0][:, 0], o_feat))
            print(f"  ({time.perf_counter() - start:.1f} s)")
    if dist.is_initialized():
        dist.destroy_process_group()
    status = "PASS" if worst <= args.tol else "FAIL"
    print(f"{status}: worst max|diff| {worst:.3e} (tolerance {args.tol:g}) over {len(rows)} comparisons")
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
