"""Train only when something changed: fingerprints, model reuse across builds, registry pruning.

The dbt tests share one copy of the built warehouse (fixture `built_warehouse`) and run in file
order: a no-op `dbt build`, then one training row changed, then a forced retrain with a
registry bounded to two versions per model.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from shoplens.ml import category, intent, registry, reuse, segments

INTENT_MODELS = {
    intent.DEPLOYED,
    intent.STRATIFIED,
    intent.REPLICATION,
    intent.REPLICATION_NO_LEAK,
}
OTHER_MODELS = {"category_choice", segments.MODEL, segments.PCA_MODEL}
ML = ["--select", "path:models/ml"]
# The ml tables the training, unpacking, scoring and registry models write.
ML_TABLES = (
    "intent_training",
    "category_training",
    "segment_training",
    "model_registry",
    "model_metrics",
    "model_curves",
    "confusion_matrices",
    "feature_importances",
    "leakage_comparison",
    "session_predictions",
    "order_line_predictions",
    "customer_segments",
    "segment_profiles",
    "segment_k_selection",
)


def _digest(rows: list[tuple], columns: str = "a, b") -> str:
    con = duckdb.connect()
    con.execute("create table t (a integer, b varchar)")
    if rows:
        con.executemany("insert into t values (?, ?)", rows)
    return reuse.data_digest(con.table("t"), [c.strip() for c in columns.split(",")])


def test_data_digest_ignores_order_and_sees_every_row() -> None:
    rows = [(1, "x"), (2, "y"), (3, "z")]
    base = _digest(rows)
    assert _digest(list(reversed(rows))) == base
    assert _digest([(1, "x"), (2, "y"), (3, "Z")]) != base  # one value changed
    assert _digest([*rows, (2, "y")]) != base  # a duplicate row
    assert _digest(rows[:2]) != base  # a row removed
    assert _digest(rows, "a") != base  # other columns
    assert _digest([]) == "0:0:0"


def test_fingerprint_covers_parameters() -> None:
    data = {"rows": "3:1:2"}
    assert reuse.fingerprint(data, {"seed": 1}) == reuse.fingerprint(data, {"seed": 1})
    assert reuse.fingerprint(data, {"seed": 1}) != reuse.fingerprint(data, {"seed": 2})
    assert reuse.fingerprint(data, {"seed": 1}) != reuse.fingerprint({"rows": "3:1:3"}, {"seed": 1})


def test_fingerprint_columns_are_the_training_columns() -> None:
    assert intent.SESSION_STUDY_FEATURES.columns == reuse.INTENT_STUDY_COLUMNS
    assert [
        "transaction_id",
        category.TARGET,
        *category.CATEGORY_FEATURES.columns,
    ] == reuse.CATEGORY_COLUMNS
    assert list(reuse.SEGMENT_COLUMNS.values()) == [
        "customer_id",
        *segments.SEGMENT_FEATURES,
        *segments.PROFILE_EXTRAS,
    ]


def _registry(db: Path) -> dict[tuple[str, int], tuple[str, object]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select model_name, version, pipeline_sha256, trained_at from ml.model_registry"
        ).fetchall()
    return {(name, version): (sha, at) for name, version, sha, at in rows}


PREDICTIONS = (
    "select count(*), sum(probability), min(model_version), max(model_version) "
    "from ml.session_predictions"
)


@pytest.fixture(scope="module")
def warehouse(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built warehouse that this module's tests build on, in order."""
    work = tmp_path_factory.mktemp("reuse")
    db = work / "warehouse.duckdb"
    shutil.copy(built_warehouse, db)
    return db


ML_KEEPERS = [f"ml.{name}" for name in ML_TABLES]
# Seeds and SQL table models (macros/keep_unchanged.sql) whose rows are computed without a
# parallel sum of doubles (whose last bits may differ from build to build): a build with no
# new data keeps each of them as it is.
SQL_KEEPERS = [
    *(
        f"reference.{seed}"
        for seed in (
            "age_bands",
            "categories",
            "price_bands",
            "regions",
            "segment_campaigns",
            "segment_naming_rules",
        )
    ),
    "intermediate.int_order_lines_enriched",
    "marts.fct_order_lines",
    "marts.mart_data_quality",
    "marts.mart_session_funnel_daily",
]
# The bound on what a build with no new data may add to the warehouse file.
NOOP_FILE_GROWTH = 1 << 20


