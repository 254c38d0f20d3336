"""Reading the training CSV, validating it as Autopilot does, typing its columns and inferring the problem type.

Nothing here trains: the result (``Dataset``) is what feature engineering and the search work from.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localcloud.engines.automl.errors import AutoMLError

BINARY = "BinaryClassification"
MULTICLASS = "MulticlassClassification"
REGRESSION = "Regression"
PROBLEM_TYPES = (BINARY, MULTICLASS, REGRESSION)

# CreateAutoMLJob: "A minimum of 500 rows is required for the training dataset."
MIN_ROWS = 500
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
TRUE_TOKENS = frozenset({"1", "true", "yes", "y", "t", "positive", "pos"})
FALSE_TOKENS = frozenset({"0", "false", "no", "n", "f", "negative", "neg", "-1"})
# A numeric target with at most this many distinct integer values is taken for classes, not a quantity.
MAX_INTEGER_CLASSES = 20
# Share of a column's present values that must parse as numbers for it to be numeric (the rest become missing).
NUMERIC_SHARE = 0.95
# Share of distinct values among present ones from which a string column is an identifier, not a category.
ID_SHARE = 0.95


def is_missing(value: Any) -> bool:
    return value is None or str(value).strip().lower() in MISSING


def to_float(value: Any) -> float:
    """The number in ``value``, or NaN when it is missing, not a number or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def boolean_token(value: Any) -> str:
    """``value`` normalised for yes/no detection ("True." -> "true")."""
    return str(value).strip().lower().rstrip(".")


@dataclass
class Column:
    """A feature column of the input: its position among the input columns and how it is used."""

    name: str
    index: int
    kind: str  # "numeric" | "boolean" | "categorical" | "dropped"
    distinct: int
    missing: int
    reason: str | None = None
    detail: str | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "distinct": self.distinct, "missing": self.missing}
        if self.reason:
            out["reason"] = self.reason
            out["detail"] = self.detail
        return out


@dataclass
class Dataset:
    """The validated training data: feature cells as strings, the encoded target and what was decided about both."""

    header: list[str]
    target: str
    feature_names: list[str]  # every non-target column, in input order: what inference requests carry
    features: np.ndarray  # object array (rows, len(feature_names)) of the raw cell strings
    y: np.ndarray  # class indexes (classification) or floats (regression)
    problem_type: str
    labels: list[str] = field(default_factory=list)  # class labels; binary: [negative, positive]
    columns: list[Column] = field(default_factory=list)
    rows_read: int = 0
    rows_missing_target: int = 0

    @property
    def used(self) -> list[Column]:
        return [c for c in self.columns if c.kind != "dropped"]

    @property
    def dropped(self) -> dict[str, dict[str, str]]:
        return {
            c.name: {"reason": c.reason or "", "detail": c.detail or ""} for c in self.columns if c.kind == "dropped"
        }

    @property
    def positive_class(self) -> str | None:
        return self.labels[1] if self.problem_type == BINARY else None


