"""Model evaluation: metrics beside a majority-class baseline, thresholds, curves, confusion.

Every metric is reported with the majority-class baseline beside it. For a binary target the
baseline predicts the majority class of the training data for every row and, for the
probability metrics (ROC AUC, PR AUC, Brier), the training positive rate as a constant score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

BINARY_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier"]
MAX_CURVE_POINTS = 200


def _safe_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")


def binary_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (at `threshold`), ROC AUC, PR AUC and Brier score."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(proba) >= threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": _safe_auc(y, proba),
        "pr_auc": float(average_precision_score(y, proba)) if y.any() else float("nan"),
        "brier": float(brier_score_loss(y, proba, labels=[0, 1])),
    }


def binary_baseline(y_train: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The majority-class baseline's metrics on `y` (fitted on `y_train`)."""
    prior = float(np.mean(np.asarray(y_train).astype(int)))
    majority = int(prior > 0.5)
    # A constant score at the prior; the majority class as the hard prediction.
    return binary_metrics(y, np.full(len(y), prior), threshold=0.5 if majority else 1.0 + prior)


def choose_threshold(y_val: np.ndarray, proba_val: np.ndarray) -> float:
    """The probability threshold that maximises F1 on validation data (0.5 if undefined)."""
    y_val = np.asarray(y_val).astype(int)
    if not y_val.any() or y_val.all():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y_val, proba_val)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(precision),
        where=(precision + recall) > 0,
    )[:-1]
    return float(thresholds[int(np.argmax(f1))])


LOWER_IS_BETTER = {"brier"}


def beats(metric: str, value: float, baseline: float) -> bool:
    """True when `value` is strictly better than `baseline` (lower for Brier, else higher)."""
    if np.isnan(value) or np.isnan(baseline):
        return False
    return value < baseline if metric in LOWER_IS_BETTER else value > baseline


def metric_rows(
    model_name: str,
    evaluation: str,
    split: str,
    values: dict[str, float],
    baseline: dict[str, float],
    n_rows: int,
    class_label: str | None = None,
) -> list[dict]:
    """Long rows (one per metric) for ml.model_metrics, each with the baseline beside it."""
    return [
        {
            "model_name": model_name,
            "evaluation": evaluation,
            "split": split,
            "class_label": class_label,
            "metric": m,
            "value": float(values[m]),
            "baseline_value": float(baseline[m]),
            "beats_baseline": beats(m, float(values[m]), float(baseline[m])),
            "n_rows": int(n_rows),
        }
        for m in values
    ]


def _thin(frame: pd.DataFrame, max_points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    if len(frame) <= max_points:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[keep]


def curve_rows(model_name: str, evaluation: str, y: np.ndarray, proba: np.ndarray) -> list[dict]:
    """ROC (x = false positive rate, y = true positive rate) and PR (x = recall, y = precision)
    curve points, thinned to at most MAX_CURVE_POINTS each."""
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return []
    fpr, tpr, roc_t = roc_curve(y, proba)
    precision, recall, pr_t = precision_recall_curve(y, proba)
    roc = _thin(pd.DataFrame({"x": fpr, "y": tpr, "threshold": np.minimum(roc_t, 1.0)}))
    pr = _thin(pd.DataFrame({"x": recall[:-1], "y": precision[:-1], "threshold": pr_t}))
    rows: list[dict] = []
    for curve, frame in (("roc", roc), ("pr", pr)):
        for point, rec in enumerate(frame.itertuples(index=False)):
            rows.append(
                {
                    "model_name": model_name,
                    "evaluation": evaluation,
                    "curve": curve,
                    "point": point,
                    "x": float(rec.x),
                    "y": float(rec.y),
                    "threshold": float(rec.threshold),
                }
            )
    return rows


def confusion_rows(
    model_name: str,
    evaluation: str,
    split: str,
    y: np.ndarray,
    pred: np.ndarray,
    labels: list,
) -> list[dict]:
    """The confusion matrix as long rows: actual, predicted, count (every cell, zeros too)."""
    matrix = confusion_matrix(y, pred, labels=labels)
    return [
        {
            "model_name": model_name,
            "evaluation": evaluation,
            "split": split,
            "actual": str(a),
            "predicted": str(p),
            "count": int(matrix[i, j]),
        }
        for i, a in enumerate(labels)
        for j, p in enumerate(labels)
    ]


def multiclass_metrics(
    y_train: np.ndarray, y: np.ndarray, pred: np.ndarray, labels: list[str]
) -> tuple[dict[str, float], dict[str, float], list[dict]]:
    """Accuracy and macro-F1 of a classifier and of the majority baseline, plus per-class
    precision/recall/F1/support rows."""
    majority = pd.Series(y_train).value_counts().idxmax()
    base_pred = np.full(len(y), majority, dtype=object)
    model = {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
    }
    base = {
        "accuracy": float(accuracy_score(y, base_pred)),
        "macro_f1": float(f1_score(y, base_pred, labels=labels, average="macro", zero_division=0)),
    }
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    per_class = [
        {
            "class_label": lab,
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, lab in enumerate(labels)
    ]
    return model, base, per_class


def importance_rows(
    model_name: str,
    pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    scoring: str,
    seed: int,
    n_jobs: int,
    n_repeats: int = 3,
    max_rows: int = 3_000,
) -> list[dict]:
    """Impurity importances (mean and spread over the trees; categoricals are ordinal-encoded,
    one column each) and permutation importances (on at most `max_rows` held-out rows), ranked,
    one row per feature and kind."""
    forest = pipeline[-1]
    names = list(pipeline[:-1].get_feature_names_out()) if len(pipeline) > 1 else list(X.columns)
    per_tree = np.array([tree.feature_importances_ for tree in forest.estimators_])
    by_input = dict(zip(names, forest.feature_importances_, strict=True))
    by_input_std = dict(zip(names, per_tree.std(axis=0), strict=True))
    if len(X) > max_rows:
        pick = np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False)
        X, y = X.iloc[np.sort(pick)], np.asarray(y)[np.sort(pick)]
    perm = permutation_importance(
        pipeline, X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    rows = []
    for kind, means, stds in (
        ("impurity", by_input, by_input_std),
        (
            "permutation",
            dict(zip(X.columns, perm.importances_mean, strict=True)),
            dict(zip(X.columns, perm.importances_std, strict=True)),
        ),
    ):
        ranked = sorted(means, key=lambda f: -means[f])
        rows += [
            {
                "model_name": model_name,
                "kind": kind,
                "feature": f,
                "importance": float(means[f]),
                "importance_std": float(stds[f]),
                "rank": rank,
            }
            for rank, f in enumerate(ranked, start=1)
        ]
    return rows
