"""Incremental builds give exactly what a full refresh gives.

Build a small generated warehouse, append a burst (new sessions, a late event for an old
session, an id-less event that merges two inactivity sessions, a duplicate, a valid copy of a
quarantined event, an invalid copy of a staged one, an exact copy of a REES46 row loaded before,
another row without an id), and before it a valid copy of a quarantined event of a session that
staging alone classifies (int_events_sessionized reads the usable rows staging wrote since its
own last build), refresh with `dbt build --selector after_burst`, then compare every staging,
intermediate and mart table (and the staged and quarantined events) with a `--full-refresh`
build of the same raw data.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dbt_support import SQL_ONLY
from shoplens import warehouse
from shoplens.generate import generate_and_load, load_world, simulate_sessions

END = dt.date(2026, 10, 31)
MERGE_CUSTOMER = 999_999_999  # not a generated customer: only the events made here
LATE_SESSION = "late-valid-session"  # its second event is staged only by a late valid copy
T0 = dt.datetime(2026, 10, 20, 9, 0, 0)


def _events(rows: list[dict]) -> pa.Table:
    """Raw event rows (missing fields null) as an Arrow table in contract column order."""
    columns = [c for c in warehouse.raw_columns("raw.events") if c != "loaded_at"]
    types = {n: t for n, t, _ in warehouse.RAW_TABLES["raw.events"][1]}
    arrow = {
        "VARCHAR": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "INTEGER": pa.int32(),
    }
    return pa.table({c: pa.array([r.get(c) for r in rows], arrow[types[c]]) for c in columns})


def _idless(event_id: str, minutes: int, **extra) -> dict:
    return {
        "event_id": event_id,
        "event_time": T0 + dt.timedelta(minutes=minutes),
        "event_type": "page_view",
        "user_id": MERGE_CUSTOMER,
        "device": "mobile",
        "traffic_source": "email",
        "page": "home",
        "source": "kafka",
        **extra,
    }


def _rees46_row(event_id: str) -> dict:
    """A REES46 row: copies with other ids are the same event (staging compares content)."""
    return {
        "event_id": event_id,
        "event_time": T0,
        "event_type": "view",
        "product_id": 7,
        "category_id": 8,
        "price": 5.0,
        "user_id": MERGE_CUSTOMER + 2,
        "user_session": "rees46-session",
        "source": "rees46",
    }


def _append(db: Path, table: pa.Table, loaded_at: dt.datetime) -> None:
    with warehouse.connect(db) as con:
        warehouse.append(con, "raw.events", table, loaded_at=loaded_at)


def _burst(db: Path, loaded_at: dt.datetime) -> None:
    """New sessions plus the edge cases incremental logic must get right."""
    with warehouse.connect(db) as con:
        world = load_world(con)
        cursor = con.execute(
            "select * exclude (loaded_at) from raw.events where user_session = (select "
            "min(user_session) from raw.events) order by event_time, event_id limit 1"
        )
        old = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    new_events, new_lines = simulate_sessions(
        world,
        150,
        dt.datetime(2026, 10, 30),
        dt.datetime(2026, 11, 1),
        seed=5,
        id_prefix="burst-",
        defect_rate=0.02,
        source="kafka",
    )
    late = {
        **old,
        "event_id": "burst-late",
        "event_time": old["event_time"] - dt.timedelta(seconds=40),
    }
    edge = _events(
        [
            late,
            old,  # a duplicate: same event_id, loaded later
            _idless("burst-merge", 25),  # joins the two inactivity sessions made before
            _idless("pre-bad", 70),  # valid copy of a quarantined event
            # invalid copy of a staged event (the reverse order): staged keeps the first
            _idless("pre-good", 60, user_id=MERGE_CUSTOMER + 3, event_type="teleport"),
            _rees46_row("rees46:second-file:2"),  # same content as a row loaded before
            _idless(None, 90),  # a second row without an id: both are ranked together
            # another user in the old session, and its user back a day later: both split it
            {**old, "event_id": "burst-shared", "user_id": MERGE_CUSTOMER + 1},
            {
                **old,
                "event_id": "burst-resumed",
                "event_time": old["event_time"] + dt.timedelta(days=1),
            },
        ]
    )
    with warehouse.connect(db) as con:
        warehouse.append(con, "raw.events", new_events, loaded_at=loaded_at)
        warehouse.append(con, "raw.transactions", new_lines, loaded_at=loaded_at)
        warehouse.append(con, "raw.events", edge, loaded_at=loaded_at)


def _tables(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [
            f"{s}.{t}"
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where schema_name in ('staging', 'intermediate', 'marts') order by 1, 2"
            ).fetchall()
        ]


def _difference(a: Path, b: Path, table: str) -> int:
    """Rows in one copy of `table` and not in the other (doubles compared to 1e-6)."""
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        schema, name = table.split(".")
        cols = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = 'a' "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, name],
        ).fetchall()
        # built_at is when a row was written, which differs between the two builds by design
        select = ", ".join(
            f"round({c}, 6)" if t in ("DOUBLE", "FLOAT") else c for c, t in cols if c != "built_at"
        )
        return sum(
            con.execute(
                f"select count(*) from (select {select} from {x}.{table} "
                f"except all select {select} from {y}.{table})"
            ).fetchone()[0]
            for x, y in (("a", "b"), ("b", "a"))
        )


@pytest.fixture(scope="module")
def incremental_and_full(tmp_path_factory: pytest.TempPathFactory, dbt) -> tuple[Path, Path, Path]:
    """(incrementally built db, full-refresh db, target folder of the incremental run)."""
    work = tmp_path_factory.mktemp("incremental")
    db = work / "warehouse.duckdb"
    generate_and_load(
        db, sessions=1500, seed=11, days=30, end=END, defect_rate=0.02, progress=False
    )
    first_load = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _append(
        db,
        _events(
            [
                _idless("pre-a", 0),
                _idless("pre-b", 50),
                _idless("pre-bad", 70, event_type="teleport"),
                _idless("pre-good", 60, user_id=MERGE_CUSTOMER + 3),
                _rees46_row("rees46:first-file:2"),
                _idless(None, 80),
                _idless("pre-session-a", 0, user_id=MERGE_CUSTOMER + 4, user_session=LATE_SESSION),
                # quarantined: its valid copy comes later and is staged by a staging-only build
                _idless(
                    "pre-session-bad",
                    -10,
                    user_id=MERGE_CUSTOMER + 4,
                    user_session=LATE_SESSION,
                    event_type="teleport",
                ),
            ]
        ),
        first_load,
    )
    dbt(["build", *SQL_ONLY], db, work / "base")  # seeds too
    _append(
        db,
        _events(
            [_idless("pre-session-bad", -10, user_id=MERGE_CUSTOMER + 4, user_session=LATE_SESSION)]
        ),
        first_load + dt.timedelta(seconds=2),
    )
    # staging alone first: the refresh after the burst picks up what it classified
    dbt(["run", "--select", "stg_shop__events_classified"], db, work / "staging")
    _burst(db, first_load + dt.timedelta(seconds=5))
    # README's refresh after a burst: equal to a full refresh means it leaves nothing stale
    dbt(["build", "--selector", "after_burst"], db, work / "inc")
    full = work / "full" / db.name
    full.parent.mkdir()
    shutil.copy(db, full)
    dbt(["run", "--full-refresh", *SQL_ONLY], full, work / "full")
    return db, full, work / "inc" / "target"


def test_incremental_run_took_the_incremental_path(incremental_and_full) -> None:
    _, _, target = incremental_and_full
    for folder, model in (
        ("staging/shop", "stg_shop__events_classified"),
        ("intermediate", "int_events_sessionized"),
        ("intermediate", "int_sessions_aggregated"),
        ("intermediate", "int_sessions_early_featurized"),
        ("intermediate", "int_sessions_category_featurized"),
        ("marts", "mart_funnel_daily"),
        ("marts", "dim_products_seen"),
        ("marts/audiences", "time_promotion_sessions"),
    ):
        path = Path("shoplens", "models", folder, f"{model}.sql")
        compiled = (target / "compiled" / path).read_text()
        executed = (target / "run" / path).read_text()
        assert "coalesce(max(" in compiled  # the watermark filter of the incremental branch
        assert "delete from" in executed and "create table" not in executed


def test_incremental_equals_full_refresh(incremental_and_full) -> None:
    inc, full, _ = incremental_and_full
    tables = _tables(inc)
    assert "staging.stg_shop__events_classified" in tables
    assert "intermediate.int_sessions_early_featurized" in tables
    assert "marts.mart_funnel_daily" in tables
    assert _tables(full) == tables
    views = ["staging.stg_shop__events", "staging.stg_shop__events_quarantined"]
    differing = {t: n for t in tables + views if (n := _difference(inc, full, t))}
    assert differing == {}


def test_burst_rewrote_touched_products_and_sessions_old_ones_included(
    incremental_and_full,
) -> None:
    """dim_products_seen and time_promotion_sessions rewrote what the burst touched, not every
    row, and that includes products and sessions with events loaded before it: the equality
    with the full refresh above covers rows the incremental branch merged from old and new
    events (a branch that read only the new events, or added without replacing, fails it)."""
    inc, _, _ = incremental_and_full
    with duckdb.connect(str(inc), read_only=True) as con:
        burst_load = con.execute("select max(loaded_at) from raw.events").fetchone()[0]
        for table, key in (
            ("marts.dim_products_seen", "product_id"),
            ("marts.time_promotion_sessions", "session_id"),
        ):
            rewritten, total, mixed = con.execute(
                f"""
                with latest as (
                    select distinct {key} from {table}
                    where built_at = (select max(built_at) from {table})
                )
                select
                    (select count(*) from latest),
                    (select count(distinct {key}) from {table}),
                    (
                        select count(distinct events.{key})
                        from marts.fct_events as events
                        where events.{key} in (select {key} from latest)
                            and events.loaded_at < ?
                    )
                """,
                [burst_load],
            ).fetchone()
            assert 0 < rewritten < total, table
            assert mixed > 0, table


def test_incremental_staging_ranks_late_copies(incremental_and_full) -> None:
    """Copies loaded after the first build are ranked with the earlier ones: the later REES46
    copy and id-less row are quarantined as the second copies, the quarantined copy of pre-bad
    is renumbered behind its valid copy, the later invalid copy of pre-good is ranked behind the
    staged one, and raw = staged + quarantined."""
    inc, _, _ = incremental_and_full
    with duckdb.connect(str(inc), read_only=True) as con:
        quarantined = con.execute(
            "select quarantine_id, quarantine_reason from staging.stg_shop__events_quarantined "
            "where event_id in ('pre-bad', 'pre-good', 'rees46:first-file:2', "
            "'rees46:second-file:2') order by 1"
        ).fetchall()
        assert quarantined == [
            ("pre-bad#2", "unknown_event_type"),
            ("pre-good#2", "unknown_event_type"),
            ("rees46:second-file:2#2", "duplicate_row"),
        ]
        # rows without an id are ranked together, the one loaded last behind all the others
        idless = con.execute(
            "select copy_number, quarantine_reason, copy_number = (select count(*) from "
            "staging.stg_shop__events_quarantined where event_id is null) "
            "from staging.stg_shop__events_quarantined "
            "where event_id is null and customer_id = ? order by event_time",
            [MERGE_CUSTOMER],
        ).fetchall()
        assert [(r, last) for _, r, last in idless] == [
            ("missing_event_id", False),
            ("missing_event_id", True),
        ]
        staged = con.execute(
            "select event_id, event_type from staging.stg_shop__events "
            "where event_id in ('pre-bad', 'pre-good', 'rees46:first-file:2', "
            "'rees46:second-file:2') order by 1"
        ).fetchall()
        assert staged == [
            ("pre-bad", "page_view"),
            ("pre-good", "page_view"),
            ("rees46:first-file:2", "product_view"),
        ]
        counts = con.execute(
            "select (select count(*) from raw.events), (select count(*) from "
            "staging.stg_shop__events), (select count(*) from staging.stg_shop__events_quarantined)"
        ).fetchone()
        assert counts[0] == counts[1] + counts[2]


def test_burst_edge_cases_landed(incremental_and_full) -> None:
    inc, _, _ = incremental_and_full
    with duckdb.connect(str(inc), read_only=True) as con:
        merged = con.execute(
            "select session_id, events from intermediate.int_sessions_aggregated "
            "where sessionization_key = ?",
            [f"user-{MERGE_CUSTOMER}"],
        ).fetchall()
        assert merged == [(f"user-{MERGE_CUSTOMER}-{T0:%Y-%m-%d %H:%M:%S}", 4)]
        late_session = con.execute(
            "select s.session_start = e.event_time from intermediate.int_events_sessionized e "
            "join intermediate.int_sessions_aggregated s using (session_id) "
            "where e.event_id = 'burst-late'"
        ).fetchall()
        assert late_session == [(True,)]
        # the valid copy staged by the staging-only build now starts its session
        late_copy = con.execute(
            "select session_id, session_start, events from intermediate.int_sessions_aggregated "
            "where user_session = ?",
            [LATE_SESSION],
        ).fetchall()
        assert late_copy == [(LATE_SESSION, T0 - dt.timedelta(minutes=10), 2)]
        split = con.execute(
            "select count(*), count(*) filter (where session_id = user_session), "
            "count(distinct customer_id) from marts.fct_sessions where user_session = "
            "(select user_session from marts.fct_events where event_id = 'burst-shared')"
        ).fetchall()
        assert split == [(3, 1, 2)]
        burst_sessions = con.execute(
            "select count(*) from marts.fct_sessions where session_id like 'burst-%'"
        ).fetchone()[0]
        assert burst_sessions >= 140


def _plant_duplicate(db: Path, built_at: str) -> None:
    """Insert a second copy of an event written before the latest build, its built_at set to
    the SQL expression `built_at`."""
    with duckdb.connect(str(db)) as con:
        con.execute(f"""
            insert into intermediate.int_events_sessionized
            select * replace ({built_at} as built_at)
            from intermediate.int_events_sessionized
            where built_at < (select max(built_at) from intermediate.int_events_sessionized)
            order by event_id
            limit 1""")


def test_grain_tests_check_the_latest_batch(incremental_and_full, dbt, tmp_path: Path) -> None:
    """After an incremental build the event grain test reads the keys of the latest batch
    against every row: it finds a key repeated across an old and a new row, lets a repeat
    among old rows (checked by the build that wrote them) pass, and test_all_rows finds all."""
    inc, _, _ = incremental_and_full
    grain_test = ["test", "--select", "int_events_sessionized,test_name:primary_key"]
    latest = "(select max(built_at) from intermediate.int_events_sessionized)"
    # as if the latest build had written the copy / the copy keeps the original's older stamp
    for planted, stamp, scoped_finds_it in (("latest", latest, True), ("old", "built_at", False)):
        db = tmp_path / planted / inc.name  # same file name: same catalog name in the SQL
        db.parent.mkdir()
        shutil.copy(inc, db)
        _plant_duplicate(db, stamp)
        scoped = dbt(grain_test, db, tmp_path / planted, check=False)
        assert (scoped.returncode != 0) is scoped_finds_it, scoped.stdout[-3000:]
        every_row = dbt(
            [*grain_test, "--vars", "{test_all_rows: true}"], db, tmp_path / planted, check=False
        )
        assert every_row.returncode != 0, every_row.stdout[-3000:]
        assert "Got 1 result" in every_row.stdout
