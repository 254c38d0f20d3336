"""Resolve the Spark jars of include/lakehouse/config.py into Ivy's cache once (``make spark-jars``).

spark-submit would fetch them on first use anyway; doing it up front keeps Maven Central out of tests and tasks, and
makes a missing network show up as one clear failure at setup.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from include.lakehouse.config import DELTA_PACKAGE, EXCLUDES, HADOOP_AWS_PACKAGE

# Spark 4's default Ivy home (spark.jars.ivy); Ivy copies every resolved jar into its jars/ folder.
IVY_JARS = Path.home() / ".ivy2.5.2" / "jars"
PACKAGES = (DELTA_PACKAGE, HADOOP_AWS_PACKAGE)


def jar_name(coordinate: str) -> str:
    group, artifact, version = coordinate.split(":")
    return f"{group}_{artifact}-{version}.jar"


def missing(jars_dir: Path = IVY_JARS) -> list[str]:
    return [c for c in PACKAGES if not (jars_dir / jar_name(c)).exists()]


def ensure() -> None:
    todo = missing()
    if not todo:
        print(f"spark jars: cached in {IVY_JARS}")
        return
    print(f"spark jars: resolving {', '.join(todo)} from Maven Central (the AWS SDK bundle is about 690 MB)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        noop = Path(tmp) / "noop.py"
        noop.write_text("")
        submit = Path(sys.executable).with_name("spark-submit")
        cmd = [str(submit), "--packages", ",".join(PACKAGES), "--exclude-packages", EXCLUDES, str(noop)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or missing():
        sys.exit(f"spark jars: resolution failed\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"spark jars: resolved in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    ensure()
