"""Autopilot's three HPO algorithm families, their default and randomly sampled hyperparameters, and the estimators.

Hyperparameters are named as the SageMaker algorithms name them where one exists (XGBoost's ``num_round``, ``eta``,
``lambda``...), so a candidate's ``Hyperparameters`` read like Autopilot's; ``build`` maps them onto the
scikit-learn / XGBoost estimators that do the work here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from localcloud.engines.automl.data import BINARY, REGRESSION

XGBOOST = "xgboost"
LINEAR = "linear-learner"
MLP = "mlp"
FAMILIES = (XGBOOST, LINEAR, MLP)
# After one default candidate per family, the search draws families with these weights: boosted trees win most
# tabular problems, and linear models are cheap enough that a few suffice.
FAMILY_WEIGHTS = {XGBOOST: 0.55, LINEAR: 0.15, MLP: 0.30}
MLP_LAYERS = ([32], [64], [128], [256], [64, 32], [128, 64], [256, 128])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _round(value: float) -> float:
    """Hyperparameters at 4 significant digits: readable, and stable through JSON."""
    return float(f"{value:.4g}")


def default_hyperparameters(family: str, problem_type: str) -> dict[str, Any]:
    if family == XGBOOST:
        return {
            "num_round": 300,
            "eta": 0.05,
            "max_depth": 4,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "gamma": 0.0,
            "lambda": 1.0,
            "alpha": 0.0,
        }
    if family == LINEAR:
        if problem_type == REGRESSION:
            return {"wd": 1.0, "l1_ratio": 0.0}
        return {"C": 1.0, "l1_ratio": 0.0, "balance_class_weights": False}
    return {
        "hidden_layer_sizes": [64],
        "activation": "relu",
        "alpha": 1e-4,
        "learning_rate_init": 1e-3,
        "batch_size": 128,
    }


def sample_hyperparameters(family: str, problem_type: str, rng: np.random.Generator) -> dict[str, Any]:
    if family == XGBOOST:
        eta = _log_uniform(rng, 0.01, 0.3)
        # Fewer rounds at high learning rates: the product sets how far boosting goes, and capping it bounds time.
        rounds = int(np.clip(_log_uniform(rng, 15.0, 60.0) / eta, 50, 1000))
        return {
            "num_round": rounds,
            "eta": _round(eta),
            "max_depth": int(rng.integers(2, 11)),
            "min_child_weight": _round(_log_uniform(rng, 0.5, 20.0)),
            "subsample": _round(rng.uniform(0.5, 1.0)),
            "colsample_bytree": _round(rng.uniform(0.4, 1.0)),
            "gamma": 0.0 if rng.random() < 0.5 else _round(_log_uniform(rng, 0.01, 5.0)),
            "lambda": _round(_log_uniform(rng, 0.1, 10.0)),
            "alpha": 0.0 if rng.random() < 0.5 else _round(_log_uniform(rng, 0.001, 5.0)),
        }
    if family == LINEAR:
        l1_ratio = float(rng.choice([0.0, 0.0, 0.5, 1.0]))
        if problem_type == REGRESSION:
            return {"wd": _round(_log_uniform(rng, 1e-4, 100.0)), "l1_ratio": l1_ratio}
        return {
            "C": _round(_log_uniform(rng, 1e-3, 100.0)),
            "l1_ratio": l1_ratio,
            "balance_class_weights": bool(rng.random() < 0.5),
        }
    return {
        "hidden_layer_sizes": list(MLP_LAYERS[int(rng.integers(len(MLP_LAYERS)))]),
        "activation": str(rng.choice(["relu", "tanh"])),
        "alpha": _round(_log_uniform(rng, 1e-6, 1e-1)),
        "learning_rate_init": _round(_log_uniform(rng, 3e-4, 1e-2)),
        "batch_size": int(rng.choice([64, 128, 256])),
    }


def plan(index: int, problem_type: str, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    """Family and hyperparameters of the ``index``-th candidate (1-based): defaults first, then random draws.

    ``rng`` is consumed in candidate order only, so the plan (and candidate names) depend on the seed alone.
    """
    if index <= len(FAMILIES):
        family = FAMILIES[index - 1]
        return family, default_hyperparameters(family, problem_type)
    family = str(rng.choice(list(FAMILY_WEIGHTS), p=list(FAMILY_WEIGHTS.values())))
    return family, sample_hyperparameters(family, problem_type, rng)


def build(family: str, problem_type: str, hp: dict[str, Any], n_classes: int, seed: int, threads: int) -> Any:
    """An unfitted estimator for the candidate."""
    classification = problem_type != REGRESSION
    if family == XGBOOST:
        import xgboost as xgb

        params = {
            "n_estimators": hp["num_round"],
            "learning_rate": hp["eta"],
            "max_depth": hp["max_depth"],
            "min_child_weight": hp["min_child_weight"],
            "subsample": hp["subsample"],
            "colsample_bytree": hp["colsample_bytree"],
            "gamma": hp["gamma"],
            "reg_lambda": hp["lambda"],
            "reg_alpha": hp["alpha"],
            "tree_method": "hist",
            "n_jobs": threads,
            "random_state": seed,
            "verbosity": 0,
        }
        if not classification:
            return xgb.XGBRegressor(objective="reg:squarederror", **params)
        if problem_type == BINARY:
            return xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", **params)
        return xgb.XGBClassifier(objective="multi:softprob", num_class=n_classes, eval_metric="mlogloss", **params)
    if family == LINEAR:
        from sklearn import linear_model

        if not classification:
            if hp["l1_ratio"] == 0.0:
                return linear_model.Ridge(alpha=hp["wd"], random_state=seed)
            # ElasticNet weighs its penalty against the mean squared error, Ridge against the sum: a smaller scale
            # keeps one range of wd useful for both.
            return linear_model.ElasticNet(alpha=hp["wd"] * 1e-3, l1_ratio=hp["l1_ratio"], max_iter=5000)
        return linear_model.LogisticRegression(
            C=hp["C"],
            l1_ratio=hp["l1_ratio"],
            solver="lbfgs" if hp["l1_ratio"] == 0.0 else "saga",
            class_weight="balanced" if hp["balance_class_weights"] else None,
            # saga at the default tol can take thousands of epochs for a gain in the fourth decimal.
            tol=1e-4 if hp["l1_ratio"] == 0.0 else 1e-3,
            max_iter=1000,
            random_state=seed,
        )
    from sklearn import neural_network

    params = {
        "hidden_layer_sizes": tuple(hp["hidden_layer_sizes"]),
        "activation": hp["activation"],
        "alpha": hp["alpha"],
        "learning_rate_init": hp["learning_rate_init"],
        "batch_size": hp["batch_size"],
        "early_stopping": True,
        "n_iter_no_change": 10,
        "max_iter": 300,
        "random_state": seed,
    }
    if classification:
        return neural_network.MLPClassifier(**params)
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    # Targets in the thousands would need thousands of tiny steps; the network learns a standardised target.
    return TransformedTargetRegressor(regressor=neural_network.MLPRegressor(**params), transformer=StandardScaler())
