"""The Dockerfile's targets (no Docker engine here, so the file is read, not built): the default Airflow image
carries no emulator, torch or OCR engine, and the ``localcloud`` target builds the emulator alone."""

from __future__ import annotations

import re

from tests import REPO

ENGINES = ("torch", "torchvision", "rapidocr", "onnxruntime", "scikit-learn", "xgboost")


def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined), in file order."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.I):
            current = match.group(2)
            found[current] = [line]
        elif current:
            found[current].append(line)
    return found


def lineage(all_stages: dict[str, list[str]], name: str) -> list[str]:
    """The instructions of ``name`` and of every stage it is built FROM, base first."""
    base = all_stages[name][0].split()[1]
    return (lineage(all_stages, base) if base in all_stages else []) + all_stages[name]


def requirement_names(path: str) -> set[str]:
    names = set()
    for line in (REPO / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_the_default_image_has_no_emulator_or_engines() -> None:
    all_stages = stages()
    default = list(all_stages)[-1]
    assert default == "airflow"
    steps = " ".join(lineage(all_stages, default))
    assert "localcloud" not in steps.replace("# ", "")
    installed = {f for f in re.findall(r"-r\s+\S*?([\w.-]+\.txt)", steps)}
    assert installed == {"requirements.txt", "requirements-nodeps.txt"}
    for requirements in installed:
        assert not set(ENGINES) & requirement_names(requirements), requirements


def test_the_localcloud_target_installs_the_package_and_serves_it() -> None:
    steps = stages()["localcloud"]
    assert any(s.startswith("COPY localcloud/") for s in steps)
    assert any("pip install" in s and "/opt/localcloud[emr,glue]" in s for s in steps)
    assert any(s.startswith("ENTRYPOINT") and '"localcloud", "serve"' in s for s in steps)
    # Its engines come with the package it installs, not with the Airflow image's requirements.
    dependencies = (REPO / "localcloud" / "pyproject.toml").read_text()
    assert all(f'"{engine}' in dependencies for engine in ("torch==", "rapidocr==", "scikit-learn==", "xgboost-cpu=="))
