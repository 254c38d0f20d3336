"""A StartJobRun's ``sparkSubmit`` job driver as a local ``spark-submit`` command line. No HTTP, no processes here.

What EMR Serverless provides and a laptop does not is filled in, so that a job written for EMR Serverless runs
unchanged:

- S3: EMR's Spark reads ``s3://`` natively. Here Hadoop's S3A connector does, pointed at localcloud's own S3
  (:func:`s3a_conf`: path-style, credentials from the environment) and registered for the
  ``s3://`` scheme as well as ``s3a://`` (``fs.s3.impl``), so paths in entry point arguments, in the script or in
  a Delta table's log work either way. hadoop-aws joins ``--packages``.
- Dependencies: the entry point and ``s3://`` items of ``--jars``/``--py-files``/``--files``/``--archives`` (or
  their ``spark.*`` conf) are fetched from localcloud's S3 into the job directory before the driver starts.
  ``local:`` and ``file:`` URIs and absolute paths pass through. EMR's bundled Delta jars
  (``/usr/share/aws/delta/lib/...``) become the Delta Maven package of the application's release (``releases``).
- Defaults: ``spark.master`` is ``local[*]`` and the single-machine sizing of :data:`LOCAL_CONF`
  applies; the application's and the job's ``spark-defaults`` classifications come on top (the job's win), and
  ``sparkSubmitParameters`` on top of those, as on EMR Serverless. The S3A settings come last: a job cannot point
  them elsewhere. ``spark.emr-serverless.driverEnv.NAME`` sets the driver's environment.
- Other classifications (log4j, hive-site, ...) have nothing to configure locally and are ignored.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from localcloud.services.emr_serverless.releases import DELTA_CONF, release

S3_SCHEMES = ("s3://", "s3a://", "s3n://")
PASS_THROUGH = ("local:", "file:", "/")
# spark-submit options that list files, and the conf each stands for.
FILE_OPTIONS = {
    "--jars": "spark.jars",
    "--py-files": "spark.submit.pyFiles",
    "--files": "spark.files",
    "--archives": "spark.archives",
}
FILE_CONFS = set(FILE_OPTIONS.values())
FLAGS = {"--verbose", "-v", "--supervise", "--help", "-h", "--version"}
EMR_DELTA_JARS = "/usr/share/aws/delta/lib/"
DRIVER_ENV = "spark.emr-serverless.driverEnv."
S3A_FOR_S3 = {
    # EMR's s3:// is EMRFS; here S3A serves that scheme too.
    "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    "spark.hadoop.fs.s3n.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
}


# Sizing for one machine: Spark's 200 shuffle partitions and Delta's 50 snapshot partitions turn a small table
# into hundreds of tiny tasks. An application's or a job's spark-defaults override these.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.databricks.delta.snapshotPartitions": "2",
    # VACUUM lists the table with 10,000 tasks by default: a minute of scheduling on a small table.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
    # spark-submit logs hundreds of INFO lines per step otherwise; warnings and errors stay.
    "spark.log.level": "WARN",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def s3a_conf(endpoint_url: str, region: str) -> dict[str, str]:
    """Hadoop S3A pointed at localcloud's S3, as ``spark.hadoop.*`` conf.

    Credentials never go into conf (a command line shows in ``ps`` and in logs): the driver reads them from
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in its environment. Path-style addressing works
    with any bucket name on a loopback endpoint, with no wildcard DNS.
    """
    conf = {
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
        )
    }
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    if endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint_url
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        secure = urlparse(endpoint_url).scheme == "https"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "true" if secure else "false"
    return conf


class SubmitError(ValueError):
    """The job driver cannot be turned into a command; the message becomes the job's stateDetails."""


@dataclass
class Download:
    uri: str  # s3://bucket/key
    target: str  # where it goes, inside the job directory


@dataclass
class Command:
    argv: list[str]  # after the spark-submit executable
    defaults: dict[str, str]  # the --properties-file contents
    env: dict[str, str]  # the driver's extra environment (never credentials)
    downloads: list[Download] = field(default_factory=list)


def check_parameters(parameters: str | None) -> list[str]:
    """``sparkSubmitParameters`` as tokens; a string the shell could not split is the caller's error."""
    try:
        return shlex.split(parameters or "")
    except ValueError as exc:
        raise SubmitError(f"sparkSubmitParameters cannot be parsed: {exc}.") from exc


def _options(tokens: list[str]) -> list[tuple[str, str | None]]:
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-"):
            raise SubmitError(
                f"sparkSubmitParameters: {token!r} is not an option (the entry point goes in entryPoint)."
            )
        if token in FLAGS:
            options.append((token, None))
            i += 1
            continue
        if token.startswith("--") and "=" in token:
            name, _, value = token.partition("=")
            options.append((name, value))
            i += 1
            continue
        if i + 1 >= len(tokens):
            raise SubmitError(f"sparkSubmitParameters: {token} needs a value.")
        options.append(("--conf" if token == "-c" else token, tokens[i + 1]))
        i += 2
    return options


