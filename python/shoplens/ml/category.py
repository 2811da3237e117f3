"""Category choice: which category a customer buys from, given demographics and time.

As in the transactions study: a Random Forest on age, gender, location, hour, weekday and
month, 80/20 stratified split, accuracy and per-class precision/recall/F1, beside the
majority-class baseline. Whether it beats that baseline is reported, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoplens.ml import evaluation as ev
from shoplens.ml.features import FeatureSet, ForestParams, forest_pipeline, split_labels

MODEL = "category_choice"
EVALUATION = "stratified_80_20"
TARGET = "category"
# Columns of marts.fct_order_lines: the buyer's age, gender and country, the order's hour,
# ISO weekday and month.
CATEGORY_FEATURES = FeatureSet(
    numeric=("age", "transaction_hour", "transaction_weekday", "transaction_month"),
    categorical=("gender", "country"),
)


@dataclass(frozen=True)
class CategoryConfig:
    """Controls for the category-choice model."""

    forest: ForestParams = field(default_factory=ForestParams)
    max_training_rows: int = 50_000
    test_size: float = 0.2
    importance_rows: int = 3_000
    features: FeatureSet = CATEGORY_FEATURES

    def split_params(self) -> dict:
        return {
            "test_size": self.test_size,
            "validation_size": 0.0,
            "max_training_rows": self.max_training_rows,
            "seed": self.forest.seed,
        }


def category_splits(frame: pd.DataFrame, split_params: dict) -> pd.Series:
    """Deterministic train/test/not_sampled labels of the order lines in `frame`."""
    return split_labels(
        frame[TARGET].astype(str),
        test_size=split_params["test_size"],
        validation_size=0.0,
        max_training_rows=split_params["max_training_rows"],
        seed=split_params["seed"],
    )


@dataclass
class CategoryFit:
    """The trained category model with its evaluation rows."""

    pipeline: object
    labels: list[str]
    training_rows: int
    metrics: list[dict]
    confusion: list[dict]
    importances: list[dict]
    split_params: dict
    beats_baseline: bool

    def summary(self) -> dict:
        out: dict[str, float | bool] = {"beats_baseline": self.beats_baseline}
        for r in self.metrics:
            if r["class_label"] is None:
                out[r["metric"]] = r["value"]
                out[f"baseline_{r['metric']}"] = r["baseline_value"]
        return out


def train_category_choice(frame: pd.DataFrame, cfg: CategoryConfig) -> CategoryFit | None:
    """Train and evaluate on order lines (transaction_id, category and the feature columns).

    Returns None when there is nothing to learn (fewer than 20 rows or a single category).
    """
    frame = frame.dropna(subset=[TARGET])
    if len(frame) < 20 or frame[TARGET].nunique() < 2:
        return None
    frame = frame.sort_values("transaction_id", kind="stable").reset_index(drop=True)
    split_params = cfg.split_params()
    labels = category_splits(frame, split_params)
    # Only the sampled rows become a model matrix (big warehouses leave most rows out).
    sampled = (labels != "not_sampled").to_numpy()
    frame, labels = frame[sampled], labels[sampled]
    X = cfg.features.matrix(frame)
    y = frame[TARGET].astype(str).to_numpy()
    train, test = (labels == "train").to_numpy(), (labels == "test").to_numpy()
    pipe = forest_pipeline(cfg.features, cfg.forest)
    pipe.fit(X[train], y[train])
    pred = pipe.predict(X[test])
    classes = sorted(np.unique(y))
    model, base, per_class = ev.multiclass_metrics(y[train], y[test], pred, classes)
    majority = pd.Series(y[train]).value_counts().idxmax()
    _, _, base_per_class = ev.multiclass_metrics(
        y[train], y[test], np.full(test.sum(), majority, dtype=object), classes
    )
    n_test = int(test.sum())
    metrics = ev.metric_rows(MODEL, EVALUATION, "test", model, base, n_test)
    for mine, theirs in zip(per_class, base_per_class, strict=True):
        metrics += ev.metric_rows(
            MODEL,
            EVALUATION,
            "test",
            {m: mine[m] for m in ("precision", "recall", "f1")},
            {m: theirs[m] for m in ("precision", "recall", "f1")},
            mine["support"],
            class_label=mine["class_label"],
        )
    return CategoryFit(
        pipeline=pipe,
        labels=classes,
        training_rows=int(train.sum()),
        metrics=metrics,
        confusion=ev.confusion_rows(MODEL, EVALUATION, "test", y[test], pred, classes),
        importances=ev.importance_rows(
            MODEL,
            pipe,
            X[test],
            y[test],
            scoring="accuracy",
            seed=cfg.forest.seed,
            n_jobs=cfg.forest.n_jobs,
            max_rows=cfg.importance_rows,
        ),
        split_params=split_params,
        beats_baseline=bool(
            model["macro_f1"] > base["macro_f1"] and model["accuracy"] > base["accuracy"]
        ),
    )
