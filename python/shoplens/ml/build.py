"""Entry points for the dbt Python models in `models/ml/`: each model file is one call here.

The functions take and return pandas frames, so they are testable without dbt. Controls come
from dbt vars through model config (`Settings.from_config`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from shoplens.ml import artifacts, batches, category, intent, registry, segments
from shoplens.ml.features import FeatureSet
from shoplens.ml.reuse import CATEGORY_COLUMNS, Settings, quote_identifier

__all__ = ["Settings"]

MIN_ROWS = 50


# --- purchase intent ---------------------------------------------------------------------------


def intent_rows(
    early: duckdb.DuckDBPyRelation, sessions: duckdb.DuckDBPyRelation, feature_columns: list[str]
) -> duckdb.DuckDBPyRelation:
    """The purchase-intent rows, joined and projected in DuckDB (no other column is loaded): one
    per session with session_id, session_start, purchase_made, the early-intent
    `feature_columns` (from `early`) and the whole-session study features (from `sessions`).

    Sessions that open with a checkout or purchase (no events before it) are left out: there
    is nothing to score before the outcome. Unordered: callers order by session_id.
    """
    early_columns = list(
        dict.fromkeys(["session_id", "session_start", "purchase_made", *feature_columns])
    )
    study = [c for c in intent.SESSION_STUDY_FEATURES.columns if c not in early_columns]
    select = ", ".join(
        [
            *(f"e.{quote_identifier(c)}" for c in early_columns),
            *(f"s.{quote_identifier(c)}" for c in study),
        ]
    )
    joined = early.set_alias("e").join(sessions.set_alias("s"), "e.session_id = s.session_id")
    return joined.filter("e.events_so_far > 0").project(select)


# What the split labels need of every session (intent.intent_splits), in session_id order.
KEY_COLUMNS = ("session_id", "session_start", "purchase_made")


def _intent_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of intent_rows (in session_id order) with the outcome as bool."""
    frame["purchase_made"] = frame["purchase_made"].astype(bool)
    return frame.reset_index(drop=True)


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
    rows: duckdb.DuckDBPyRelation, feature_columns: list[str], settings: Settings
) -> pd.DataFrame:
    """Train the four purchase-intent models on `rows` (intent_rows); one training row each
    (empty if untrainable). The splits are drawn over every session, so every row is read (as
    Arrow), but only the sampled ones (intent.sampled_rows, at most three parts of
    max_training_rows per scheme) become a pandas frame."""
    table = rows.order("session_id").to_arrow_table()
    keys = _intent_frame(batches.arrow_frame(table.select(list(KEY_COLUMNS))))
    if not _trainable(keys["purchase_made"]):
        return artifacts.training_frame([])
    cfg = intent.IntentConfig(
        forest=settings.forest(), max_training_rows=settings.max_training_rows
    )
    splits = intent.evaluation_splits(keys, cfg)
    positions = intent.sampled_rows(splits)
    del keys
    frame = _intent_frame(batches.arrow_frame(table.take(positions)))
    del table
    frame.index = positions
    cfg = dataclasses.replace(cfg, early=feature_set_for(feature_columns, frame))
    result = intent.train_purchase_intent(
        frame, cfg, {ev: labels.iloc[positions] for ev, labels in splits.items()}
    )
    trained = []
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
        trained.append(artifacts.training_row(reg, fit.evaluation, fit.split_params, arte))
    return artifacts.training_frame(trained)


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


SESSION_PREDICTION_SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("model_name", pa.string()),
        ("evaluation", pa.string()),
        ("split", pa.string()),
        ("probability", pa.float64()),
        ("predicted", pa.bool_()),
        ("purchase_made", pa.bool_()),
        ("threshold", pa.float64()),
        ("model_version", pa.int64()),
    ]
)


