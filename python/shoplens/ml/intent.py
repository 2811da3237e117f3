"""Purchase intent: the deployed early-intent model and the replication of the session study.

Four Random Forests, each trained once per build:

- `purchase_intent` (deployed, the live scorer's model): early-intent features only (events
  before the session's first checkout or purchase), trained on earlier sessions and tested on
  the latest `holdout_weeks` weeks (time-based hold-out).
- `purchase_intent_stratified`: the same features, stratified 75/25 split as in the study.
- `session_study_replication`: the study's whole-session features (including the ones that
  leak the outcome), stratified 75/25: why the study reported ~99.98%.
- `session_study_replication_no_leak`: the same without the features flagged as leaking.

Thresholds are chosen on a validation part of the training rows, never on the test rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from shoplens.ml import evaluation as ev
from shoplens.ml.features import FeatureSet, ForestParams, forest_pipeline, split_labels

TARGET = "purchase_made"
DEPLOYED = "purchase_intent"
STRATIFIED = "purchase_intent_stratified"
REPLICATION = "session_study_replication"
REPLICATION_NO_LEAK = "session_study_replication_no_leak"
EVAL_STRATIFIED = "stratified_75_25"
EVAL_TIME = "time_holdout"

# Early-intent features (macro early_intent_features, intermediate.int_sessions_early_featurized):
# only events before the first checkout or purchase event of the session. The dbt model takes
# the list from ml.feature_definitions; this default is for use outside dbt.
EARLY_FEATURES = FeatureSet(
    numeric=(
        "events_so_far",
        "page_views_so_far",
        "product_views_so_far",
        "distinct_products_viewed_so_far",
        "distinct_categories_so_far",
        "cart_adds_so_far",
        "cart_removes_so_far",
        "cart_units_so_far",
        "cart_value_so_far",
        "duration_seconds_so_far",
        "pages_so_far",
        "seconds_per_page_so_far",
        "mean_price_viewed_so_far",
        "max_price_viewed_so_far",
        "start_hour",
        "start_weekday",
        "start_month",
    ),
    categorical=("device", "traffic_source"),
)
# The session study's set-up: the whole-session summary (marts.fct_sessions)
# minus the label, as a notebook gets with `drop(columns="purchase_made")`: the study's products
# viewed, products added to cart, pages visited, session duration, time per page and category,
# plus the counts of the same table that include the checkout and purchase steps.
SESSION_STUDY_FEATURES = FeatureSet(
    numeric=(
        "product_views",
        "cart_additions",
        "pages_visited",
        "session_duration_seconds",
        "time_per_page_seconds",
        "checkouts",
        "units_purchased",
        "revenue",
    ),
    categorical=("dominant_category",),
)


@dataclass(frozen=True)
class IntentConfig:
    """Controls for the purchase-intent training (dbt vars feed `forest` and the row cap)."""

    forest: ForestParams = field(default_factory=ForestParams)
    max_training_rows: int = 50_000
    test_size: float = 0.25
    validation_size: float = 0.2
    holdout_weeks: int = 4
    leak_auc: float = 0.95
    importance_rows: int = 3_000
    early: FeatureSet = EARLY_FEATURES
    study: FeatureSet = SESSION_STUDY_FEATURES

    def split_params(self) -> dict:
        return {
            "test_size": self.test_size,
            "validation_size": self.validation_size,
            "holdout_weeks": self.holdout_weeks,
            "max_training_rows": self.max_training_rows,
            "seed": self.forest.seed,
        }


@dataclass
class BinaryFit:
    """One trained and evaluated binary model with everything the ml tables need."""

    model_name: str
    evaluation: str
    features: FeatureSet
    pipeline: object
    threshold: float
    training_rows: int
    metrics: list[dict]
    curves: list[dict]
    confusion: list[dict]
    importances: list[dict]
    split_params: dict

    def test_metric(self, metric: str) -> float:
        """The model's value of `metric` on the test split."""
        return next(
            r["value"] for r in self.metrics if r["split"] == "test" and r["metric"] == metric
        )

    def summary(self) -> dict:
        """{split: {metric: value, baseline_<metric>: value}} for the registry."""
        out: dict[str, dict[str, float]] = {}
        for r in self.metrics:
            out.setdefault(r["split"], {})[r["metric"]] = r["value"]
            out[r["split"]][f"baseline_{r['metric']}"] = r["baseline_value"]
        return out


