"""What our waiter triggers share: one resource, named by one argument, waited on by one waiter."""

from __future__ import annotations

from typing import Any


def resource_fields(
    key: str,
    value: Any,
    *,
    subject: str,
    failure_message: str,
    serialized_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``AwsBaseWaiterTrigger`` arguments for a resource named by ``key=value``: that pair is serialized (with
    ``serialized_fields``, when the resource needs more to be found again) and is what the trigger returns.

    The triggers pass their connection settings (``aws_conn_id``, ``region_name``, ``verify``,
    ``botocore_config``) through as keyword arguments: the base class serializes them, and the triggerer hands
    them back to the trigger's ``__init__``.
    """
    return {
        "serialized_fields": serialized_fields or {key: value},
        "status_message": subject,
        "failure_message": failure_message,
        "return_key": key,
        "return_value": value,
    }
