"""AtariARI's recipe (prend.pretrain.atariari) and its probe (prend.pretrain.atariari_probe)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from prend.errors import PrendError
from prend.pretrain.atariari import (
    AtariARIEncoder,
    Episodes,
    collect_episodes,
    load_encoder,
    load_episodes,
    split_train_val,
)
from prend.pretrain.atariari_classifiers import atariari_probe_variables
from prend.pretrain.atariari_objectives import (
    STDIMScores,
    STDIMTrainer,
    SupervisedTrainer,
    ram_cross_entropy,
    stdim_loss,
)
from prend.pretrain.atariari_probe import (
    PUBLISHED_BOXING,
    duplicate_test_frames,
    format_probe,
    probe_encoders,
    probe_features,
    probe_split,
    run_encoders,
)
from prend.pretrain.atariari_train import RAM_CLASSES, STDIMSettings, SupervisedSettings
from prend.pretrain.state_probe import StateProbeSettings, probe_variables


# ------------------------------------------------------------------------------------------------ the loss
def test_stdim_loss_matches_hand_computed_cross_entropies():
    # Two samples, one local cell, one channel; identity-like score maps so the logits are plain products.
    scores = STDIMScores(feature_dim=1, local_channels=1)
    with torch.no_grad():
        for layer in (scores.global_local, scores.local_local):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
    out_t = torch.tensor([[1.0], [2.0]])
    local_t = torch.tensor([3.0, -1.0]).view(2, 1, 1, 1)
    local_prev = torch.tensor([1.0, -2.0]).view(2, 1, 1, 1)
    g, lo = stdim_loss(scores, out_t, local_t, local_prev)
    # global-local logits[i, j] = out_t[i] * prev[j]: [[1, -2], [2, -4]]; positives on the diagonal.
    expect_g = 0.5 * ((math.log(math.exp(1) + math.exp(-2)) - 1) + (math.log(math.exp(2) + math.exp(-4)) + 4))
    # local-local logits[i, j] = local_t[i] * prev[j]: [[3, -6], [-1, 2]].
    expect_l = 0.5 * ((math.log(math.exp(3) + math.exp(-6)) - 3) + (math.log(math.exp(-1) + math.exp(2)) - 2))
    assert g.item() == pytest.approx(expect_g, rel=1e-5)
    assert lo.item() == pytest.approx(expect_l, rel=1e-5)


def test_stdim_loss_averages_over_cells():
    # Two cells whose scores differ: the loss is the mean of the per-cell losses computed one cell at a time.
    torch.manual_seed(0)
    scores = STDIMScores(5, 3)
    out_t, local_t, local_prev = torch.randn(4, 5), torch.randn(4, 3, 1, 2), torch.randn(4, 3, 1, 2)
    g, lo = stdim_loss(scores, out_t, local_t, local_prev)
    per_cell = [stdim_loss(scores, out_t, local_t[..., k:k + 1], local_prev[..., k:k + 1]) for k in range(2)]
    assert g.item() == pytest.approx(np.mean([c[0].item() for c in per_cell]), rel=1e-5)
    assert lo.item() == pytest.approx(np.mean([c[1].item() for c in per_cell]), rel=1e-5)


def test_encoder_matches_atariari_shapes_and_initialisation():
    enc = AtariARIEncoder("full")
    assert [tuple(m.weight.shape) for m in enc.convs if isinstance(m, torch.nn.Conv2d)] == [
        (32, 1, 8, 8), (64, 32, 4, 4), (128, 64, 4, 4), (64, 128, 3, 3)]
    assert tuple(enc.head.weight.shape) == (256, 64 * 9 * 6)
    w = enc.head.weight  # orthogonal with ReLU gain sqrt(2): rows orthogonal, each of norm sqrt(2)
    assert torch.allclose(w @ w.T, 2 * torch.eye(256), atol=1e-4)
    biases = [m.bias.detach() for m in enc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(float(b.abs().max()) == 0 for b in biases)


# ------------------------------------------------------------------------------------------------ training
def moving_block_episodes(n_episodes: int = 6, length: int = 80, seed: int = 0) -> Episodes:
    """48x48 frames: a backdrop of random tiles of the episode's own, and a block whose position is a random
    walk (RAM byte 32, Boxing's player_x). Consecutive frames share their backdrop; other episodes do not."""
    rng = np.random.default_rng(seed)
    frames, ram = [], []
    for _ in range(n_episodes):
        backdrop = np.kron(rng.integers(0, 120, (6, 6)), np.ones((8, 8))).astype(np.uint8)
        pos = np.cumsum(rng.integers(-2, 3, length)) % 40
        f = np.repeat(backdrop[None], length, 0)
        for t, p in enumerate(pos):
            f[t, p:p + 8, p:p + 8] = 255
        r = np.zeros((length, 128), np.uint8)
        r[:, 32] = pos
        frames.append(f)
        ram.append(r)
    return Episodes(frames, ram, "boxing", "stack84")


def test_stdim_learns_to_tell_episodes_apart(tmp_path):
    # A pair (t, t-1) shares its episode's backdrop, which no other episode has: a problem ST-DIM can solve.
    train, val = moving_block_episodes(6, length=32, seed=0), moving_block_episodes(2, length=32, seed=1)
    settings = STDIMSettings(lr=1e-3, batch_size=4, max_epochs=2, patience=10, seed=0, checkpoint_every=1000)
    trainer = STDIMTrainer(train, val, tmp_path / "run", settings, log=lambda line: None)
    summary = trainer.fit()
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert summary["epochs"] == 2 and len(history) == 2
    chance = 2 * math.log(4)  # two InfoNCE terms over 4 candidates
    assert history[-1]["train_loss"] < 0.6 * chance < history[0]["train_loss"] + 0.6, history
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pt")) == [
        "best.pt", "checkpoint.pt", "epoch001.pt", "epoch002.pt", "init.pt"]
    # best.pt counts epochs as the epochNNN.pt files do (epochs completed), and holds that file's weights.
    best_index = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    same_epoch = torch.load(tmp_path / "run" / f"epoch{best_index + 1:03d}.pt", weights_only=True)
    assert best["epoch"] == same_epoch["epoch"] == best_index + 1
    assert all(torch.equal(best["encoder"][k], same_epoch["encoder"][k]) for k in best["encoder"])