def _blocks(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, set[int]]:
    """The storage blocks of each table (schema.name): a rewritten table gets new ones."""
    return {
        table: {
            block
            for (block,) in con.execute(
                f"select distinct block_id from pragma_storage_info('{table}') where block_id >= 0"
            ).fetchall()
        }
        for table in tables
    }


def _ml_blocks(con: duckdb.DuckDBPyConnection) -> dict[str, set[int]]:
    """The storage blocks of every ml table the models write."""
    return {table[3:]: blocks for table, blocks in _blocks(con, ML_KEEPERS).items()}


def test_a_build_without_new_data_reuses_every_model(warehouse: Path, dbt) -> None:
    before = _registry(warehouse)
    assert {v for _, v in before} == {1}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        deployed = registry.load_latest(con)
        predictions = con.execute(PREDICTIONS).fetchall()[0]
        blocks = _ml_blocks(con)
        kept = _blocks(con, SQL_KEEPERS)
    assert len(blocks) == 14 and all(blocks.values()) and all(kept.values())
    size = warehouse.stat().st_size
    dbt(["build"], warehouse, warehouse.parent)
    # The file stays within 1 MiB: unchanged seeds and tables are not rewritten.
    assert warehouse.stat().st_size - size <= NOOP_FILE_GROWTH
    assert _registry(warehouse) == before  # same ids, hashes and training times: no new version
    with duckdb.connect(str(warehouse), read_only=True) as con:
        again = registry.load_latest(con)
        assert (again.version, again.sha256) == (deployed.version, deployed.sha256)
        assert con.execute(PREDICTIONS).fetchall()[0] == predictions
        # No ml table was rewritten, and no frame of a Python model was left behind.
        assert _ml_blocks(con) == blocks
        assert _blocks(con, SQL_KEEPERS) == kept
        leftovers = con.execute(
            "select table_name from duckdb_tables() where table_name like '%dbt_tmp%'"
        ).fetchall()
        assert leftovers == []


