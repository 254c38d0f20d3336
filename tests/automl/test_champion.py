"""Champion/challenger logic: metric direction, min_improvement, when the champion is rescored, the fixed holdout."""

from __future__ import annotations

import io
import json

import pytest
from botocore.exceptions import ClientError

from include.automl import champion as ch
from include.automl.data import prepare
from include.s3objects import read_json_or_none


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts: list[str] = []

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: object) -> None:  # noqa: N803 - boto3's names
        self.objects[(Bucket, Key)] = Body if isinstance(Body, bytes) else Body.encode()
        self.puts.append(Key)

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def text(self, key: str, bucket: str = "b") -> str:
        return self.objects[(bucket, key)].decode()


# ------------------------------------------------------------------------------------------------------------------
# The decision
# ------------------------------------------------------------------------------------------------------------------
def test_first_model_is_promoted():
    d = ch.decide("F1", 0.4, None, has_champion=False)
    assert (d.decision, d.promoted) == ("first_model", True)


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "decision"),
    [
        ("F1", 0.80, 0.70, "promoted"),
        ("F1", 0.60, 0.70, "kept"),
        ("F1", 0.70, 0.70, "kept"),  # equal keeps the champion
        ("AUC", 0.91, 0.90, "promoted"),
        ("R2", 0.5, 0.6, "kept"),
        # Losses: lower is better.
        ("MSE", 1.0, 2.0, "promoted"),
        ("MSE", 2.0, 1.0, "kept"),
        ("RMSE", 3.0, 3.0, "kept"),
        ("MAE", 0.9, 1.0, "promoted"),
        ("MAE", 1.1, 1.0, "kept"),
    ],
)
def test_better_worse_equal_in_the_metrics_direction(metric, challenger, champion, decision):
    d = ch.decide(metric, challenger, champion, has_champion=True)
    assert d.decision == decision and d.promoted == (decision == "promoted")
    assert ("lower is better" in d.reason) == (metric in ("MSE", "RMSE", "MAE"))


def test_min_improvement_is_a_strict_margin_in_the_metrics_direction():
    assert ch.decide("F1", 0.75, 0.70, has_champion=True, min_improvement=0.1).decision == "kept"
    assert ch.decide("F1", 0.81, 0.70, has_champion=True, min_improvement=0.1).decision == "promoted"
    assert ch.decide("F1", 0.80, 0.70, has_champion=True, min_improvement=0.1).decision == "kept"  # not more than
    kept = ch.decide("MSE", 1.95, 2.0, has_champion=True, min_improvement=0.1)
    assert kept.decision == "kept" and "only" in kept.reason and kept.improvement == pytest.approx(0.05)
    assert ch.decide("MSE", 1.5, 2.0, has_champion=True, min_improvement=0.1).decision == "promoted"


def test_missing_scores():
    assert ch.decide("AUC", None, 0.8, has_champion=True).decision == "kept"
    assert ch.decide("AUC", float("nan"), 0.8, has_champion=True).decision == "kept"
    assert ch.decide("AUC", 0.7, None, has_champion=True).decision == "promoted"
    with pytest.raises(ValueError, match="unknown objective"):
        ch.decide("Bogus", 1.0, 0.0, has_champion=True)


def test_champion_score_is_reused_only_on_the_same_holdout_and_metric():
    record = {"model_name": "m", "metric": "F1", "score": 0.7, "holdout_sha": "abc"}
    assert ch.champion_scoring(None, "abc", "F1") == "none"
    assert ch.champion_scoring(record, "abc", "F1") == "recorded"
    assert ch.champion_scoring(record, "other", "F1") == "rescore"  # holdout hash mismatch
    assert ch.champion_scoring(record, "abc", "AUC") == "rescore"  # another objective
    assert ch.champion_scoring({**record, "score": None}, "abc", "F1") == "rescore"


def test_baseline_is_the_champion_before_this_runs_own_promotion():
    old = {"model_name": "old", "promoted_by_run": "r1", "previous": None}
    new = {"model_name": "new", "promoted_by_run": "r2", "previous": {"model_name": "old"}}
    assert ch.baseline(None, "r1") is None
    assert ch.baseline(old, "r1") is None  # a rerun of the first run: still the first model
    assert ch.baseline(new, "r2") == {"model_name": "old"}
    assert ch.baseline(new, "r3") is new


