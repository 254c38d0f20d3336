"""The docs are a map, so they must match the territory: the README stays short and lists exactly the Makefile's
targets, and every repository path the docs name in backticks exists."""

from __future__ import annotations

import re

import pytest

from tests import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))] + [
    REPO / p for p in ("localcloud/README.md", "plugins/README.md", "include/README.md", "benchmarks/README.md")
]
TOP = ("dags", "plugins", "include", "localcloud", "tests", "benchmarks", "scripts", "docs")
# A path in backticks: starts at a top-level folder, names no placeholder (<family>) or glob (*.py).
PATH = re.compile(rf"`((?:{'|'.join(TOP)})/[\w./-]*)`")


def make_targets() -> set[str]:
    """What `make help` lists: the targets with a `## description`."""
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z-]+):.*## ", text, re.M))


def test_the_readme_is_a_short_map() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    # The folder map comes first: within the first screen.
    assert "localcloud/" in "\n".join(readme.splitlines()[:40])


def test_the_readme_lists_exactly_the_make_targets() -> None:
    readme = (REPO / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `make ")]
    listed = {name for line in table for name in re.findall(r"`make ([a-z-]+)`", line.split("|")[1])}
    assert listed == make_targets()


def generated() -> set[str]:
    """Folders that runs create and git ignores (benchmarks/results/): named in docs, absent from a clone."""
    lines = (REPO / ".gitignore").read_text().splitlines()
    return {line.strip("/") for line in lines if line.startswith("/") and line.endswith("/")}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_path_the_docs_name_exists(doc) -> None:
    assert doc.exists()
    # A path is read from the repository root, or from the doc's own folder (localcloud/README.md names tests/...).
    missing = sorted(
        p
        for p in set(PATH.findall(doc.read_text()))
        if not any((base / p.rstrip("/")).exists() for base in (REPO, doc.parent)) and p.strip("/") not in generated()
    )
    assert missing == [], f"{doc.relative_to(REPO)} names paths that do not exist"