def session_predictions(
    training: pd.DataFrame, rows: duckdb.DuckDBPyRelation, batch_rows: int = batches.BATCH_ROWS
) -> pa.RecordBatchReader:
    """Modelled sessions (intent_rows) scored by the purchase-intent models, with their split
    labels: every session for the deployed model, the sampled (train/validation/test) ones for
    the others.

    The split labels need only session_id, session_start and purchase_made of every session;
    the features are read, scored and handed on `batch_rows` sessions at a time (a lazy Arrow
    stream), so the same labels and probabilities come out whatever the batch size.
    """
    if training.empty:
        return batches.stream([], SESSION_PREDICTION_SCHEMA)
    keys = _intent_frame(
        rows.project("session_id, session_start, purchase_made").order("session_id").df()
    )
    pipes = artifacts.pipelines(training)
    # One split per evaluation scheme and split parameters, shared by the models that use it.
    splits: dict[tuple[str, str], tuple[pd.Series, np.ndarray]] = {}
    models = []
    for row in training.itertuples(index=False):
        scheme = (row.evaluation, row.split_params)
        if scheme not in splits:
            labels = intent.intent_splits(keys, row.evaluation, json.loads(row.split_params))
            splits[scheme] = (labels.astype("category"), (labels != "not_sampled").to_numpy())
        labels, sampled = splits[scheme]
        # The deployed model scores every session; evaluation-only models their sampled rows.
        keep = np.ones(len(keys), dtype=bool) if row.model_name == intent.DEPLOYED else sampled
        models.append((row, labels, keep))
    session_ids = keys["session_id"]

    def scored() -> Iterator[pd.DataFrame]:
        start = 0
        for frame in batches.read_batches(rows.order("session_id"), batch_rows):
            end = start + len(frame)
            frame = _intent_frame(frame)
            ids = frame["session_id"]
            if (ids.iloc[0], ids.iloc[-1]) != (session_ids.iloc[start], session_ids.iloc[end - 1]):
                raise RuntimeError("the intent rows changed while they were scored")
            for row, labels, keep in models:
                part = frame[keep[start:end]]
                features = feature_set_for(json.loads(row.features), part)
                proba = (
                    pipes[row.model_name].predict_proba(features.matrix(part))[:, 1]
                    if len(part)
                    else np.zeros(0)
                )
                yield pd.DataFrame(
                    {
                        "session_id": part["session_id"].to_numpy(),
                        "model_name": row.model_name,
                        "evaluation": row.evaluation,
                        "split": labels.iloc[start:end].to_numpy()[keep[start:end]],
                        "probability": proba,
                        "predicted": proba >= row.threshold,
                        "purchase_made": part["purchase_made"].to_numpy(),
                        "threshold": row.threshold,
                        "model_version": int(row.version),
                    }
                )
            start = end

    return batches.stream(scored(), SESSION_PREDICTION_SCHEMA)


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


def category_lines(lines: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The order lines' columns the category model reads (reuse.CATEGORY_COLUMNS), projected in
    DuckDB."""
    return lines.project(", ".join(quote_identifier(c) for c in CATEGORY_COLUMNS))


ORDER_LINE_PREDICTION_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("model_name", pa.string()),
        ("split", pa.string()),
        ("category", pa.string()),
        ("predicted_category", pa.string()),
        ("probability", pa.float64()),
        ("correct", pa.bool_()),
        ("model_version", pa.int64()),
    ]
)


def order_line_predictions(
    training: pd.DataFrame, lines: duckdb.DuckDBPyRelation, batch_rows: int = batches.BATCH_ROWS
) -> pa.RecordBatchReader:
    """Every order line (category_lines) with the predicted category, its probability and the
    split label; the split labels need only every line's category, the features are read and
    scored `batch_rows` lines at a time (same result whatever the batch size)."""
    if training.empty:
        return batches.stream([], ORDER_LINE_PREDICTION_SCHEMA)
    row = next(training.itertuples(index=False))
    pipe = artifacts.pipelines(training)[row.model_name]
    labelled = lines.filter(f"{category.TARGET} is not null").order("transaction_id")
    keys = labelled.project(f"transaction_id, {category.TARGET}").df()
    labels = category.category_splits(keys, json.loads(row.split_params)).astype("category")
    transaction_ids = keys["transaction_id"]
    del keys

    def scored() -> Iterator[pd.DataFrame]:
        start = 0
        for frame in batches.read_batches(labelled, batch_rows):
            end = start + len(frame)
            ids = frame["transaction_id"]
            if (ids.iloc[0], ids.iloc[-1]) != (
                transaction_ids.iloc[start],
                transaction_ids.iloc[end - 1],
            ):
                raise RuntimeError("the order lines changed while they were scored")
            proba = pipe.predict_proba(category.CATEGORY_FEATURES.matrix(frame))
            predicted = pipe.classes_[proba.argmax(axis=1)]
            actual = frame[category.TARGET].astype(str).to_numpy()
            yield pd.DataFrame(
                {
                    "transaction_id": ids.to_numpy(),
                    "model_name": row.model_name,
                    "split": labels.iloc[start:end].to_numpy(),
                    "category": actual,
                    "predicted_category": predicted,
                    "probability": proba.max(axis=1),
                    "correct": predicted == actual,
                    "model_version": int(row.version),
                }
            )
            start = end

    return batches.stream(scored(), ORDER_LINE_PREDICTION_SCHEMA)


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


CUSTOMER_SEGMENT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("segment_id", pa.int64()),
        ("segment_name", pa.string()),
        ("pc1", pa.float64()),
        ("pc2", pa.float64()),
        ("model_version", pa.int64()),
    ]
)


def customer_segments(
    training: pd.DataFrame,
    behaviour: duckdb.DuckDBPyRelation,
    batch_rows: int = batches.BATCH_ROWS,
) -> pa.RecordBatchReader:
    """Every customer's segment and PCA coordinates, with the segmentation's version, from
    `behaviour` (reuse.customer_behaviour) read and assigned `batch_rows` customers at a time
    (assignment is per customer: the same result whatever the batch size)."""
    result = _segment_result(training)
    if result is None:
        return batches.stream([], CUSTOMER_SEGMENT_SCHEMA)
    version = int(training.loc[training["model_name"] == segments.MODEL, "version"].iloc[0])
    return batches.stream(
        (
            result.assign(frame).assign(model_version=version)
            for frame in batches.read_batches(behaviour.order("customer_id"), batch_rows)
        ),
        CUSTOMER_SEGMENT_SCHEMA,
    )


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
