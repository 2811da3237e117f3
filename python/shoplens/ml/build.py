"""Entry points for the dbt Python models in `models/ml/`: each model file is one call here.

The functions take and return pandas frames, so they are testable without dbt. Controls come
from dbt vars through model config (`Settings.from_config`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from shoplens.ml import artifacts, category, intent, registry, segments
from shoplens.ml.features import FeatureSet
from shoplens.ml.reuse import Settings

__all__ = ["Settings"]

MIN_ROWS = 50


# --- purchase intent ---------------------------------------------------------------------------


def intent_frame(early: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """Early-intent features joined to the whole-session (study) features, one row per session.

    Sessions that open with a checkout or purchase (no events before it) are left out: there
    is nothing to score before the outcome.
    """
    study = [c for c in intent.SESSION_STUDY_FEATURES.columns if c not in early.columns]
    frame = early.merge(sessions[["session_id", *study]], on="session_id", how="inner")
    frame = frame[frame["events_so_far"] > 0]
    frame["purchase_made"] = frame["purchase_made"].astype(bool)
    return frame.sort_values("session_id", kind="stable").reset_index(drop=True)


def feature_set_for(columns: list[str], frame: pd.DataFrame) -> FeatureSet:
    """A FeatureSet of `columns`: numeric dtypes pass through, the rest are categorical (used
    for the early-intent list in ml.feature_definitions and for registry feature lists)."""
    numeric = [
        c
        for c in columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return FeatureSet(tuple(numeric), tuple(c for c in columns if c not in numeric))


def _trainable(y: pd.Series) -> bool:
    return len(y) >= MIN_ROWS and y.nunique() == 2 and y.value_counts().min() >= 10


def intent_training(
    early: pd.DataFrame, sessions: pd.DataFrame, feature_columns: list[str], settings: Settings
) -> pd.DataFrame:
    """Train the four purchase-intent models; one training row each (empty if untrainable)."""
    frame = intent_frame(early, sessions)
    if not _trainable(frame["purchase_made"]):
        return artifacts.training_frame([])
    cfg = intent.IntentConfig(
        forest=settings.forest(),
        max_training_rows=settings.max_training_rows,
        early=feature_set_for(feature_columns, frame),
    )
    result = intent.train_purchase_intent(frame, cfg)
    rows = []
    for fit in result.fits:
        arte: dict[str, list] = {
            "metrics": fit.metrics,
            "curves": fit.curves,
            "confusion": fit.confusion,
            "importances": fit.importances,
        }
        if fit.model_name == intent.REPLICATION:
            arte["leakage"] = leakage_rows(result, cfg)
        reg = registry.registry_row(
            fit.model_name,
            fit.pipeline,
            features=fit.features.columns,
            target=intent.TARGET,
            training_rows=fit.training_rows,
            params={
                **cfg.forest.as_dict(),
                **fit.split_params,
                "evaluation": fit.evaluation,
                "leaky_features_dropped": result.leaky_features
                if fit.model_name == intent.REPLICATION_NO_LEAK
                else [],
            },
            metrics=fit.summary(),
            threshold=fit.threshold,
        )
        rows.append(artifacts.training_row(reg, fit.evaluation, fit.split_params, arte))
    return artifacts.training_frame(rows)


def leakage_rows(result: intent.IntentResult, cfg: intent.IntentConfig) -> list[dict]:
    """Per-feature leakage screen with the replication's permutation importance beside it."""
    perm = {
        r["feature"]: r["importance"]
        for r in result.fit(intent.REPLICATION).importances
        if r["kind"] == "permutation"
    }
    no_leak = (
        {f for f in result.fit(intent.REPLICATION_NO_LEAK).features.columns}
        if result.leaky_features
        else set(cfg.study.columns)
    )
    return [
        {
            **r,
            "permutation_importance": perm.get(r["feature"], float("nan"))
            if r["feature_set"] == "session_study"
            else float("nan"),
            "in_replication": r["feature_set"] == "session_study",
            "in_no_leak_model": r["feature_set"] == "session_study" and r["feature"] in no_leak,
            "in_early_intent_model": r["feature_set"] == "early_intent",
        }
        for r in result.leakage
    ]


