"""The key behind tenant extraction's ``hash`` masking, kept out of every tenant's reach.

A pseudonym must not be reversible by the tenant who receives it. An unkeyed hash (even salted with the tenant's
name) is: the tenant hashes every plausible value (all 4-digit numbers, every name in a list) and matches. So
``hash`` is HMAC-SHA256 under a key the tenant can never read:

- The **master key** is the Airflow Variable ``tenant_masking_secret``. It lives in Airflow's metadata database, or
  in AWS Secrets Manager when the deployment uses the Amazon provider's secrets backend; either way it is read only
  by the Airflow workers, never by a tenant's role, and it never leaves Airflow. Its name contains ``secret``, so
  Airflow masks it in logs and in the UI.
- Each job gets only its **tenant's key**, ``HMAC-SHA256(master, "tenant-masking/v1:" + tenant)``, as the Glue
  argument ``--masking_secret``. Only principals allowed ``glue:GetJobRun`` on the job (the DAG's own role) can read
  job arguments; a tenant's role has no Glue permission at all. If one tenant's key ever leaked, only that tenant's
  pseudonyms would be exposed, never another tenant's and never the master.

Pseudonyms are stable per tenant (the same value masks to the same output in every extraction, so joins keep
working) and differ across tenants and across master keys; rotating the master changes every pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MASTER_KEY_VARIABLE = "tenant_masking_secret"
# The Glue argument that carries a tenant's key; "secret" in its name makes Airflow redact it in rendered fields.
JOB_ARGUMENT = "--masking_secret"
_CONTEXT = "tenant-masking/v1:"
MIN_MASTER_CHARS = 32


class MaskingKeyMissing(RuntimeError):
    """No master key is configured, and this deployment may not generate one."""


def tenant_key(master: str, tenant: str) -> str:
    """The tenant's masking key (hex) under the master key: deterministic, and unrelated across tenants."""
    if len(master) < MIN_MASTER_CHARS:
        raise ValueError(f"the Airflow Variable {MASTER_KEY_VARIABLE} is too short: use at least {MIN_MASTER_CHARS}")
    return hmac.new(master.encode(), (_CONTEXT + tenant).encode(), hashlib.sha256).hexdigest()


def master_key(
    get: Callable[..., Any],
    set_: Callable[..., Any] | None = None,
) -> str:
    """The master key from the Variable store (``get(key, default=None)``).

    With ``set_`` (development only: the DAG passes it when its AWS connection points at an emulator rather than AWS)
    a missing key is generated once, stored as the Variable and reused from then on; it is never committed anywhere.
    Without it, a missing key is an error that names the Variable to set.
    """
    value = get(MASTER_KEY_VARIABLE, default=None)
    if value:
        return str(value)
    if set_ is None:
        raise MaskingKeyMissing(
            f"no tenant masking key: set the Airflow Variable {MASTER_KEY_VARIABLE} to a random secret of at least "
            f"{MIN_MASTER_CHARS} characters (e.g. `airflow variables set {MASTER_KEY_VARIABLE} "
            "\"$(python -c 'import secrets; print(secrets.token_hex(32))')\"`, or the secret "
            f"airflow/variables/{MASTER_KEY_VARIABLE} with the Secrets Manager backend)"
        )
    value = secrets.token_hex(32)
    set_(
        MASTER_KEY_VARIABLE,
        value,
        description="HMAC key of tenant extraction's hash masking (generated for development; keep it stable)",
    )
    log.warning("generated a development tenant masking key into the Airflow Variable %s", MASTER_KEY_VARIABLE)
    return value
