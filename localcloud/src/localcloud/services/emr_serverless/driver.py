"""One EMR Serverless job run's driver: ``python -m localcloud.services.emr_serverless.driver JOB_DIR``.

localcloud starts this in a process group of its own (``localcloud.jobprocs``), so that cancelling the job
run kills spark-submit, its JVM and the Python driver the JVM starts, all at once. It reads ``spec.json`` (the
spark-submit arguments and the driver's extra environment, written by the backend), runs spark-submit with the
driver's stdout and stderr in ``stdout`` and ``stderr`` and the working directory ``work/``, and writes
``result.json`` with the exit code last, so a localcloud that restarts meanwhile can still read the outcome.

The S3A credentials are localcloud's own local keys (``LOCALCLOUD_ACCESS_KEY_ID``/``..._SECRET_ACCESS_KEY``, or
their defaults), set here in the driver's environment: never on a command line, in ``ps``, or in a file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from localcloud.core import credentials_from_env
from localcloud.services.emr_serverless.submit import Command

SPEC, RESULT, STDOUT, STDERR, WORK = "spec.json", "result.json", "stdout", "stderr", "work"
DEFAULTS = "spark-defaults.conf"
# What must not reach the job from localcloud's own environment: a developer's real AWS identity.
_DROPPED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


def spark_submit() -> str | None:
    """The spark-submit of this Python's environment (the venv's pyspark), else one on PATH."""
    beside = Path(sys.executable).parent / "spark-submit"
    return str(beside) if beside.exists() else shutil.which("spark-submit")


def spark_home() -> str | None:
    spec = importlib.util.find_spec("pyspark")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return locations[0] if locations else None


def environment(spec: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    home = spark_home()
    if home:
        env["SPARK_HOME"] = home  # the pyspark this Python imports, not another Spark a SPARK_HOME may name
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env.update(spec.get("env") or {})
    credentials = credentials_from_env()
    env["AWS_ACCESS_KEY_ID"] = credentials.access_key_id
    env["AWS_SECRET_ACCESS_KEY"] = credentials.secret_access_key
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = spec["region"]
    return env


def _property(value: str) -> str:
    """``value`` as java.util.Properties reads it back (spark-submit's --properties-file)."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + escaped if escaped[:1].isspace() else escaped


def write_spec(job_dir: Path, command: Command, region: str) -> None:
    """What :func:`main` runs: the command's defaults as a properties file, its arguments and environment."""
    lines = [f"{key}={_property(value)}\n" for key, value in command.defaults.items()]
    (job_dir / DEFAULTS).write_text("".join(lines))
    spec = {"argv": ["--properties-file", str(job_dir / DEFAULTS), *command.argv], "env": command.env, "region": region}
    tmp = job_dir / f"{SPEC}.tmp"
    tmp.write_text(json.dumps(spec))
    os.replace(tmp, job_dir / SPEC)


def write_result(job_dir: Path, exit_code: int) -> None:
    tmp = job_dir / f"{RESULT}.tmp"
    tmp.write_text(json.dumps({"exit_code": exit_code}))
    os.replace(tmp, job_dir / RESULT)


def main(job_dir: Path) -> int:
    spec = json.loads((job_dir / SPEC).read_text())
    work = job_dir / WORK
    work.mkdir(exist_ok=True)
    executable = spark_submit()
    with open(job_dir / STDOUT, "ab") as out, open(job_dir / STDERR, "ab") as err:
        if executable is None:
            err.write(f"spark-submit not found beside {sys.executable} or on PATH: install pyspark.\n".encode())
            code = 127
        else:
            code = subprocess.call([executable, *spec["argv"]], cwd=work, env=environment(spec), stdout=out, stderr=err)
    write_result(job_dir, code)
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
