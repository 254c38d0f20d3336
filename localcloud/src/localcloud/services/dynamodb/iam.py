"""DynamoDB's IAM actions and resources per request (Service Authorization Reference, list_amazondynamodb.html).

Transactions are authorized per item, by the single-item action each stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud.iam_targets import Target

PREFIX = "dynamodb"  # the action prefix
PASSED_TO = None  # the principal that roles handed to this service are passed to


def dynamodb_arn(table: str, region: str, account: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}"


_DYNAMODB_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def dynamodb_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [
            Target(f"dynamodb:{operation}", dynamodb_arn(t, region, account)) for t in params.get("RequestItems", {})
        ]
    if operation == "TransactGetItems":
        # Transactions are authorized per item, by the single-item action each one stands for.
        items = params.get("TransactItems", [])
        return [Target("dynamodb:GetItem", dynamodb_arn(i["Get"]["TableName"], region, account)) for i in items]
    if operation == "TransactWriteItems":
        out = []
        for item in params.get("TransactItems", []):
            for kind, action in _DYNAMODB_TRANSACT.items():
                if kind in item:
                    out.append(Target(f"dynamodb:{action}", dynamodb_arn(item[kind]["TableName"], region, account)))
        return out
    table = params.get("TableName")
    if table:
        arn = dynamodb_arn(str(table), region, account)
        if params.get("IndexName") and operation in ("Query", "Scan"):
            arn = f"{arn}/index/{params['IndexName']}"
        return [Target(f"dynamodb:{operation}", arn)]
    return [Target(f"dynamodb:{operation}", str(params.get("ResourceArn") or "*"))]


targets = dynamodb_targets
