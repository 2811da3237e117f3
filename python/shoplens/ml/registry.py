"""The model registry: fitted pipelines stored in the warehouse, checked before they are loaded.

Writers (the dbt Python models) turn a fitted pipeline into a registry row with
`registry_row(...)`: joblib bytes, their sha256 and the scikit-learn version. Readers (the live
scorer, the reports) call `load_latest(con, "purchase_intent")`, which verifies the hash and the
scikit-learn version BEFORE unpickling anything and raises `RegistryError` on a mismatch, and
`feature_sql(con, relation)` to get the exact SQL the training features came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import joblib
import numpy as np
import pandas as pd
import sklearn

from shoplens.warehouse import WarehouseError

REGISTRY_TABLE = "ml.model_registry"
FEATURE_DEFINITIONS_TABLE = "ml.feature_definitions"
DEFAULT_MODEL = "purchase_intent"
EARLY_INTENT_FEATURE_SET = "early_intent"
# The relation name `ml.feature_definitions` renders the feature macro with; replaced by the
# caller's relation in `feature_sql`.
RELATION_PLACEHOLDER = "__shoplens_events__"

# Column order of ml.model_registry (the dbt model and `registry_frame` both use it).
REGISTRY_COLUMNS = [
    "model_name",
    "version",
    "trained_at",
    "training_rows",
    "target",
    "features",
    "params",
    "metrics",
    "threshold",
    "sklearn_version",
    "pipeline_sha256",
    "pipeline_bytes",
    "pipeline",
]


class RegistryError(WarehouseError):
    """The registry cannot give a trustworthy model: missing, tampered with, or incompatible."""


def serialize_pipeline(pipeline: Any) -> tuple[bytes, str]:
    """joblib bytes of a fitted pipeline and their sha256 (hex)."""
    buf = io.BytesIO()
    joblib.dump(pipeline, buf, compress=3)
    blob = buf.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()


def verify_blob(blob: bytes, sha256: str, sklearn_version: str) -> None:
    """Refuse bytes whose hash or scikit-learn version do not match: checked before unpickling."""
    actual = hashlib.sha256(blob).hexdigest()
    if actual != sha256:
        raise RegistryError(
            f"model bytes do not match their recorded sha256 (recorded {sha256[:12]}..., "
            f"actual {actual[:12]}...): refusing to load a possibly tampered model"
        )
    if sklearn_version != sklearn.__version__:
        raise RegistryError(
            f"model was trained with scikit-learn {sklearn_version} but {sklearn.__version__} "
            "is installed: refusing to load it (rerun `dbt build` to retrain)"
        )


def deserialize_pipeline(blob: bytes, sha256: str, sklearn_version: str) -> Any:
    """Verify, then unpickle a pipeline stored by `serialize_pipeline`, set to predict on one
    thread: a forest predicting on several threads adds its trees' votes in whatever order the
    threads finish, so a session could get a probability differing in the last bits from one
    run, batch or path (live or batch) to the next, and land on the other side of the
    threshold."""
    verify_blob(blob, sha256, sklearn_version)
    pipeline = joblib.load(io.BytesIO(blob))
    steps = getattr(pipeline, "steps", [])
    threaded = {f"{name}__n_jobs": 1 for name, step in steps if "n_jobs" in step.get_params()}
    return pipeline.set_params(**threaded) if threaded else pipeline


def registry_row(
    model_name: str,
    pipeline: Any,
    *,
    features: list[str],
    target: str,
    training_rows: int,
    params: dict[str, Any],
    metrics: dict[str, Any],
    threshold: float | None,
    trained_at: dt.datetime | None = None,
    version: int = 1,
) -> dict[str, Any]:
    """One registry row (a dict keyed by REGISTRY_COLUMNS) for a fitted pipeline."""
    blob, digest = serialize_pipeline(pipeline)
    return {
        "model_name": model_name,
        "version": version,
        "trained_at": trained_at or dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "training_rows": int(training_rows),
        "target": target,
        "features": json.dumps(list(features)),
        "params": json.dumps(params, sort_keys=True, default=_json_default),
        "metrics": json.dumps(metrics, sort_keys=True, default=_json_default),
        "threshold": None if threshold is None else float(threshold),
        "sklearn_version": sklearn.__version__,
        "pipeline_sha256": digest,
        "pipeline_bytes": len(blob),
        "pipeline": blob,
    }


def registry_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Registry rows as a DataFrame with the registry's column order and types."""
    frame = pd.DataFrame(rows, columns=REGISTRY_COLUMNS)
    frame["version"] = frame["version"].astype("int64")
    frame["training_rows"] = frame["training_rows"].astype("int64")
    frame["pipeline_bytes"] = frame["pipeline_bytes"].astype("int64")
    frame["threshold"] = frame["threshold"].astype("float64")
    frame["trained_at"] = pd.to_datetime(frame["trained_at"])
    frame["pipeline"] = frame["pipeline"].astype(object)
    return frame


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass(frozen=True)
class LoadedModel:
    """A verified model from the registry, ready to score frames with its own feature list."""

    name: str
    version: int
    trained_at: dt.datetime
    pipeline: Any
    features: list[str]
    threshold: float | None
    target: str
    training_rows: int
    sha256: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def _matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise RegistryError(
                f"model {self.name} v{self.version} needs feature columns missing from the "
                f"input: {', '.join(missing)}"
            )
        return frame[self.features]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class for each row (classifiers with two classes)."""
        return self.pipeline.predict_proba(self._matrix(frame))[:, 1]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Class per row: the stored decision threshold when there is one, else the model's."""
        if self.threshold is None:
            return self.pipeline.predict(self._matrix(frame))
        return (self.predict_proba(frame) >= self.threshold).astype(int)


