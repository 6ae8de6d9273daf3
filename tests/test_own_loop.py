"""The README's "in your own loop" example, examples/own_loop.py: a complete script that runs as shown."""

import math
import re
import runpy
from pathlib import Path

import pytest
import torch

import prend.intrinsic

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "own_loop.py"


def test_the_readme_shows_the_script_as_it_is():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Using an intrinsic reward in your own loop"):]
    section = section[:section.index("\n## ")]
    assert re.findall(r"```python\n(.*?)```", section, re.S) == [SCRIPT.read_text()]


@pytest.mark.slow
def test_the_script_runs_and_trains_the_predictor_against_a_fixed_target(tmp_path, monkeypatch, capsys):
    built = []

    def make_rnd(*args, **kwargs):  # the script's own call, keeping a copy of the networks it starts from
        module = make_rnd_as_is(*args, **kwargs)
        built.append({k: v.clone() for k, v in module.state_dict().items()})
        return module

    make_rnd_as_is = prend.intrinsic.make_rnd
    monkeypatch.setattr(prend.intrinsic, "make_rnd", make_rnd)
    monkeypatch.chdir(tmp_path)  # it writes rnd.pt where it runs
    script = runpy.run_path(str(SCRIPT), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["rollout 0", "rollout 1", "rollout 2"]
    assert all(math.isfinite(float(line.rsplit(" ", 1)[1])) for line in lines)
    saved = torch.load(tmp_path / "rnd.pt", weights_only=True)  # networks and normalisers
    (start,) = built
    assert saved.keys() == start.keys()
    assert all(torch.equal(saved[k], v) for k, v in start.items() if k.startswith("target."))
    assert any(not torch.equal(saved[k], v) for k, v in start.items() if k.startswith("predictor."))
    assert script["rnd"].encoder.obs_rms.count > 4 * 32  # the warm-up's and the three rollouts' frames
