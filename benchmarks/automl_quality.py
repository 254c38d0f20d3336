"""AutoML quality: localcloud's Autopilot engine against a plain tuned XGBoost, on churn and on breast cancer.

    python benchmarks/automl_quality.py [--minutes 2] [--baseline-iter 40] [--seed 0] [--out PATH]

Churn: the engine gets the 5,000-row churn table (``include.datagen.churn``, seed ``--seed``) and a budget of
``--minutes``; both models are scored on 20,000 fresh rows (seed + 1), large enough that F1 differences of 0.01 are
not noise, next to the ceiling of the true formula the rows were drawn from. Breast cancer (scikit-learn's copy of
the Wisconsin data, malignant as the positive class): 70% to the engine (below Autopilot's 500-row minimum, so
``min_rows`` is lowered), 30% held out.

The baseline uses the engine's own train / validation split and feature matrix (so the comparison is of the search,
not of the preprocessing): ``RandomizedSearchCV`` over XGBoost (``--baseline-iter`` draws, 3-fold CV log loss on the
training part), then the same F1 threshold tuning on the validation part. Goal: the engine's best candidate within
0.02 F1 of the baseline on the held-out rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from include.datagen import churn
from localcloud.engines.automl import load, run
from localcloud.engines.automl.data import load_dataset, split
from localcloud.engines.automl.job import threads
from localcloud.engines.automl.metrics import tune_threshold

GOAL_F1_GAP = 0.02


def _f1_auc(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    return float(f1_score(y, p >= threshold)), float(roc_auc_score(y, p))


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def baseline(train_csv: Path, target: str, seed: int, n_iter: int, min_rows: int) -> dict[str, Any]:
    """Randomized-search XGBoost on the engine's split and features; threshold tuned for F1 on validation."""
    from scipy.stats import loguniform, randint, uniform
    from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
    from xgboost import XGBClassifier

    from localcloud.engines.automl.features import TabularFeaturizer

    started = time.monotonic()
    data = load_dataset(train_csv, target, "BinaryClassification", min_rows)
    train, valid = split(data, 0.2, seed)
    used = data.used
    featurizer = TabularFeaturizer(
        n_columns=len(data.feature_names),
        numeric=tuple(c.index for c in used if c.kind == "numeric"),
        boolean=tuple(c.index for c in used if c.kind == "boolean"),
        categorical=tuple(c.index for c in used if c.kind == "categorical"),
    ).fit(data.features[train])
    x_train, x_valid = featurizer.transform(data.features[train]), featurizer.transform(data.features[valid])
    search = RandomizedSearchCV(
        XGBClassifier(tree_method="hist", n_jobs=threads(), verbosity=0, random_state=seed),
        {
            "n_estimators": randint(50, 800),
            "learning_rate": loguniform(0.01, 0.3),
            "max_depth": randint(2, 11),
            "min_child_weight": loguniform(0.5, 20),
            "subsample": uniform(0.5, 0.5),
            "colsample_bytree": uniform(0.4, 0.6),
            "reg_lambda": loguniform(0.1, 10),
        },
        n_iter=n_iter,
        scoring="neg_log_loss",
        cv=StratifiedKFold(3, shuffle=True, random_state=seed),
        random_state=seed,
        n_jobs=1,
    ).fit(x_train, data.y[train])
    model = search.best_estimator_
    threshold = tune_threshold(data.y[valid], model.predict_proba(x_valid)[:, 1], "F1")
    return {
        "featurizer": featurizer,
        "model": model,
        "threshold": threshold,
        "labels": data.labels,
        "params": {
            k: (float(v) if isinstance(v, float | np.floating) else int(v)) for k, v in search.best_params_.items()
        },
        "seconds": time.monotonic() - started,
    }