def time_holdout_mask(start: pd.Series, holdout_weeks: int) -> pd.Series:
    """Rows in the latest `holdout_weeks` weeks; the latest quarter of the rows by time when
    that window would hold under 5% or over 50% of the data (short histories)."""
    start = pd.to_datetime(start)
    mask = start >= start.max() - pd.Timedelta(weeks=holdout_weeks)
    if not 0.05 <= mask.mean() <= 0.5:
        mask = start >= start.quantile(0.75)
    return mask


def intent_splits(frame: pd.DataFrame, evaluation: str, split_params: dict) -> pd.Series:
    """Split labels of the sessions in `frame` for an evaluation scheme (deterministic)."""
    y = frame[TARGET].astype(int)
    mask = (
        time_holdout_mask(frame["session_start"], split_params["holdout_weeks"])
        if evaluation == EVAL_TIME
        else None
    )
    return split_labels(
        y,
        test_mask=mask,
        test_size=split_params["test_size"],
        validation_size=split_params["validation_size"],
        max_training_rows=split_params["max_training_rows"],
        seed=split_params["seed"],
    )


def fit_binary(
    frame: pd.DataFrame,
    features: FeatureSet,
    model_name: str,
    evaluation: str,
    cfg: IntentConfig,
    labels: pd.Series | None = None,
) -> BinaryFit:
    """Train on the train split, pick the threshold on validation, evaluate on test.

    `labels` are the rows' split labels for `evaluation` (intent_splits) when the caller has
    them already: models sharing an evaluation scheme share one split."""
    split_params = cfg.split_params()
    if labels is None:
        labels = intent_splits(frame, evaluation, split_params)
    # Only the sampled rows become a model matrix (big warehouses leave most rows out).
    sampled = (labels != "not_sampled").to_numpy()
    frame, labels = frame[sampled], labels[sampled]
    X = features.matrix(frame)
    y = frame[TARGET].astype(int).to_numpy()
    parts = {name: (labels == name).to_numpy() for name in ("train", "validation", "test")}
    pipe = forest_pipeline(features, cfg.forest)
    pipe.fit(X[parts["train"]], y[parts["train"]])
    y_train = y[parts["train"]]
    proba = {name: _positive_proba(pipe, X[parts[name]]) for name in ("validation", "test")}
    threshold = ev.choose_threshold(y[parts["validation"]], proba["validation"])
    metrics: list[dict] = []
    for split in ("validation", "test"):
        ys = y[parts[split]]
        metrics += ev.metric_rows(
            model_name,
            evaluation,
            split,
            ev.binary_metrics(ys, proba[split], threshold),
            ev.binary_baseline(y_train, ys),
            len(ys),
        )
    y_test, p_test = y[parts["test"]], proba["test"]
    return BinaryFit(
        model_name=model_name,
        evaluation=evaluation,
        features=features,
        pipeline=pipe,
        threshold=threshold,
        training_rows=int(parts["train"].sum()),
        metrics=metrics,
        curves=ev.curve_rows(model_name, evaluation, y_test, p_test),
        confusion=ev.confusion_rows(
            model_name, evaluation, "test", y_test, (p_test >= threshold).astype(int), labels=[0, 1]
        ),
        importances=ev.importance_rows(
            model_name,
            pipe,
            X[parts["test"]],
            y_test,
            scoring="roc_auc" if len(np.unique(y_test)) == 2 else "accuracy",
            seed=cfg.forest.seed,
            n_jobs=cfg.forest.n_jobs,
            max_rows=cfg.importance_rows,
        ),
        split_params=split_params,
    )


def _positive_proba(pipe, X: pd.DataFrame) -> np.ndarray:
    if len(X) == 0:
        return np.zeros(0)
    proba = pipe.predict_proba(X)
    classes = list(pipe.classes_)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))