def session_predictions(
    training: pd.DataFrame, early: pd.DataFrame, sessions: pd.DataFrame
) -> pd.DataFrame:
    """Modelled sessions scored by the purchase-intent models, with their split labels: every
    session for the deployed model, the sampled (train/validation/test) ones for the others."""
    columns = [
        "session_id",
        "model_name",
        "evaluation",
        "split",
        "probability",
        "predicted",
        "purchase_made",
        "threshold",
        "model_version",
    ]
    if training.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = intent_frame(early, sessions)
    pipes = artifacts.pipelines(training)
    parts = []
    for row in training.itertuples(index=False):
        labels = intent.intent_splits(frame, row.evaluation, json.loads(row.split_params))
        # The deployed model scores every session; evaluation-only models their sampled rows.
        keep = (
            np.ones(len(frame), dtype=bool)
            if row.model_name == intent.DEPLOYED
            else (labels != "not_sampled").to_numpy()
        )
        rows = frame[keep]
        features = feature_set_for(json.loads(row.features), rows)
        proba = pipes[row.model_name].predict_proba(features.matrix(rows))[:, 1]
        parts.append(
            pd.DataFrame(
                {
                    "session_id": rows["session_id"].to_numpy(),
                    "model_name": row.model_name,
                    "evaluation": row.evaluation,
                    "split": labels.to_numpy()[keep],
                    "probability": proba,
                    "predicted": proba >= row.threshold,
                    "purchase_made": rows["purchase_made"].to_numpy(),
                    "threshold": row.threshold,
                    "model_version": int(row.version),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[columns]


# --- category choice -----------------------------------------------------------------------------


def category_training(lines: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Train and evaluate the category-choice model on order lines (empty if untrainable)."""
    cfg = category.CategoryConfig(
        forest=settings.forest(), max_training_rows=settings.max_training_rows
    )
    fit = category.train_category_choice(lines, cfg)
    if fit is None:
        return artifacts.training_frame([])
    reg = registry.registry_row(
        category.MODEL,
        fit.pipeline,
        features=cfg.features.columns,
        target=category.TARGET,
        training_rows=fit.training_rows,
        params={**cfg.forest.as_dict(), **fit.split_params, "classes": fit.labels},
        metrics=fit.summary(),
        threshold=None,
    )
    return artifacts.training_frame(
        [
            artifacts.training_row(
                reg,
                category.EVALUATION,
                fit.split_params,
                {
                    "metrics": fit.metrics,
                    "confusion": fit.confusion,
                    "importances": fit.importances,
                },
            )
        ]
    )


def order_line_predictions(training: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Every order line with the predicted category, its probability and the split label."""
    columns = [
        "transaction_id",
        "model_name",
        "split",
        "category",
        "predicted_category",
        "probability",
        "correct",
        "model_version",
    ]
    if training.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    row = next(training.itertuples(index=False))
    pipe = artifacts.pipelines(training)[row.model_name]
    frame = lines.dropna(subset=[category.TARGET]).sort_values("transaction_id", kind="stable")
    frame = frame.reset_index(drop=True)
    labels = category.category_splits(frame, json.loads(row.split_params))
    proba = pipe.predict_proba(category.CATEGORY_FEATURES.matrix(frame))
    predicted = pipe.classes_[proba.argmax(axis=1)]
    return pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"],
            "model_name": row.model_name,
            "split": labels.to_numpy(),
            "category": frame[category.TARGET].astype(str),
            "predicted_category": predicted,
            "probability": proba.max(axis=1),
            "correct": predicted == frame[category.TARGET].astype(str).to_numpy(),
            "model_version": int(row.version),
        }
    )[columns]


# --- segments -------------------------------------------------------------------------------------


def segment_training(
    customers: pd.DataFrame, rules: pd.DataFrame, settings: Settings
) -> pd.DataFrame:
    """Fit the segmentation (K-Means + naming) and the 2-D PCA; two training rows."""
    if customers["customer_id"].nunique() < 10:
        return artifacts.training_frame([])
    # K-Means runs OpenMP threads; bound them so dbt's other thread keeps a core.
    with threadpool_limits(limits=settings.n_jobs):
        result = segments.train_segments(
            customers, rules, settings.seed, settings.max_training_rows
        )
    names = [{"cluster": int(c), "segment_name": n} for c, n in sorted(result.names.items())]
    params = {
        "k": result.k,
        "seed": settings.seed,
        "k_range": [2, 8],
        "max_training_rows": settings.max_training_rows,
    }
    chosen = result.k_selection[result.k_selection["chosen"]].iloc[0]
    metrics = {
        "silhouette": chosen["silhouette"],
        "davies_bouldin": chosen["davies_bouldin"],
        "inertia": chosen["inertia"],
    }
    rows = []
    for name, pipe, arte in (
        (
            segments.MODEL,
            result.pipeline,
            {"k_selection": result.k_selection.to_dict("records"), "segment_names": names},
        ),
        (segments.PCA_MODEL, result.pca, {}),
    ):
        reg = registry.registry_row(
            name,
            pipe,
            features=result.features,
            target="segment",
            training_rows=result.training_rows,
            params=params,
            metrics=metrics if name == segments.MODEL else {},
            threshold=None,
        )
        rows.append(artifacts.training_row(reg, "unsupervised", params, arte))
    return artifacts.training_frame(rows)


def _segment_result(training: pd.DataFrame) -> segments.SegmentResult | None:
    if training.empty:
        return None
    pipes = artifacts.pipelines(training)
    seg_row = training[training["model_name"] == segments.MODEL].iloc[0]
    arte = json.loads(seg_row["artifacts"])
    version = int(seg_row["version"])
    return segments.SegmentResult(
        pipeline=pipes[segments.MODEL],
        pca=pipes[segments.PCA_MODEL],
        k=int(json.loads(seg_row["params"])["k"]),
        k_selection=artifacts.typed_frame(
            [{**r, "model_version": version} for r in arte["k_selection"]], "k_selection"
        ),
        names={int(r["cluster"]): r["segment_name"] for r in arte["segment_names"]},
        training_rows=int(seg_row["training_rows"]),
        features=json.loads(seg_row["features"]),
    )


def customer_segments(training: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Every customer's segment and PCA coordinates, with the segmentation's version."""
    result = _segment_result(training)
    if result is None:
        return pd.DataFrame(
            {
                "customer_id": pd.Series(dtype="int64"),
                "segment_id": pd.Series(dtype="int64"),
                "segment_name": pd.Series(dtype=object),
                "pc1": pd.Series(dtype="float64"),
                "pc2": pd.Series(dtype="float64"),
                "model_version": pd.Series(dtype="int64"),
            }
        )
    customers = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    version = int(training.loc[training["model_name"] == segments.MODEL, "version"].iloc[0])
    return result.assign(customers).assign(model_version=version)


def segment_profiles(assigned: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Segment sizes and mean behaviour features, from ml.customer_segments (with its
    model_version)."""
    frame = customers.merge(assigned[["customer_id"]], on="customer_id", how="inner")
    ordered = assigned.merge(frame[["customer_id"]], on="customer_id").reset_index(drop=True)
    frame = frame.set_index("customer_id").loc[ordered["customer_id"]].reset_index()
    profile = segments.profiles(ordered, frame)
    version = int(assigned["model_version"].iloc[0]) if len(assigned) else 0
    profile["model_version"] = np.full(len(profile), version, dtype="int64")
    return profile


# --- registry -------------------------------------------------------------------------------------


REGISTRY_TABLE_COLUMNS = [*registry.REGISTRY_COLUMNS, "training_fingerprint"]


def registry_table(trainings: list[pd.DataFrame], registered: set[tuple[str, int]]) -> pd.DataFrame:
    """The training rows whose (model_name, version) is not in the registry yet: what a build
    appends to ml.model_registry (versions are assigned when a model is trained)."""
    parts = [t[REGISTRY_TABLE_COLUMNS] for t in trainings if not t.empty]
    if not parts:
        frame = registry.registry_frame([])
        frame["training_fingerprint"] = pd.Series(dtype=object)
        return frame
    frame = pd.concat(parts, ignore_index=True)
    new = [
        (name, int(version)) not in registered
        for name, version in zip(frame["model_name"], frame["version"], strict=True)
    ]
    return frame[new].reset_index(drop=True)
