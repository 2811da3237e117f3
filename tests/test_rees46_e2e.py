"""REES46 files end to end: load-events, dbt seed and a full dbt build (ml included), then every
row, session, purchase and unit of revenue of the file is found again in the warehouse.

Two files: one written by `shoplens generate --format rees46` with every quirk of the real files
at high rates (exact duplicates, empty category_code and brand, zero prices on views and
purchases, sessions shared by two users, sessions over hours and days, purchases without a cart
event, rows without a user_session), and the 3,000-row public sample in shared/data. The
expected figures are computed from the file itself with DuckDB, independently of the loader
and the models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "rees46_sample.csv"
SHOPLENS = str(Path(sys.executable).with_name("shoplens"))
QUIRKS = {
    "duplicate": 0.01,
    "zero_price_view": 0.01,
    "zero_price_purchase": 0.03,
    "shared_session": 0.01,
    "long_session": 0.005,
    "missing_session": 0.001,
}
TIME = "strptime(event_time, '%Y-%m-%d %H:%M:%S UTC')"


def _inactivity_minutes() -> int:
    return int(
        yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["session_inactivity_minutes"]
    )


@dataclass(frozen=True)
class Built:
    """A REES46 file, the warehouse built from it, and the run_results.json of each build."""

    file: Path
    db: Path
    results: list[Path]


@dataclass(frozen=True)
class FileFigures:
    """What the file says, computed from its text with DuckDB."""

    rows: int
    distinct_rows: int
    sessions: set[str]
    users: set[int]
    purchases: int
    revenue: float
    zero_prices: int
    shared_sessions: int
    expected_sessions: int


def file_figures(path: Path) -> FileFigures:
    """Figures of a REES46 CSV: exact duplicate rows count once; a purchase's revenue is its
    price when that is a positive finite number; sessions are split per (user_session, user_id)
    and by inactivity, id-less rows per user by inactivity (the rule in int_events_sessionized)."""
    gap = _inactivity_minutes() * 60
    with duckdb.connect() as con:
        con.execute(
            f"create view f as select * from read_csv('{path}', all_varchar = true, header = true)"
        )
        con.execute("create view d as select distinct * from f")
        rows, distinct_rows, purchases, revenue, zero_prices = con.execute(
            """
            select (select count(*) from f), count(*),
                count(*) filter (where event_type = 'purchase'),
                coalesce(sum(try_cast(price as double)) filter (where event_type = 'purchase'
                    and isfinite(try_cast(price as double)) and try_cast(price as double) > 0), 0),
                count(*) filter (where try_cast(price as double) = 0)
            from d
            """
        ).fetchone()
        sessions = {
            r[0]
            for r in con.execute(
                "select distinct user_session from d where user_session is not null"
            ).fetchall()
        }
        users = {int(r[0]) for r in con.execute("select distinct user_id from d").fetchall()}
        shared = con.execute(
            "select count(*) from (select user_session from d where user_session is not null "
            "group by 1 having count(distinct user_id) > 1)"
        ).fetchone()[0]
        expected_sessions = con.execute(
            f"""
            select count(*) filter (where previous is null
                or date_diff('second', previous, t) > {gap})
            from (
                select {TIME} as t, lag({TIME}) over (
                    partition by coalesce(user_session, ''), user_id order by {TIME}) as previous
                from d
            )
            """
        ).fetchone()[0]
    return FileFigures(
        rows=rows,
        distinct_rows=distinct_rows,
        sessions=sessions,
        users=users,
        purchases=purchases,
        revenue=revenue,
        zero_prices=zero_prices,
        shared_sessions=shared,
        expected_sessions=expected_sessions,
    )


@pytest.fixture(scope="module")
def generated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 sessions of October 2019 in a REES46 CSV with every quirk, by the CLI."""
    path = tmp_path_factory.mktemp("rees46_generated") / "october.csv"
    quirks = [arg for name, rate in QUIRKS.items() for arg in ("--quirk", f"{name}={rate}")]
    command = ["generate", "--format", "rees46", "--out", str(path), "--sessions", "3000"]
    command += ["--seed", "11", "--days", "31", "--end", "2019-10-31", *quirks]
    subprocess.run([SHOPLENS, *command], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module", params=["generated", "sample"])
def built(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dbt: Callable[..., subprocess.CompletedProcess],
) -> Built:
    """A fresh warehouse with a REES46 file loaded, `dbt seed` and `dbt build` run.

    The sample is one file and one full build: conftest's `rees46_warehouse`, which other
    modules read too. The generated file arrives as a large real slice often does: in two parts
    with the same name (first/october.csv up to 2019-10-16, second/october.csv from then on),
    sessions running across the cut, each part loaded and built in turn (a full build, then an
    incremental one).
    """
    if request.param == "sample":
        sample: Path = request.getfixturevalue("rees46_warehouse")
        return Built(
            file=SAMPLE, db=sample, results=[sample.parent / "target" / "run_results.json"]
        )
    work = tmp_path_factory.mktemp(f"rees46_{request.param}")
    path = request.getfixturevalue("generated_file")
    parts = _split_at(path, "2019-10-16", work)
    db = work / "warehouse.duckdb"
    results = []
    for n, part in enumerate(parts):
        load = subprocess.run(
            [SHOPLENS, "load-events", "--db", str(db), "--format", "rees46", str(part)],
            capture_output=True,
            text=True,
        )
        assert load.returncode == 0, load.stderr
        if n == 0:
            dbt(["seed"], db, work)
        dbt(["build", "--exclude-resource-type", "unit_test"], db, work)  # run by built_warehouse
        results.append(work / f"run_results_{n}.json")
        (work / "target" / "run_results.json").rename(results[-1])
    return Built(file=path, db=db, results=results)


def _split_at(path: Path, day: str, work: Path) -> list[Path]:
    """The file's data lines before `day` and from `day` on (it is in event_time order), each
    with the header, as first/<name> and second/<name> under `work`."""
    header, *lines = path.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line[:10] >= day)
    parts = []
    for folder, chunk in (("first", lines[:cut]), ("second", lines[cut:])):
        part = work / folder / path.name
        part.parent.mkdir()
        part.write_text(header + "".join(chunk))
        parts.append(part)
    return parts