def read_csv(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; blank lines are skipped, ragged rows rejected."""
    path = Path(path)
    if not path.is_file():
        raise AutoMLError("ValidationException", f"The training data file {path} does not exist.")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise AutoMLError("ValidationException", "The training data is empty: it has no header and no rows.")
        header = [name.strip() for name in header]
        rows = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise AutoMLError(
                    "ValidationException",
                    f"Line {reader.line_num} of the training data has {len(row)} columns; the header has {len(header)}.",
                )
            rows.append(row)
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise AutoMLError("ValidationException", f"The header repeats column names: {', '.join(duplicates)}.")
    if not rows:
        raise AutoMLError("ValidationException", "The training data has a header but no data rows.")
    return header, rows


def infer_problem_type(values: list[str]) -> str:
    """AWS-like: two classes -> binary; numbers with fractions or many distinct values -> regression; else multiclass."""
    distinct = set(values)
    if len(distinct) == 2:
        return BINARY
    numbers = [to_float(v) for v in distinct]
    if all(not math.isnan(n) for n in numbers):
        integral = all(n == int(n) for n in numbers)
        if not integral or len(distinct) > MAX_INTEGER_CLASSES:
            return REGRESSION
    return MULTICLASS


def order_binary_labels(values: list[str], positive_class: str | None = None) -> list[str]:
    """[negative, positive]: Autopilot lists the positive class second.

    The positive class is ``positive_class`` when given, else the label that reads as true ("1", "yes", "True.")
    against one that reads as false, else the minority class (what F1 is usually meant to find), else the later
    label in sort order.
    """
    counts = Counter(values)
    a, b = sorted(counts)
    if positive_class is not None:
        if positive_class not in counts:
            raise AutoMLError(
                "ValidationException", f"The positive class {positive_class!r} is not a value of the target column."
            )
        return [a if positive_class == b else b, positive_class]
    ta, tb = boolean_token(a), boolean_token(b)
    if ta in TRUE_TOKENS and tb in FALSE_TOKENS:
        return [b, a]
    if tb in TRUE_TOKENS and ta in FALSE_TOKENS:
        return [a, b]
    if counts[a] < counts[b]:
        return [b, a]
    return [a, b]


def _column(name: str, index: int, cells: np.ndarray) -> Column:
    present = [v.strip() for v in cells if not is_missing(v)]
    distinct = set(present)
    col = Column(name, index, "categorical", len(distinct), len(cells) - len(present))
    if len(distinct) <= 1:
        col.kind, col.reason = "dropped", "constant"
        col.detail = "no values" if not distinct else f"the single value {next(iter(distinct))!r}"
        return col
    numbers = np.array([to_float(v) for v in present])
    parsed = ~np.isnan(numbers)
    if parsed.mean() >= NUMERIC_SHARE:
        values = numbers[parsed]
        # A row counter (1..n, unique, consecutive) identifies rows and predicts nothing.
        integral = np.all(values == np.round(values))
        if integral and len(set(values)) == len(present) and values.max() - values.min() == len(present) - 1:
            col.kind, col.reason = "dropped", "id_like"
            col.detail = f"consecutive unique integers in all {len(present)} rows"
        else:
            col.kind = "numeric"
        return col
    tokens = {boolean_token(v) for v in distinct}
    if len(tokens) == 2 and tokens <= TRUE_TOKENS | FALSE_TOKENS and tokens & TRUE_TOKENS and tokens & FALSE_TOKENS:
        col.kind = "boolean"
        return col
    if len(distinct) >= ID_SHARE * len(present) and len(present) >= 20:
        col.kind, col.reason = "dropped", "id_like"
        col.detail = f"{len(distinct)} distinct values in {len(present)} rows"
    return col


def load_dataset(
    path: str | Path,
    target: str,
    problem_type: str = "auto",
    min_rows: int = MIN_ROWS,
    positive_class: str | None = None,
) -> Dataset:
    """Read and validate ``path``, type its columns and encode its target; AutoMLError for data Autopilot rejects."""
    header, rows = read_csv(path)
    if target not in header:
        raise AutoMLError(
            "ValidationException",
            f"The target attribute {target!r} is not a column of the training data; its columns are: "
            f"{', '.join(header)}.",
        )
    if problem_type not in ("auto", *PROBLEM_TYPES):
        raise AutoMLError(
            "ValidationException",
            f"Value {problem_type!r} at 'problemType' failed to satisfy constraint: Member must satisfy enum value "
            f"set: [{', '.join(PROBLEM_TYPES)}]",
        )
    t = header.index(target)
    keep = [i for i, row in enumerate(rows) if not is_missing(row[t])]
    if not keep:
        raise AutoMLError("ValidationException", f"The target attribute {target!r} has no values: every row is empty.")
    if len(keep) < min_rows:
        raise AutoMLError(
            "ValidationException",
            f"The training data has {len(keep)} rows with a target value; a minimum of {min_rows} rows is required.",
        )
    values = [rows[i][t].strip() for i in keep]
    distinct = set(values)
    if len(distinct) < 2:
        raise AutoMLError(
            "ValidationException",
            f"The target attribute {target!r} has the single value {values[0]!r}; at least two are needed to learn.",
        )
    inferred = infer_problem_type(values)
    resolved = inferred if problem_type == "auto" else problem_type
    if resolved == BINARY and len(distinct) != 2:
        raise AutoMLError(
            "ValidationException",
            f"BinaryClassification needs exactly 2 target values; {target!r} has {len(distinct)}.",
        )
    if resolved == REGRESSION:
        y = np.array([to_float(v) for v in values])
        if np.isnan(y).any():
            bad = next(v for v, n in zip(values, y, strict=True) if math.isnan(n))
            raise AutoMLError(
                "ValidationException", f"Regression needs a numeric target; {target!r} has the value {bad!r}."
            )
        labels: list[str] = []
    else:
        counts = Counter(values)
        rare = sorted(label for label, count in counts.items() if count < 2)
        if rare:
            raise AutoMLError(
                "ValidationException",
                f"Every class needs at least 2 rows to be split into training and validation; "
                f"{', '.join(map(repr, rare[:10]))} {'has' if len(rare) == 1 else 'have'} 1.",
            )
        labels = order_binary_labels(values, positive_class) if resolved == BINARY else sorted(counts)
        index = {label: i for i, label in enumerate(labels)}
        y = np.array([index[v] for v in values], dtype=np.int64)

    feature_idx = [i for i in range(len(header)) if i != t]
    features = np.array([[rows[r][i] for i in feature_idx] for r in keep], dtype=object)
    if features.ndim != 2:  # only a target column: numpy gives shape (n, 0) as 2-D, anything else is a bug
        features = features.reshape(len(keep), len(feature_idx))
    columns = [_column(header[i], j, features[:, j]) for j, i in enumerate(feature_idx)]
    if not any(c.kind != "dropped" for c in columns):
        raise AutoMLError(
            "ValidationException",
            "No usable feature column: every column other than the target is constant or an identifier.",
        )
    return Dataset(
        header=header,
        target=target,
        feature_names=[header[i] for i in feature_idx],
        features=features,
        y=y,
        problem_type=resolved,
        labels=labels,
        columns=columns,
        rows_read=len(rows),
        rows_missing_target=len(rows) - len(keep),
    )


def split(dataset: Dataset, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes of the training and validation parts: stratified for classes, the same for the same seed."""
    from sklearn.model_selection import train_test_split

    n = len(dataset.y)
    stratify = dataset.y if dataset.problem_type != REGRESSION else None
    try:
        train, valid = train_test_split(
            np.arange(n), test_size=validation_fraction, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise AutoMLError("ValidationException", f"Cannot split the data for validation: {exc}") from exc
    return np.sort(train), np.sort(valid)
