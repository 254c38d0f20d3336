"""Textract throttling is retried with backoff; anything else fails at once."""

from __future__ import annotations

import pytest
from aws_ml.hooks.textract import THROTTLING_CODES, with_backoff
from aws_ml.operators.textract import request_token
from botocore.exceptions import ClientError


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "StartDocumentAnalysis")


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_is_retried_with_growing_delays(code):
    calls, sleeps = [], []

    def call():
        calls.append(1)
        if len(calls) < 4:
            raise _error(code)
        return {"JobId": "j"}

    assert with_backoff(call, sleep=sleeps.append, base_delay=1.0) == {"JobId": "j"}
    assert len(calls) == 4 and len(sleeps) == 3
    assert all(0 <= s <= 2**i for i, s in enumerate(sleeps))  # full jitter under a doubling cap


def test_gives_up_after_the_attempts_and_other_errors_are_not_retried():
    sleeps = []
    with pytest.raises(ClientError, match="ThrottlingException"):
        with_backoff(lambda: (_ for _ in ()).throw(_error("ThrottlingException")), attempts=3, sleep=sleeps.append)
    assert len(sleeps) == 2
    sleeps.clear()
    with pytest.raises(ClientError, match="InvalidS3ObjectException"):
        with_backoff(lambda: (_ for _ in ()).throw(_error("InvalidS3ObjectException")), sleep=sleeps.append)
    assert sleeps == []


def test_request_token_is_stable_and_valid():
    token = request_token("bucket", "work/a/document.pdf", '"etag"', "TABLES")
    assert token == request_token("bucket", "work/a/document.pdf", '"etag"', "TABLES")
    assert token != request_token("bucket", "work/a/document.pdf", '"etag2"', "TABLES")
    assert 1 <= len(token) <= 64 and token.isalnum()