def test_scores_per_metric():
    labels = ["True.", "False.", "True.", "False."]
    rows = [
        {"predicted_label": "True.", "probability": 0.9},
        {"predicted_label": "True.", "probability": 0.6},
        {"predicted_label": "False.", "probability": 0.4},
        {"predicted_label": "False.", "probability": 0.1},
    ]
    assert ch.score("Accuracy", labels, rows) == 0.5
    assert ch.score("F1", labels, rows) == 0.5
    assert ch.score("AUC", labels, rows) == 0.75
    assert ch.score("AUC", labels, [{"predicted_label": r["predicted_label"]} for r in rows]) is None
    y, p = ["1", "2", "3"], [{"predicted_label": v} for v in ("1", "2", "5")]
    assert ch.score("MSE", y, p) == pytest.approx(4 / 3)
    assert ch.score("RMSE", y, p) == pytest.approx((4 / 3) ** 0.5)
    assert ch.score("MAE", y, p) == pytest.approx(2 / 3)
    assert ch.score("R2", y, p) == pytest.approx(1 - (4 / 3) / (2 / 3))
    with pytest.raises(ValueError, match="lost or added"):
        ch.score("F1", labels, rows[:3])


def test_dataset_from_param_then_event_then_generated():
    events = [{"dataset_uri": "s3://b/old.csv"}, {"dataset_uri": "s3://b/new.csv"}]
    assert ch.resolve_dataset("s3://b/param.csv", events) == ("s3://b/param.csv", "param")
    assert ch.resolve_dataset("", events) == ("s3://b/new.csv", "asset_event")
    assert ch.resolve_dataset("", []) == ("", "generated")
    with pytest.raises(ValueError, match="dataset_uri"):
        ch.resolve_dataset("", [{"rows": 3}])


# ------------------------------------------------------------------------------------------------------------------
# The fixed holdout
# ------------------------------------------------------------------------------------------------------------------
HEADER = ["id", "x", "y"]


def _rows(n: int, label=lambda i: str(i % 2)) -> list[list[str]]:
    return [[f"id{i}", str(i * 3), label(i)] for i in range(n)]


def test_exclusion_drops_rows_whose_features_are_held_out_even_relabelled():
    rows = _rows(10)
    holdout_keys = {ch.row_key(ch.features_of(r, 2)) for r in rows[:3]}
    relabelled = [[r[0], r[1], "9"] for r in rows[:3]]
    kept, dropped = ch.exclude_holdout(rows + relabelled, holdout_keys, 2)
    assert dropped == 6 and kept == rows[3:]
    # Whitespace does not let a copy through.
    assert ch.exclude_holdout([[" id0", "0 ", "1"]], holdout_keys, 2) == ([], 1)


def test_holdout_is_made_once_and_never_overwritten():
    s3 = FakeS3()
    first = ch.ensure_holdout(s3, "b", "p/registry/y", HEADER, _rows(50), "y", 0.2, 0, "s3://b/first.csv")
    assert first["created"] and first["rows"] == 10 and len(first["keys"]) == 10
    features = s3.text("p/registry/y/holdout/features.csv")
    assert len(features.splitlines()) == 10 and all(len(line.split(",")) == 2 for line in features.splitlines())
    puts = len(s3.puts)
    again = ch.ensure_holdout(s3, "b", "p/registry/y", HEADER, _rows(80), "y", 0.5, 1, "s3://b/second.csv")
    assert not again["created"] and len(s3.puts) == puts
    assert again["sha256"] == first["sha256"] and again["keys"] == first["keys"]
    assert again["created_from"] == "s3://b/first.csv"


def test_a_changed_holdout_fails_instead_of_giving_incomparable_scores():
    s3 = FakeS3()
    ch.ensure_holdout(s3, "b", "r", HEADER, _rows(20), "y", 0.2, 0, "src")
    s3.objects[("b", "r/holdout/labels.csv")] = b"1\n1\n1\n1"
    with pytest.raises(ValueError, match="changed since it was recorded"):
        ch.ensure_holdout(s3, "b", "r", HEADER, _rows(20), "y", 0.2, 0, "src")


def test_columns_are_aligned_to_the_holdout_or_refused():
    rows = [["1", "a", "x"]]
    assert ch.align_columns(["y", "id", "x"], rows, HEADER) == [["a", "x", "1"]]
    with pytest.raises(ValueError, match="not the fixed holdout"):
        ch.align_columns(["id", "x", "z"], rows, HEADER)