def _fetch_row(con: duckdb.DuckDBPyConnection, name: str, version: int | None, table: str) -> tuple:
    """The registry row of `name` (latest or `version`), fetched whole: every query here reads
    its result to the end, so the caller's connection is left with no pending result (DuckDB
    2.0 refuses further `con.sql(...)` work while a result is unfinished)."""
    cols = ", ".join(REGISTRY_COLUMNS)
    try:
        if version is None:
            rows = con.execute(
                f"select {cols} from {table} where model_name = ? "
                "order by version desc, trained_at desc limit 1",
                [name],
            ).fetchall()
        else:
            rows = con.execute(
                f"select {cols} from {table} where model_name = ? and version = ? "
                "order by trained_at desc limit 1",
                [name, version],
            ).fetchall()
    except duckdb.CatalogException as exc:
        raise RegistryError(
            f"no model registry in this warehouse ({table} missing): run `dbt build` first"
        ) from exc
    if not rows:
        which = "any version" if version is None else f"version {version}"
        raise RegistryError(f"model {name!r} ({which}) is not in {table}")
    return rows[0]


def load_model(
    con: duckdb.DuckDBPyConnection,
    name: str = DEFAULT_MODEL,
    version: int | None = None,
    *,
    table: str = REGISTRY_TABLE,
) -> LoadedModel:
    """Load a model from the registry (the latest version unless `version` is given).

    The sha256 of the stored bytes and the scikit-learn version are checked before the bytes
    are unpickled; a mismatch raises `RegistryError` and nothing is loaded.
    """
    rec = dict(zip(REGISTRY_COLUMNS, _fetch_row(con, name, version, table), strict=True))
    pipeline = deserialize_pipeline(
        bytes(rec["pipeline"]), rec["pipeline_sha256"], rec["sklearn_version"]
    )
    return LoadedModel(
        name=rec["model_name"],
        version=int(rec["version"]),
        trained_at=rec["trained_at"],
        pipeline=pipeline,
        features=json.loads(rec["features"]),
        threshold=None if rec["threshold"] is None else float(rec["threshold"]),
        target=rec["target"],
        training_rows=int(rec["training_rows"]),
        sha256=rec["pipeline_sha256"],
        params=json.loads(rec["params"]),
        metrics=json.loads(rec["metrics"]),
    )


def load_latest(
    con: duckdb.DuckDBPyConnection, name: str = DEFAULT_MODEL, *, table: str = REGISTRY_TABLE
) -> LoadedModel:
    """The latest version of model `name`, verified (see `load_model`)."""
    return load_model(con, name, None, table=table)


def _definition(
    con: duckdb.DuckDBPyConnection, feature_set: str, table: str, columns: str
) -> tuple[Any, ...]:
    """The `columns` of `feature_set`'s row in the feature definitions table."""
    try:
        rows = con.execute(
            f"select {columns} from {table} where feature_set = ? limit 1", [feature_set]
        ).fetchall()
    except duckdb.CatalogException as exc:
        raise RegistryError(
            f"no feature definitions in this warehouse ({table} missing): run `dbt build` first"
        ) from exc
    except duckdb.BinderException as exc:
        raise RegistryError(f"{table} predates this version of shoplens: run `dbt build`") from exc
    if not rows:
        raise RegistryError(f"feature set {feature_set!r} is not in {table}")
    return rows[0]


def feature_sql(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    feature_set: str = EARLY_INTENT_FEATURE_SET,
    *,
    table: str = FEATURE_DEFINITIONS_TABLE,
) -> str:
    """The training feature SQL (as dbt rendered it) with `relation` as its events input.

    `relation` is any table, view or registered frame with the event columns the macro
    `early_intent_features` reads (see `macros/early_intent_features.sql`); the query returns
    one row per session with the model's feature columns.
    """
    sql, placeholder = _definition(con, feature_set, table, "feature_sql, relation_placeholder")
    return sql.replace(placeholder, relation)


def staging_sql(
    con: duckdb.DuckDBPyConnection,
    raw_relation: str,
    categories_relation: str,
    feature_set: str = EARLY_INTENT_FEATURE_SET,
    *,
    table: str = FEATURE_DEFINITIONS_TABLE,
) -> str:
    """The SQL of stg_shop__events (as dbt rendered it) over `raw_relation`, rows with the
    columns of raw.events, and `categories_relation`, rows like reference.categories: one row
    per usable event with the columns of stg_shop__events (see `shop_events_staged`)."""
    sql, raw, categories = _definition(
        con, feature_set, table, "staging_sql, raw_relation_placeholder, categories_placeholder"
    )
    return sql.replace(raw, raw_relation).replace(categories, categories_relation)
