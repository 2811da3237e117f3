"""What one training run leaves behind, and how the ml tables are unpacked from it.

A training model (`ml.intent_training`, `ml.category_training`, `ml.segment_training`) returns
one row per fitted model: the registry columns (pipeline bytes, sha256, ...) plus the
evaluation scheme and a JSON document of artifacts (metric rows, curves, confusion cells,
importances, ...). The other ml tables are thin unpackings of those rows, so every model is
trained exactly once per build.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from shoplens.ml import registry

# Columns of each unpacked table (also used to build correctly typed empty tables); every
# table ends with model_version, the registry version of the model the row comes from.
ARTIFACT_COLUMNS: dict[str, dict[str, str]] = {
    "metrics": {
        "model_name": "str",
        "evaluation": "str",
        "split": "str",
        "class_label": "str",
        "metric": "str",
        "value": "float64",
        "baseline_value": "float64",
        "beats_baseline": "bool",
        "n_rows": "int64",
        "model_version": "int64",
    },
    "curves": {
        "model_name": "str",
        "evaluation": "str",
        "curve": "str",
        "point": "int64",
        "x": "float64",
        "y": "float64",
        "threshold": "float64",
        "model_version": "int64",
    },
    "confusion": {
        "model_name": "str",
        "evaluation": "str",
        "split": "str",
        "actual": "str",
        "predicted": "str",
        "count": "int64",
        "model_version": "int64",
    },
    "importances": {
        "model_name": "str",
        "kind": "str",
        "feature": "str",
        "importance": "float64",
        "importance_std": "float64",
        "rank": "int64",
        "model_version": "int64",
    },
    "leakage": {
        "feature_set": "str",
        "feature": "str",
        "univariate_auc": "float64",
        "leaks": "bool",
        "permutation_importance": "float64",
        "in_replication": "bool",
        "in_no_leak_model": "bool",
        "in_early_intent_model": "bool",
        "model_version": "int64",
    },
    "k_selection": {
        "k": "int64",
        "inertia": "float64",
        "silhouette": "float64",
        "davies_bouldin": "float64",
        "chosen": "bool",
        "model_version": "int64",
    },
}

# The training tables: registry columns, the fingerprint the models were trained on (see
# shoplens.ml.reuse), the evaluation scheme, split parameters and artifacts.
TRAINING_COLUMNS = [
    *registry.REGISTRY_COLUMNS,
    "training_fingerprint",
    "evaluation",
    "split_params",
    "artifacts",
]


def typed_frame(rows: list[dict[str, Any]], kind: str) -> pd.DataFrame:
    """Rows as a DataFrame with exactly the columns and dtypes of artifact `kind`."""
    spec = ARTIFACT_COLUMNS[kind]
    frame = pd.DataFrame(rows, columns=list(spec))
    for col, dtype in spec.items():
        if dtype == "str":
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        else:
            frame[col] = frame[col].astype(dtype)
    return frame


def _clean(value: Any) -> Any:
    """JSON-safe value: numpy scalars become Python ones, NaN becomes null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


def training_row(
    reg_row: dict[str, Any], evaluation: str, split_params: dict, artifacts: dict[str, list]
) -> dict[str, Any]:
    """A registry row extended with the evaluation scheme, split parameters and artifacts."""
    return {
        **reg_row,
        "evaluation": evaluation,
        "split_params": json.dumps(_clean(split_params), sort_keys=True),
        "artifacts": json.dumps(_clean(artifacts)),
    }


def training_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table a training model returns (typed, possibly empty)."""
    frame = registry.registry_frame(rows)
    for col in ("evaluation", "split_params", "artifacts"):
        frame[col] = pd.Series([r[col] for r in rows], dtype=object)
    frame["training_fingerprint"] = pd.Series(
        [r.get("training_fingerprint") for r in rows], dtype=object
    )
    return frame[TRAINING_COLUMNS]


def unpack(training: pd.DataFrame, kind: str) -> pd.DataFrame:
    """All artifact rows of `kind` from one or more training tables, typed, each with the
    version of the model whose training row held it."""
    rows: list[dict] = []
    for doc, version in zip(training["artifacts"], training["version"], strict=True):
        rows += [{**r, "model_version": int(version)} for r in json.loads(doc).get(kind, [])]
    return typed_frame(rows, kind)


def pipelines(training: pd.DataFrame) -> dict[str, Any]:
    """Fitted pipelines by model name, each verified (sha256, scikit-learn) before loading and
    set to predict on one thread (`registry.deserialize_pipeline`)."""
    return {
        row.model_name: registry.deserialize_pipeline(
            bytes(row.pipeline), row.pipeline_sha256, row.sklearn_version
        )
        for row in training.itertuples(index=False)
    }
