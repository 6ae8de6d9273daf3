"""prend's imports only point down its layers (docs/architecture.md) and never run in a circle.

Every ``import`` of every module is read with ``ast``, at the top of a module and inside functions alike.
A module may import modules of its own package (``prend.agent.ppo`` uses ``prend.agent.storage``) and of
layers below its own; modules side by side in one layer do not use each other. Imports guarded by
``if TYPE_CHECKING:`` (annotations only, never run) must point down too, but do not count as cycles.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "prend"

LAYERS: list[tuple[str, ...]] = [
    ("prend.errors",),
    ("prend.clihelp", "prend.checkpoint", "prend.signals", "prend.bootstrap", "prend.runlock"),
    ("prend.config", "prend.metrics"),
    ("prend.nets", "prend.envs"),
    ("prend",),
    ("prend.intrinsic",),
    ("prend.agent",),
    ("prend.rundir", "prend.recorders"),
    ("prend.train", "prend.backbone_check"),
    ("prend.pretrain", "prend.experiments"),
    ("prend.cli",),
]
"""The layers, lowest first; each entry is a module or a package (with everything in it). ``prend`` alone is
the package's ``__init__`` (version, lazy exports, env registration). docs/architecture.md draws this table."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def unit(module: str) -> str:
    """The table entry a module belongs to (the longest entry that is it or a package above it)."""
    entries = [e for layer in LAYERS for e in layer]
    owners = [e for e in entries if module == e or (e != "prend" and module.startswith(e + "."))]
    return max(owners, key=len) if owners else ""


def layer_of(module: str) -> int:
    entry = unit(module)
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The prend modules an import statement loads (``from a import b``: ``a.b`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "prend"]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    if base.split(".")[0] != "prend":
        return []
    return sorted({f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names})


def imports(module: str, source: str | None = None) -> list[tuple[str, int, bool]]:
    """``(imported prend module, line, type-checking only)`` for every import in ``module``, nested ones included."""
    found = []
    is_package = MODULES[module].name == "__init__.py"

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend((target, node.lineno, typing_only) for target in _targets(module, is_package, node))
        for child in ast.iter_child_nodes(node):
            guarded = isinstance(node, ast.If) and _is_type_checking(node.test) and child in node.body
            visit(child, typing_only or guarded)

    visit(ast.parse(MODULES[module].read_text() if source is None else source), False)
    return found


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if not unit(m)]
    assert not missing, f"add {missing} to LAYERS in tests/test_layering.py and to docs/architecture.md"
    stale = [e for layer in LAYERS for e in layer if not any(m == e or m.startswith(e + ".") for m in MODULES)]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_imports_only_point_down():
    upward = []
    for module in MODULES:
        for target, line, _ in imports(module):
            if target not in MODULES:
                upward.append(f"{module}:{line} imports {target}, which is not a prend module")
            elif unit(target) != unit(module) and layer_of(target) >= layer_of(module):
                upward.append(f"{module}:{line} imports {target} ({unit(target)}, layer {layer_of(target)}) "
                              f"from layer {layer_of(module)}")
    assert not upward, "imports that do not point down (docs/architecture.md):\n" + "\n".join(upward)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    graph = {m: {t for t, _, typing_only in imports(m) if not typing_only and t != m} for m in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_what_they_are_for():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert layer_of("prend.nets.policy") < layer_of("prend.intrinsic.pretrained") < layer_of("prend.agent.trainer")
    assert layer_of("prend") < layer_of("prend.train") and unit("prend.pretrain.probe") == "prend.pretrain"
    source = ("from typing import TYPE_CHECKING\nimport prend.errors\nfrom . import storage\n"
              "from ..intrinsic import base as b\nif TYPE_CHECKING:\n    from prend.train import train\n"
              "def f():\n    from prend.config import TrainConfig\n")
    assert imports("prend.agent.gae", source) == [
        ("prend.errors", 2, False), ("prend.agent.storage", 3, False), ("prend.intrinsic.base", 4, False),
        ("prend.train", 6, True), ("prend.config", 8, False)]


def test_docs_architecture_draws_the_same_layers():
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- layers: .*?-->\n```text\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md lost its layer diagram (the block after '<!-- layers: ... -->')"
    drawn = {}
    for line in block.group(1).splitlines():
        match = re.match(r"\s*(\d+)\s+(.*?)\s*$", line)
        if match:
            drawn[int(match.group(1))] = [name.strip() for name in match.group(2).split("·")]
    expected = {i: [e.removeprefix("prend.").replace(".", "/") if e != "prend" else "prend/__init__" for e in layer]
                for i, layer in enumerate(LAYERS)}
    expected = {i: [n + "/" if (SRC / n).is_dir() else n for n in names] for i, names in expected.items()}
    assert drawn == expected


@pytest.mark.parametrize("module, gone", [
    ("prend.intrinsic.pretrained", "prend.pretrain"),  # the shipped weights are found in prend.nets.weights
    ("prend.pretrain.probe", "prend.pretrain.trainer"),  # the device resolver is prend.agent.perf's
    ("prend.envs.vector", "prend.config"),  # annotations only: `import prend` stays free of tyro
])
def test_the_imports_issue_11_named_are_gone(module, gone):
    assert not [t for t, _, typing_only in imports(module) if t.startswith(gone) and not typing_only]
