"""`prend video`: the file decodes to one frame per step, in colour, and the strip plots the reward module's numbers."""

import json
import shutil

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from prend.agent.trainer import Trainer
from prend.checkpoint import load_checkpoint
from prend.cli import main
from prend.config import config_from_dict
from prend.experiments.video import draw_strip, make_video, write_video

DEEP_SEA_PPO = ["--game", "prend/DeepSea-v0", "--game-kwargs", "size", "4", "--method", "none", "--num-envs", "2",
                "--num-steps", "8", "--total-steps", "16", "--probe-every", "0", "--no-tensorboard", "--no-progress",
                "--torch-threads", "1", "--micro-batch", "64", "--memory-format", "contiguous"]


def _decoded(path):
    """(width, height) and the frames ffmpeg decodes from ``path``, as arrays."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return (width, height), [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]


def test_video_decodes_to_one_colour_frame_per_step_and_plots_the_modules_rewards(tiny_run, tmp_path):
    out = tmp_path / "sub" / "agent.mp4"
    path, trace = make_video(tiny_run, out, seconds=2, fps=10)
    (width, height), frames = _decoded(path)
    assert len(frames) == len(trace.actions) == len(trace.screens) == 20
    assert width % 16 == 0 and width >= 480 and height % 16 == 0
    screen = frames[5][: 210 * 3]  # Boxing's 210 x 160 screen, upscaled 3x, above the strip
    assert (np.abs(screen[..., 0].astype(int) - screen[..., 1]) > 40).mean() > 0.1  # in colour, not grey
    # The reward module as the trainer builds and loads it, on the observations the video's steps led to.
    state = load_checkpoint(tiny_run / "checkpoint.pt")
    cfg = config_from_dict(json.loads(state["config"]))
    cfg.run.torch_threads, cfg.run.micro_batch, cfg.run.memory_format = 1, 64, "contiguous"
    trainer = Trainer(cfg)
    trainer.load_state_dict(state)
    trainer.close()
    expected = trainer.intrinsic.reward(torch.from_numpy(trace.next_obs)).raw.double().numpy()
    _, lines = draw_strip(trace, 480, "test")
    assert np.allclose(lines["intrinsic_raw"].get_ydata(), expected, rtol=1e-5, atol=1e-9)
    assert np.allclose(lines["intrinsic_norm"].get_ydata(), expected / trainer.intrinsic.return_rms.std.item(),
                       rtol=1e-5, atol=1e-9)
    assert np.array_equal(lines["reward_ext"].get_ydata(), trace.reward_ext)
    assert {"value_ext", "value_int"} <= set(lines)


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "ppo"
    assert main(["train", *DEEP_SEA_PPO, "--out", str(out)]) == 0
    return out


def test_plain_ppo_gif_has_no_bonus_strip(ppo_run, tmp_path, capsys):
    assert main(["video", str(ppo_run), "--out", str(tmp_path / "a.gif"), "--gif", "--seconds", "1.2",
                 "--fps", "10"]) == 0
    assert "12 frames" in capsys.readouterr().out
    _, frames = _decoded(tmp_path / "a.gif")
    assert len(frames) == 12
    _, trace = make_video(ppo_run, tmp_path / "b.mp4", seconds=0.8, fps=10)
    assert trace.reward_int_raw is None and trace.episode_end.sum() == 2  # Deep Sea N=4: a game per 4 steps
    fig, lines = draw_strip(trace, 480, "ppo")
    assert set(lines) == {"reward_ext", "value_ext"} and len(fig.axes) == 2


def test_gif_keeps_the_frames_colours(tmp_path):
    """Each GIF frame gets its own palette: colours come back within a few levels of the frame's.

    Measured on these frames: mean absolute error 2.6 levels; ffmpeg's default fixed 3-3-2-bit palette gave 20.5.
    """
    rows, cols = np.mgrid[0:96, 0:128]
    frames = []
    for t in range(6):
        frame = np.stack([(cols * 2 + t * 5) % 256, (rows * 2) % 256, np.full_like(cols, 120)], -1).astype(np.uint8)
        frame[40:60, 40:90] = (31, 119, 180)  # matplotlib's tab10 blue, the strip's first line
        frames.append(frame)
    assert write_video(iter(frames), tmp_path / "a.gif", fps=10, gif=True) == 6
    _, decoded = _decoded(tmp_path / "a.gif")
    assert len(decoded) == 6
    error = np.abs(np.stack(decoded).astype(int) - np.stack(frames)).mean(axis=(1, 2, 3))
    assert error.max() < 6, error
    assert np.abs(decoded[3][50, 60].astype(int) - (31, 119, 180)).max() <= 8  # a flat colour stays itself


@pytest.mark.parametrize("args, problem", [
    (["{run}", "--seconds", "0"], "--seconds must be a positive number"),
    (["{run}", "--seconds", "nan"], "--seconds must be a positive number"),
    (["{run}", "--fps", "0"], "--fps must be between 1 and 60"),
    (["{run}", "--out", "{tmp}/a.gif"], "must end in .mp4"),
    (["{run}", "--out", "{file}/a.mp4"], "cannot create the folder"),
    (["{nockpt}"], "has no checkpoint yet"),
])
def test_video_bad_input_is_one_line_and_exit_code_2(ppo_run, tmp_path, capsys, args, problem):
    (tmp_path / "file").write_text("not a folder")
    nockpt = tmp_path / "nockpt"
    nockpt.mkdir()
    shutil.copy(ppo_run / "config.json", nockpt / "config.json")
    paths = {"run": ppo_run, "tmp": tmp_path, "file": tmp_path / "file", "nockpt": nockpt}
    assert main(["video", *[a.format(**paths) for a in args]]) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and len(err.splitlines()) == 1
