"""benchmarks/state_probe_table.py: several backbones in one state probe, each shared random twin probed once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmark_scripts import load_benchmark

from prend.checkpoint import FORMAT, atomic_torch_save
from prend.nets.atariari import AtariARIEncoder

SCRIPT = "state_probe_table"
"""The benchmark under test (``benchmarks/state_probe_table.py``)."""


def _save(encoder: AtariARIEncoder, path: Path) -> Path:
    atomic_torch_save({"format": FORMAT, "encoder": encoder.state_dict(), "frame": encoder.frame,
                       "size": list(encoder.size)}, path)
    return path


def test_two_runs_of_one_seed_share_their_twin_and_every_figure_is_written(ram_frames, tmp_path, capsys):
    torch.manual_seed(42)  # an ST-DIM run's seed: its init.pt is exactly the twin the probe builds
    init = _save(AtariARIEncoder("last84"), tmp_path / "init.pt")
    trained = AtariARIEncoder("last84")
    trained.load_state_dict(torch.load(init, weights_only=True)["encoder"])
    with torch.no_grad():
        trained.head.weight.mul_(-1.0)  # "trained": other weights, the same architecture and seed
    other = _save(trained, tmp_path / "epoch001.pt")
    script = load_benchmark(SCRIPT)
    code = script.main(["--data", str(ram_frames), "--backbones", f"a={init}", f"b={other}", "atariari-stack84",
                        "--repeats", "1", "--max-epochs", "2", "--out", str(tmp_path / "t.json")])
    assert code == 0
    result = json.loads((tmp_path / "t.json").read_text())
    facts = result["backbones"]
    # a and b share one twin (seed 42, last84); atariari-stack84 (another architecture) gets its own
    assert facts["a"]["twin"] == facts["b"]["twin"] == "twin of a"
    assert facts["atariari-stack84"]["twin"] == "twin of atariari-stack84"
    cat = result["map"]["category_mean"]
    assert set(cat) == {"a", "b", "twin of a", "atariari-stack84", "twin of atariari-stack84", "pixels"}
    # a is its own twin (the same weights): the same features, split and classifiers give the same figure
    assert cat["a"] == pytest.approx(cat["twin of a"])
    assert "category mean" in (tmp_path / "t.md").read_text()


def test_a_backbone_that_is_no_file_or_name_is_one_line_and_exit_2(ram_frames, tmp_path, capsys):
    main = load_benchmark(SCRIPT).main
    code = main(["--data", str(ram_frames), "--backbones", "nope.pt", "--out", str(tmp_path / "t")])
    assert code == 2 and "error: 'nope.pt' is neither a checkpoint file nor a backbone name" in capsys.readouterr().err
