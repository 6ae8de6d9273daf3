"""benchmarks/atariari_probe.py: the state probe's classifiers x probe frames, on one encoder and its twin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from benchmark_scripts import load_benchmark

from prend.checkpoint import FORMAT, atomic_torch_save
from prend.nets.atariari import AtariARIEncoder

SCRIPT = "atariari_probe"
"""The benchmark under test (``benchmarks/atariari_probe.py``)."""


@pytest.fixture
def atariari_frames(tmp_path):
    """A finished AtariARI-protocol collection of 5 episodes of 70 steps (noise frames, random RAM)."""
    root = tmp_path / "ari"
    out = root / "boxing-stack84-s43"
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        np.savez_compressed(out / f"ep{i:05d}.npz", frames=rng.integers(0, 256, (70, 84, 84), dtype=np.uint8),
                            ram=rng.integers(0, 8, (70, 128), dtype=np.uint8))
    (out / "manifest.json").write_text(json.dumps({"game": "boxing", "frame": "stack84", "seed": 43, "steps": 350,
                                                   "episode_lengths": [70] * 5}))
    return root


@pytest.fixture
def own_twin(tmp_path):
    """An ST-DIM run's init.pt (seed 42): the probe's twin of it is itself, so every gain is exactly 0."""
    torch.manual_seed(42)
    encoder = AtariARIEncoder("last84")
    path = tmp_path / "run" / "init.pt"
    path.parent.mkdir()
    atomic_torch_save({"format": FORMAT, "encoder": encoder.state_dict(), "frame": "last84", "size": [84, 84]}, path)
    return path


def test_every_cell_of_an_encoder_against_itself_gains_nothing(atariari_frames, ram_frames, own_twin, tmp_path):
    script = load_benchmark(SCRIPT)
    out = tmp_path / "f"
    code = script.main(["--backbone", str(own_twin), "--atariari-data", str(atariari_frames), "--prend-data",
                        str(ram_frames), "--seeds", "0", "--max-epochs", "2", "--out", str(out)])
    assert code == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert list(result["cells"]) == ["atariari/atariari", "atariari/prend", "prend/atariari", "prend/prend"]
    assert result["facts"]["init_seed"] == 42
    for cell in result["cells"].values():
        # the same features, splits and seeds: the same classifiers and figures, a gain of exactly 0
        assert cell["gain"] == 0.0 and cell["backbone"]["variables"] == cell["twin"]["variables"]
        assert 0.0 <= cell["backbone"]["category_mean"] <= 1.0
    ari, own = result["frame_sets"]["atariari"], result["frame_sets"]["prend"]
    assert (ari["frames"], ari["episodes"], ari["episodes_probed"]) == (350, 5, 5)
    # AtariARI's split of 5 whole episodes: 3 train, 1 validation, 1 test
    assert (ari["split"]["0"]["train"], ari["split"]["0"]["val"]) == (210, 70) and ari["split"]["0"]["test"] <= 70
    assert own["frames"] <= 480 and sum(own["split"]["0"].values()) <= own["frames"]
    assert result["settings"]["prend"]["patience"] == 10 and result["settings"]["atariari"]["patience"] == 15
    table = out.with_suffix(".md").read_text()
    assert "| atariari's classifiers | " in table and "(**+0.000**)" in table


def test_cells_run_apart_combine_into_one_table(atariari_frames, ram_frames, own_twin, tmp_path, capsys):
    script = load_benchmark(SCRIPT)
    base = ["--backbone", str(own_twin), "--atariari-data", str(atariari_frames), "--prend-data", str(ram_frames),
            "--seeds", "0", "--max-epochs", "1"]
    assert script.main([*base, "--classifiers", "prend", "--frames", "prend", "--out", str(tmp_path / "a")]) == 0
    assert script.main([*base, "--classifiers", "atariari", "--frames", "prend", "--out", str(tmp_path / "b")]) == 0
    assert script.main(["--combine", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out",
                        str(tmp_path / "c")]) == 0
    combined = json.loads((tmp_path / "c.json").read_text())
    assert list(combined["cells"]) == ["atariari/prend", "prend/prend"]  # in table order
    assert combined["cells"]["prend/prend"]["run"]["command"].endswith(str(tmp_path / "a"))
    capsys.readouterr()
    assert script.main(["--combine", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--out",
                        str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the cell prend/prend is in two files" in err[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    main = load_benchmark(SCRIPT).main
    cases = [(["--frames", "prend"], "--frames prend needs --prend-data"),
             (["--classifiers", "sklearn", "--prend-data", "x"], "--classifiers sklearn"),
             (["--seeds", "a,b", "--frames", "prend", "--prend-data", "x"], "--seeds a,b"),
             (["--backbone", "nope.pt", "--frames", "prend", "--prend-data", "x"], "'nope.pt' is neither")]
    for argv, says in cases:
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], (argv, err)
    assert not (tmp_path / "o.json").exists()
