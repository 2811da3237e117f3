"""Train only when something changed: fingerprints of training data, parameters and code.

A training model (`ml.intent_training`, `ml.category_training`, `ml.segment_training`) computes
a fingerprint before it loads any data: an order-independent digest of the rows and columns it
trains on (computed in DuckDB: row count, sum and xor of the 64-bit row hashes), the parameters
that change the fitted model, the scikit-learn version and a digest of the training code. When
the fingerprint equals the one stored with its current rows, the model returns no rows and the
incremental table keeps the registered models; the tables scored or unpacked from them see the
same model versions and are kept as they are too (`is_current`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from shoplens.ml.features import ForestParams

# The modules whose code decides what a training run fits and writes: editing any of them
# (or upgrading scikit-learn) retrains every model on the next build.
TRAINING_MODULES = (
    "artifacts.py",
    "build.py",
    "category.py",
    "evaluation.py",
    "features.py",
    "intent.py",
    "segments.py",
)


def code_version() -> str:
    """sha256 of the training modules' source (see TRAINING_MODULES)."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in TRAINING_MODULES:
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def quote_identifier(column: str) -> str:
    """`column` as a double-quoted SQL identifier."""
    return '"' + column.replace('"', '""') + '"'


def data_digest(relation: duckdb.DuckDBPyRelation, columns: list[str]) -> str:
    """Order-independent digest of `columns` over every row of `relation`, computed in DuckDB.

    Rows are hashed with DuckDB's `hash`; the digest is the row count with the sum and the
    xor of the hashes, so reordering rows changes nothing and changing, adding or removing one
    row changes it (a duplicate row changes the count and the sum).
    """
    if not columns:
        raise ValueError("a data digest needs at least one column")
    hashed = ", ".join(quote_identifier(c) for c in columns)
    digest = relation.query(
        "fingerprint_input",
        "select count(*), coalesce(sum(h), 0), coalesce(bit_xor(h), 0) "
        f"from (select hash({hashed}) as h from fingerprint_input)",
    )
    assert digest is not None  # query() gives None only for statements that return no rows
    row = digest.fetchall()[0]
    return f"{row[0]}:{row[1]}:{row[2]}"