def test_a_table_or_seed_whose_rows_differ_is_replaced(warehouse: Path, dbt) -> None:
    """A stored table whose rows differ from what its model or seed file gives is rewritten
    with them; one whose rows are the same keeps its blocks, and its descriptions are
    rewritten where they differ from the YAML's."""
    tampered = {
        "marts.mart_session_funnel_daily": "update {} set sessions = sessions + 1",
        "reference.regions": "delete from {} where country = (select min(country) from {})",
    }
    untouched = ["marts.mart_data_quality", "reference.categories"]
    with duckdb.connect(str(warehouse)) as con:
        rows = {t: sorted(con.execute(f"select * from {t}").fetchall()) for t in tampered}
        blocks = _blocks(con, untouched)
        described = _descriptions(con, "marts.mart_data_quality")
        assert described[0] and all(comment for _, comment in described[1])
        con.execute("comment on table marts.mart_data_quality is 'stale'")
        con.execute("comment on column marts.mart_data_quality.row_count is 'stale'")
        for table, sql in tampered.items():
            con.execute(sql.format(table, table))
            assert sorted(con.execute(f"select * from {table}").fetchall()) != rows[table]
    names = [t.split(".")[1] for t in [*tampered, *untouched]]
    dbt(
        ["build", "--select", *names, "--exclude-resource-type", "test"],
        warehouse,
        warehouse.parent,
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in tampered:
            assert sorted(con.execute(f"select * from {table}").fetchall()) == rows[table]
        assert _blocks(con, untouched) == blocks
        assert _descriptions(con, "marts.mart_data_quality") == described


def _descriptions(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, list[tuple]]:
    """The comment of `table` (schema.name) and (column, comment) of each of its columns."""
    schema, name = table.split(".")
    [(comment,)] = con.execute(
        "select comment from duckdb_tables() where schema_name = ? and table_name = ?",
        [schema, name],
    ).fetchall()
    columns = con.execute(
        "select column_name, comment from duckdb_columns() "
        "where schema_name = ? and table_name = ? order by column_index",
        [schema, name],
    ).fetchall()
    return comment, columns


def test_one_changed_training_row_retrains_only_its_models(warehouse: Path, dbt) -> None:
    before = _registry(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update intermediate.int_sessions_early_featurized "
            "set cart_value_so_far = cart_value_so_far + 1 where session_id = ("
            "select min(session_id) from intermediate.int_sessions_early_featurized "
            "where events_so_far > 0)"
        )
    dbt(["build", *ML], warehouse, warehouse.parent)
    after = _registry(warehouse)
    assert set(after) == set(before) | {(name, 2) for name in INTENT_MODELS}
    assert all(after[key] == before[key] for key in before)  # earlier versions untouched
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert registry.load_latest(con).version == 2
        scored = con.execute(
            "select model_name, min(model_version), max(model_version) "
            "from ml.session_predictions group by 1"
        ).fetchall()
        assert {(name, lo, hi) for name, lo, hi in scored} == {
            (name, 2, 2) for name in INTENT_MODELS
        }
        kept = con.execute(
            "select distinct model_version from ml.order_line_predictions union all "
            "select distinct model_version from ml.customer_segments"
        ).fetchall()
        assert kept == [(1,), (1,)]


def test_forced_retrain_adds_versions_and_pruning_keeps_the_last_n(warehouse: Path, dbt) -> None:
    before = _registry(warehouse)
    # Small forests: every model retrains anyway (forced), and versions are what is checked.
    retrain = "{ml_force_retrain: true, ml_registry_keep_versions: 2, ml_n_estimators: 10}"
    dbt(["build", *ML, "--vars", retrain], warehouse, warehouse.parent)
    after = _registry(warehouse)
    expected = {(name, v) for name in INTENT_MODELS for v in (2, 3)} | {
        (name, v) for name in OTHER_MODELS for v in (1, 2)
    }
    assert set(after) == expected
    assert all(after[key] == before[key] for key in before if key in after)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # The deployed model is the newest version and is what the training table holds.
        assert registry.load_latest(con).version == 3
        held = con.execute(
            "select model_name, version from ml.intent_training union all "
            "select model_name, version from ml.category_training union all "
            "select model_name, version from ml.segment_training"
        ).fetchall()
        assert set(held) == {(n, 3) for n in INTENT_MODELS} | {(n, 2) for n in OTHER_MODELS}
        # The pruned versions' BLOBs are gone with their rows.
        assert con.execute("select count(*) from ml.model_registry").fetchall() == [(14,)]


def test_registry_refuses_keeping_no_version(warehouse: Path, dbt) -> None:
    proc = dbt(
        ["run", "--select", "model_registry", "--vars", "{ml_registry_keep_versions: 0}"],
        warehouse,
        warehouse.parent,
        check=False,
    )
    assert proc.returncode != 0
    assert "ml_registry_keep_versions must be at least 1" in proc.stdout


def test_training_state_reads_versions_from_registry_and_table() -> None:
    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute(
        "create table ml.model_registry as select * from (values ('purchase_intent', 1), "
        "('purchase_intent', 4), ('category_choice', 2)) t(model_name, version)"
    )
    con.execute(
        "create table ml.intent_training as select 'purchase_intent' as model_name, "
        "4 as version, 'abc' as training_fingerprint"
    )

    class This:
        database, schema, identifier = "memory", "ml", "intent_training"

        def __repr__(self) -> str:
            return "memory.ml.intent_training"

    state = reuse.TrainingState.read(con, This(), incremental=True)
    assert state.versions == {"purchase_intent": 4, "category_choice": 2}
    assert state.fingerprints == {"purchase_intent": "abc"}
    assert reuse.TrainingState.read(con, This(), incremental=False).fingerprints == {}


def test_unchanged_is_an_empty_arrow_stream_and_the_reuse_path_needs_no_pandas() -> None:
    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute("create table ml.t as select 1 as version, 'x'::blob as pipeline, now() as at")
    kept = reuse.unchanged(con, "ml.t")
    # A stream, not a pandas frame nor an Arrow table (dbt-duckdb imports pyarrow.dataset, and
    # with it pandas, for a table).
    assert type(kept).__name__ == "RecordBatchReader"
    table = kept.read_all()
    assert table.num_rows == 0
    assert table.column_names == ["version", "pipeline", "at"]
    # What a no-op build runs (the reuse checks) imports no pandas.
    probe = (
        "import sys; import shoplens.ml.reuse, shoplens.ml.refresh; "
        "sys.exit('pandas' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0
