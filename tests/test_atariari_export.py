"""benchmarks/atariari_repro.py export: a run's encoder file -> a shipped PreND backbone file and its record."""

from __future__ import annotations

import json

import pytest
import torch
from benchmark_scripts import load_benchmark

from prend.checkpoint import FORMAT, atomic_torch_save
from prend.nets import weights
from prend.nets.atariari import AtariARIEncoder
from prend.nets.weights import WEIGHTS_DIR, ShippedBackbone, build_shipped_backbone
from prend.pretrain.probe import ProbeConfig, load_probed_backbone

SCRIPT = "atariari_repro"
"""The benchmark under test (``benchmarks/atariari_repro.py``)."""


def _same(a: torch.nn.Module, b: torch.nn.Module, atol: float = 0.0) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], rtol=0.0, atol=atol) for k in sa)


@pytest.fixture
def run(tmp_path):
    """A synthetic ST-DIM run: init.pt at seed 5, a 'trained' epoch003.pt, checkpoint.pt recording the seed."""
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(5)
    init = AtariARIEncoder("last84")
    atomic_torch_save({"format": FORMAT, "encoder": init.state_dict(), "frame": "last84", "size": [84, 84]},
                      run / "init.pt")
    trained = AtariARIEncoder("last84")
    trained.load_state_dict(init.state_dict())
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01)  # other weights, the same keys and shapes
    atomic_torch_save({"format": FORMAT, "encoder": trained.state_dict(), "frame": "last84", "size": [84, 84],
                       "epoch": 3}, run / "epoch003.pt")
    atomic_torch_save({"format": FORMAT, "settings": {"seed": 5}}, run / "checkpoint.pt")
    return run, init, trained


def test_export_writes_a_backbone_prend_loads_by_name_with_its_record(run, tmp_path, monkeypatch, capsys):
    run_dir, init, trained = run
    record = tmp_path / "record.json"
    # a record's own entries are kept; those the export measures (sha256, epoch, ...) are measured afresh
    record.write_text(json.dumps({"recipe": ["train it", "export it"], "probe": {"boxing": 0.5},
                                  "sha256": "stale", "epoch": 99}))
    dest = tmp_path / "weights" / "stdim_test.pt"
    code = load_benchmark(SCRIPT).main(["export", "--encoder", str(run_dir / "epoch003.pt"), "--dest", str(dest),
                           "--record", str(record)])
    assert code == 0 and f"-> {dest}" in capsys.readouterr().out
    state = torch.load(dest, weights_only=True)  # no pickled objects: the package's loader reads it the same way
    assert set(state) == {"format", "encoder", "frame", "size"} and state["frame"] == "last84"
    assert {k: tuple(v.shape) for k, v in state["encoder"].items()} == {
        "convs.0.weight": (32, 1, 8, 8), "convs.0.bias": (32,), "convs.2.weight": (64, 32, 4, 4), "convs.2.bias": (64,),
        "convs.4.weight": (32, 64, 3, 3), "convs.4.bias": (32,), "head.weight": (256, 1568), "head.bias": (256,)}
    info = json.loads(dest.with_suffix(".json").read_text())
    assert (info["epoch"], info["seed"], info["arch"], info["family"]) == (3, 5, "atariari-last84", "atariari")
    assert info["recipe"] == ["train it", "export it"] and info["probe"] == {"boxing": 0.5}
    assert info["sha256"] != "stale" and info["bytes"] == dest.stat().st_size
    # loaded back through prend's own backbone loading, by a shipped name, as PreND's --backbone does
    monkeypatch.setattr(weights, "WEIGHTS_DIR", dest.parent)
    monkeypatch.setitem(weights.SHIPPED_BACKBONES, "stdim-test", ShippedBackbone(
        "stdim_test", "atariari-last84", 1.0, "a test encoder", family="atariari"))
    net = build_shipped_backbone("stdim-test")
    assert _same(net, trained) and not any(p.requires_grad for p in net.parameters())
    assert net(torch.zeros(2, 4, 84, 84)).shape == (2, 256)
    # and the probe's twin of the exported file is the run's init.pt (its seed went into the record); to float
    # rounding only: the orthogonal initialisation's QR can round differently once a forward pass has run
    _, twin, facts = load_probed_backbone(ProbeConfig(checkpoint=dest))
    assert facts["init_seed"] == 5 and _same(twin, init, atol=1e-6)