def _query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_sample_figures() -> None:
    """The sample's own figures (checked against the file once, by hand, with DuckDB)."""
    figures = file_figures(SAMPLE)
    assert (figures.rows, figures.distinct_rows, len(figures.sessions), len(figures.users)) == (
        3000,
        3000,
        1281,
        1199,
    )
    assert (figures.purchases, round(figures.revenue, 2), figures.zero_prices) == (36, 10272.31, 3)
    # one session pauses an hour (00:26 to 01:25), so the inactivity rule splits it in two
    assert (figures.shared_sessions, figures.expected_sessions) == (0, 1282)


def test_generated_file_has_the_quirks_the_sample_lacks(generated_file: Path) -> None:
    figures = file_figures(generated_file)
    assert figures.rows - figures.distinct_rows > 100  # exact duplicate rows
    assert figures.shared_sessions > 10  # sessions carrying two user ids
    assert figures.zero_prices > 50
    assert figures.expected_sessions > len(figures.sessions) + 50  # long sessions split
    with duckdb.connect() as con:
        con.execute(
            f"create view f as select * from read_csv('{generated_file}', all_varchar = true)"
        )
        [(across_cut, repriced)] = con.execute(
            """
            select
                (select count(*) from (select user_session from f group by 1
                 having min(event_time) < '2019-10-16' and max(event_time) >= '2019-10-16')),
                (select count(*) from (select product_id from f where price <> '0.00'
                 group by 1 having count(distinct price) > 1))
            """
        ).fetchall()
    assert across_cut > 0  # sessions that run across the two parts `built` loads
    assert repriced > 20  # products whose price changes from day to day


@pytest.mark.parametrize("build", [0, -1], ids=["first_build", "last_build"])
def test_dbt_build_passes_every_test(built: Built, build: int) -> None:
    results = json.loads(built.results[build].read_text())["results"]
    expected = {"test": "pass", "unit_test": "pass", "model": "success", "seed": "success"}
    expected |= {"operation": "success", "exposure": "no-op"}  # on-run hooks; report pages
    wrong = [
        (r["unique_id"], r["status"])
        for r in results
        if r["status"] != expected.get(r["unique_id"].split(".")[0])
    ]
    assert wrong == []
    tests = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    assert len(tests) > 100
    models = {r["unique_id"].split(".")[-1] for r in results}
    assert {"fct_sessions", "dim_customers", "model_registry", "session_predictions"} <= models


