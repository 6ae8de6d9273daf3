"""The state probe (``prend probe --state``): labels read from the emulator's RAM, AtariARI's categories,
classifiers and the vector reduction with known answers on synthetic data, one-line errors for bad input,
and the command end to end on a tiny RAM-labelled frame set."""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import numpy as np
import pytest
import torch

from prend.cli import main
from prend.envs.games import atari_pb_game_id
from prend.envs.ram import ram_vector_env, read_ram
from prend.envs.vector import ale_vector_env
from prend.errors import PrendError
from prend.nets.atari_pb import ResNetGN
from prend.nets.atari_pb_io import save_atari_pb_checkpoint
from prend.pretrain.collect import CallableActions, CollectConfig, collect
from prend.pretrain.dataset import FrameData
from prend.pretrain.state_probe import (
    ATARIARI_RAM,
    StateProbeSettings,
    atariari_categories,
    category_mean,
    encoder_features,
    label_entropy,
    pixel_features,
    probe_variables,
    projection_matrix,
    state_labels,
    state_probe,
    three_way_split,
    vector_features,
    weighted_f1,
)

BOXING_RIGHT = 3  # Boxing's minimal action set: NOOP, FIRE, UP, RIGHT, LEFT, DOWN, ...


# -------------------------------------------------------------------------------------------- statistics
def test_weighted_f1_matches_a_hand_computation():
    target = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    # class 0: P 2/2, R 2/3 -> F1 0.8 (support 3); class 1: P 1/2, R 1/2 -> 0.5 (2); class 2: P 1/2, R 1 -> 2/3 (1)
    assert weighted_f1(pred, target) == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert weighted_f1(target, target) == 1.0
    # A value only ever predicted, never true, has no support and no weight; class 0: P 1, R 1/3 -> F1 0.5.
    assert weighted_f1(np.array([5, 5, 0]), np.array([0, 0, 0])) == pytest.approx(0.5)


def test_label_entropy_in_nats_and_the_atariari_threshold():
    assert label_entropy(np.arange(4)) == pytest.approx(math.log(4))
    assert label_entropy(np.zeros(10)) == 0.0
    # 95% one value: -(0.95 ln 0.95 + 0.05 ln 0.05) = 0.199 nats, below AtariARI's 0.6: dropped.
    assert label_entropy(np.array([0] * 95 + [1] * 5)) == pytest.approx(0.1985, abs=1e-4)


def test_state_labels_read_atariari_bytes():
    ram = np.zeros((3, 128), np.uint8)
    ram[:, 32], ram[:, 17], ram[:, 51] = [1, 2, 3], [9, 8, 7], [40, 41, 42]
    boxing = state_labels(ram, "boxing")
    assert set(boxing) == {"player_x", "player_y", "enemy_x", "enemy_y", "enemy_score", "clock", "player_score"}
    assert boxing["player_x"].tolist() == [1, 2, 3] and boxing["clock"].tolist() == [9, 8, 7]
    assert state_labels(ram, "riverraid")["player_x"].tolist() == [40, 41, 42]
    # list-valued variables are split like AtariARI's: qbert's score bytes 89, 90, 91
    assert (ATARIARI_RAM["qbert"]["score_0"], ATARIARI_RAM["qbert"]["score_2"]) == (89, 91)


def test_a_feature_that_is_the_label_scores_one_and_noise_scores_the_majority_guess():
    rng = np.random.default_rng(0)
    n = 1200
    episode = np.arange(n) // 60
    masks = three_way_split(episode, StateProbeSettings())
    assert not (masks[0] & masks[1]).any() and not (masks[1] & masks[2]).any() and not (masks[0] & masks[2]).any()
    for part in masks:  # whole episodes only
        assert set(np.unique(episode[part])).isdisjoint(np.unique(episode[~part]))
    y = rng.choice([10, 20, 30], size=n, p=[0.6, 0.3, 0.1])   # byte values, not class indices
    fast = StateProbeSettings(lr=0.02, max_epochs=30, patience=5)
    onehot = (y[:, None] == np.array([10, 20, 30])).astype(float)
    assert probe_variables(onehot, {"v": y}, masks, fast) == {"v": 1.0}
    # Noise: the best a linear classifier can do is the majority value 10 (60%) everywhere, whose weighted F1
    # is 0.6 * F1(10) = 0.6 * 2 * 0.6 / 1.6 = 0.45 (the other classes score 0).
    noise = rng.normal(size=(n, 16))
    f1 = probe_variables(noise, {"v": y}, masks, fast)["v"]
    test_share = np.mean(y[masks[2]] == 10)
    assert f1 == pytest.approx(test_share * 2 * test_share / (1 + test_share), abs=0.06)