def test_re_exporting_a_shipped_backbone_with_its_own_record_gives_the_same_file(tmp_path):
    shipped = WEIGHTS_DIR / "stdim_last84_boxing.pt"
    dest = tmp_path / "stdim_last84_boxing.pt"
    assert load_benchmark(SCRIPT).main(["export", "--encoder", str(shipped), "--dest", str(dest),
                           "--record", str(shipped.with_suffix(".json"))]) == 0
    old, new = (json.loads(p.with_suffix(".json").read_text()) for p in (shipped, dest))
    assert new == old  # the same weights, sha256 included, and every recorded figure unchanged


def test_bad_export_input_is_one_line_and_exit_2(run, tmp_path, capsys):
    run_dir, _, _ = run
    main = load_benchmark(SCRIPT).main
    full = tmp_path / "full.pt"
    atomic_torch_save({"format": FORMAT, "encoder": AtariARIEncoder("full", size=(105, 80)).state_dict(),
                       "frame": "full", "size": [105, 80]}, full)
    (tmp_path / "list.json").write_text("[1, 2]")
    cases = [
        (["--encoder", str(full), "--dest", str(tmp_path / "a.pt")], "84x84"),
        (["--encoder", str(tmp_path / "none.pt"), "--dest", str(tmp_path / "a.pt")], "no file"),
        (["--encoder", str(run_dir / "epoch003.pt"), "--dest", str(tmp_path / "a.pth")], "not a .pt file"),
        (["--encoder", str(run_dir / "epoch003.pt"), "--dest", str(tmp_path / "a.pt"), "--record",
          str(tmp_path / "list.json")], "no JSON object"),
        (["--encoder", str(run_dir / "checkpoint.pt"), "--dest", str(tmp_path / "a.pt")], "no AtariARI encoder"),
    ]
    for argv, says in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], (argv, err)
    assert not (tmp_path / "a.pt").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--dest", str(tmp_path / "a.pt")])  # argparse: usage and exit 2
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["probe"])  # every other stage still needs --out


def test_init_stage_writes_the_twin_the_trainer_writes_without_any_data(tmp_path, capsys):
    from prend.nets.atariari import load_atariari_encoder
    from prend.pretrain.atariari import Episodes, STDIMTrainer
    from prend.pretrain.atariari_train import STDIMSettings

    main = load_benchmark(SCRIPT).main
    assert main(["init", "--out", str(tmp_path / "a"), "--frame", "stack84", "--last-frame", "--seed", "7"]) == 0
    written = tmp_path / "a" / "stack84" / "stdim-last84" / "init.pt"
    assert f"wrote {written}" in capsys.readouterr().out
    assert not (tmp_path / "a" / "stack84" / "data").exists()  # nothing collected
    episodes = Episodes([torch.zeros(70, 84, 84, dtype=torch.uint8).numpy()] * 2,
                        [torch.zeros(70, 128, dtype=torch.uint8).numpy()] * 2, "boxing", "stack84")
    STDIMTrainer(episodes, episodes, tmp_path / "b", STDIMSettings(seed=7), log=lambda line: None,
                 encoder_frame="last84")
    ours, theirs = load_atariari_encoder(written), load_atariari_encoder(tmp_path / "b" / "init.pt")
    assert ours.frame == theirs.frame == "last84" and _same(ours, theirs, atol=1e-6)
    torch.manual_seed(8)
    assert not _same(ours, AtariARIEncoder("last84"), atol=1e-3)  # the seed matters