def test_stdim_resume_continues_exactly(tmp_path):
    train, val = moving_block_episodes(4, length=40, seed=0), moving_block_episodes(2, length=40, seed=1)
    settings = STDIMSettings(lr=1e-3, batch_size=8, max_epochs=2, patience=10, seed=0, checkpoint_every=5)
    whole = STDIMTrainer(train, val, tmp_path / "whole", settings, log=lambda line: None)
    whole.fit()
    calls = iter(range(1000))
    part = STDIMTrainer(train, val, tmp_path / "part", settings, log=lambda line: None)
    stopped = part.fit(stop=lambda: next(calls) == 22)  # stops in epoch 1, after its 3rd batch
    assert (stopped["epochs"], stopped["batch"], stopped["finished"]) == (1, 3, False)
    resumed = STDIMTrainer(train, val, tmp_path / "part", settings, log=lambda line: None)
    assert (resumed.epoch, resumed.batch) == (1, 3)
    resumed.fit()
    for a, b in zip(whole.encoder.state_dict().values(), resumed.encoder.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert [h["val_loss"] for h in whole.history] == pytest.approx([h["val_loss"] for h in resumed.history],
                                                                   rel=1e-5)
    with pytest.raises(PrendError, match="other settings"):
        STDIMTrainer(train, val, tmp_path / "part", STDIMSettings(max_epochs=3), log=lambda line: None)


def test_single_game_plan_is_the_one_drawn_before_multi_game_runs(tmp_path):
    # A running single-game job resumes with this code: its samples must be the old formula's, bit for bit.
    train, val = moving_block_episodes(5, length=50, seed=0), moving_block_episodes(2, length=70, seed=1)
    train.frames[1], train.ram[1] = train.frames[1][:37], train.ram[1][:37]  # unequal lengths
    settings = STDIMSettings(batch_size=8, max_epochs=0, seed=7)
    trainer = STDIMTrainer(train, val, tmp_path / "run", settings, log=lambda line: None)
    for split, episodes in ((0, train), (1, val)):
        for epoch in (0, 3):
            rng = np.random.default_rng([settings.seed, epoch, split])
            batches = episodes.steps // settings.batch_size
            lengths = np.array([len(f) for f in episodes.frames])
            ep = rng.integers(len(episodes), size=(batches, settings.batch_size))
            t = 1 + (rng.random(ep.shape) * (lengths[ep] - 1)).astype(np.int64)
            game, ep_now, t_now = trainer._plan([episodes], epoch, split)
            assert np.array_equal(ep_now, ep) and np.array_equal(t_now, t) and not game.any()
    assert trainer.summary()["games"] == ["boxing"]


def two_games() -> tuple[list[Episodes], list[Episodes]]:
    """Boxing with three times Pong's training frames; the games' frames differ (Pong's are inverted)."""
    box, box_val = moving_block_episodes(3, length=40, seed=0), moving_block_episodes(1, length=40, seed=1)
    pong, pong_val = moving_block_episodes(1, length=40, seed=2), moving_block_episodes(1, length=40, seed=3)
    for eps in (pong, pong_val):
        eps.game, eps.frames = "pong", [255 - f for f in eps.frames]
    return [box, pong], [box_val, pong_val]


def test_multi_game_batches_are_one_game_each_in_proportion_to_frames(tmp_path):
    train, val = two_games()
    settings = STDIMSettings(lr=1e-3, batch_size=8, max_epochs=1, patience=10, seed=0, checkpoint_every=1000)
    trainer = STDIMTrainer(train, val, tmp_path / "run", settings, log=lambda line: None)
    # Every batch's frames come from one game: record which game each frame read belongs to, per batch.
    reads: list[str] = []
    for sets in (trainer.train_sets, trainer.val_sets):
        for eps in sets:
            inputs = eps.inputs
            eps.inputs = lambda e, t, inputs=inputs, game=eps.game: reads.append(game) or inputs(e, t)
    per_batch, terms = [], trainer._terms

    def spy(*args):
        reads.clear()
        out = terms(*args)
        per_batch.append((args[0], set(reads), len(reads)))
        return out

    trainer._terms = spy
    summary = trainer.fit()
    assert summary["epochs"] == 1 and summary["games"] == ["boxing", "pong"]
    train_batches = [b for b in per_batch if b[0] == 0]
    assert len(train_batches) == (120 + 40) // 8
    assert all(len(games) == 1 and n == 16 for _, games, n in per_batch)  # 8 pairs (t, t-1), one game
    # Validation: each game its own steps // batch_size batches.
    assert [g == {"pong"} for s, g, _ in per_batch if s == 1].count(True) == 40 // 8
    history = json.loads((tmp_path / "run" / "history.jsonl").read_text())
    assert set(history["val_loss_by_game"]) == {"boxing", "pong"}
    # The training batches' games follow the frames, 3:1, over many epochs' plans.
    games = np.concatenate([trainer._plan(train, e, 0)[0] for e in range(100)])
    assert abs(np.mean(games == 0) - 0.75) < 0.03
    for e in range(3):  # episodes are drawn within the batch's game
        game, ep, t = trainer._plan(train, e, 0)
        for g, sets in enumerate(train):
            lengths = np.array([len(f) for f in sets.frames])
            assert ep[game == g].max() < len(sets) and (t[game == g] < lengths[ep[game == g]]).all()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["games"] == ["boxing", "pong"]
    with pytest.raises(PrendError, match="pass the same games"):
        STDIMTrainer(train[:1], val[:1], tmp_path / "run", settings, log=lambda line: None)
    with pytest.raises(PrendError, match="differ"):
        STDIMTrainer(train, val[::-1], tmp_path / "other", settings, log=lambda line: None)


def test_ram_cross_entropy_matches_hand_computed():
    # Two samples, two variables, three classes.
    logits = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]],
                           [[0.0, 0.0, 3.0], [2.0, -1.0, 1.0]]])
    labels = torch.tensor([[1, 2], [0, 0]])
    ce = lambda row, k: math.log(sum(math.exp(v) for v in row)) - row[k]  # noqa: E731
    expect = [(ce([1, 2, 0], 1) + ce([0, 0, 3], 0)) / 2, (ce([0, 0, 0], 2) + ce([2, -1, 1], 0)) / 2]
    assert ram_cross_entropy(logits, labels).tolist() == pytest.approx(expect, rel=1e-6)


