"""STS: who the local caller is. There is one local account, and the caller is its root user."""

from __future__ import annotations

from typing import Any

from include.localcloud.core import RequestContext


class StsBackend:
    def get_caller_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "UserId": ctx.access_key_id,
            "Account": ctx.account_id,
            "Arn": f"arn:aws:iam::{ctx.account_id}:root",
        }