def _params(**extra) -> dict:
    return {
        "bucket": "b",
        "prefix": "ap",
        "dataset_uri": "s3://b/data.csv",
        "rows": 100,
        "target": "y",
        "problem_type": "auto",
        "objective": "F1",
        "max_candidates": 2,
        "max_runtime_seconds": 30,
        "holdout_fraction": 0.2,
        "seed": 0,
        **extra,
    }


def _upload(s3: FakeS3, key: str, rows: list[list[str]], header=HEADER) -> None:
    s3.put_object(Bucket="b", Key=key, Body=ch.csv_text(header, rows).encode())


def test_prepare_never_trains_on_the_holdout_and_names_the_job_by_the_data():
    s3 = FakeS3()
    _upload(s3, "data.csv", _rows(100))
    first = prepare(_params(), s3, "asset_event")
    assert first["holdout_created"] and first["holdout_rows"] == 20 and first["train_rows"] == 80
    assert first["excluded_rows"] == 20 and first["dataset_source"] == "asset_event"
    assert first["registry"] == f"ap/registry/{ch.target_slug('y')}"
    # New data at the same URI: the same rows relabelled, plus new rows, in another column order.
    relabelled = [["0", r[0], r[1]] for r in _rows(100)] + [["1", "new", "7"]]
    _upload(s3, "data.csv", relabelled, header=["y", "id", "x"])
    second = prepare(_params(), s3)
    assert not second["holdout_created"] and second["holdout_sha256"] == first["holdout_sha256"]
    assert second["excluded_rows"] == 20 and second["train_rows"] == 81
    assert second["job_name"] != first["job_name"]  # same URI, new data: a new AutoML job
    train = s3.text(f"{second['root']}/train/train.csv").splitlines()
    assert train[0] == "id,x,y"
    held = {line for line in s3.text(f"{second['registry']}/holdout/features.csv").splitlines()}
    assert not {",".join(line.split(",")[:2]) for line in train[1:]} & held
    # The same data again: the same job (a rerun reuses it).
    assert prepare(_params(), s3)["job_name"] == second["job_name"]


# ------------------------------------------------------------------------------------------------------------------
# The run's record
# ------------------------------------------------------------------------------------------------------------------
def _decide_run(s3: FakeS3, run_id: str, predicted: list[str], model: str, **params) -> dict:
    data = prepare(_params(**params), s3)
    labels = s3.text(data["holdout_labels_key"]).splitlines()
    out = "\n".join(predicted[: len(labels)])
    s3.put_object(Bucket="b", Key=f"preds/{model}/features.csv.out", Body=out.encode())
    chosen = {
        "candidate": f"{model}-cand",
        "keys": ["predicted_label"],
        "predictions_uri": f"s3://b/preds/{model}/",
        "model_config": {"ModelName": model, "Containers": [], "ExecutionRoleArn": "r"},
    }
    record = read_json_or_none(s3, "b", ch.champion_key(data["registry"]))
    current = ch.baseline(record, run_id)
    scoring = ch.champion_scoring(current, data["holdout_sha256"], params.get("objective", "F1"))
    plan = {"champion": current, "scoring": scoring, "transform_config": None, "predictions_uri": ""}
    return ch.record_decision(_params(**params), data, chosen, plan, run_id, s3)


def test_records_first_model_then_keeps_a_worse_one_and_reruns_replace_their_decision():
    s3 = FakeS3()
    _upload(s3, "data.csv", _rows(100))
    data = prepare(_params(), s3)
    truth = s3.text(data["holdout_labels_key"]).splitlines()
    perfect, wrong = truth, ["1" if t == "0" else "0" for t in truth]

    first = _decide_run(s3, "r1", perfect, "m1")
    assert first["decision"] == "first_model" and first["champion"] is None and first["challenger"]["score"] == 1.0
    champion_key = ch.champion_key(data["registry"])
    recorded = s3.text(champion_key)
    assert json.loads(recorded)["model_name"] == "m1" and json.loads(recorded)["promoted_by_run"] == "r1"
    assert _decide_run(s3, "r1", perfect, "m1")["decision"] == "first_model"  # a rerun decides the same

    second = _decide_run(s3, "r2", wrong, "m2")
    assert second["decision"] == "kept" and second["champion"]["score_source"] == "recorded"
    assert second["champion"]["score"] == 1.0 and second["challenger"]["score"] == 0.0
    assert s3.text(champion_key) == recorded
    again = _decide_run(s3, "r2", wrong, "m2")
    assert again == second
    decisions = {k for (_, k) in s3.objects if "/decisions/" in k}
    assert decisions == {ch.decision_key(data["registry"], r) for r in ("r1", "r2")}
