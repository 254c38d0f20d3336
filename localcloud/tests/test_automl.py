"""The AutoML engine behind localcloud's CreateAutoMLJob: real (small) searches, inference bodies, bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tabular_data as churn

from localcloud.engines.automl import (
    AutoMLError,
    InferenceError,
    StopJob,
    candidate_name,
    format_output,
    load,
    run,
)
from localcloud.engines.automl.__main__ import main as cli_main
from localcloud.engines.automl.data import load_dataset, split
from localcloud.engines.automl.metrics import tune_threshold

ALL_KEYS = ["predicted_label", "probability", "probabilities", "labels"]
FEATURES = [c for c in churn.COLUMNS if c != churn.TARGET]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def churn_csv(tmp_path_factory) -> Path:
    return churn.write_csv(tmp_path_factory.mktemp("data") / "churn.csv", churn.generate(800, seed=5))


@pytest.fixture(scope="module")
def binary_job(churn_csv, tmp_path_factory):
    """One churn job: the three family defaults and six random draws."""
    workdir = tmp_path_factory.mktemp("job")
    events: list[tuple[str, dict]] = []
    spec = {
        "train_csv": str(churn_csv),
        "target": "Churn?",
        "job_name": "churn-test",
        "problem_type": "auto",
        "max_candidates": 9,
        "max_runtime_seconds": 60,
        "seed": 7,
        "validation_fraction": 0.2,
    }
    result = run(spec, workdir, lambda status, info: events.append((status, info)))
    return result, workdir, events


@pytest.fixture(scope="module")
def predictor(binary_job):
    return load(binary_job[0]["candidates"][0]["ModelDir"])


@pytest.fixture(scope="module")
def test_rows() -> list[list[str]]:
    return [[str(row[c]) for c in FEATURES] for row in churn.generate(40, seed=99)]


# -- the search ---------------------------------------------------------------------------------------------------


def test_binary_job_result(binary_job):
    result, workdir, _ = binary_job
    assert result["problem_type"] == "BinaryClassification"
    assert result["objective"] == {"MetricName": "F1", "Type": "Maximize"}
    assert result["labels"] == ["False.", "True."] and result["positive_class"] == "True."
    assert result["dropped_columns"]["Phone"]["reason"] == "id_like"
    assert result["feature_columns"] == FEATURES
    assert result["secondary_status"] == "MaxCandidatesReached"
    assert len(result["candidates"]) == 9
    assert result["best"] == result["candidates"][0]["CandidateName"]
    assert json.loads((workdir / "result.json").read_text()) == result
    analysis = json.loads((workdir / "analysis.json").read_text())
    types = {c["name"]: c["type"] for c in analysis["columns"]}
    assert types["Int'l Plan"] == "boolean" and types["State"] == "categorical" and types["Day Mins"] == "numeric"


def test_each_family_produces_a_candidate(binary_job):
    result = binary_job[0]
    assert {c["Algorithm"] for c in result["candidates"]} == {"xgboost", "linear-learner", "mlp"}
    for c in result["candidates"]:
        assert set(c) >= {"CandidateName", "Algorithm", "ObjectiveValue", "Metrics", "Hyperparameters", "ModelDir"}
        assert set(c["Metrics"]) >= {"F1", "AUC", "Accuracy", "Precision", "Recall", "BalancedAccuracy"}
        assert c["ObjectiveValue"] == c["Metrics"]["F1"]
        assert c["TrainingSeconds"] >= 0


def test_candidates_ranked_by_objective(binary_job):
    values = [c["ObjectiveValue"] for c in binary_job[0]["candidates"]]
    assert values == sorted(values, reverse=True)


def test_candidate_directory_is_self_contained(binary_job):
    best = binary_job[0]["candidates"][0]
    model_dir = Path(best["ModelDir"])
    assert model_dir.name == best["CandidateName"] and model_dir.parent.name == "candidates"
    assert (model_dir / "model.joblib").is_file()
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["algorithm"] == best["Algorithm"]
    assert meta["hyperparameters"] == best["Hyperparameters"]
    assert meta["objective"]["Value"] == best["ObjectiveValue"]
    assert meta["threshold"] == best["Threshold"]
    assert meta["labels"] == ["False.", "True."]
    assert meta["feature_columns"] == FEATURES and "Phone" not in meta["used_columns"]
    assert meta["problem_type"] == "BinaryClassification"


def test_threshold_is_tuned_for_f1_on_validation(binary_job, churn_csv, predictor):
    best = binary_job[0]["candidates"][0]
    data = load_dataset(churn_csv, "Churn?")
    _, valid = split(data, 0.2, seed=7)
    p = predictor.pipeline.predict_proba(data.features[valid])[:, 1]
    y = data.y[valid]

    def f1(threshold: float) -> float:
        pred = p >= threshold
        tp = np.sum(pred & (y == 1))
        return 2 * tp / (pred.sum() + y.sum())

    assert f1(best["Threshold"]) == pytest.approx(best["Metrics"]["F1"])
    assert all(f1(best["Threshold"]) >= f1(t) - 1e-12 for t in np.linspace(0.01, 0.99, 99))


def test_tune_threshold_by_hand():
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    # Sorted: 0.9+ 0.8+ 0.4- 0.3+ 0.2- 0.1-. The top 4 give the best F1 (6/7), so the cut lies halfway to 0.2;
    # accuracy ties at the top 2 and the top 4 (5/6), and the higher cut wins.
    assert tune_threshold(y, p, "F1") == pytest.approx(0.25)
    assert tune_threshold(y, p, "Accuracy") == pytest.approx(0.6)
    assert tune_threshold(np.array([1, 1]), np.array([0.7, 0.7]), "F1") == pytest.approx(0.35)


def test_progress_statuses_in_aws_order(binary_job):
    result, workdir, events = binary_job
    statuses = [status for status, _ in events]
    distinct = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert distinct == [
        "AnalyzingData",
        "FeatureEngineering",
        "ModelTuning",
        "GeneratingExplainabilityReport",
        "MaxCandidatesReached",
    ]
    assert sum(info.get("event") == "candidate" for _, info in events) == 9
    report = json.loads((workdir / "explainability" / "feature_importance.json").read_text())
    assert report["candidate"] == result["best"]
    top = [item["column"] for item in report["importances"][:5]]
    assert {"CustServ Calls", "Day Mins", "Int'l Plan"} & set(top)


def test_candidate_names_are_deterministic(binary_job, churn_csv, tmp_path):
    first = binary_job[0]
    by_index = sorted((c["CandidateName"] for c in first["candidates"]), key=lambda n: int(n.rsplit("-", 2)[1]))
    spec = {"train_csv": str(churn_csv), "target": "Churn?", "job_name": "churn-test", "max_candidates": 4, "seed": 7}
    again = run({**spec, "explainability": False}, tmp_path / "again")
    assert sorted(c["CandidateName"] for c in again["candidates"]) == sorted(by_index[:4])
    name = by_index[0]
    assert name.startswith("churn-test-xgboost-001-") and len(name.rsplit("-", 1)[1]) == 8
    other = candidate_name("churn-test", 1, "xgboost", first["candidates"][0]["Hyperparameters"], seed=8)
    assert other != name


def test_runtime_budget_and_stop(churn_csv, tmp_path):
    spec = {"train_csv": str(churn_csv), "target": "Churn?", "max_candidates": 250, "max_runtime_seconds": 3}
    result = run(spec, tmp_path / "timed")
    assert result["secondary_status"] == "MaxAutoMLJobRuntimeReached"
    assert 3 <= len(result["candidates"]) < 250
    # The budget may be overrun by at most the candidate in flight (plus scoring and saving): measured against the
    # slowest candidate of this run, so that a loaded machine does not fail it and a job that ignores the budget does.
    slowest = max(c["TrainingSeconds"] for c in result["candidates"])
    assert result["elapsed_seconds"] < 3 + slowest + 2

    def stop_after_first(status: str, info: dict) -> None:
        if info.get("event") == "candidate":
            raise StopJob

    stopped = run({**spec, "max_runtime_seconds": 60}, tmp_path / "stopped", stop_after_first)
    assert stopped["secondary_status"] == "Stopped" and len(stopped["candidates"]) == 1


# -- inference ----------------------------------------------------------------------------------------------------


def test_aws_documented_csv_example():
    results = [{"predicted_label": "1", "probability": 0.1, "probabilities": [0.9, 0.1], "labels": ["1", "0"]}]
    assert format_output(results, ALL_KEYS, "text/csv") == "1,0.1,\"[0.9, 0.1]\",\"['1', '0']\"\n"
    assert json.loads(format_output(results, ALL_KEYS, "application/jsonlines")) == results[0]
    assert json.loads(format_output(results, ["probability"], "application/json")) == {
        "predictions": [{"probability": 0.1}]
    }


@pytest.mark.parametrize(
    "keys",
    [
        ["predicted_label"],
        ["predicted_label", "probability"],
        ["probability"],
        ["probabilities", "labels"],
        ALL_KEYS,
    ],
)
def test_binary_inference_for_each_key_set(predictor, test_rows, keys):
    results = predictor.predict_csv_rows(test_rows, keys)
    assert len(results) == len(test_rows) and all(list(r) == keys for r in results)
    full = predictor.predict_csv_rows(test_rows, ALL_KEYS)
    for r in full:
        assert r["labels"] == ["False.", "True."]
        assert r["probability"] == pytest.approx(r["probabilities"][1])  # the positive (second) class
        assert sum(r["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        expected = "True." if r["probability"] >= predictor.threshold else "False."
        assert r["predicted_label"] == expected

    body = format_output(results, keys, "text/csv")
    lines = list(csv.reader(io.StringIO(body)))
    assert len(lines) == len(test_rows) and all(len(line) == len(keys) for line in lines)
    for line, r in zip(lines, results, strict=True):
        for key, cell in zip(keys, line, strict=True):
            if key == "predicted_label":
                assert cell in ("True.", "False.")
            elif key == "probability":
                assert float(cell) == r["probability"]
            elif key == "probabilities":
                assert cell.startswith("[") and [float(v) for v in cell[1:-1].split(", ")] == r["probabilities"]
            else:
                assert cell == "['False.', 'True.']"
    jsonl = format_output(results, keys, "application/jsonlines").splitlines()
    assert [json.loads(line) for line in jsonl] == results


def test_default_keys_and_whole_body(predictor, test_rows):
    body = "\n".join(",".join(row) for row in test_rows[:3]) + "\n"
    out = predictor.predict_csv(body)
    assert out.splitlines() == [r["predicted_label"] for r in predictor.predict_csv_rows(test_rows[:3])]


def test_wrong_column_count_names_the_row(predictor, test_rows):
    rows = [test_rows[0], test_rows[1] + ["False."], test_rows[2]]
    with pytest.raises(InferenceError, match="Record 2 has 21 columns; the model expects 20"):
        predictor.predict_csv_rows(rows, ["predicted_label"])
    with pytest.raises(InferenceError, match="Unsupported inference response key"):
        predictor.predict_csv_rows(test_rows[:1], ["score"])
    with pytest.raises(InferenceError, match="Unsupported accept"):
        format_output([], ["predicted_label"], "application/x-recordio-protobuf")


def test_unseen_and_missing_values_still_predict(predictor, test_rows):
    row = list(test_rows[0])
    row[FEATURES.index("State")] = "ZZ"  # a state training never saw
    row[FEATURES.index("Day Mins")] = ""
    row[FEATURES.index("VMail Plan")] = ""
    (result,) = predictor.predict_csv_rows([row], ["probability"])
    assert 0.0 <= result["probability"] <= 1.0


# -- other problem types --------------------------------------------------------------------------------------------


def test_multiclass_job(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 3))
    colour = rng.choice(["red", "green", "blue"], n)
    score = x[:, 0] + 0.5 * x[:, 1] + (colour == "red") * 1.0
    label = np.where(score < -0.5, "low", np.where(score < 0.8, "mid", "high"))
    rows = [[f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", k, y] for (a, b, c), k, y in zip(x, colour, label, strict=True)]
    path = write_csv(tmp_path / "multi.csv", ["a", "b", "c", "colour", "grade"], rows)
    result = run({"train_csv": str(path), "target": "grade", "max_candidates": 3, "seed": 1}, tmp_path / "job")
    assert result["problem_type"] == "MulticlassClassification"
    assert result["objective"] == {"MetricName": "Accuracy", "Type": "Maximize"}
    assert result["labels"] == ["high", "low", "mid"] and result["positive_class"] is None
    best = result["candidates"][0]
    assert best["ObjectiveValue"] > 0.7 and "F1macro" in best["Metrics"]
    predictor = load(best["ModelDir"])
    out = predictor.predict_csv_rows([r[:-1] for r in rows[:20]], ALL_KEYS)
    for r in out:
        assert r["labels"] == ["high", "low", "mid"]
        assert r["probability"] == pytest.approx(max(r["probabilities"]))  # the predicted label's probability
        assert r["predicted_label"] == r["labels"][int(np.argmax(r["probabilities"]))]
    assert np.mean([r["predicted_label"] == row[-1] for r, row in zip(out, rows, strict=False)]) > 0.6


def test_regression_job(tmp_path):
    rng = np.random.default_rng(2)
    n = 600
    x = rng.uniform(0, 10, size=(n, 2))
    kind = rng.choice(["a", "b"], n)
    y = 3 * x[:, 0] - 2 * x[:, 1] + (kind == "a") * 5 + rng.normal(0, 0.5, n) + 1000
    rows = [[f"{p:.3f}", f"{q:.3f}", k, f"{t:.3f}"] for (p, q), k, t in zip(x, kind, y, strict=True)]
    path = write_csv(tmp_path / "reg.csv", ["p", "q", "kind", "price"], rows)
    result = run(
        {"train_csv": str(path), "target": "price", "max_candidates": 4, "seed": 0, "objective": "RMSE"},
        tmp_path / "job",
    )
    assert result["problem_type"] == "Regression"
    assert result["objective"] == {"MetricName": "RMSE", "Type": "Minimize"}
    values = [c["ObjectiveValue"] for c in result["candidates"]]
    assert values == sorted(values) and values[0] < 2.0
    assert set(result["candidates"][0]["Metrics"]) == {"MSE", "RMSE", "MAE", "R2"}
    predictor = load(result["candidates"][0]["ModelDir"])
    out = predictor.predict_csv_rows([r[:-1] for r in rows[:10]], ["predicted_label"])
    assert all(abs(o["predicted_label"] - float(r[-1])) < 5 for o, r in zip(out, rows, strict=False))
    assert format_output(out[:1], ["predicted_label"]).strip() == repr(out[0]["predicted_label"])
    with pytest.raises(InferenceError):
        predictor.predict_csv_rows([rows[0][:-1]], ["predicted_label", "probability"])


def test_problem_type_inference(tmp_path):
    from localcloud.engines.automl.data import infer_problem_type

    assert infer_problem_type(["yes", "no", "yes"]) == "BinaryClassification"
    assert infer_problem_type(["0", "1"]) == "BinaryClassification"
    assert infer_problem_type(["a", "b", "c"]) == "MulticlassClassification"
    assert infer_problem_type(["1", "2", "3", "2"]) == "MulticlassClassification"
    assert infer_problem_type([str(i) for i in range(50)]) == "Regression"
    assert infer_problem_type(["1.5", "2.25", "3.0"]) == "Regression"


# -- bad input ----------------------------------------------------------------------------------------------------


def _rows(n: int, target: callable) -> list[list]:
    rng = np.random.default_rng(0)
    return [[f"{rng.normal():.3f}", rng.choice(["x", "y"]), target(i)] for i in range(n)]


@pytest.mark.parametrize(
    ("case", "spec", "match"),
    [
        ("ok", {"target": "nope"}, "not a column of the training data"),
        ("ok", {"objective": "MSE"}, "not supported for problem type BinaryClassification"),
        ("ok", {"objective": "LogLoss"}, "failed to satisfy constraint"),
        ("ok", {"problem_type": "Binary"}, "failed to satisfy constraint"),
        ("ok", {"validation_fraction": 1.5}, "validation_fraction"),
        ("three", {"problem_type": "BinaryClassification"}, "exactly 2 target values"),
        ("three", {"problem_type": "Regression"}, "numeric target"),
        ("few", {}, "minimum of 500 rows"),
        ("single", {}, "single value"),
        ("nan", {}, "has no values"),
        ("empty", {}, "empty"),
        ("header", {}, "no data rows"),
        ("ragged", {}, "Line 3 of the training data has 2 columns"),
        ("missing", {}, "does not exist"),
    ],
)
def test_bad_input_raises_validation_exception(tmp_path, case, spec, match):
    header = ["f", "g", "label"]
    path = tmp_path / "data.csv"
    if case == "ok":
        write_csv(path, header, _rows(600, lambda i: "a" if i % 3 else "b"))
    elif case == "three":
        write_csv(path, header, _rows(600, lambda i: "abc"[i % 3]))
    elif case == "few":
        write_csv(path, header, _rows(120, lambda i: "a" if i % 3 else "b"))
    elif case == "single":
        write_csv(path, header, _rows(600, lambda i: "a"))
    elif case == "nan":
        write_csv(path, header, _rows(600, lambda i: "NaN" if i % 2 else ""))
    elif case == "empty":
        path.write_text("")
    elif case == "header":
        path.write_text("f,g,label\n")
    elif case == "ragged":
        path.write_text("f,g,label\n1,x,a\n2,y\n")
    with pytest.raises(AutoMLError, match=match) as caught:
        run({"train_csv": str(path), "target": "label", **spec}, tmp_path / "job")
    assert caught.value.code == "ValidationException"


def test_cli_reports_errors(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"train_csv": str(tmp_path / "absent.csv"), "target": "y"}))
    assert cli_main([str(spec), str(tmp_path / "work")]) == 2
    error = json.loads((tmp_path / "work" / "error.json").read_text())
    assert error["code"] == "ValidationException"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["status"] for line in lines] == ["AnalyzingData", "Failed"]


def test_positive_class_is_second():
    from localcloud.engines.automl.data import order_binary_labels

    assert order_binary_labels(["1", "0", "0"]) == ["0", "1"]
    assert order_binary_labels(["yes", "no", "yes"]) == ["no", "yes"]
    assert order_binary_labels(["False.", "True.", "False."]) == ["False.", "True."]
    assert order_binary_labels(["cat", "dog", "cat"]) == ["cat", "dog"]  # neither reads as true: the minority
    assert order_binary_labels(["cat", "dog", "cat"], positive_class="cat") == ["dog", "cat"]


def test_separate_validation_channel(churn_csv, tmp_path):
    valid = churn.write_csv(tmp_path / "valid.csv", churn.generate(150, seed=11))
    spec = {"train_csv": str(churn_csv), "target": "Churn?", "validation_csv": str(valid), "max_candidates": 3}
    result = run({**spec, "objective": {"MetricName": "AUC"}, "explainability": False}, tmp_path / "job")
    assert result["data"]["train_rows"] == 800 and result["data"]["validation_rows"] == 150
    assert result["objective"] == {"MetricName": "AUC", "Type": "Maximize"}
    assert [c["ObjectiveValue"] for c in result["candidates"]] == sorted(
        (c["Metrics"]["AUC"] for c in result["candidates"]), reverse=True
    )