def block_position_episodes(n_episodes: int, length: int = 48, seed: int = 0) -> Episodes:
    """36x36 frames with a block at one of four places, player_x (RAM byte 32) the place: readable from the
    stack's last frame."""
    rng = np.random.default_rng(seed)
    frames, ram = [], []
    for _ in range(n_episodes):
        place = rng.integers(0, 4, length)
        f = np.zeros((length, 36, 36), np.uint8)
        for t, p in enumerate(place):
            f[t, 9 * p:9 * p + 9, 9 * p:9 * p + 9] = 255
        r = np.zeros((length, 128), np.uint8)
        r[:, 32] = 10 * place
        r[:, 17] = 3  # the clock: constant, so the entropy filter drops it
        frames.append(f)
        ram.append(r)
    return Episodes(frames, ram, "boxing", "stack84")


def test_supervised_learns_labels_the_frame_shows(tmp_path):
    train, val = block_position_episodes(4, seed=0), block_position_episodes(2, seed=1)
    settings = SupervisedSettings(lr=1e-3, batch_size=16, max_epochs=3, patience=10, seed=0, checkpoint_every=1000)
    trainer = SupervisedTrainer(train, val, tmp_path / "run", settings, log=lambda line: None)
    assert trainer.variables == ["player_x"]  # the other six Boxing variables are constant: dropped
    trainer.fit()  # 3 epochs of 12 batches
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[0]["train_loss"] > 0.5 * math.log(RAM_CLASSES)
    # Four equally likely places: the prior alone scores ln 4 = 1.39; reading the frame, far less.
    assert history[-1]["train_loss"] < 0.5 < math.log(4) and history[-1]["val_loss"] < 0.5, history
    assert history[-1]["train_player_x"] == history[-1]["train_loss"]
    # The encoder files are ST-DIM's, read by the same loader; the checkpoint records the variables.
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pt")) == [
        "best.pt", "checkpoint.pt", "epoch001.pt", "epoch002.pt", "epoch003.pt", "init.pt"]
    loaded = load_encoder(tmp_path / "run" / "epoch003.pt")
    for a, b in zip(trainer.encoder.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["variables"] == ["player_x"] and state["objective"] == "supervised"
    every = SupervisedTrainer(train, val, tmp_path / "all", SupervisedSettings(min_entropy=0.0, max_epochs=0),
                              log=lambda line: None)
    assert len(every.variables) == 7
    STDIMTrainer(train, val, tmp_path / "stdim", STDIMSettings(max_epochs=0), log=lambda line: None)._save()
    with pytest.raises(PrendError, match="ST-DIM run"):
        SupervisedTrainer(train, val, tmp_path / "stdim", settings, log=lambda line: None)


def test_supervised_resume_continues_exactly(tmp_path):
    train, val = block_position_episodes(2, seed=0), block_position_episodes(2, length=32, seed=1)
    settings = SupervisedSettings(lr=1e-3, batch_size=8, max_epochs=2, patience=10, seed=0, checkpoint_every=4)
    whole = SupervisedTrainer(train, val, tmp_path / "whole", settings, log=lambda line: None)
    whole.fit()
    calls = iter(range(1000))
    part = SupervisedTrainer(train, val, tmp_path / "part", settings, log=lambda line: None)
    stopped = part.fit(stop=lambda: next(calls) == 16)  # 12 batches an epoch: stops in epoch 1 after batch 5
    assert (stopped["epochs"], stopped["batch"], stopped["finished"]) == (1, 5, False)
    resumed = SupervisedTrainer(train, val, tmp_path / "part", settings, log=lambda line: None)
    assert (resumed.epoch, resumed.batch) == (1, 5)
    resumed.fit()
    for a, b in zip(whole.encoder.state_dict().values(), resumed.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(whole.heads.state_dict().values(), resumed.heads.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert whole.history[-1]["val_loss"] == resumed.history[-1]["val_loss"]
    with pytest.raises(PrendError, match="other settings"):
        SupervisedTrainer(train, val, tmp_path / "part", SupervisedSettings(min_entropy=0.0), log=lambda line: None)


def test_split_drops_short_episodes_and_keeps_whole_episodes():
    eps = moving_block_episodes(5, length=80)
    eps.frames.append(eps.frames[0][:30])
    eps.ram.append(eps.ram[0][:30])
    train, val = split_train_val(eps, seed=0)
    assert (len(train), len(val)) == (4, 1) and all(len(f) == 80 for f in train.frames + val.frames)
    with pytest.raises(PrendError, match="episode"):
        split_train_val(eps.subset([5]), seed=0)


# ------------------------------------------------------------------------------------------------- the data
def test_collect_random_play_with_ram(tmp_path):
    path = collect_episodes("Boxing", 300, seed=3, root=tmp_path, frame="full")
    eps = load_episodes(path)
    assert eps.steps == 300 and eps.frames[0].shape[1:] == (210, 160) and eps.ram[0].shape[1:] == (128,)
    # The players move under random play, and the RAM bytes that say where move with them.
    assert len(np.unique(eps.ram[0][:, 32])) > 3 and len(np.unique(eps.ram[0][:, 34])) > 3
    assert collect_episodes("boxing", 300, seed=3, root=tmp_path, frame="full") == path  # finished: reused
    with pytest.raises(PrendError, match="notagame"):
        collect_episodes("notagame", 10, seed=0, root=tmp_path)


# ------------------------------------------------------------------------------------------------ the probe
def test_probe_split_matches_atariari_fractions():
    part = probe_split([100] * 20 + [50], seed=1)
    assert np.bincount(part + 1).tolist() == [50, 1400, 200, 400]
    episode_part = part[:2000].reshape(20, 100)
    assert all(len(set(row)) == 1 for row in episode_part)  # whole episodes
    with pytest.raises(PrendError, match="at least 4"):
        probe_split([100, 100, 100], seed=0)


def test_duplicate_test_frames_are_found_across_episodes():
    a = np.zeros((3, 2, 2), np.uint8)
    a[1] = 1
    b = a.copy()
    b[2] = 7
    part = np.array([0, 0, 0, 2, 2, 2])
    assert duplicate_test_frames([a, b], part).tolist() == [False, False, False, True, True, False]


def test_probe_features_scores_informative_and_noise_features():
    rng = np.random.default_rng(0)
    n = 2000
    ram = np.zeros((n, 128), np.uint8)
    ram[:, 32] = rng.integers(0, 4, n)   # player_x: agent localisation
    ram[:, 17] = rng.integers(0, 4, n)   # clock: score/clock/lives/display
    informative = np.concatenate([np.eye(4)[ram[:, 32]], rng.normal(size=(n, 4))], 1)  # reads x, not the clock
    part = np.repeat([0] * 14 + [1] * 2 + [2] * 4, 100)
    settings = StateProbeSettings(lr=0.05, max_epochs=30, patience=5, seed=0)
    figures = probe_features(informative, ram, "boxing", part, seed=0, classifier="prend", settings=settings)
    assert figures["variables"]["player_x"] > 0.95
    assert figures["variables"]["clock"] < 0.45  # four equally likely values: chance weighted F1 ~0.25
    # The other five Boxing variables are constant here, so AtariARI's entropy filter drops them.
    assert set(figures["dropped"]) == {"player_y", "enemy_x", "enemy_y", "enemy_score", "player_score"}
    cats = figures["categories"]
    assert cats == {"agent_localization": figures["variables"]["player_x"],
                    "score_clock_lives_display": figures["variables"]["clock"]}
    assert figures["across_categories"] == pytest.approx(np.mean(list(cats.values())))


def test_atariari_classifiers_read_raw_features_and_stop_on_accuracy():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 1500)
    part = np.repeat([0] * 10 + [1] * 2 + [2] * 3, 100)
    onehot = np.eye(5)[y]
    noise = rng.normal(size=(1500, 8))
    fast = dict(lr=0.05, max_epochs=15, patience=3)
    assert atariari_probe_variables(np.concatenate([onehot, noise], 1), {"v": y}, part, **fast)["v"] > 0.95
    assert atariari_probe_variables(noise, {"v": y}, part, **fast)["v"] < 0.4  # chance: ~0.2
    # Raw features: the same one-hot scaled down by 1e-4 barely moves the logits in a few epochs, where the
    # standardised probe, which rescales every feature, reads it at once.
    tiny = np.concatenate([onehot * 1e-4, noise * 1e-4], 1)
    raw = atariari_probe_variables(tiny, {"v": y}, part, lr=3e-4, max_epochs=3, patience=3)["v"]
    masks = (part == 0, part == 1, part == 2)
    standardised = probe_variables(tiny, {"v": y}, masks, StateProbeSettings(lr=0.05, max_epochs=15, patience=3))
    assert raw < 0.5 < 0.95 < standardised["v"]


def test_probe_encoders_end_to_end_and_table(tmp_path):
    train, val = moving_block_episodes(4, length=40, seed=0), moving_block_episodes(2, length=40, seed=1)
    settings = STDIMSettings(lr=1e-3, batch_size=8, max_epochs=1, patience=10, seed=0)
    STDIMTrainer(train, val, tmp_path / "run", settings, log=lambda line: None).fit()
    encoders = run_encoders(tmp_path / "run", "init,epoch001")
    assert list(encoders) == ["init", "epoch001"]
    probe_set = moving_block_episodes(8, seed=2)
    result = probe_encoders(encoders, probe_set, seeds=[0, 1], log=lambda line: None)
    assert result["frames"] == 640 and set(result["encoders"]) == {"init", "epoch001"}
    for by_classifier in result["encoders"].values():
        assert set(by_classifier) == {"atariari", "prend"}
        for figures in by_classifier.values():
            assert len(figures["across_categories"]["values"]) == 2
            assert 0 <= figures["across_categories"]["mean"] <= 1
    table = "\n".join(format_probe(result))
    assert "category mean" in table and "AtariARI ST-DIM" in table and "player_x | agent_localization" in table
    assert "**atariari classifiers**" in table and "**prend classifiers**" in table
    # "AtariARI's figure" under AtariARI's classifiers only; under prend's, AtariARI's averaging alone.
    theirs, ours = table.split("**prend classifiers**")
    assert "category mean** (AtariARI's figure)" in theirs and "AtariARI's figure" not in ours
    assert "category mean** (AtariARI's averaging)" in ours
    with pytest.raises(PrendError, match="epoch009"):
        run_encoders(tmp_path / "run", "epoch009")


def test_saved_encoders_load_back(tmp_path):
    train, val = moving_block_episodes(2, seed=0), moving_block_episodes(2, seed=1)
    trainer = STDIMTrainer(train, val, tmp_path / "run", STDIMSettings(max_epochs=0), log=lambda line: None)
    loaded = load_encoder(tmp_path / "run" / "init.pt")
    for a, b in zip(trainer.encoder.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_published_category_means_follow_from_their_variables():
    # AtariARI's category mean of Boxing, recomputed from its per-variable figures: the table is consistent.
    from prend.pretrain.state_probe import category_mean
    for method, figures in PUBLISHED_BOXING.items():
        variables = {k: v for k, v in figures.items() if k != "across_categories"}
        assert category_mean(variables)["across_categories"] == pytest.approx(figures["across_categories"],
                                                                              abs=0.006), method


def test_repro_script_says_what_is_missing_in_one_line(tmp_path, capsys):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from atariari_repro import main

    # 400 frames are a fraction of one Boxing episode: nothing to split into training and validation.
    code = main(["pretrain", "--out", str(tmp_path), "--frame", "stack84", "--pretrain-steps", "400"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "episode" in err[0] and "collect more steps" in err[0]
    assert main(["probe", "--out", str(tmp_path), "--frame", "stack84", "--probe-steps", "300"]) == 2
    assert "has no encoder" in capsys.readouterr().err
    assert main(["collect", "--out", str(tmp_path), "--game", "notagame"]) == 2
    assert main(["pretrain", "--out", str(tmp_path), "--games", "boxing,notagame"]) == 2
    assert "notagame" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path), "--games", "boxing,Boxing"]) == 2
    assert main(["pretrain", "--out", str(tmp_path), "--games", "boxing,pong", "--objective", "supervised"]) == 2
    assert "drop --games" in capsys.readouterr().err


def test_repro_run_directories_and_probe_names(tmp_path):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from atariari_repro import parse_args, probe_name, run_dir, run_games

    def where(*argv):
        args = parse_args(["probe", "--out", str(tmp_path), *argv])
        run = run_dir(args, tmp_path, run_games(args))
        return run.name, probe_name(args, run, "boxing")

    assert where() == ("stdim", "probe")  # the single-game run's paths, as before
    assert where("--objective", "supervised") == ("supervised", "probe-supervised")
    assert where("--games", "Boxing,pong") == ("stdim-2games", "probe-stdim-2games-boxing")
    assert where("--run-name", "pb20") == ("stdim-pb20", "probe-stdim-pb20-boxing")
    assert where("--games", "boxing,pong", "--name", "x") == ("stdim-2games", "x")
    assert run_games(parse_args(["pretrain", "--out", "o", "--games", "Boxing, MsPacman"])) == ["boxing", "ms_pacman"]


def test_the_trainers_old_import_paths_give_the_same_objects():
    """Scripts written before the trainers moved (to atariari_train, then the objectives to their own module)."""
    import prend.pretrain.atariari as data_module
    import prend.pretrain.atariari_train as loop_module

    assert data_module.STDIMTrainer is loop_module.STDIMTrainer is STDIMTrainer
    assert data_module.STDIMSettings is STDIMSettings and loop_module.SupervisedTrainer is SupervisedTrainer
    assert loop_module.ram_cross_entropy is ram_cross_entropy
    with pytest.raises(AttributeError, match="no attribute 'NotATrainer'"):
        loop_module.NotATrainer  # noqa: B018