def compare(
    name: str,
    train_csv: Path,
    target: str,
    test_rows: list[list[str]],
    test_labels: list[str],
    args: argparse.Namespace,
    workdir: Path,
    min_rows: int = 500,
) -> dict[str, Any]:
    print(f"\n== {name}: AutoML for {args.minutes:g} min ...", flush=True)
    started = time.monotonic()
    result = run(
        {
            "train_csv": str(train_csv),
            "target": target,
            "job_name": name,
            "max_runtime_seconds": int(args.minutes * 60),
            "max_candidates": 250,
            "seed": args.seed,
            "min_rows": min_rows,
        },
        workdir / name,
    )
    automl_seconds = time.monotonic() - started
    best = result["candidates"][0]
    predictor = load(best["ModelDir"])
    positive = predictor.labels[1]
    y_test = np.array([label == positive for label in test_labels], dtype=int)
    p_auto = np.array([r["probability"] for r in predictor.predict_csv_rows(test_rows, ["probability"])])
    auto_f1, auto_auc = _f1_auc(y_test, p_auto, predictor.threshold)
    families = {}
    for candidate in result["candidates"]:
        families[candidate["Algorithm"]] = families.get(candidate["Algorithm"], 0) + 1

    print(f"== {name}: baseline RandomizedSearchCV x{args.baseline_iter} ...", flush=True)
    base = baseline(train_csv, target, args.seed, args.baseline_iter, min_rows)
    cells = np.array(test_rows, dtype=object)
    p_base = base["model"].predict_proba(base["featurizer"].transform(cells))[:, 1]
    base_f1, base_auc = _f1_auc(y_test, p_base, base["threshold"])
    return {
        "dataset": name,
        "test_rows": len(test_rows),
        "automl": {
            "f1": auto_f1,
            "auc": auto_auc,
            "seconds": automl_seconds,
            "best": best["CandidateName"],
            "algorithm": best["Algorithm"],
            "validation_f1": best["Metrics"]["F1"],
            "threshold": predictor.threshold,
            "candidates": len(result["candidates"]),
            "families": families,
            "secondary_status": result["secondary_status"],
            "dropped_columns": sorted(result["dropped_columns"]),
        },
        "baseline": {
            "f1": base_f1,
            "auc": base_auc,
            "seconds": base["seconds"],
            "threshold": base["threshold"],
            "params": base["params"],
        },
        "f1_gap": base_f1 - auto_f1,
        "goal_met": base_f1 - auto_f1 <= GOAL_F1_GAP,
    }


def churn_case(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    train_csv = churn.write_csv(workdir / "churn.csv", churn.generate(5000, args.seed))
    test = churn.generate(20_000, args.seed + 1)
    features = [c for c in churn.COLUMNS if c != churn.TARGET]
    test_rows = [[str(row[c]) for c in features] for row in test]
    labels = [row[churn.TARGET] for row in test]
    out = compare("churn", train_csv, churn.TARGET, test_rows, labels, args, workdir)
    # The ceiling: the true probabilities the test rows were drawn with, at their best F1 threshold.
    truth = churn.true_probabilities(20_000, args.seed + 1)
    y = np.array([label == churn.POSITIVE for label in labels], dtype=int)
    out["ceiling"] = dict(zip(("f1", "auc"), _f1_auc(y, truth, tune_threshold(y, truth, "F1")), strict=True))
    return out


def breast_cancer_case(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    names = [str(n) for n in data.feature_names]
    labels = np.array([str(data.target_names[t]) for t in data.target])
    rows = [[repr(float(v)) for v in x] for x in data.data]
    train, test = train_test_split(np.arange(len(rows)), test_size=0.3, random_state=args.seed, stratify=labels)
    train_csv = _write(workdir / "breast_cancer.csv", [*names, "diagnosis"], [[*rows[i], labels[i]] for i in train])
    return compare(
        "breast-cancer",
        train_csv,
        "diagnosis",
        [rows[i] for i in test],
        [str(labels[i]) for i in test],
        args,
        workdir,
        min_rows=100,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="AutoML budget per dataset")
    parser.add_argument("--baseline-iter", type=int, default=40, help="RandomizedSearchCV draws for the baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="automl-quality-") as tmp:
        results = [churn_case(args, Path(tmp)), breast_cancer_case(args, Path(tmp))]

    print(f"\nAutoML quality ({platform.machine()}, {os.cpu_count()} CPUs, {threads()} training thread(s)):")
    print(f"{'dataset':<14} {'model':<10} {'F1':>6} {'AUC':>6} {'seconds':>8}  notes")
    for r in results:
        a, b = r["automl"], r["baseline"]
        fams = ", ".join(f"{k} {v}" for k, v in sorted(a["families"].items()))
        print(
            f"{r['dataset']:<14} {'automl':<10} {a['f1']:6.3f} {a['auc']:6.3f} {a['seconds']:8.1f}  "
            f"best {a['algorithm']} (validation F1 {a['validation_f1']:.3f}); {a['candidates']} candidates ({fams}); "
            f"{a['secondary_status']}; dropped {a['dropped_columns']}"
        )
        print(
            f"{'':<14} {'baseline':<10} {b['f1']:6.3f} {b['auc']:6.3f} {b['seconds']:8.1f}  "
            f"RandomizedSearchCV x{args.baseline_iter}"
        )
        if "ceiling" in r:
            print(
                f"{'':<14} {'ceiling':<10} {r['ceiling']['f1']:6.3f} {r['ceiling']['auc']:6.3f} {'':>8}  true formula"
            )
        verdict = "met" if r["goal_met"] else "NOT met"
        print(f"{'':<14} gap {r['f1_gap']:+.3f} F1 (goal <= {GOAL_F1_GAP}): {verdict}; {r['test_rows']} test rows")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"minutes": args.minutes, "seed": args.seed, "results": results}, indent=2))
    return 0 if all(r["goal_met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