def fingerprint(data: dict[str, str], params: dict[str, Any]) -> str:
    """sha256 of the data digests, the parameters, scikit-learn's version and the code version."""
    document = {
        "data": data,
        "params": params,
        "sklearn": package_version("scikit-learn"),
        "code": code_version(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def truthy(value: Any) -> bool:
    """A dbt var rendered into config ('True', 'false', 1, ...) as a bool."""
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no", "", "none"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def table_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """The rows of `sql`, or none when its table or a column does not exist yet (a first
    build, or a table written before the column was added)."""
    try:
        return con.execute(sql).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return []


@dataclass(frozen=True)
class Settings:
    """The ML controls (dbt vars ml_seed, ml_n_estimators, ml_max_training_rows, ml_n_jobs,
    ml_force_retrain)."""

    seed: int = 42
    n_estimators: int = 100
    max_training_rows: int = 50_000
    n_jobs: int = 2
    force_retrain: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Settings:
        """The controls from the ml models' `ml_settings` config (models/ml/_ml__models.yml:
        seed, n_estimators, max_training_rows, n_jobs, force_retrain; rendered vars arrive as
        strings). A model file reads it with `Settings.from_config(dbt.config.get("ml_settings"))`:
        dbt hands a Python model only the config keys named literally in its own file."""
        if not config:
            raise ValueError("the ml_settings config is missing (models/ml/_ml__models.yml)")
        return cls(
            seed=int(config["seed"]),
            n_estimators=int(config["n_estimators"]),
            max_training_rows=int(config["max_training_rows"]),
            n_jobs=int(config["n_jobs"]),
            force_retrain=truthy(config.get("force_retrain", False)),
        )

    def forest(self) -> ForestParams:
        """The Random Forest controls (imported here: deciding on reuse needs no scikit-learn)."""
        from shoplens.ml.features import ForestParams

        return ForestParams(seed=self.seed, n_estimators=self.n_estimators, n_jobs=self.n_jobs)

    def fitted_params(self) -> dict[str, int]:
        """The controls that change a fitted model (n_jobs does not: the forests are seeded)."""
        return {
            "seed": self.seed,
            "n_estimators": self.n_estimators,
            "max_training_rows": self.max_training_rows,
        }


# --- train only when something changed ---------------------------------------------------------

# What each training run reads, column by column: its fingerprint covers exactly these
# (tests hold the feature lists equal to shoplens.ml.intent's and shoplens.ml.category's).
INTENT_EARLY_COLUMNS = ["session_id", "session_start", "purchase_made", "events_so_far"]
INTENT_STUDY_COLUMNS = [
    "product_views",
    "cart_additions",
    "pages_visited",
    "session_duration_seconds",
    "time_per_page_seconds",
    "checkouts",
    "units_purchased",
    "revenue",
    "dominant_category",
]
CATEGORY_COLUMNS = [
    "transaction_id",
    "category",
    "age",
    "transaction_hour",
    "transaction_weekday",
    "transaction_month",
    "gender",
    "country",
]
# The segments' input, one row per customer: intermediate.int_customers_featurized (where these
# rates are defined, in SQL) column -> the name shoplens.ml.segments and the naming rules (seed
# segment_naming_rules) use. Tests hold the names equal to segments.SEGMENT_FEATURES and
# PROFILE_EXTRAS.
SEGMENT_COLUMNS = {
    "customer_id": "customer_id",
    "avg_product_views_per_session": "views_per_session",
    "cart_session_rate": "cart_session_rate",
    "abandoned_session_rate": "abandoned_session_rate",
    "purchase_rate": "purchase_rate",
    "avg_seconds_per_page": "seconds_per_page",
    "avg_pages_per_session": "pages_per_session",
    "sessions": "sessions",
    "avg_session_minutes": "avg_session_minutes",
}


def customer_behaviour(customers: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The segments' input: the SEGMENT_COLUMNS of `customers` (int_customers_featurized) under
    the segment names, ordered by customer_id (a projection in DuckDB: nothing else is loaded)."""
    select = ", ".join(
        f"{quote_identifier(column)} as {quote_identifier(name)}"
        for column, name in SEGMENT_COLUMNS.items()
    )
    return customers.project(select).order("customer_id")


def early_intent_columns(definitions: duckdb.DuckDBPyRelation) -> list[str]:
    """The early-intent feature columns listed in `definitions` (ml.feature_definitions)."""
    rows = definitions.filter("feature_set = 'early_intent'").project("feature_columns").fetchall()
    if not rows:
        raise ValueError("ml.feature_definitions has no early_intent feature set")
    return str(rows[0][0]).split(",")


def intent_fingerprint(
    early: duckdb.DuckDBPyRelation,
    sessions: duckdb.DuckDBPyRelation,
    feature_columns: list[str],
    settings: Settings,
) -> str:
    """Fingerprint of a purchase-intent training run."""
    early_columns = sorted({*INTENT_EARLY_COLUMNS, *feature_columns})
    study = ["session_id", *INTENT_STUDY_COLUMNS]
    return fingerprint(
        {
            "early": data_digest(early, early_columns),
            "sessions": data_digest(sessions, study),
        },
        {**settings.fitted_params(), "feature_columns": list(feature_columns)},
    )


def category_fingerprint(lines: duckdb.DuckDBPyRelation, settings: Settings) -> str:
    """Fingerprint of a category-choice training run."""
    return fingerprint(
        {"order_lines": data_digest(lines, CATEGORY_COLUMNS)}, settings.fitted_params()
    )


def segment_fingerprint(
    behaviour: duckdb.DuckDBPyRelation, rules: duckdb.DuckDBPyRelation, settings: Settings
) -> str:
    """Fingerprint of a segmentation run on `behaviour` (customer_behaviour's rows; the naming
    rules are data too)."""
    return fingerprint(
        {
            "customers": data_digest(behaviour, list(behaviour.columns)),
            "rules": data_digest(rules, list(rules.columns)),
        },
        settings.fitted_params(),
    )


def unchanged(con: duckdb.DuckDBPyConnection, this: Any) -> pa.RecordBatchReader:
    """No rows, with the columns of the existing table `this`: returned by an incremental ml
    model (unique_key "true", delete+insert), it leaves the table exactly as it is.

    An Arrow stream, neither a pandas frame nor an Arrow table (for which dbt-duckdb imports
    pyarrow.dataset, which imports pandas): a build that keeps every ml table never imports
    pandas, some 0.5 s of CPU."""
    return con.sql(f"select * from {this} limit 0").to_arrow_table().to_reader()


@dataclass(frozen=True)
class TrainingState:
    """What a training table holds before this build: its models' fingerprints, and the
    latest registry version of every model (registry and training table together)."""

    fingerprints: dict[str, str | None] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, this: Any, incremental: bool) -> TrainingState:
        """The state of training table `this` (none on a first or full-refresh build) and of
        ml.model_registry beside it."""
        current = (
            table_rows(con, f"select model_name, version, training_fingerprint from {this}")
            if incremental
            else []
        )
        registry_relation = f'"{this.database}"."{this.schema}"."model_registry"'
        registered = table_rows(
            con, f"select model_name, max(version) from {registry_relation} group by model_name"
        )
        versions: dict[str, int] = {}
        for name, version, *_ in [*current, *registered]:
            versions[name] = max(versions.get(name, 0), int(version))
        return cls({name: fp for name, _, fp in current}, versions)

    def reusable(self, fingerprint: str, force: bool) -> bool:
        """True when the table's models were trained on exactly this fingerprint."""
        return (
            not force
            and bool(self.fingerprints)
            and all(fp == fingerprint for fp in self.fingerprints.values())
        )

    def stamp(self, training: pd.DataFrame, fingerprint: str) -> pd.DataFrame:
        """Freshly trained rows with their registry version (latest + 1) and fingerprint."""
        import numpy as np
        import pandas as pd

        training = training.copy()
        training["version"] = np.array(
            [self.versions.get(n, 0) + 1 for n in training["model_name"]], dtype="int64"
        )
        training["training_fingerprint"] = pd.Series([fingerprint] * len(training), dtype=object)
        return training


