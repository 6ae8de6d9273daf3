"""``prend pretrain``: pre-training an Atari-PB backbone on frames from ``prend collect``.

Three objectives share the data, augmentations, optimiser and checkpoints: Atari-PB's SiamMAE
(:mod:`prend.pretrain.siammae`), pixel prediction (:mod:`prend.pretrain.pixelpred`) and AtariARI's ST-DIM
(:mod:`prend.pretrain.stdim`).

The optimisation follows Atari-PB's ``scripts/pretrain/siammae.sh`` with ``configs/trainer/base.yaml``:
AdamW (lr 3e-4, weight decay 0.05 on every parameter, betas (0.9, 0.95), eps 1e-8), no gradient clipping,
``CosineAnnealingWarmupRestarts`` with one cycle over the whole run (linear warm-up over the first 10% of
steps from 0.1x to 1x the learning rate, then a cosine down to 0.1x), stepped once per batch, and mixed
precision (fp16 autocast with a gradient scaler on a GPU; bf16 autocast on a CPU, which needs no scaler).

Runs are step-based and resumable: ``<out>/latest.pth`` is an Atari-PB-format checkpoint (``backbone``,
``neck``, ``head``, ``optimizer``, ``lr_scheduler``, ``scaler``, ``epoch``, ``step``) whose ``extra`` entry
holds the run config, the RNG state and the data cursor; it is rewritten every ``--save-every`` steps and
when the process gets SIGINT or SIGTERM. Re-running the same command continues from it. At the end the
backbone alone is written to ``<out>/backbone.pth`` and, when probe frames exist, ``prend probe``'s figures
to ``<out>/probe.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import tyro
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from prend.agent.perf import resolve_device
from prend.clihelp import default_hint
from prend.config import config_to_dict
from prend.errors import PrendError
from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import read_atari_pb_checkpoint, save_atari_pb_checkpoint
from prend.pretrain.collect import has_ram, read_manifest
from prend.pretrain.dataset import FrameData, FuturePairSampler
from prend.pretrain.pixelpred import LinearPatchDecoder, PixelDecoder, PixelPrediction
from prend.pretrain.probe import ProbeConfig, probe
from prend.pretrain.siammae import SiamMAE, SiamMAEHead, SiamMAENeck
from prend.pretrain.stdim import STDIM
from prend.signals import StopFlag as _StopFlag  # module-level name: the tests substitute a scripted flag

CHECKPOINT = "latest.pth"
BACKBONE = "backbone.pth"
PROBE = "probe.json"
NUM_GAMES = 60


@dataclass
class PretrainConfig:
    """Pre-train an Atari-PB backbone with SiamMAE (Atari-PB's recipe; sizes configurable) or pixel prediction."""

    data: Path = Path("data/frames")
    """Frame directory written by ``prend collect``."""
    out: Path = Path("runs/pretrain/siammae")
    """Run directory: checkpoints, TensorBoard logs, probe figures. An existing run there is resumed."""
    objective: Literal["siammae", "pixelpred", "stdim"] = "siammae"
    """Pre-training objective: 'siammae' (Atari-PB's masked future-frame reconstruction through a transformer
    neck and decoder), 'pixelpred' (a small convolutional decoder redraws the future stack from the 6x6 map)
    or 'stdim' (AtariARI's spatiotemporal InfoMax: each cell of the future map told apart from the batch's
    others); see docs/pretraining.md for why and how they compare."""
    arch: Literal["resnet18", "resnet34", "resnet50"] = "resnet50"
    """Backbone architecture (Atari-PB: resnet50)."""
    width: float = 1.0
    """Backbone width multiplier (Atari-PB: 1.0)."""
    neck_hidden: int = 1024
    """Width of the neck's token MLP hidden layer (Atari-PB: 1024)."""
    dim: int = 512
    """Token width of encoder and decoder (Atari-PB's vit_embed_dim: 512)."""
    encoder_depth: int = 4
    """Neck transformer layers (Atari-PB: 4)."""
    decoder_depth: int = 3
    """Cross-attention decoder layers (Atari-PB: 3)."""
    heads: int = 4
    """Attention heads in encoder and decoder (Atari-PB: 4)."""
    mlp_dim: int = 2048
    """Feed-forward width in encoder and decoder (Atari-PB's vit_mlp_dim: 2048)."""
    decoder: Literal["conv", "linear"] = "conv"
    """pixelpred: 'conv' (upsampling convolutions) or 'linear' (each 6x6 cell draws its own 14x14 patch through
    one shared linear layer, so the frame must be linearly readable from the map)."""
    decoder_width: int = 64
    """pixelpred with --decoder conv: channels of the decoder's first stage (halved at each of the next three)."""
    global_dim: int = 256
    """stdim: width of the global vector scored against each cell (AtariARI: 256)."""
    batches: Literal["auto", "mixed", "one-game"] = "auto"
    """'mixed': pairs drawn from all games' frames; 'one-game': each batch from one game (a contrastive loss's
    negatives then share the positive's game); 'auto': one-game for stdim, mixed otherwise."""
    norm_pix: bool = True
    """pixelpred: predict each 7x7 patch normalised to zero mean and unit variance (MAE's norm_pix_loss), so
    the loss falls on sprites and digits rather than on the flat backdrop."""
    mask_ratio: float = 0.95
    """Fraction of the future stack's 36 tokens dropped (Atari-PB: 0.95, i.e. 1 token kept)."""
    n_step: int = 3
    """The target is the stack k ~ U{1..n_step} steps ahead (Atari-PB: 3)."""
    batch_size: int = 512
    """Pairs per optimizer step (Atari-PB: 512)."""
    steps: int = 20_000
    """Optimizer steps of the whole run (the LR schedule spans them)."""
    lr: float = 3e-4
    """Peak learning rate (Atari-PB SiamMAE: 3e-4)."""
    weight_decay: float = 0.05
    """AdamW weight decay (Atari-PB SiamMAE: 0.05)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (Atari-PB SiamMAE: 0.9, 0.95)."""
    eps: float = 1e-8
    """AdamW epsilon."""
    warmup_ratio: float = 0.1
    """Fraction of the steps spent warming the LR up linearly from min_lr_ratio x lr (Atari-PB: 0.1)."""
    min_lr_ratio: float = 0.1
    """Start and floor of the LR as a fraction of --lr (Atari-PB: 0.1)."""
    aug_pad: int = 4
    """Random-shift padding in pixels (Atari-PB: 4; 0 disables)."""
    aug_intensity: float = 0.05
    """Intensity augmentation scale (Atari-PB: 0.05; 0 disables)."""
    amp: bool = True
    """Mixed precision: bf16 autocast on a CPU, fp16 autocast with gradient scaling on a GPU."""
    backbone_amp: bool = True
    """Autocast the backbone too (with --amp); --no-backbone-amp keeps it in float32 and autocasts only the
    neck and head."""
    channels_last: bool = False
    """Run the backbone in channels-last memory format (no clear gain for training on this CPU)."""
    device: str = "auto"
    """'auto' (CUDA if available, else CPU), 'cpu' or 'cuda[:i]'."""
    threads: int = 0
    """CPU threads for torch (0: torch's default)."""
    max_frames_per_game: Annotated[int | None, tyro.conf.arg(metavar="INT", help_behavior_hint=default_hint("all"))
                                   ] = None
    """Load at most this many frames per game."""
    seed: int = 0
    """Seed of the initialisation, the batch order and the augmentations."""
    save_every: int = 200
    """Write the resumable checkpoint every this many steps (also on SIGINT/SIGTERM and at the end)."""
    log_every: int = 10
    """Log the loss and LR to TensorBoard every this many steps."""
    probe_data: Path | None = Path("data/probe_frames")
    """Held-out frame directory for the final ``prend probe`` (skipped when it does not exist)."""
    progress: bool = True
    """Show a progress bar."""

    def validate(self) -> None:
        """Raise :class:`PrendError` for values the trainer cannot use."""
        checks = [
            (self.steps >= 1, "--steps must be >= 1", "pass e.g. --steps 2000"),
            (self.batch_size >= 2, "--batch-size must be >= 2", "pass e.g. --batch-size 64"),
            (0.0 <= self.mask_ratio < 1.0, "--mask-ratio must be in [0, 1)", "Atari-PB uses 0.95"),
            (self.n_step >= 1, "--n-step must be >= 1", "Atari-PB uses 3"),
            (self.dim % self.heads == 0 and self.dim % 4 == 0,
             f"--dim {self.dim} must be divisible by --heads {self.heads} and by 4", "pass e.g. --dim 256"),
            (0.0 <= self.warmup_ratio < 1.0, "--warmup-ratio must be in [0, 1)", "Atari-PB uses 0.1"),
            (0.0 <= self.min_lr_ratio <= 1.0, "--min-lr-ratio must be in [0, 1]", "Atari-PB uses 0.1"),
            (self.save_every >= 1 and self.log_every >= 1, "--save-every and --log-every must be >= 1",
             "pass e.g. --save-every 200"),
        ]
        for ok, problem, fix in checks:
            if not ok:
                raise PrendError(problem, fix)

    def model_config(self) -> dict[str, Any]:
        """The fields that fix the model's shapes (they must match when resuming)."""
        keys = ("objective", "arch", "width")
        keys += {"pixelpred": ("decoder", "decoder_width"), "stdim": ("global_dim",)}.get(self.objective, (
            "neck_hidden", "dim", "encoder_depth", "decoder_depth", "heads", "mlp_dim"))
        return {k: getattr(self, k) for k in keys}

    @property
    def one_game_batches(self) -> bool:
        """Whether each batch comes from one game (``--batches``, resolved)."""
        return self.batches == "one-game" or (self.batches == "auto" and self.objective == "stdim")

    def plain(self) -> dict[str, Any]:
        """The config as JSON/checkpoint-safe plain data."""
        return config_to_dict(self)


# ---------------------------------------------------------------------------------------------- pieces
def build_model(cfg: PretrainConfig, device: torch.device | None = None) -> nn.Module:
    """Backbone, neck and head of ``cfg``'s objective (freshly initialised from ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    backbone = ResNetGN(cfg.arch, cfg.width)
    if cfg.objective == "stdim":
        return STDIM(backbone, cfg.global_dim, aug_pad=cfg.aug_pad, aug_intensity=cfg.aug_intensity,
                     backbone_amp=cfg.backbone_amp).to(device or torch.device("cpu"))
    if cfg.objective == "pixelpred":
        head = (LinearPatchDecoder(backbone.out_channels) if cfg.decoder == "linear"
                else PixelDecoder(backbone.out_channels, cfg.decoder_width))
        return PixelPrediction(backbone, head,
                               aug_pad=cfg.aug_pad, aug_intensity=cfg.aug_intensity, norm_pix=cfg.norm_pix,
                               backbone_amp=cfg.backbone_amp).to(device or torch.device("cpu"))
    neck = SiamMAENeck(backbone.out_channels, backbone.out_spatial, NUM_GAMES, hidden_dim=cfg.neck_hidden,
                       dim=cfg.dim, depth=cfg.encoder_depth, heads=cfg.heads, mlp_dim=cfg.mlp_dim,
                       mask_ratio=cfg.mask_ratio)
    head = SiamMAEHead(cfg.dim, dim=cfg.dim, depth=cfg.decoder_depth, heads=cfg.heads, mlp_dim=cfg.mlp_dim,
                       num_games=NUM_GAMES, num_tokens=neck.num_tokens)
    return SiamMAE(backbone, neck, head, aug_pad=cfg.aug_pad, aug_intensity=cfg.aug_intensity,
                   backbone_amp=cfg.backbone_amp).to(device or torch.device("cpu"))


def lr_factor(step: int, total: int, warmup_ratio: float = 0.1, min_ratio: float = 0.1) -> float:
    """LR multiplier of Atari-PB's ``CosineAnnealingWarmupRestarts`` (one cycle of ``total`` steps).

    Linear from ``min_ratio`` to 1 over the first ``int(warmup_ratio * total)`` steps, then a half cosine
    from 1 down to ``min_ratio`` at step ``total``.

    Example:
        >>> [round(lr_factor(s, 100), 3) for s in (0, 5, 10, 55, 100)]
        [0.1, 0.55, 1.0, 0.55, 0.1]
    """
    warmup = int(warmup_ratio * total)
    if step < warmup:
        return min_ratio + (1.0 - min_ratio) * step / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class _CosineWarmup:
    """A picklable LR-lambda (a LambdaLR stores callable objects' state in its state_dict)."""

    def __init__(self, total: int, warmup_ratio: float, min_ratio: float):
        self.total, self.warmup_ratio, self.min_ratio = total, warmup_ratio, min_ratio

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.total, self.warmup_ratio, self.min_ratio)


def build_optimizer(model: nn.Module, cfg: PretrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW over every trainable parameter (Atari-PB applies weight decay to all) and its LR schedule.

    The fused implementation is used (CPU and GPU): the same update rule as the per-tensor loop, in one
    kernel, which matters on a CPU where the per-game output table alone holds millions of parameters.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas,
                                  eps=cfg.eps, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _CosineWarmup(cfg.steps, cfg.warmup_ratio, cfg.min_lr_ratio))
    return optimizer, scheduler


def _step_seed(seed: int, step: int) -> int:
    # One independent generator seed per (run seed, step): augmentations and masks of step s are the same
    # whether the run got there in one go or was resumed, so the RNG "state" is just the step number.
    return int(np.random.SeedSequence([seed, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


# ------------------------------------------------------------------------------------------------ train
def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Run (or resume) pre-training; returns a summary (steps, last loss, paths, probe figures).

    Raises:
        PrendError: For bad values, missing frames, or a run directory holding a different model.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT

    data = FrameData.load(cfg.data, max_frames_per_game=cfg.max_frames_per_game, progress=cfg.progress)
    sampler = FuturePairSampler(data, cfg.batch_size, cfg.n_step, cfg.seed, one_game=cfg.one_game_batches)
    model = build_model(cfg, device)
    if cfg.channels_last:
        model.backbone.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model, cfg)
    use_cuda_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda_amp)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    start, loss_ema = 0, None
    if ckpt_path.exists():
        ckpt = read_atari_pb_checkpoint(ckpt_path)
        saved = ckpt.get("extra", {}).get("prend", {})
        saved_model = saved.get("config", {})
        mine = cfg.model_config()
        # A field added after the run started is absent from its saved config: the run had its default.
        defaults = {f.name: f.default for f in dataclasses.fields(PretrainConfig)}
        diff = {k: (saved_model.get(k, defaults.get(k)), v) for k, v in mine.items()
                if saved_model.get(k, defaults.get(k)) != v}
        if diff:
            raise PrendError(f"{out} holds a run of a different model ({diff}, saved vs asked)",
                             "pass the run's own sizes or a new --out")
        if saved_model.get("steps") != cfg.steps:
            raise PrendError(f"{out} was started with --steps {saved_model.get('steps')}, not {cfg.steps}",
                             "keep --steps when resuming (the LR schedule spans them) or pass a new --out")
        saved_cfg = PretrainConfig(objective=saved_model.get("objective", cfg.objective),
                                   batches=saved_model.get("batches", "auto"))
        if saved_cfg.one_game_batches != cfg.one_game_batches:
            raise PrendError(f"{out} was started with --batches {saved_cfg.batches}, not {cfg.batches}",
                             "keep --batches when resuming (it fixes the batch order) or pass a new --out")
        model.backbone.load_state_dict(ckpt["backbone"])
        model.neck.load_state_dict(ckpt["neck"])
        model.head.load_state_dict(ckpt["head"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["lr_scheduler"])
        if use_cuda_amp and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start = int(ckpt["step"])
        loss_ema = saved.get("loss_ema")
        if "torch_rng" in saved:
            torch.set_rng_state(saved["torch_rng"])
        print(f"resuming {out} at step {start}/{cfg.steps}")

    def save(step: int) -> None:
        extra = {"prend": {
            "config": cfg.plain(), "objective": cfg.objective, "loss_ema": loss_ema,
            "torch_rng": torch.get_rng_state(),
            "cursor": {"step": step, "steps_per_epoch": sampler.steps_per_epoch, "seed": cfg.seed,
                       "anchors": len(sampler.anchors)},
            "data": {"root": str(cfg.data), "frames": len(data), "games": list(data.games)},
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }}
        save_atari_pb_checkpoint(ckpt_path, backbone=model.backbone, neck=model.neck, head=model.head,
                                 optimizer=optimizer, lr_scheduler=scheduler, scaler=scaler,
                                 epoch=step // sampler.steps_per_epoch, step=step, extra=extra)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.plain(), indent=1))
    writer = SummaryWriter(str(out / "tb"))
    bar = tqdm(total=cfg.steps, initial=start, unit="step", disable=not cfg.progress, dynamic_ncols=True,
               desc="pretrain")
    gen = torch.Generator(device=device)
    loss_name = getattr(model, "loss_name", "mse")
    step, interrupted, t0 = start, False, time.perf_counter()
    model.train()
    with _StopFlag() as stop:
        while step < cfg.steps:
            obs, fut, gid = sampler.batch(step)
            gen.manual_seed(_step_seed(cfg.seed, step))
            obs_t = torch.from_numpy(obs).to(device).float().div_(255)
            fut_t = torch.from_numpy(fut).to(device).float().div_(255)
            gid_t = torch.from_numpy(gid).to(device)
            if cfg.channels_last:
                obs_t = obs_t.contiguous(memory_format=torch.channels_last)
                fut_t = fut_t.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
                loss, _ = model(obs_t, fut_t, gid_t, generator=gen)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise PrendError(f"the loss became {value} at step {step}",
                                 f"resume from the last checkpoint in {out} with a lower --lr")
            loss_ema = value if loss_ema is None else 0.98 * loss_ema + 0.02 * value
            if step % cfg.log_every == 0 or step == cfg.steps:
                writer.add_scalar(f"loss/{loss_name}", value, step)
                writer.add_scalar(f"loss/{loss_name}_ema", loss_ema, step)
                writer.add_scalar("lr", lr, step)
                rate = (step - start) * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
                writer.add_scalar("perf/samples_per_s", rate, step)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_ema:.5f}", lr=f"{lr:.2e}")
            if step % cfg.save_every == 0 or step == cfg.steps:
                save(step)
            if stop.raised is not None:
                save(step)
                interrupted = True
                break
    bar.close()
    writer.flush()
    summary: dict[str, Any] = {"out": str(out), "step": step, "steps": cfg.steps, "loss_ema": loss_ema,
                               "checkpoint": str(ckpt_path)}
    if interrupted:
        print(f"interrupted at step {step}/{cfg.steps}; saved {ckpt_path}. Re-run the same command to resume.")
        summary["interrupted"] = True
        writer.close()
        return summary

    backbone_path = out / BACKBONE
    backbone_extra = {"config": cfg.plain(), "objective": cfg.objective, "loss_ema": loss_ema}

    def save_backbone() -> None:
        save_atari_pb_checkpoint(backbone_path, backbone=model.backbone, epoch=step // sampler.steps_per_epoch,
                                 step=step, extra={"prend": backbone_extra})

    save_backbone()
    summary["backbone"] = str(backbone_path)
    if cfg.probe_data is not None and (Path(cfg.probe_data) / "manifest.json").exists():
        with_state = has_ram(read_manifest(cfg.probe_data))  # the state probe too, when the frames have labels
        figures = probe(ProbeConfig(checkpoint=backbone_path, data=Path(cfg.probe_data), device=cfg.device,
                                    progress=cfg.progress, state=with_state))
        (out / PROBE).write_text(json.dumps(figures, indent=1))
        # The headline figures also travel inside the backbone file, so a copy of it keeps its verdict.
        backbone_extra["probe"] = {k: v for k, v in figures.items() if k != "details"}
        save_backbone()
        for key in ("temporal_coherence", "action_probe", "reward_probe"):
            for variant in ("pretrained", "random_init"):
                writer.add_scalar(f"probe/{key}/{variant}", figures[key][variant], step)
        for encoder, value in figures.get("state_probe", {}).get("mean", {}).items():
            writer.add_scalar(f"probe/state_f1/{encoder}", value, step)
        summary["probe"] = figures
    else:
        print(f"no probe frames at {cfg.probe_data}; skipped the probe "
              "(collect them with: prend collect --out data/probe_frames --games boxing riverraid)")
    writer.close()
    return summary