def univariate_auc(x: pd.Series, y: np.ndarray) -> float:
    """How well one feature alone ranks the outcome: max(AUC, 1 - AUC), 0.5 = no signal.

    Categorical features are scored by their per-category outcome rate.
    """
    if len(np.unique(y)) < 2:
        return float("nan")
    if x.dtype == object or isinstance(x.dtype, pd.StringDtype):
        rate = pd.Series(y, index=x.index).groupby(x.astype(str)).transform("mean")
        score = rate.to_numpy(dtype=float)
    else:
        score = pd.to_numeric(x, errors="coerce")
        score = score.fillna(score.median() if score.notna().any() else 0).to_numpy(dtype=float)
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def detect_leakage(
    frame: pd.DataFrame, features: FeatureSet, threshold: float, feature_set: str
) -> list[dict]:
    """Flag features that alone nearly determine the outcome (univariate AUC >= threshold):
    in session data that means they were measured after the purchase decision."""
    X = features.matrix(frame)
    y = frame[TARGET].astype(int).to_numpy()
    rows = []
    for col in features.columns:
        auc = univariate_auc(X[col], y)
        rows.append(
            {
                "feature_set": feature_set,
                "feature": col,
                "univariate_auc": auc,
                "leaks": bool(auc >= threshold),
            }
        )
    return rows


@dataclass
class IntentResult:
    """All purchase-intent fits plus the per-feature leakage screen."""

    fits: list[BinaryFit]
    leakage: list[dict]
    leaky_features: list[str]

    def fit(self, model_name: str) -> BinaryFit:
        return next(f for f in self.fits if f.model_name == model_name)


EVALUATIONS = (EVAL_TIME, EVAL_STRATIFIED)


def evaluation_splits(keys: pd.DataFrame, cfg: IntentConfig) -> dict[str, pd.Series]:
    """The split labels of every evaluation scheme (intent_splits) of the sessions in `keys`
    (session_start and purchase_made, in session_id order)."""
    return {ev: intent_splits(keys, ev, cfg.split_params()) for ev in EVALUATIONS}


def sampled_rows(splits: dict[str, pd.Series]) -> np.ndarray:
    """Positions of the rows some scheme samples (train, validation or test): the only rows
    whose features a training run reads."""
    return np.flatnonzero(
        np.logical_or.reduce([(labels != "not_sampled").to_numpy() for labels in splits.values()])
    )


def train_purchase_intent(
    frame: pd.DataFrame, cfg: IntentConfig, splits: dict[str, pd.Series] | None = None
) -> IntentResult:
    """Train and evaluate the four purchase-intent models on a per-session frame.

    `frame` needs session_id, session_start, purchase_made and the columns of `cfg.early` and
    `cfg.study`. The leakage screen runs on the training part of the stratified split only.

    `splits` (evaluation_splits) are given when they were drawn over more sessions than
    `frame` holds: `frame` is then the sampled_rows of those sessions, in session_id order, and
    each split its labels of those rows (the rows left out are not_sampled in every scheme, so
    every fit, metric and importance is the same as on all the sessions).
    """
    if splits is None:
        frame = frame.sort_values("session_id", kind="stable").reset_index(drop=True)
        # One split per evaluation scheme, shared by the models evaluated with it.
        splits = evaluation_splits(frame, cfg)
    stratified = splits[EVAL_STRATIFIED]
    train = frame[(stratified == "train").to_numpy()]
    leakage = detect_leakage(train, cfg.study, cfg.leak_auc, "session_study") + detect_leakage(
        train, cfg.early, cfg.leak_auc, "early_intent"
    )
    leaky = [r["feature"] for r in leakage if r["leaks"] and r["feature_set"] == "session_study"]
    fits = [
        fit_binary(frame, cfg.early, DEPLOYED, EVAL_TIME, cfg, splits[EVAL_TIME]),
        fit_binary(frame, cfg.early, STRATIFIED, EVAL_STRATIFIED, cfg, stratified),
        fit_binary(frame, cfg.study, REPLICATION, EVAL_STRATIFIED, cfg, stratified),
    ]
    no_leak = cfg.study.without(leaky)
    if leaky and no_leak.columns:
        fits.append(
            fit_binary(frame, no_leak, REPLICATION_NO_LEAK, EVAL_STRATIFIED, cfg, stratified)
        )
    return IntentResult(fits=fits, leakage=leakage, leaky_features=leaky)