def _conf_pair(value: str) -> tuple[str, str]:
    key, eq, item = value.partition("=")
    if not eq or not key.strip():
        raise SubmitError(f"sparkSubmitParameters: --conf {value!r} is not key=value.")
    return key.strip(), item


def spark_defaults(configurations: list[dict[str, Any]] | None) -> dict[str, str]:
    """The ``spark-defaults`` classification's properties of a ConfigurationList."""
    found: dict[str, str] = {}
    for item in configurations or []:
        if item.get("classification") == "spark-defaults":
            found.update({k: str(v) for k, v in (item.get("properties") or {}).items()})
    return found


class _Localizer:
    """Maps dependency URIs to what the local spark-submit reads, recording what must be fetched first."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.downloads: list[Download] = []
        self.wants_delta = False

    def one(self, uri: str, folder: str) -> str:
        uri = uri.strip()
        if uri.startswith(S3_SCHEMES):
            path, hash_, alias = uri.partition("#")  # --archives env.tar.gz#environment
            name = PurePosixPath(path.split("://", 1)[1]).name
            if not name or "/" not in path.split("://", 1)[1]:
                raise SubmitError(f"{uri} names no object.")
            target = str(self.job_dir / "files" / folder / str(len(self.downloads)) / name)
            self.downloads.append(Download("s3://" + path.split("://", 1)[1], target))
            return target + hash_ + alias
        if uri.startswith(PASS_THROUGH):
            return uri
        raise SubmitError(f"{uri} is neither an s3:// URI nor a local: or file: path.")

    def many(self, value: str, folder: str) -> str:
        kept = []
        for item in filter(None, (v.strip() for v in value.split(","))):
            if item.startswith(EMR_DELTA_JARS):
                self.wants_delta = True  # EMR's bundled Delta Lake, here from Maven
                continue
            kept.append(self.one(item, folder))
        return ",".join(kept)


def build(
    spark_submit: dict[str, Any],
    job_dir: Path,
    *,
    release_label: str,
    endpoint_url: str,
    region: str,
    application_defaults: dict[str, str],
    job_defaults: dict[str, str],
    app_name: str | None,
) -> Command:
    """The spark-submit arguments for a ``sparkSubmit`` job driver whose files go under ``job_dir``."""
    bundled = release(release_label)
    local = _Localizer(job_dir)
    entry = spark_submit["entryPoint"]
    if not entry.startswith(S3_SCHEMES + PASS_THROUGH):
        raise SubmitError(f"entryPoint {entry} must be an s3:// URI (or a local: or file: path).")
    entry_path = local.one(entry, "entrypoint")

    defaults = {"spark.master": "local[*]", **LOCAL_CONF}
    if app_name:
        defaults["spark.app.name"] = app_name
    defaults.update(application_defaults)
    defaults.update(job_defaults)

    argv: list[str] = []
    packages: list[str] = []
    env: dict[str, str] = {}
    for key, value in list(defaults.items()):
        if key == "spark.jars.packages":
            packages += [p.strip() for p in value.split(",") if p.strip()]
            del defaults[key]
        elif key in FILE_CONFS:
            defaults[key] = local.many(value, "deps")
    for option, value in _options(check_parameters(spark_submit.get("sparkSubmitParameters"))):
        if value is None:
            argv.append(option)
        elif option == "--packages":
            packages += [p.strip() for p in value.split(",") if p.strip()]
        elif option in FILE_OPTIONS:
            argv += [option, local.many(value, "deps")]
        elif option == "--conf":
            key, item = _conf_pair(value)
            if key == "spark.jars.packages":
                packages += [p.strip() for p in item.split(",") if p.strip()]
                continue
            if key in FILE_CONFS:
                item = local.many(item, "deps")
            if key.startswith(DRIVER_ENV):
                env[key[len(DRIVER_ENV) :]] = item
            argv += ["--conf", f"{key}={item}"]
        else:
            argv += [option, value]
    for key, item in defaults.items():
        if key.startswith(DRIVER_ENV):
            env.setdefault(key[len(DRIVER_ENV) :], item)
    if local.wants_delta:
        packages.append(bundled.delta_package)
        for key, item in DELTA_CONF.items():
            defaults.setdefault(key, item)
    if not any(p.startswith("org.apache.hadoop:hadoop-aws:") for p in packages):
        packages.append(bundled.hadoop_aws_package)
    argv += ["--packages", ",".join(dict.fromkeys(packages))]
    for key, item in {**s3a_conf(endpoint_url, region), **S3A_FOR_S3}.items():
        argv += ["--conf", f"{key}={item}"]
    argv.append(entry_path)
    argv += list(spark_submit.get("entryPointArguments") or [])
    return Command(argv=argv, defaults=defaults, env=env, downloads=local.downloads)