def train_or_reuse(
    con: duckdb.DuckDBPyConnection,
    this: Any,
    incremental: bool,
    fingerprint: str,
    settings: Settings,
    train: Callable[[], pd.DataFrame],
) -> pd.DataFrame | pa.RecordBatchReader:
    """The rows a training model returns: none (the table keeps its models) when they were
    trained on this fingerprint, else `train()`'s rows with new versions. A run that cannot
    train a model (too little data) also keeps the previous models."""
    state = TrainingState.read(con, this, incremental)
    if state.reusable(fingerprint, settings.force_retrain):
        return unchanged(con, this)
    trained = train()
    if trained.empty and incremental:
        return unchanged(con, this)
    return state.stamp(trained, fingerprint)


def model_versions(
    trainings: list[duckdb.DuckDBPyRelation], names: set[str] | None = None
) -> set[tuple[str, int]]:
    """(model_name, version) of the rows of training relations (only `names` if given)."""
    return {
        (name, int(version))
        for rel in trainings
        for name, version in rel.project("model_name, version").fetchall()
        if names is None or name in names
    }


def is_current(
    con: duckdb.DuckDBPyConnection,
    this: Any,
    incremental: bool,
    expected: set[tuple[str, int]],
    by_name: bool = True,
) -> bool:
    """True when table `this` was computed from exactly the model versions `expected` (its
    model_version column, with model_name when `by_name`): nothing to recompute. Reuse
    implies unchanged inputs (the fingerprints cover the rows these tables read)."""
    if not incremental:
        return False
    columns = "model_name, model_version" if by_name else "model_version"
    try:
        stored = con.execute(f"select distinct {columns} from {this}").fetchall()
    except duckdb.BinderException:  # a table from before model_version existed
        return False
    if by_name:
        return {(n, int(v)) for n, v in stored} == expected
    return {int(v) for (v,) in stored} == {v for _, v in expected}


def unregistered(
    trainings: list[duckdb.DuckDBPyRelation], registered: set[tuple[str, int]]
) -> list[pd.DataFrame]:
    """The training tables that hold a model version the registry lacks, loaded (only those:
    a build that trained nothing loads no pipeline bytes)."""
    return [rel.df() for rel in trainings if model_versions([rel]) - registered]
