"""The two buildings meet only over HTTP: localcloud imports nothing of the Airflow project, and the project's
runtime code (dags/, plugins/, include/, scripts/) imports nothing of localcloud. Tests and benchmarks may use
localcloud's public API only: start it as a process (``localcloud.process``), evaluate policies against its audit
log (``localcloud.iam_policy``), or call an engine (``localcloud.engines``).

The scan reads every Python file's imports with ``ast`` (``import``, ``from ... import``, and
``importlib.import_module``, ``__import__`` and ``pytest.importorskip`` with a literal name), so a new violation
anywhere fails this test. Relative imports stay inside their own package, so they cannot cross the line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import REPO

PROJECT = ("include", "plugins", "dags", "scripts", "tests", "benchmarks")
RUNTIME = ("dags", "plugins", "include", "scripts")
CLIENTS = ("tests", "benchmarks")
PUBLIC = ("localcloud.process", "localcloud.iam_policy", "localcloud.engines")
DYNAMIC = {"import_module", "__import__", "importorskip"}


def imported_names(source: str) -> Iterator[tuple[int, str]]:
    """(line, dotted module name) of every import in ``source``; a ``from x import y`` also yields ``x.y``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in DYNAMIC and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _public(name: str) -> bool:
    """A public module, a name inside one, or a package on the way to one (``from localcloud import process``)."""
    return any(name == p or name.startswith(p + ".") or p.startswith(name + ".") for p in PUBLIC)


def violations(root: Path) -> list[str]:
    """Every import across the boundary under ``root``, as ``path:line: why``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0].startswith(".") or "site-packages" in rel.parts:
            continue
        side = rel.parts[0]
        reported: set[int] = set()  # one report per import statement, not one per imported name
        for line, name in imported_names(path.read_text(encoding="utf-8")):
            if line in reported:
                continue
            top = _top(name)
            count = len(found)
            if side == "localcloud" and top in PROJECT:
                found.append(f"{rel}:{line}: localcloud imports the project's {name}")
            elif side in RUNTIME and top == "localcloud":
                found.append(f"{rel}:{line}: {side}/ imports localcloud ({name})")
            elif side in CLIENTS and top == "localcloud" and not _public(name):
                found.append(f"{rel}:{line}: {side}/ reaches into localcloud's internals ({name})")
            if len(found) > count:
                reported.add(line)
    return found


def test_the_repository_keeps_the_boundary() -> None:
    assert violations(REPO) == []


@pytest.mark.parametrize(
    ("path", "source", "why"),
    [
        ("localcloud/src/localcloud/services/x.py", "from include.rendering import validate\n", "localcloud imports"),
        ("localcloud/tests/test_x.py", "import tests.conftest\n", "localcloud imports"),
        ("localcloud/src/localcloud/y.py", "import importlib\nimportlib.import_module('plugins.aws_ml')\n", "imports"),
        ("include/custom_labels/x.py", "from localcloud.iam_policy import evaluate\n", "include/ imports localcloud"),
        ("dags/x.py", "def f():\n    import localcloud.server\n", "dags/ imports localcloud"),
        ("plugins/aws_ml/x.py", "__import__('localcloud')\n", "plugins/ imports localcloud"),
        ("scripts/x.py", "from localcloud import process\n", "scripts/ imports localcloud"),
        ("tests/x.py", "from localcloud.services.s3 import storage\n", "internals"),
        ("benchmarks/x.py", "import pytest\npytest.importorskip('localcloud.server')\n", "internals"),
    ],
)
def test_a_new_violation_fails_the_scan(tmp_path: Path, path: str, source: str, why: str) -> None:
    file = tmp_path / path
    file.parent.mkdir(parents=True)
    file.write_text(source)
    (found,) = violations(tmp_path)
    assert found.startswith(f"{path}:") and why in found


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("tests/x.py", "from localcloud.process import LocalCloudProcess\n"),
        ("tests/x.py", "from localcloud.iam_policy import read_audit_log\n"),
        ("benchmarks/x.py", "from localcloud.engines.detector import train\n"),
        ("benchmarks/x.py", "from localcloud.engines import automl\n"),
        ("localcloud/src/localcloud/x.py", "from localcloud.core import AwsError\nimport botocore\n"),
        ("localcloud/tests/test_x.py", "import rawhttp\nfrom localcloud.server import make_server\n"),
        ("include/x.py", "from include.s3uri import parse\n"),
    ],
)
def test_what_the_boundary_allows(tmp_path: Path, path: str, source: str) -> None:
    file = tmp_path / path
    file.parent.mkdir(parents=True)
    file.write_text(source)
    assert violations(tmp_path) == []
