"""Amazon Textract hook: async document analysis with throttling backoff and paginated results."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from aws_ml.hooks.base import ServiceHook

# What Textract answers when an account is over its transactions-per-second or concurrent-job quota.
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"}
)
T = TypeVar("T")


def with_backoff(
    call: Callable[[], T],
    *,
    attempts: int = 8,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Any = None,
) -> T:
    """``call()``, retried with full-jitter exponential backoff while Textract throttles; other errors raise."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code not in THROTTLING_CODES or attempt == attempts:
                raise
            delay = random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))
            if log is not None:
                log.warning(
                    "Textract throttled (%s), attempt %d/%d; retrying in %.1f s", code, attempt, attempts, delay
                )
            sleep(delay)
    raise AssertionError("unreachable")


class TextractHook(ServiceHook):
    """Interact with Amazon Textract through ``aws_default`` (real AWS or localcloud)."""

    service = waiters = "textract"

    def get_document_analysis(self, job_id: str, max_results: int = 1000) -> dict[str, Any]:
        """The whole result of a finished job: every page of ``GetDocumentAnalysis`` (NextToken), blocks joined."""
        blocks: list[dict[str, Any]] = []
        warnings: list[dict[str, Any]] = []
        token = None
        while True:
            request: dict[str, Any] = {"JobId": job_id, "MaxResults": max_results}
            if token:
                request["NextToken"] = token
            page = with_backoff(lambda r=request: self.conn.get_document_analysis(**r), log=self.log)
            if page["JobStatus"] not in ("SUCCEEDED", "PARTIAL_SUCCESS"):
                raise ValueError(f"Textract job {job_id} is {page['JobStatus']}: {page.get('StatusMessage')}")
            blocks += page.get("Blocks", [])
            warnings += page.get("Warnings", [])
            token = page.get("NextToken")
            if not token:
                break
        return {
            "JobId": job_id,
            "JobStatus": page["JobStatus"],
            "DocumentMetadata": page.get("DocumentMetadata", {}),
            "AnalyzeDocumentModelVersion": page.get("AnalyzeDocumentModelVersion"),
            "Warnings": warnings,
            "Blocks": blocks,
        }
