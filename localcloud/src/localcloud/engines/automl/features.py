"""Feature engineering: raw CSV cells (strings) in, a numeric matrix out, as one picklable scikit-learn transformer.

The transformer takes every input column in the training feature order, exactly what a batch-transform request
carries, and ignores the dropped ones itself, so a saved pipeline needs nothing else to answer a CSV row.
Numbers: median imputation with a missing-indicator, then standardisation. Yes/no columns: 1/0, then as numbers.
Categories: a "missing" category, then one-hot with rare values grouped into one "infrequent" column (and unseen
values at inference mapped there, or to all zeros when training had no rare values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from localcloud.engines.automl.data import FALSE_TOKENS, TRUE_TOKENS, boolean_token, is_missing, to_float

MISSING_CATEGORY = "__missing__"


def as_cells(rows: Any, n_columns: int) -> np.ndarray:
    """``rows`` as an object array of strings, shape (n, n_columns)."""
    cells = np.asarray(rows, dtype=object)
    if cells.ndim == 1 and cells.size == 0:
        return cells.reshape(0, n_columns)
    if cells.ndim != 2 or cells.shape[1] != n_columns:
        raise ValueError(f"expected rows of {n_columns} columns, got an array of shape {cells.shape}")
    return cells


def _boolean(value: str) -> float:
    if is_missing(value):
        return np.nan
    token = boolean_token(value)
    return 1.0 if token in TRUE_TOKENS else 0.0 if token in FALSE_TOKENS else np.nan


class TabularFeaturizer(TransformerMixin, BaseEstimator):
    """Raw string cells -> float matrix; column roles are given by index into the input row."""

    def __init__(
        self,
        n_columns: int = 0,
        numeric: tuple[int, ...] = (),
        boolean: tuple[int, ...] = (),
        categorical: tuple[int, ...] = (),
        column_names: tuple[str, ...] = (),
        min_frequency: float = 0.01,
        max_categories: int = 64,
    ) -> None:
        self.n_columns = n_columns
        self.numeric = numeric
        self.boolean = boolean
        self.categorical = categorical
        self.column_names = column_names
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    def _numbers(self, cells: np.ndarray) -> np.ndarray:
        block = np.empty((cells.shape[0], len(self.numeric) + len(self.boolean)))
        for j, col in enumerate(self.numeric):
            block[:, j] = [to_float(v) for v in cells[:, col]]
        for j, col in enumerate(self.boolean, start=len(self.numeric)):
            block[:, j] = [_boolean(v) for v in cells[:, col]]
        return block

    def _categories(self, cells: np.ndarray) -> np.ndarray:
        # Object, not a fixed-width str array: that would truncate MISSING_CATEGORY to the longest value's width.
        block = np.empty((cells.shape[0], len(self.categorical)), dtype=object)
        for j, col in enumerate(self.categorical):
            block[:, j] = [MISSING_CATEGORY if is_missing(v) else str(v).strip() for v in cells[:, col]]
        return block

    def fit(self, X: Any, y: Any = None) -> TabularFeaturizer:
        cells = as_cells(X, self.n_columns)
        self.numbers_ = None
        self.onehot_ = None
        if self.numeric or self.boolean:
            # keep_empty_features: a column missing in every training row still gets its slot (as zeros).
            self.numbers_ = make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
            ).fit(self._numbers(cells))
        if self.categorical:
            # Rare categories share one column: one-hot of a 1%-frequency value mostly adds noise.
            min_frequency = max(2, int(self.min_frequency * cells.shape[0]))
            self.onehot_ = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=min_frequency,
                max_categories=self.max_categories,
                sparse_output=False,
            ).fit(self._categories(cells))
        self.n_features_out_ = self.transform(cells[:1]).shape[1] if cells.shape[0] else 0
        return self

    def transform(self, X: Any) -> np.ndarray:
        cells = as_cells(X, self.n_columns)
        parts = []
        if self.numbers_ is not None:
            parts.append(self.numbers_.transform(self._numbers(cells)))
        if self.onehot_ is not None:
            parts.append(self.onehot_.transform(self._categories(cells)))
        if not parts:
            return np.zeros((cells.shape[0], 0))
        return np.hstack(parts)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = list(self.column_names) or [f"x{i}" for i in range(self.n_columns)]
        out: list[str] = []
        if self.numbers_ is not None:
            imputer = self.numbers_[0]
            num_names = [names[i] for i in (*self.numeric, *self.boolean)]
            out += num_names
            if imputer.indicator_ is not None:
                out += [f"missing({num_names[i]})" for i in imputer.indicator_.features_]
        if self.onehot_ is not None:
            out += list(self.onehot_.get_feature_names_out([names[i] for i in self.categorical]))
        return np.array(out, dtype=object)
