"""``prend probe --state``'s classifier setting: prend's classifiers (the default) or AtariARI's own."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from benchmark_scripts import load_benchmark
from test_state_probe import _labelled_frames

import prend.pretrain.state_probe as sp
from prend.cli import main
from prend.errors import PrendError
from prend.pretrain.state_probe import StateProbeSettings, state_probe, three_way_split
from prend.pretrain.state_report import format_state_probe


def _carries_and_blind(data):
    """An encoder whose features are player x and y one-hot (scaled by 10: AtariARI's classifiers read raw
    features, and at lr 0.05 a few epochs then suffice), and one of noise that knows nothing."""
    carries = 10 * np.concatenate([np.eye(8)[data.ram[:, 32] // 10], np.eye(4)[data.ram[:, 34] // 10]], 1)
    return carries, np.random.default_rng(1).normal(size=(len(data), 8))


def test_atariari_classifiers_read_an_encoder_that_carries_the_agent_and_not_noise():
    data = _labelled_frames(n_per_episode=80, episodes=10)
    carries, blind = _carries_and_blind(data)
    settings = StateProbeSettings(lr=0.05, max_epochs=12, repeats=2, vector="off", classifiers="atariari")
    result = state_probe({"carries": carries, "blind": blind}, data, settings)
    boxing = result["per_game"]["boxing"]["map"]
    f1 = boxing["variables"]
    assert f1["player_x"]["carries"] == 1.0 and f1["player_y"]["carries"] == 1.0
    # 8 and 4 equally likely values: a classifier that knows nothing scores about 1/8 and 1/4.
    assert f1["player_x"]["blind"] < 0.3 and f1["player_y"]["blind"] < 0.45
    assert f1["clock"]["carries"] < 0.3     # the clock (8 values) is in neither encoder
    clock = f1["clock"]["carries"]
    assert boxing["category_mean"]["carries"] == pytest.approx((1 + clock) / 2)   # agent loc 1, score/clock
    # The JSON records whose classifiers ran, with AtariARI's own stopping rule (15 epochs on accuracy).
    assert result["settings"]["classifiers"] == "atariari" and result["settings"]["patience"] == 15


def test_the_setting_reaches_the_classifier_used_with_raw_features(monkeypatch):
    data = _labelled_frames(n_per_episode=80, episodes=6)
    feats = np.random.default_rng(0).normal(5.0, 3.0, size=(len(data), 6)).astype(np.float32)
    calls = []
    real = sp.atariari_probe_variables

    def spy(features, labels, part, seed, lr, batch_size, max_epochs, patience):
        calls.append({"features": features, "part": part, "seed": seed, "lr": lr, "batch": batch_size,
                      "epochs": max_epochs, "patience": patience, "variables": sorted(labels)})
        return real(features, labels, part, seed, lr, batch_size, max_epochs, patience)

    monkeypatch.setattr(sp, "atariari_probe_variables", spy)
    base = StateProbeSettings(lr=0.01, batch_size=32, max_epochs=2, repeats=2, seed=3, vector="off")
    state_probe({"enc": feats}, data, base)
    assert calls == []      # the default stays prend's classifiers
    state_probe({"enc": feats}, data, dataclasses.replace(base, classifiers="atariari"))
    assert len(calls) == 4  # 2 encoders (enc, pixels) x 2 probe seeds
    ours = [c for c in calls if c["features"].shape[1] == 6]
    assert [c["seed"] for c in ours] == [3, 4]
    assert all((c["lr"], c["batch"], c["epochs"], c["patience"]) == (0.01, 32, 2, 15) for c in calls)
    assert ours[0]["variables"] == ["clock", "player_x", "player_y"]
    # Raw features, as AtariARI reads them: not standardised (their mean is ~5, not 0).
    np.testing.assert_array_equal(ours[0]["features"], feats)
    # The part of each row is seed 3's split: 0 train, 1 validation, 2 test (the synthetic stacks differ, so
    # no test row is a duplicate).
    train, val, test = three_way_split(data.episode, dataclasses.replace(base, seed=3))
    np.testing.assert_array_equal(ours[0]["part"], np.select([train, val, test], [0, 1, 2], -1))


def test_the_two_classifiers_differ_where_their_definitions_say():
    # A one-hot of player x scaled by 1e-4: prend's classifiers standardise it and read it at once; AtariARI's
    # read raw features, whose logits barely move in 2 epochs at lr 3e-4, so they stay near chance (1/8).
    data = _labelled_frames(n_per_episode=80, episodes=10)
    tiny = 1e-4 * np.eye(8)[data.ram[:, 32] // 10]
    base = StateProbeSettings(max_epochs=2, repeats=1, vector="off")
    prend = state_probe({"tiny": tiny}, data, dataclasses.replace(base, lr=0.05, max_epochs=15))
    atariari = state_probe({"tiny": tiny}, data, dataclasses.replace(base, lr=3e-4, classifiers="atariari"))
    assert prend["per_game"]["boxing"]["map"]["variables"]["player_x"]["tiny"] == 1.0
    assert atariari["per_game"]["boxing"]["map"]["variables"]["player_x"]["tiny"] < 0.4
    assert prend["settings"]["classifiers"] == "prend" and prend["settings"]["patience"] == 10


def test_the_table_claims_atariari_s_figure_only_with_their_classifiers():
    data = _labelled_frames(n_per_episode=80, episodes=6)
    settings = StateProbeSettings(max_epochs=1, repeats=1, vector="off")
    for classifiers, header, label in (("prend", "prend's linear classifiers", "(AtariARI's averaging)"),
                                       ("atariari", "AtariARI's linear classifiers", "(AtariARI's figure)")):
        result = state_probe({"enc": np.zeros((len(data), 2))}, data,
                             dataclasses.replace(settings, classifiers=classifiers))
        table = "\n".join(format_state_probe(result, ["enc", "pixels"]))
        assert header in table.splitlines()[0] and f"category mean {label}" in table
        assert ("AtariARI's figure" in table) == (classifiers == "atariari")
    # Figures written before the setting existed were all prend's classifiers.
    del result["settings"]["classifiers"]
    assert "(AtariARI's averaging)" in "\n".join(format_state_probe(result, ["enc"]))


def test_a_bad_classifiers_value_is_a_prend_error_and_one_line_exit_2(ram_frames, capsys):
    data = _labelled_frames(episodes=4)
    with pytest.raises(PrendError, match="unknown state-probe classifiers 'sklearn'"):
        state_probe({}, data, StateProbeSettings(classifiers="sklearn"))  # type: ignore[arg-type]
    assert main(["probe", "compact", "--data", str(ram_frames), "--state", "--state-settings.classifiers",
                 "sklearn", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice 'sklearn'" in err[0] and "--state-settings.classifiers" in err[0]


def test_prend_probe_state_with_atariari_classifiers_end_to_end(ram_frames, tmp_path, capsys):
    out = tmp_path / "probe.json"
    code = main(["probe", "resnet18", "--backbone-width", "0.125", "--data", str(ram_frames), "--state",
                 "--no-classic", "--state-settings.classifiers", "atariari", "--state-settings.max-epochs", "2",
                 "--state-settings.repeats", "1", "--state-settings.no-map", "--out", str(out), "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "state probe: test weighted F1 of AtariARI's linear classifiers" in captured.out
    assert "category mean (AtariARI's figure)" in captured.out
    assert "probe: state probe (atariari classifiers)" in captured.err
    probe = json.loads(out.read_text())["state_probe"]
    assert probe["settings"]["classifiers"] == "atariari" and probe["settings"]["patience"] == 15
    assert all(0.0 <= v <= 1.0 for v in probe["vector"]["category_mean"].values())


def test_state_probe_table_passes_the_classifiers_on_and_records_them(ram_frames, tmp_path):
    script = load_benchmark("state_probe_table")
    assert script.main(["--data", str(ram_frames), "--backbones", "atariari-last84", "--repeats", "1",
                        "--max-epochs", "1", "--classifiers", "atariari", "--out", str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["settings"]["classifiers"] == "atariari"
    assert "(AtariARI's figure)" in (tmp_path / "t.md").read_text()


def test_a_patience_given_for_prends_classifiers_is_named_as_unused_with_atariaris():
    data = _labelled_frames(n_per_episode=80, episodes=6)
    feats = np.random.default_rng(0).normal(size=(len(data), 4)).astype(np.float32)
    base = StateProbeSettings(max_epochs=1, repeats=1, vector="off", classifiers="atariari")
    for patience, noted in ((StateProbeSettings.patience, False), (15, False), (4, True)):
        lines: list[str] = []
        result = state_probe({"enc": feats}, data, dataclasses.replace(base, patience=patience), log=lines.append)
        notes = [line for line in lines if line.startswith("note:")]
        assert bool(notes) == noted, (patience, notes)
        assert result["settings"]["patience"] == 15  # AtariARI's rule is what ran, and what is recorded
    assert "patience 4 is for prend's classifiers and is not used" in notes[0]
