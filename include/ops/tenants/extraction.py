"""The steps of the tenant_data_extraction DAG around its Glue job: take the requests, scope each one to its tenant,
and write the outcome back. The clients come from the DAG's hooks; the tenant's own clients from AssumeRole."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from include.connections import AWS_CONN_ID, client, dynamodb_client
from include.ops.tenants import masking, provision, requests
from include.ops.tenants.glue_extract import MANIFEST, ExtractionError, validate_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clients:
    """The DAG's clients, and ``tenant_client(credentials, service)`` for a tenant's session."""

    ddb: Any
    sts: Any
    glue: Any
    tenant_client: Callable[[dict[str, str], str], Any]
    account: str


def job_name(tenant: str) -> str:
    return f"tenant-extract-{tenant}"


def output_uri(tenant: str, request_id: str) -> str:
    return f"s3://{provision.bucket_name(tenant)}/{provision.EXTRACTIONS_PREFIX}{request_id}/"


def plan(ddb: Any, table: str, run_id: str, limit: int) -> list[dict[str, Any]]:
    """The requests this run works on; a request that cannot be valid is marked FAILED here, with the reason."""
    requests.ensure_table(ddb, table)
    log.info("pending requests in %s (%s, %s)", table, ddb.meta.endpoint_url, ddb.meta.region_name)
    valid = []
    for item in requests.pending(ddb, table, run_id, limit):
        try:
            validate_request(item.get("tenant"), item.get("tables"), item.get("masking"))
        except ExtractionError as exc:
            log.warning("request %s refused: %s", item["request_id"], exc)
            requests.finish(ddb, table, item["request_id"], run_id, requests.FAILED, error=f"invalid request: {exc}")
            continue
        valid.append(
            {k: item[k] for k in ("request_id", "tenant", "tables") if k in item} | {"masking": item.get("masking", {})}
        )
    return valid


def tenant_session(sts: Any, tenant: str, account: str, run_id: str) -> tuple[dict[str, str], str]:
    """Credentials of the tenant's role (with its external id) and the session's ARN."""
    role_arn = provision.role_arn(tenant, account)
    # Session names allow [\w+=,.@-]{2,64}; run ids carry ':' and '+'.
    session_name = ("extract-" + "".join(c if c.isalnum() or c in "=,.@-" else "-" for c in run_id))[:64]
    answer = sts.assume_role(
        RoleArn=role_arn,
        RoleSessionName=session_name,
        ExternalId=provision.external_id(tenant),
        DurationSeconds=900,
    )
    creds = answer["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }, answer["AssumedRoleUser"]["Arn"]


def scope(
    clients: Clients, *, table: str, request: dict[str, Any], run_id: str, replica_uri: str, masking_key: str
) -> dict[str, Any]:
    """Take the request for this run, check the tenant's role works on the tenant's own prefix, and return the
    Glue job's settings. ``masking_key`` is the tenant's HMAC key for the ``hash`` rule (``masking.tenant_key``)."""
    request_id, tenant = request["request_id"], request["tenant"]
    if not requests.claim(clients.ddb, table, request_id, run_id):
        raise RuntimeError(f"request {request_id} is no longer pending for run {run_id}; another run took it")
    try:
        credentials, session_arn = tenant_session(clients.sts, tenant, clients.account, run_id)
        s3 = clients.tenant_client(credentials, "s3")
        # The same access the job will need, tried before a job is started: a broken role fails fast here.
        prefix = f"{provision.EXTRACTIONS_PREFIX}{request_id}/"
        s3.list_objects_v2(Bucket=provision.bucket_name(tenant), Prefix=prefix, MaxKeys=1)
    except Exception as exc:
        requests.finish(
            clients.ddb, table, request_id, run_id, requests.FAILED, error=f"tenant role check failed: {exc}"
        )
        raise
    log.info("request %s runs as %s", request_id, session_arn)
    return {
        "job_name": job_name(tenant),
        "iam_role_arn": provision.role_arn(tenant, clients.account),
        "script_args": {
            "--tenant": tenant,
            "--request_id": request_id,
            "--tables": json.dumps(request["tables"]),
            "--masking": json.dumps(request.get("masking") or {}, sort_keys=True),
            "--replica": replica_uri,
            "--output": output_uri(tenant, request_id),
            # Readable by whoever may GetJobRun this job (the DAG's role), never by the tenant's role, which has no
            # Glue permission; see masking.py for why the job gets its tenant's key rather than reading a secret.
            masking.JOB_ARGUMENT: masking_key,
        },
    }


def _latest_run(glue: Any, name: str, request_id: str) -> dict[str, Any] | None:
    runs: list[dict[str, Any]] = []
    try:
        for page in glue.get_paginator("get_job_runs").paginate(JobName=name):
            runs.extend(r for r in page["JobRuns"] if (r.get("Arguments") or {}).get("--request_id") == request_id)
    except glue.exceptions.EntityNotFoundException:  # the job was never created (its creation failed)
        return None
    return max(runs, key=lambda r: r["StartedOn"], default=None)


def record(clients: Clients, *, table: str, request: dict[str, Any], run_id: str, job_run_id: str | None) -> dict:
    """Write the outcome to the request item; raise when the extraction failed, so the DAG run shows it."""
    request_id, tenant = request["request_id"], request["tenant"]
    name = job_name(tenant)
    current = requests.get(clients.ddb, table, request_id) or {}
    if job_run_id is None and current.get("status") == requests.FAILED and current.get("run_id") == run_id:
        raise RuntimeError(f"request {request_id} failed before its job started: {current.get('error')}")
    try:
        run = clients.glue.get_job_run(JobName=name, RunId=job_run_id)["JobRun"] if job_run_id else None
    except clients.glue.exceptions.EntityNotFoundException:
        run = None
    # The operator returns no run id when the job failed: find this request's latest run instead.
    run = run or _latest_run(clients.glue, name, request_id)
    if run is None:
        error = "no Glue job run was started for this request"
        requests.finish(clients.ddb, table, request_id, run_id, requests.FAILED, error=error)
        raise RuntimeError(f"request {request_id}: {error}")
    state = run["JobRunState"]
    if state != "SUCCEEDED":
        error = f"Glue job run {run['Id']} ended {state}: {run.get('ErrorMessage', 'no message')}"
        requests.finish(clients.ddb, table, request_id, run_id, requests.FAILED, job_run_id=run["Id"], error=error)
        raise RuntimeError(f"request {request_id}: {error}")
    # The manifest is read as the tenant: the DAG's own role needs no access to tenant data.
    credentials, _ = tenant_session(clients.sts, tenant, clients.account, run_id)
    output = output_uri(tenant, request_id)
    bucket, key = provision.bucket_name(tenant), f"{provision.EXTRACTIONS_PREFIX}{request_id}/{MANIFEST}"
    manifest = json.loads(clients.tenant_client(credentials, "s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    if manifest.get("job_run_id") != run["Id"] or manifest.get("request_id") != request_id:
        error = f"the manifest at s3://{bucket}/{key} is not from job run {run['Id']}"
        requests.finish(clients.ddb, table, request_id, run_id, requests.FAILED, job_run_id=run["Id"], error=error)
        raise RuntimeError(f"request {request_id}: {error}")
    rows = {t["table"]: t["rows"] for t in manifest["tables"]}
    requests.finish(
        clients.ddb, table, request_id, run_id, requests.SUCCEEDED, output=output, rows=rows, job_run_id=run["Id"]
    )
    return {"request_id": request_id, "tenant": tenant, "output": output, "rows": rows, "job_run_id": run["Id"]}


def client_factory(
    endpoint_of: Callable[[str], str | None], region: str | None
) -> Callable[[dict[str, str], str], Any]:
    """Clients for a tenant session that reach the same endpoints (AWS, or localcloud) as the DAG's connection;
    ``endpoint_of(service)`` is the connection's endpoint for a service (None = AWS's own)."""

    def make(credentials: dict[str, str], service: str) -> Any:
        session = boto3.session.Session(region_name=region, **credentials)
        return session.client(service, endpoint_url=endpoint_of(service))

    return make


def masking_master_key(conn_id: str = AWS_CONN_ID, *, may_generate: bool = False) -> str:
    """The master key of the ``hash`` masking, from the Airflow Variable ``masking.MASTER_KEY_VARIABLE``.

    With ``may_generate``, and only while the connection points at an emulator (an ``endpoint_url`` for Glue, as
    offline), a missing key is generated once into the Variable so that a fresh install works; against AWS a missing
    key fails the run with the Variable's name. Call it with ``may_generate`` from one task before the mapped ones, so
    that parallel tasks never generate two different keys."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.sdk import Variable

    emulated = AwsBaseHook(aws_conn_id=conn_id).conn_config.get_service_endpoint_url("glue") is not None
    return masking.master_key(Variable.get, Variable.set if may_generate and emulated else None)


def connection_clients(conn_id: str = AWS_CONN_ID) -> Clients:
    """The DAG's clients, from the Airflow connection ``conn_id``."""
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    sts = StsHook(aws_conn_id=conn_id)
    return Clients(
        ddb=dynamodb_client(conn_id),
        sts=sts.get_conn(),
        glue=client("glue", conn_id),
        tenant_client=client_factory(sts.conn_config.get_service_endpoint_url, sts.conn_region_name),
        account=sts.get_account_number(),
    )