def test_every_row_is_accounted_for(built: Built) -> None:
    figures = file_figures(built.file)
    [(raw_events, rejects, staged, quarantined, duplicates)] = _query(
        built.db,
        """
        select
            (select count(*) from raw.events where source = 'rees46'),
            (select count(*) from raw.rejects where source = 'rees46'),
            (select count(*) from staging.stg_shop__events),
            (select count(*) from staging.stg_shop__events_quarantined),
            (select count(*) from staging.stg_shop__events_quarantined
             where quarantine_reason = 'duplicate_row')
        """,
    )
    assert raw_events + rejects == figures.rows
    assert raw_events == staged + quarantined
    # every distinct row of the file is a usable event (zero prices included); the only rows
    # set aside are the exact duplicates
    assert (rejects, staged, quarantined) == (0, figures.distinct_rows, duplicates)
    assert duplicates == figures.rows - figures.distinct_rows
    assert _query(built.db, "select count(*) from marts.fct_events") == [(figures.distinct_rows,)]


def test_every_user_session_is_a_session(built: Built) -> None:
    figures = file_figures(built.file)
    session_ids = {r[0] for r in _query(built.db, "select session_id from marts.fct_sessions")}
    assert figures.sessions <= session_ids
    assert len(session_ids) == figures.expected_sessions
    # every piece of a split session keeps the file's id as user_session
    user_sessions = _query(
        built.db, "select distinct user_session from marts.fct_sessions where user_session <> ''"
    )
    assert {r[0] for r in user_sessions} == figures.sessions
    # the other sessions are the split-off pieces of file sessions, or id-less inactivity ones
    for session_id in session_ids - figures.sessions:
        base, sep, _ = session_id.partition("#")
        assert (sep and base in figures.sessions) or session_id.startswith("user-"), session_id
    customers = {r[0] for r in _query(built.db, "select customer_id from marts.dim_customers")}
    assert figures.users <= customers


def test_purchases_and_revenue_equal_the_files(built: Built) -> None:
    figures = file_figures(built.file)
    [(sessions_purchases, sessions_revenue)] = _query(
        built.db, "select sum(purchases), sum(revenue) from marts.fct_sessions"
    )
    [(funnel_purchases, funnel_revenue)] = _query(
        built.db, "select sum(purchases), sum(revenue) from marts.mart_funnel_daily"
    )
    [(category_purchases, category_revenue)] = _query(
        built.db, "select sum(purchases), sum(event_revenue) from marts.mart_category_popularity"
    )
    [(event_purchases,)] = _query(
        built.db, "select count(*) from marts.fct_events where event_type = 'purchase'"
    )
    assert figures.purchases > 30
    assert sessions_purchases == funnel_purchases == category_purchases == event_purchases
    assert event_purchases == figures.purchases
    for revenue in (sessions_revenue, funnel_revenue, category_revenue):
        assert revenue == pytest.approx(figures.revenue, rel=1e-9)


def test_csv_gzip_and_parquet_files_load_the_same_events(tmp_path: Path) -> None:
    """The same generated data as CSV, .csv.gz and typed Parquet lands as the same raw events."""
    columns = (
        "event_time, event_type, product_id, category_id, category_code, brand, price, "
        "user_id, user_session"
    )
    quirks = [arg for name, rate in QUIRKS.items() for arg in ("--quirk", f"{name}={rate}")]
    loaded = {}
    for name in ("october.csv", "october.csv.gz", "october.parquet"):
        path, db = tmp_path / name, tmp_path / f"{name.replace('.', '_')}.duckdb"
        command = ["generate", "--format", "rees46", "--out", str(path), "--sessions", "500"]
        command += ["--seed", "4", "--days", "31", "--end", "2019-10-31", *quirks]
        subprocess.run([SHOPLENS, *command], check=True, capture_output=True)
        load = subprocess.run(
            [SHOPLENS, "load-events", "--db", str(db), str(path)], capture_output=True, text=True
        )
        assert load.returncode == 0, load.stderr
        loaded[name] = sorted(_query(db, f"select {columns} from raw.events"), key=repr)
    csv_rows = loaded["october.csv"]
    assert len(csv_rows) == file_figures(tmp_path / "october.csv").rows > 2_500
    assert loaded["october.csv.gz"] == csv_rows
    assert loaded["october.parquet"] == csv_rows
    zero_price = [row for row in csv_rows if row[6] == 0.0]
    assert zero_price and all(row[1] in ("view", "purchase") for row in zero_price)
