"""The A2I runtime's IAM actions: its service is ``sagemaker-a2i-runtime`` but its actions are SageMaker's
(``sagemaker:StartHumanLoop``...), per the Service Authorization Reference (list_amazonsagemaker.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud.iam_targets import Target, is_arn, service_arn

PREFIX = "sagemaker"  # the action prefix
PASSED_TO = "sagemaker.amazonaws.com"  # the principal that roles handed to this service are passed to


def a2i_targets(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Target]:
    """The A2I runtime's actions are SageMaker's (``sagemaker:StartHumanLoop``...)."""
    flow = params.get("FlowDefinitionArn")
    if operation in ("StartHumanLoop", "ListHumanLoops") and is_arn(flow):
        resource = str(flow)  # a human loop is authorized on the flow definition it runs
    elif params.get("HumanLoopName"):
        resource = service_arn("sagemaker", region, account, f"human-loop/{str(params['HumanLoopName']).lower()}")
    else:
        resource = "*"
    return [Target(f"sagemaker:{operation}", resource)]


targets = a2i_targets
