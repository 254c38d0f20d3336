"""The heartbeat lifecycle configuration: render ``on-start.sh`` for a bucket, then create or update it in SageMaker.

``ensure_lifecycle_config`` is idempotent: it describes the configuration first and only creates it when it is
missing or updates it when its OnStart script differs, so running it again changes nothing (LastModifiedTime
included). An update reaches an instance at its next start; ``attach`` names the configuration on an instance,
which SageMaker only allows while the instance is stopped.

Command line (the client comes from the Airflow connection, ``aws_default`` unless told otherwise):

    python -m include.ops.notebooks.lifecycle render --bucket B [--prefix P] [--interval-minutes 5]
    python -m include.ops.notebooks.lifecycle apply --name N --bucket B [--prefix P] [--attach INSTANCE ...]
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from include.connections import AWS_CONN_ID, sagemaker_client

SCRIPT = Path(__file__).with_name("on-start.sh")
DEFAULT_PREFIX = "notebooks/heartbeats"
DEFAULT_INTERVAL_MINUTES = 5
# AWS's limit on one hook's Content, which is the base64 text, not the script.
MAX_CONTENT_CHARS = 16384
# Values end up unquoted in a cron.d file and inside "${VAR:-...}" in the script: keep them to plain characters.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def _setting(script: str, name: str, value: str) -> str:
    line = re.compile(rf'^{name}="\$\{{{name}:-[^}}]*\}}"$', re.MULTILINE)
    if len(line.findall(script)) != 1:
        raise ValueError(f'{SCRIPT.name} must define {name} exactly once as {name}="${{{name}:-...}}"')
    return line.sub(f'{name}="${{{name}:-{value}}}"', script)


def render_on_start(bucket: str, prefix: str = DEFAULT_PREFIX, interval_minutes: int = DEFAULT_INTERVAL_MINUTES) -> str:
    """``on-start.sh`` with the heartbeat bucket, prefix and cron interval as its defaults."""
    if not _BUCKET.match(bucket):
        raise ValueError(f"not an S3 bucket name: {bucket!r}")
    prefix = prefix.strip("/")
    if not _PREFIX.match(prefix) or "//" in prefix:
        raise ValueError(f"heartbeat prefix must be letters, digits and . _ / -: {prefix!r}")
    if not 1 <= interval_minutes <= 59:
        raise ValueError(f"interval_minutes must be 1..59, not {interval_minutes}")
    script = SCRIPT.read_text()
    script = _setting(script, "HEARTBEAT_BUCKET", bucket)
    script = _setting(script, "HEARTBEAT_PREFIX", prefix)
    return _setting(script, "HEARTBEAT_INTERVAL_MINUTES", str(interval_minutes))


def encode_hook(script: str) -> str:
    """A hook's Content: the script base64-encoded, within AWS's 16384 characters."""
    content = base64.b64encode(script.encode()).decode("ascii")
    if len(content) > MAX_CONTENT_CHARS:
        raise ValueError(
            f"the OnStart script is {len(content)} characters in base64, over AWS's {MAX_CONTENT_CHARS}; "
            "move work into a script the hook downloads"
        )
    return content


def _missing(error: ClientError, phrase: str) -> bool:
    return error.response["Error"]["Code"] == "ValidationException" and phrase in error.response["Error"]["Message"]


def ensure_lifecycle_config(sagemaker: Any, name: str, script: str) -> str:
    """Create ``name`` with ``script`` as OnStart, or update it if its OnStart differs.

    Returns ``"created"``, ``"updated"`` or ``"unchanged"``. Only OnStart is managed: an OnCreate hook that
    someone added is left as it is.
    """
    content = encode_hook(script)
    try:
        current = sagemaker.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    except ClientError as exc:
        if not _missing(exc, "does not exist"):
            raise
        try:
            sagemaker.create_notebook_instance_lifecycle_config(
                NotebookInstanceLifecycleConfigName=name, OnStart=[{"Content": content}]
            )
            return "created"
        except ClientError as race:
            # Another apply created it between our describe and create: fall through to compare and update.
            if not _missing(race, "already exists"):
                raise
            current = sagemaker.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName=name)
    if [hook.get("Content") for hook in current.get("OnStart") or []] == [content]:
        return "unchanged"
    sagemaker.update_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName=name, OnStart=[{"Content": content}]
    )
    return "updated"


def attach(sagemaker: Any, instance: str, config_name: str) -> str:
    """Name ``config_name`` as ``instance``'s lifecycle configuration: ``"attached"`` or ``"unchanged"``.

    SageMaker updates stopped instances only; a running one is refused here with what to do, rather than
    stopped behind its user's back.
    """
    described = sagemaker.describe_notebook_instance(NotebookInstanceName=instance)
    if described.get("NotebookInstanceLifecycleConfigName") == config_name:
        return "unchanged"
    status = described["NotebookInstanceStatus"]
    if status not in ("Stopped", "Failed"):
        raise RuntimeError(
            f"notebook instance {instance} is {status}; stop it, attach {config_name}, then start it again"
        )
    sagemaker.update_notebook_instance(NotebookInstanceName=instance, LifecycleConfigName=config_name)
    return "attached"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.ops.notebooks.lifecycle", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("render", "apply"):
        sub = commands.add_parser(command)
        sub.add_argument("--bucket", required=True, help="S3 bucket the heartbeats go to")
        sub.add_argument("--prefix", default=DEFAULT_PREFIX, help="key prefix of the heartbeats")
        sub.add_argument("--interval-minutes", type=int, default=DEFAULT_INTERVAL_MINUTES)
        if command == "apply":
            sub.add_argument("--name", required=True, help="lifecycle configuration name")
            sub.add_argument("--attach", nargs="*", default=[], metavar="INSTANCE", help="stopped instances to attach")
            sub.add_argument("--aws-conn-id", default=AWS_CONN_ID, help="Airflow connection for the SageMaker client")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    script = render_on_start(args.bucket, args.prefix, args.interval_minutes)
    if args.command == "render":
        sys.stdout.write(script)
        return 0
    sagemaker = sagemaker_client(args.aws_conn_id)
    print(f"lifecycle config {args.name}: {ensure_lifecycle_config(sagemaker, args.name, script)}")
    for instance in args.attach:
        print(f"notebook instance {instance}: {attach(sagemaker, instance, args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
