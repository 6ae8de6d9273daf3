"""Every relative link in README.md and docs/ reaches a file that is committed, and every #anchor a heading.

Result pages cite their figures and run directories by relative link; a page whose link points at a file that
was never committed (a run directory left outside the repository, a figure not copied) reads as evidence that
is not there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens.

    Example:
        >>> github_anchor("SND: a target trained online (issue 32)")
        'snd-a-target-trained-online-issue-32'
        >>> github_anchor("`prend probe --state`, 3 seeds")
        'prend-probe---state-3-seeds'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor on a Markdown page (repeated headings get GitHub's -1, -2 suffixes)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            anchor = github_anchor(match.group(1))
            count = seen.get(anchor, 0)
            out.add(anchor if count == 0 else f"{anchor}-{count}")
            seen[anchor] = count + 1
    return out


def ignored_by_git(path: Path) -> bool:
    """Whether git would leave ``path`` out of a commit (a ``.gitignore`` rule matches it).

    A linked file that exists here but is ignored passes an existence check on this machine and is missing
    from every clone, CI's included; without git (an unpacked source archive) nothing is ignored.
    """
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    probe = path / "probe" if path.is_dir() else path
    result = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(probe)], check=False)
    return result.returncode == 0


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` (outside code blocks) whose file or heading does not exist in a clone."""
    problems = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif ignored_by_git(linked):
            problems.append(f"{target}: ignored by .gitignore, so missing from a clone")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading with that anchor")
    return problems


def test_the_anchor_rule_on_a_page_with_repeated_headings(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Results\n## Results\n```\n# not a heading\n```\n[a](#results-1) [b](#not-a-heading)\n")
    assert anchors(page) == {"results", "results-1"}
    assert broken_links(page) == ["#not-a-heading: no heading with that anchor"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_a_link_into_an_ignored_folder_is_broken():
    """``runs/`` is ignored at any depth unless re-included, as result pages' run folders are."""
    assert ignored_by_git(ROOT / "runs" / "some-run")
    assert not ignored_by_git(ROOT / "docs" / "results" / "paper-answer" / "runs")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []
