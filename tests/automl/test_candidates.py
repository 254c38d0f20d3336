"""Candidate ranking and choice, and the model config built from a candidate (as the SDK's create_model does)."""

from __future__ import annotations

import pytest

from include.automl import candidates as cand


class FakeSageMaker:
    def __init__(self, values: list[float], objective_type: str = "Maximize") -> None:
        self.items = [
            {
                "CandidateName": f"job-c{i}",
                "FinalAutoMLJobObjectiveMetric": {
                    "MetricName": "F1" if objective_type == "Maximize" else "MSE",
                    "Value": v,
                },
                "InferenceContainers": [
                    {
                        "Image": "img",
                        "ModelDataUrl": f"s3://b/m{i}.tar.gz",
                        "Environment": {
                            "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,labels,probabilities"
                        },
                    }
                ],
            }
            for i, v in enumerate(values)
        ]
        self.objective_type = objective_type

    def list_candidates_for_auto_ml_job(self, **request):
        start = int(request.get("NextToken") or 0)
        page = self.items[start : start + 2]  # small pages: the caller must follow NextToken
        more = start + 2 < len(self.items)
        return {"Candidates": page, **({"NextToken": str(start + 2)} if more else {})}


def test_ranked_best_first_across_pages_and_choice_by_name():
    ranked = cand.list_candidates(FakeSageMaker([0.4, 0.9, 0.7, 0.9, 0.1]), "job")
    assert [c["CandidateName"] for c in ranked] == ["job-c1", "job-c3", "job-c2", "job-c0", "job-c4"]
    assert cand.choose(ranked)["CandidateName"] == "job-c1"
    assert cand.choose(ranked, "job-c4")["CandidateName"] == "job-c4"
    with pytest.raises(cand.CandidateError, match="ResourceNotFound: candidate 'nope'"):
        cand.choose(ranked, "nope")
    minimize = cand.list_candidates(FakeSageMaker([3.0, 1.0], "Minimize"), "job")
    assert minimize[0]["CandidateName"] == "job-c1"


def test_model_config_sets_the_response_keys_the_container_supports():
    best = cand.list_candidates(FakeSageMaker([0.5]), "job")[0]
    config = cand.model_config(best, "m", "arn:role", ["predicted_label", "probability", "predicted_label"])
    (container,) = config["Containers"]
    assert container["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] == "predicted_label,probability"
    assert container["ModelDataUrl"] == "s3://b/m0.tar.gz" and config["ExecutionRoleArn"] == "arn:role"
    best["InferenceContainers"][0]["Environment"]["SAGEMAKER_INFERENCE_SUPPORTED"] = "predicted_label"
    with pytest.raises(cand.CandidateError, match="cannot answer with \\['probability'\\]"):
        cand.model_config(best, "m", "arn:role", ["predicted_label", "probability"])
    with pytest.raises(cand.CandidateError, match="response keys"):
        cand.model_config(best, "m", "arn:role", ["score"])


def test_transform_config_is_line_split_csv():
    config = cand.transform_config("t", "m", "s3://b/in/", "s3://b/out/")
    assert config["TransformInput"]["SplitType"] == "Line" and config["TransformInput"]["ContentType"] == "text/csv"
    assert config["TransformOutput"]["AssembleWith"] == "Line"