def test_atariari_categories_and_the_category_mean_by_hand():
    boxing = {n: atariari_categories(n) for n in ATARIARI_RAM["boxing"]}
    assert boxing == {"player_x": ("agent_localization",), "player_y": ("agent_localization",),
                      "enemy_x": ("other_localization",), "enemy_y": ("other_localization",),
                      "enemy_score": ("score_clock_lives_display",), "clock": ("score_clock_lives_display",),
                      "player_score": ("score_clock_lives_display",)}
    riverraid = {n: atariari_categories(n) for n in ATARIARI_RAM["riverraid"]}
    assert riverraid["missile_y"] == ("small_object_localization",)
    assert riverraid["fuel_meter_low"] == ("score_clock_lives_display",)
    f1 = {"player_x": 0.9, "player_y": 0.7, "enemy_x": 0.3, "clock": 0.5, "player_score": 0.1, "ball_x": 1.0,
          "missile_y": 0.0, "dots_eaten_count": 0.4, "unfiled": 0.2}
    # agent 0.8, small objects 0.5, other 0.3, score/clock 0.3, misc 0.4; "unfiled" is in no category.
    means = category_mean(f1)
    assert means["agent_localization"] == pytest.approx(0.8)
    assert means["score_clock_lives_display"] == pytest.approx(0.3)
    assert means["across_categories"] == pytest.approx((0.8 + 0.5 + 0.3 + 0.3 + 0.4) / 5)
    assert "unfiled" not in means and math.isnan(category_mean({})["across_categories"])


def test_the_vector_reduction_projects_pools_or_keeps():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 64, 6, 6)).astype(np.float32)
    projected, how = vector_features(x, StateProbeSettings())
    p = projection_matrix(64 * 36, 256, seed=0)
    np.testing.assert_allclose(projected, x.reshape(10, -1) @ p, rtol=1e-5, atol=1e-5)
    assert "random projection" in how and "sha256" in how
    assert p.std() == pytest.approx(1 / np.sqrt(2304), rel=0.02)   # N(0, 1/D): lengths kept on average
    assert not np.array_equal(p, projection_matrix(2304, 256, seed=1))
    pooled, how = vector_features(x, StateProbeSettings(vector="pool"))
    np.testing.assert_allclose(pooled, x.mean((2, 3)), rtol=1e-6)
    small = rng.normal(size=(10, 256)).astype(np.float32)          # e.g. AtariARI's 256-d encoder output
    assert np.array_equal(vector_features(small, StateProbeSettings())[0], small)


