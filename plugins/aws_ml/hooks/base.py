"""What our hooks share: an ``AwsBaseHook`` bound to one service, with our waiter file when it has one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import ClientError

WAITERS = Path(__file__).resolve().parents[1] / "waiters"
T = TypeVar("T")


class ServiceHook(AwsBaseHook):
    """Subclasses set ``service`` (the boto3 client type) and, when ``waiters/<name>.json`` exists, ``waiters``."""

    service = ""
    waiters = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = self.service
        super().__init__(*args, **kwargs)

    @property
    def waiter_path(self) -> Path | None:
        return WAITERS / f"{self.waiters}.json" if self.waiters else super().waiter_path


def or_none(call: Callable[[], T], codes: Iterable[str]) -> T | None:
    """``call()``, or None when it fails with one of the error ``codes`` (AWS's ways of saying "no such thing")."""
    try:
        return call()
    except ClientError as err:
        if err.response["Error"]["Code"] in tuple(codes):
            return None
        raise
