"""``prend video RUN``: the trained agent playing, in colour, over a strip of its rewards and values.

One video frame per agent step. The top is the game's screen after the step (upscaled, nearest neighbour).
The strip beneath shares one time axis across the whole video, with the future faded and a cursor at the
current step:

- the intrinsic reward of each transition, raw (left axis) and normalised (right axis: raw divided by the
  run's running std of the discounted intrinsic return, as the trainer divides it; the std is the
  checkpoint's, not updated while playing). Both come from the run's own reward module, loaded from its
  checkpoint (:func:`prend.train.load_agent`), on the observation each step led to, as in training;
  plain PPO has no such row;
- the game's raw reward at each step;
- both value heads on the observation the agent acted on (plain PPO: the extrinsic one).

The game is played in one environment under the run's protocol through gymnasium's wrappers
(:class:`prend.envs.vector.ProtocolVecEnv` with ``render``), which keep the colour screen. Frames are encoded
by imageio-ffmpeg's own ffmpeg binary (H.264 MP4, or a GIF).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from prend.envs.vector import make_env
from prend.errors import PrendError
from prend.train import TrainedAgent, load_agent

MIN_WIDTH = 480
"""Pixels the game screen is upscaled to at least (an integer factor: Atari's 160 columns x 3)."""
BLOCK = 16
"""Frame sides are padded to a multiple of this: H.264 encodes 16-pixel macroblocks."""


@dataclass
class Trace:
    """What one played stretch of a run's agent saw and computed, one entry per agent step."""

    screens: list[np.ndarray]
    """(H, W, 3) uint8 colour screen after each step."""
    next_obs: np.ndarray
    """(T, stack, 84, 84) uint8: the observation each step led to (the intrinsic reward's input)."""
    actions: np.ndarray
    reward_ext: np.ndarray
    """(T,) the game's raw reward."""
    value_ext: np.ndarray
    value_int: np.ndarray
    episode_end: np.ndarray
    reward_int_raw: np.ndarray | None
    """(T,) raw intrinsic reward of each transition (``None``: plain PPO)."""
    reward_int_norm: np.ndarray | None
    """(T,) ``reward_int_raw`` divided by the checkpoint's running std of the discounted intrinsic return."""


def play_trace(agent: TrainedAgent, steps: int, greedy: bool = False, seed: int = 0) -> Trace:
    """Play ``steps`` agent steps in one env of the run's protocol, recording screens, rewards and values."""
    env = make_env(dataclasses.replace(agent.config.env, num_envs=1, game_kwargs=dict(agent.config.env.game_kwargs)),
                   render=True)
    generator = torch.Generator().manual_seed(seed)
    screens, next_obs, actions, rewards, v_ext, v_int, ends = [], [], [], [], [], [], []
    try:
        obs = env.reset(seed)
        state, first = agent.policy.initial_state(1), torch.ones(1, dtype=torch.bool)
        for _ in range(steps):
            with torch.inference_mode():
                out = agent.policy(torch.from_numpy(obs)[None], state, first[None])
            logits = out.logits[0].float()
            action = logits.argmax(-1) if greedy else torch.multinomial(
                torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
            step = env.step(action.numpy())
            screens.append(env.render())
            next_obs.append(step.next_obs[0])
            actions.append(int(action[0]))
            rewards.append(float(step.raw_reward[0]))
            v_ext.append(float(out.value_ext[0, 0]))
            v_int.append(float(out.value_int[0, 0]))
            ends.append(bool(step.episode_end[0]))
            obs, state, first = step.obs, out.state, torch.from_numpy(step.done)
    finally:
        env.close()
    stacked = np.stack(next_obs)
    raw = norm = None
    if agent.intrinsic is not None:
        raw = agent.intrinsic.reward(torch.from_numpy(stacked)).raw.double().numpy()
        norm = raw / agent.intrinsic.return_rms.std.item()
    return Trace(screens, stacked, np.array(actions), np.array(rewards), np.array(v_ext), np.array(v_int),
                 np.array(ends), raw, norm)


def draw_strip(trace: Trace, width: int, title: str) -> tuple[Figure, dict[str, Line2D]]:
    """The strip's figure, ``width`` pixels wide, and its lines by name, whose data are the plotted numbers.

    Names: ``intrinsic_raw``, ``intrinsic_norm`` (not for plain PPO), ``reward_ext``, ``value_ext`` and
    ``value_int`` (not for plain PPO).
    """
    rows = 3 if trace.reward_int_raw is not None else 2
    height = 40 + 105 * rows
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    axes = fig.subplots(rows, 1, sharex=True)
    fig.subplots_adjust(left=0.17, right=0.84, top=1 - 24 / height, bottom=34 / height, hspace=0.25)
    fig.suptitle(title, fontsize=7)
    t = np.arange(len(trace.actions))
    lines: dict[str, Line2D] = {}
    i = 0
    if trace.reward_int_raw is not None:
        ax = axes[0]
        (lines["intrinsic_raw"],) = ax.plot(t, trace.reward_int_raw, color="tab:purple", linewidth=1)
        ax.set_ylabel("intrinsic\nraw", fontsize=7, color="tab:purple")
        twin = ax.twinx()
        (lines["intrinsic_norm"],) = twin.plot(t, trace.reward_int_norm, color="tab:orange", linewidth=0.8,
                                               linestyle="--")
        twin.set_ylabel("normalised", fontsize=7, color="tab:orange")
        twin.tick_params(labelsize=6)
        i = 1
    (lines["reward_ext"],) = axes[i].plot(t, trace.reward_ext, color="tab:green", linewidth=1, drawstyle="steps-mid")
    axes[i].set_ylabel("game\nreward", fontsize=7)
    (lines["value_ext"],) = axes[i + 1].plot(t, trace.value_ext, color="tab:blue", linewidth=1, label="V ext")
    if trace.reward_int_raw is not None:
        (lines["value_int"],) = axes[i + 1].plot(t, trace.value_int, color="tab:red", linewidth=1, label="V int")
    axes[i + 1].set_ylabel("values", fontsize=7)
    axes[i + 1].legend(fontsize=6, loc="upper left", ncol=2, frameon=False)
    axes[-1].set_xlabel("agent step", fontsize=7)
    for ax in axes:
        ax.tick_params(labelsize=6)
        ax.set_xlim(0, max(1, len(t) - 1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(alpha=0.3)
        for end in np.flatnonzero(trace.episode_end):  # where a game ended (the screen shows the next one)
            ax.axvline(end, color="grey", linewidth=0.6, linestyle=":")
    return fig, lines


def _render(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` centred on a white canvas of ``height`` x ``width``."""
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    top, left = (height - image.shape[0]) // 2, (width - image.shape[1]) // 2
    canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
    return canvas


def compose_frames(trace: Trace, title: str):
    """Yield the video's frames, one per step: the upscaled screen over the strip with its cursor."""
    screen_h, screen_w = trace.screens[0].shape[:2]
    scale = max(1, math.ceil(MIN_WIDTH / screen_w))
    width = -(-screen_w * scale // BLOCK) * BLOCK
    fig, _ = draw_strip(trace, width, title)
    strip = _render(fig)
    # Pixel column of each step and the rows of each panel, from the axes' own transforms (origin bottom-left).
    axes = fig.axes
    columns = np.round(axes[0].transData.transform(np.c_[np.arange(len(trace.actions)), np.zeros(len(trace.actions))])
                       [:, 0]).astype(int)
    spans = sorted({(strip.shape[0] - int(b.y1), strip.shape[0] - int(b.y0), int(b.x0), int(b.x1))
                    for b in (ax.get_window_extent() for ax in axes)})  # a twin axis shares its panel's box
    top = screen_h * scale
    height = -(-(top + strip.shape[0]) // BLOCK) * BLOCK
    for t, screen in enumerate(trace.screens):
        frame = np.full((height, width, 3), 255, dtype=np.uint8)
        frame[:top] = _pad(np.repeat(np.repeat(screen, scale, 0), scale, 1), top, width)
        panel = strip.copy()
        x = int(np.clip(columns[t], 0, width - 1))
        for y0, y1, x0, x1 in spans:
            future = panel[y0:y1, max(x + 1, x0):x1]
            future[:] = 255 - (255 - future) // 4  # the future, faded
            panel[y0:y1, x] = (220, 30, 30)
        frame[top:top + strip.shape[0], :strip.shape[1]] = panel[:, :width]
        yield frame


GIF_PALETTE = ["-vf", "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"]
"""ffmpeg's filter for a GIF: each frame gets its own 256-colour palette, made from that frame, so the frames
stream through (nothing is buffered) and the game's and the plots' colours survive; ffmpeg's default for
GIFs, a fixed 3-3-2-bit palette, turned tab10's blue grey-violet and banded the screen."""


def write_video(frames, path: Path, fps: int, gif: bool) -> int:
    """Encode ``frames`` (an iterable of equal-sized RGB arrays) to ``path``; returns how many were written."""
    writer = None
    count = 0
    try:
        for frame in frames:
            if writer is None:
                writer = imageio_ffmpeg.write_frames(
                    str(path), (frame.shape[1], frame.shape[0]), fps=fps, codec="gif" if gif else "libx264",
                    pix_fmt_out="pal8" if gif else "yuv420p", quality=None if gif else 7, macro_block_size=BLOCK,
                    ffmpeg_log_level="error", output_params=GIF_PALETTE if gif else None)
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count


def check_output(out: Path, gif: bool) -> None:
    """Refuse an output path that cannot be written, or whose suffix is not the format asked for."""
    suffix = ".gif" if gif else ".mp4"
    if out.suffix.lower() != suffix:
        raise PrendError(f"--out '{out}' must end in {suffix}" + (" (with --gif)" if gif else ""),
                         f"pass e.g. --out agent{suffix}" + ("" if gif else ", or --gif for a GIF"))
    if out.is_dir():
        raise PrendError(f"--out '{out}' is a directory", f"pass a file path, e.g. {out / ('agent' + suffix)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PrendError(f"cannot create the folder of --out '{out}' ({err.strerror or err})",
                         "pass a path in a writable place") from None
    if not os.access(out.parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise PrendError(f"--out '{out}' is not writable", "pass a path in a writable place")


def make_video(run_dir: Path, out: Path, seconds: float = 20.0, fps: int = 15, gif: bool = False,
               greedy: bool = False, seed: int = 0) -> tuple[Path, Trace]:
    """Play a run's checkpoint for ``seconds`` x ``fps`` steps and write the video; returns its path and trace."""
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise PrendError(f"--seconds must be a positive number, got {seconds}", "pass e.g. --seconds 20")
    if not 1 <= fps <= 60:
        raise PrendError(f"--fps must be between 1 and 60, got {fps}", "pass e.g. --fps 15")
    steps = round(seconds * fps)
    if steps < 2:
        raise PrendError(f"--seconds {seconds} at --fps {fps} is under 2 frames", "pass a longer --seconds")
    check_output(out, gif)
    agent = load_agent(run_dir, intrinsic=True)
    torch.manual_seed(seed)
    trace = play_trace(agent, steps, greedy, seed)
    cfg = agent.config
    title = (f"{cfg.intrinsic.method} on {cfg.env.game}, seed {cfg.run.seed}, checkpoint at {agent.global_step:,} "
             f"agent steps; {'greedy' if greedy else 'sampled'} actions")
    write_video(compose_frames(trace, title), out, fps, gif)
    return out, trace