def test_a_projected_map_keeps_where_a_sprite_is_and_pooling_loses_it():
    # The label is which of 8 cells of a 16x6x6 map holds the same bright pattern (a sprite's position):
    # linear in the flattened map, so its random projection to 256 features keeps it (F1 1); global pooling
    # gives every position the same vector, so the probe can only guess the majority.
    rng = np.random.default_rng(0)
    n = 900
    y = rng.integers(0, 8, n)
    x = 0.05 * rng.normal(size=(n, 16, 6, 6)).astype(np.float32)
    x[np.arange(n), :, y // 6 + 2, y % 6] += 1.0
    masks = three_way_split(np.arange(n) // 30, StateProbeSettings())
    fast = StateProbeSettings(lr=0.02, max_epochs=30, patience=5)
    projected, _ = vector_features(x, StateProbeSettings(vector_dim=32))   # 576 -> 32 still keeps 8 positions
    assert probe_variables(projected, {"v": y}, masks, fast)["v"] == 1.0
    pooled, _ = vector_features(x, StateProbeSettings(vector="pool"))
    assert probe_variables(pooled, {"v": y}, masks, fast)["v"] < 0.3    # 8 equally likely values: ~1/8


def _labelled_frames(n_per_episode=100, episodes=12, seed=0):
    """Boxing-labelled synthetic frames: player_x is drawn in the frame as a bright column and player_y as a
    bright row, the clock is noise; the other bytes are constant (dropped)."""
    rng = np.random.default_rng(seed)
    total = n_per_episode * episodes
    ram = np.zeros((total, 128), np.uint8)
    ram[:, 32] = rng.integers(0, 8, total) * 10       # player_x: 8 values, drawn in the frame
    ram[:, 34] = rng.integers(0, 4, total) * 10       # player_y: 4 values, drawn in the frame
    ram[:, 17] = rng.integers(0, 8, total)            # clock: not in the frame
    frames = np.zeros((total, 84, 84), np.uint8)
    frames[np.arange(total), :, ram[:, 32] + 2] = 200
    frames[np.arange(total), ram[:, 34] * 2 + 2, :] = 200
    frames += rng.integers(0, 3, frames.shape, dtype=np.uint8)   # no two stacks alike
    data = FrameData.synthetic([n_per_episode] * episodes, game_id=atari_pb_game_id("boxing"))
    data.frames, data.ram, data.games = frames, ram, ["boxing"]
    return data


def test_state_probe_tells_an_encoder_that_carries_the_agent_from_one_that_does_not():
    data = _labelled_frames(n_per_episode=80, episodes=10)
    rows = np.arange(len(data))
    carries = np.concatenate([np.eye(8)[data.ram[:, 32] // 10], np.eye(4)[data.ram[:, 34] // 10]], 1)
    blind = np.random.default_rng(1).normal(size=(len(data), 8))     # knows nothing
    settings = StateProbeSettings(lr=0.05, max_epochs=12, patience=3, repeats=2)
    result = state_probe({"pretrained": carries, "random_init": blind}, data, settings)
    boxing = result["per_game"]["boxing"]
    assert boxing["categories"] == {"player_x": ["agent_localization"], "player_y": ["agent_localization"],
                                    "clock": ["score_clock_lives_display"]}
    assert set(boxing["dropped"]) == {"enemy_x", "enemy_y", "enemy_score", "player_score"}
    for view in ("map", "vector"):
        f1 = boxing[view]["variables"]
        assert f1["player_x"]["pretrained"] == 1.0 and f1["player_y"]["pretrained"] == 1.0
        assert f1["player_x"]["random_init"] < 0.35                       # 8 equally likely values: ~1/8
        clock = f1["clock"]["pretrained"]
        assert clock < 0.35
        # Plain mean over 3 variables; AtariARI's: agent localisation (1.0) and score/clock, then their mean.
        assert boxing[view]["mean"]["pretrained"] == pytest.approx((1 + 1 + clock) / 3)
        assert boxing[view]["category_mean"]["pretrained"] == pytest.approx((1 + clock) / 2)
        # Two probe seeds: the figure is their mean, and over one game, the game's.
        per_seed = boxing[view]["seeds"]["random_init"]["category_mean"]
        assert len(per_seed) == 2 and per_seed[0] != per_seed[1]
        assert boxing[view]["category_mean"]["random_init"] == pytest.approx(np.mean(per_seed))
        assert result[view]["category_mean"] == pytest.approx(boxing[view]["category_mean"])
        assert result[view]["spread"]["random_init"]["category_mean"] == pytest.approx(np.ptp(per_seed))
    # The raw-pixel reference sees the column that encodes player_x, in its 441 pixels and in 256 of them.
    assert boxing["map"]["variables"]["player_x"]["pixels"] > 0.9
    assert boxing["vector"]["variables"]["player_x"]["pixels"] > 0.9
    assert "as it is" in result["vector_reduction"]["pretrained"]
    assert "441 -> 256" in result["vector_reduction"]["pixels"]
    assert result["mean"] == boxing["map"]["mean"] and min(boxing["frames"]["test"]) > 0
    assert pixel_features(data, rows[:2]).shape == (2, 21 * 21)


def test_a_game_whose_variables_are_all_constant_reports_them_dropped_and_no_mean():
    data = _labelled_frames(episodes=6)
    data.ram[:] = 7
    boxing = state_probe({"pretrained": np.zeros((len(data), 2))}, data, StateProbeSettings(max_epochs=1))
    boxing = boxing["per_game"]["boxing"]
    assert boxing["map"]["variables"] == {} and len(boxing["dropped"]) == 7
    assert math.isnan(boxing["map"]["mean"]["pretrained"])


def test_test_observations_seen_in_training_are_removed_and_short_episodes_left_out():
    data = _labelled_frames(episodes=8)
    data.frames[:] = 0  # every stack identical: every test frame is a duplicate of a training frame
    settings = StateProbeSettings(max_epochs=1, repeats=1, vector="off")
    result = state_probe({"pretrained": np.zeros((len(data), 2))}, data, settings)
    frames = result["per_game"]["boxing"]["frames"]
    assert frames["test"] == [0] and frames["test_duplicates_removed"][0] > 0
    # AtariARI leaves out episodes of at most 64 steps: 4 episodes of 64 frames go, 4 of 65 stay.
    data = _labelled_frames(n_per_episode=1, episodes=8 * 64 + 4)
    lengths = [64, 65] * 4
    data.episode = np.repeat(np.arange(8), lengths)
    data.t = np.concatenate([np.arange(n) for n in lengths])
    frames = state_probe({"pretrained": np.zeros((len(data), 2))}, data, settings)["per_game"]["boxing"]["frames"]
    assert (frames["episodes"], frames["short_episodes_left_out"]) == (4, 4)
    assert frames["train"][0] + frames["val"][0] + frames["test"][0] + frames["test_duplicates_removed"][0] == 260
    # --state-settings.stride 4 keeps t = 0, 4, ..., 64 of each 65-frame episode: 17 of them.
    strided = dataclasses.replace(settings, stride=4)
    frames = state_probe({"pretrained": np.zeros((len(data), 2))}, data, strided)["per_game"]["boxing"]["frames"]
    assert frames["train"][0] + frames["val"][0] + frames["test"][0] + frames["test_duplicates_removed"][0] == 68


def test_bad_state_probe_input_is_a_prend_error():
    data = _labelled_frames(episodes=4)
    quick = StateProbeSettings(max_epochs=1, repeats=1)
    with pytest.raises(PrendError, match="at least 3 episodes"):
        three_way_split(np.zeros(50, int), quick)
    with pytest.raises(PrendError, match="boxing: .*at least 3 episodes"):
        state_probe({}, _labelled_frames(episodes=2), quick)
    enduro = _labelled_frames(episodes=4)
    enduro.games = ["enduro"]
    with pytest.raises(PrendError, match="no AtariARI state annotation for enduro"):
        state_probe({}, enduro, quick)

    def broken(rows):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(PrendError, match="'mine' failed on 400 frames.*CUDA out of memory"):
        state_probe({"mine": broken}, data, quick)
    with pytest.raises(PrendError, match="returned float64 features of shape \\(3, 2\\) for 400 frames"):
        state_probe({"mine": lambda rows: np.zeros((3, 2))}, data, quick)
    with pytest.raises(PrendError, match="non-finite"):
        encoder_features("mine", lambda rows: np.full((len(rows), 2), np.nan), np.arange(5))
    assert encoder_features("t", lambda rows: torch.ones(len(rows), 3), np.arange(4)).shape == (4, 3)


# ------------------------------------------------------------------------------------------------ RAM
def test_ram_env_frames_equal_the_native_env_and_its_ram_follows_a_scripted_player():
    native = ale_vector_env("boxing", 1, sticky_action_prob=0.0, max_episode_steps=1000)
    ram_env = ram_vector_env("boxing", 1, sticky_action_prob=0.0, max_episode_steps=1000)
    try:
        native.reset(seed=0)
        obs, _ = ram_env.reset(seed=0)
        xs = [int(read_ram(ram_env)[0, 32])]
        columns = []
        for _ in range(25):
            a = np.array([BOXING_RIGHT])
            nobs, *_ = native.step(a)
            obs, *_ = ram_env.step(a)
            assert np.array_equal(nobs[0, -1], obs[0, -1])  # the same newest frame, bit for bit
            xs.append(int(read_ram(ram_env)[0, 32]))
            columns.append(obs[0, -1])
    finally:
        native.close()
        ram_env.close()
    # Walking right: the player's x byte never decreases and moves by more than 10 pixels' worth.
    assert all(b >= a for a, b in zip(xs, xs[1:], strict=False)) and xs[-1] - xs[0] >= 10, xs
    # The white boxer's pixels move right with it: their mean column follows the RAM byte.
    white = [np.flatnonzero((f > 200).any(0)).mean() for f in columns]
    assert np.corrcoef(white, xs[1:])[0, 1] > 0.9


def test_collect_with_ram_stores_the_labels_of_each_frame(tmp_path):
    calls = []

    def right(obs, first):
        calls.append(len(obs))
        return np.full(len(obs), BOXING_RIGHT)

    cfg = CollectConfig(out=tmp_path / "d", games=("boxing",), frames_per_game=60, num_envs=2, chunk_frames=20,
                        sticky_action_prob=0.0, ram=True, progress=False)
    manifest = collect(cfg, action_source=CallableActions(right))
    assert all(c["ram"] for c in manifest["games"]["boxing"]["chunks"])
    data = FrameData.load(tmp_path / "d")
    assert data.ram is not None and data.ram.shape == (60, 128)
    # Each stream starts from the same reset and walks right: its x bytes rise, as the scripted run's do.
    for ep in np.unique(data.episode):
        x = data.ram[data.episode == ep, 32].astype(int)
        assert (np.diff(x) >= 0).all() and x[-1] > x[0]
    # Frames without --ram load with ram None.
    collect(CollectConfig(out=tmp_path / "n", games=("boxing",), frames_per_game=16, num_envs=2, chunk_frames=8,
                          progress=False))
    assert FrameData.load(tmp_path / "n").ram is None


# ------------------------------------------------------------------------------------------- command
def test_prend_probe_state_end_to_end(ram_frames, tmp_path, capsys):
    out = tmp_path / "probe.json"
    torch.manual_seed(0)  # the twin's seed (no pre-training seed stored): the probed net is its twin
    save_atari_pb_checkpoint(tmp_path / "init.pth", backbone=ResNetGN("resnet18", 0.125))
    code = main(["probe", str(tmp_path / "init.pth"), "--data", str(ram_frames), "--state", "--no-classic",
                 "--state-settings.max-epochs", "2", "--state-settings.repeats", "2", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "state probe: test weighted F1 of prend's linear classifiers" in printed and "boxing: " in printed
    assert "mean over probe seeds 0, 1" in printed
    # AtariARI's averaging over prend's classifiers (the default): not "AtariARI's figure".
    assert "category mean (AtariARI's averaging)" in printed and "AtariARI's figure" not in printed
    assert "agent loc" in printed
    # The probed net is called by the name it was given, never "pretrained" (prend cannot know it was).
    assert str(tmp_path / "init.pth") in printed.splitlines()[2] and "pretrained" not in printed
    # Under --no-progress each stage still says what it does and about how long it takes.
    status = captured.err
    assert "probe: features of random init: 480 frames" in status and "about" in status
    assert "s left" in status and "state probe done in" in status
    # The stage lines too name the probed net as given, not by its JSON key.
    assert f"features) of {tmp_path / 'init.pth'}: category mean" in status and "pretrained" not in status
    saved = json.loads(out.read_text())
    probe = saved["state_probe"]
    boxing = probe["per_game"]["boxing"]
    for view in ("map", "vector"):
        assert set(boxing[view]["mean"]) == {"pretrained", "random_init", "pixels"}
        assert all(0.0 <= v <= 1.0 for v in boxing[view]["category_mean"].values())
        # Identical nets, identical features, one process: identical scores.
        assert boxing[view]["category_mean"]["pretrained"] == boxing[view]["category_mean"]["random_init"]
    assert "2304 -> 256" in probe["vector_reduction"]["pretrained"]
    assert probe["settings"]["classifiers"] == "prend" and probe["settings"]["patience"] == 10
    assert "temporal_coherence" not in saved and saved["details"]["arch"] == "resnet18"
    assert saved["details"]["init_seed"] == 0 and saved["details"]["names"]["pretrained"] == str(tmp_path / "init.pth")


FAILING_ENCODER = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 2, 8, stride=8)

    def forward(self, x):
        if len(x) > 2:  # passes prend's check of 2 stacks, fails on the probe's batches
            {}
        return self.conv(x)


def factory():
    return Net()
"""


@pytest.mark.parametrize("body, message", [
    ("raise RuntimeError('out of memory')", "the encoder 'probe_enc_{}:factory' failed on 256 frames "
                                            "(RuntimeError: out of memory)"),
    ("return self.conv(x)[:2]", "the encoder 'probe_enc_{}:factory' returned float32 features of shape "
                                "(2, 2, 10, 10) for 256 frames"),
])
def test_an_encoder_that_fails_is_one_line_and_exit_2(ram_frames, tmp_path, monkeypatch, capsys, body, message):
    name = f"probe_enc_{len(body)}"
    (tmp_path / f"{name}.py").write_text(FAILING_ENCODER.format(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    assert main(["probe", f"{name}:factory", "--data", str(ram_frames), "--state", "--no-classic",
                 "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("probe: ")]
    assert len(err) == 1 and message.format(len(body)) in err[0]


def test_state_probe_of_too_few_episodes_or_no_annotated_game_is_one_line_and_exit_2(ram_frames, tmp_path,
                                                                                     capsys):
    # The first 120 frames of the set are one episode of one stream: no three-way split.
    assert main(["probe", "resnet18", "--backbone-width", "0.125", "--data", str(ram_frames), "--state",
                 "--no-classic", "--max-frames-per-game", "120", "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("probe: ")]
    assert len(err) == 1 and "boxing: the state probe needs at least 3 episodes" in err[0] and "hold 1 " in err[0]
    collect(CollectConfig(out=tmp_path / "e", games=("enduro",), frames_per_game=16, num_envs=2, chunk_frames=8,
                          progress=False))
    assert main(["probe", "compact", "--data", str(tmp_path / "e"), "--state", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no AtariARI state annotation for enduro" in err[0]


def test_a_backbone_name_is_probed_like_the_training_flag_builds_it():
    from prend.pretrain.probe import ProbeConfig, load_probed_backbone

    backbone, twin, facts = load_probed_backbone(ProbeConfig(checkpoint="resnet18", backbone_width=0.25))
    assert (backbone.arch, backbone.width, type(twin)) == ("resnet18", 0.25, ResNetGN)
    assert facts["step"] == 0 and facts["init_seed"] == 0
    shipped, _, facts = load_probed_backbone(ProbeConfig(checkpoint="compact"))
    assert facts["checkpoint"].endswith("siammae_resnet18_w0125.pt") and shipped.width == 0.125


@pytest.mark.parametrize("argv, message", [
    (["probe", "no/such/file.pth", "--state"], "neither a checkpoint file nor a backbone name"),
    (["probe", "compact", "--no-classic"], "nothing to probe"),
])
def test_bad_probe_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_state_without_ram_labels_is_refused_in_one_line(tmp_path, capsys):
    collect(CollectConfig(out=tmp_path / "n", games=("boxing",), frames_per_game=16, num_envs=2, chunk_frames=8,
                          progress=False))
    assert main(["probe", "compact", "--data", str(tmp_path / "n"), "--state", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ram" in err[0] and "no RAM labels" in err[0]


def test_random_twin_of_a_users_module_is_reinitialised():
    from prend.pretrain.probe import random_twin

    net = torch.nn.Sequential(torch.nn.Conv2d(4, 2, 3), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    twin = random_twin(net, seed=0)
    assert not torch.equal(twin[0].weight, net[0].weight) and torch.equal(net[0].weight, torch.ones_like(net[0].weight))
    assert torch.equal(random_twin(net, seed=0)[0].weight, twin[0].weight)   # the seed fixes it


def test_a_vector_output_is_its_own_vector_view_and_is_fitted_once(monkeypatch):
    import prend.pretrain.state_probe as sp

    data = _labelled_frames(n_per_episode=80, episodes=6)
    vec = np.random.default_rng(0).normal(size=(len(data), 16)).astype(np.float32)
    calls = []
    real = sp.probe_variables
    monkeypatch.setattr(sp, "probe_variables", lambda x, *a, **k: calls.append(x.shape[1]) or real(x, *a, **k))
    settings = StateProbeSettings(lr=0.05, max_epochs=2, patience=1, repeats=1)
    result = state_probe({"vec": vec}, data, settings)
    # vec: one fit (the map view; its vector view is the same 16 features); pixels: 441 in the map, 256 projected
    assert sorted(calls) == [16, 256, 441]
    boxing = result["per_game"]["boxing"]
    assert boxing["vector"]["category_mean"]["vec"] == boxing["map"]["category_mean"]["vec"]
