"""`shoplens generate --format rees46`: REES46-format files with the real files' quirks."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from shoplens.generate.rees46_file import (
    Rees46FileError,
    Rees46FileSummary,
    Rees46Quirks,
    session_uuids,
    write_rees46_file,
)

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))
HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)
# Rates well above the realistic defaults, so that a few thousand sessions show every quirk.
QUIRKY = Rees46Quirks(
    duplicate=0.01,
    zero_price_view=0.01,
    zero_price_purchase=0.03,
    shared_session=0.01,
    long_session=0.005,
    missing_session=0.001,
)
OCTOBER = {"days": 31, "end": dt.date(2019, 10, 31)}


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rees46FileSummary]:
    """A CSV of 3,000 sessions in October 2019 with every quirk, and its summary."""
    path = tmp_path_factory.mktemp("rees46_file") / "october.csv"
    summary = write_rees46_file(
        path, sessions=3_000, seed=11, quirks=QUIRKY, progress=False, **OCTOBER
    )
    return path, summary


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchone()


@pytest.fixture(scope="module")
def con(quirky: tuple[Path, Rees46FileSummary]) -> duckdb.DuckDBPyConnection:
    """The file as text (view `f`), its distinct rows (`d`) and sessions (`s`), in DuckDB."""
    con = duckdb.connect()
    con.execute(
        f"create view f as select * from read_csv('{quirky[0]}', all_varchar = true, header = true)"
    )
    con.execute("create view d as select distinct * from f")
    con.execute(
        "create view s as select user_session, count(distinct user_id) as users, "
        "date_diff('second', min(strptime(event_time, '%Y-%m-%d %H:%M:%S UTC')), "
        "max(strptime(event_time, '%Y-%m-%d %H:%M:%S UTC'))) / 3600 as hours "
        "from f where user_session is not null group by user_session"
    )
    return con


def test_file_is_in_the_rees46_format(
    quirky: tuple[Path, Rees46FileSummary], con: duckdb.DuckDBPyConnection
) -> None:
    path, summary = quirky
    assert path.read_text().splitlines()[0] == HEADER
    assert '"' not in path.read_text()
    rows, bad_time, bad_price, bad_product, bad_category, bad_user, bad_session = _one(
        con,
        r"""
        select count(*),
            count(*) filter (where not regexp_full_match(event_time,
                '2019-1[01]-\d\d \d\d:\d\d:\d\d UTC')),
            count(*) filter (where not regexp_full_match(price, '\d+\.\d\d')),
            count(*) filter (where not regexp_full_match(product_id, '[1-9]\d{6,7}')),
            count(*) filter (where not regexp_full_match(category_id, '[1-9]\d{18}')),
            count(*) filter (where not regexp_full_match(user_id, '[1-9]\d{8}')),
            count(*) filter (where not regexp_full_match(user_session,
                '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'))
        from f
        """,
    )
    assert rows == summary.rows > 15_000
    assert (bad_time, bad_price, bad_product, bad_category, bad_user, bad_session) == (
        0,
        0,
        0,
        0,
        0,
        0,
    )
    types = dict(con.execute("select event_type, count(*) from f group by 1").fetchall())
    assert set(types) == {"view", "cart", "remove_from_cart", "purchase"}
    assert types["purchase"] == summary.purchases > 100
    assert types["view"] > types["cart"] > types["remove_from_cart"] > 0
    codes = [r[0] for r in con.execute("select distinct category_code from f").fetchall()]
    assert all(c is None or c.count(".") == 1 for c in codes) and len(codes) > 20
    # rows come in event_time order; the first is on the first day of the window
    first, unordered = _one(
        con,
        "select min(event_time), count(*) filter (where event_time < previous) from "
        "(select event_time, lag(event_time) over () as previous from f)",
    )
    assert first.startswith("2019-10-01 ") and unordered == 0
    assert _one(con, "select count(distinct user_session) from f") == (summary.sessions,)


def test_file_has_every_quirk_at_its_rate(
    quirky: tuple[Path, Rees46FileSummary], con: duckdb.DuckDBPyConnection
) -> None:
    _, summary = quirky
    q = summary.quirks
    rows, distinct = _one(con, "select count(*), (select count(*) from d) from f")
    # exact duplicate rows (those injected, and a few the simulation makes itself)
    assert q["duplicates"] == pytest.approx(QUIRKY.duplicate * rows, rel=0.3)
    assert q["duplicates"] <= rows - distinct <= q["duplicates"] * 1.1
    # products without category_code or brand (about a third and an eighth of the rows)
    no_code, no_brand = _one(
        con,
        "select count(*) filter (where category_code is null), "
        "count(*) filter (where brand is null) from f",
    )
    assert (no_code, no_brand) == (q["missing_category_code"], q["missing_brand"])
    assert 0.2 < no_code / rows < 0.45 and 0.05 < no_brand / rows < 0.25
    # zero prices, on views and on a few purchases
    zero_views, zero_purchases = _one(
        con,
        "select count(*) filter (where event_type = 'view'), "
        "count(*) filter (where event_type = 'purchase') from d where price = '0.00'",
    )
    assert (zero_views, zero_purchases) == (q["zero_price_views"], q["zero_price_purchases"])
    assert zero_views > 50 and zero_purchases > 0
    # prices that change from day to day (0-25% off) for about a fifth of the products
    repriced, products = _one(
        con,
        "select count(*) filter (where prices > 1), count(*) from (select product_id, "
        "count(distinct price) filter (where price <> '0.00') as prices, "
        "count(distinct left(event_time, 10)) as days from d group by product_id) "
        "where days >= 5",
    )
    assert 0.1 < repriced / products < 0.3
    assert q["repriced_rows"] > 0.05 * rows
    deepest = _one(
        con,
        "select min(price::double / top) from (select price, max(price::double) over "
        "(partition by product_id) as top from d where price <> '0.00')",
    )[0]
    assert 0.74 < deepest < 0.8
    # sessions shared by two users
    assert _one(con, "select count(*) from s where users = 2") == (q["shared_sessions"],)
    assert _one(con, "select max(users) from s") == (2,)
    assert q["shared_sessions"] > 10
    # very long sessions: hours to days
    long, multi_day, longest = _one(
        con,
        "select count(*) filter (where hours > 2), count(*) filter (where hours > 24), "
        "max(hours) from s",
    )
    assert long == q["long_sessions"] > 5 and multi_day > 0 and longest < 8 * 24
    assert (
        _one(con, "select max(n) from (select count(*) as n from f group by user_session)")[0] > 50
    )
    # purchases with no cart event for that product before them in the session
    without_cart = _one(
        con,
        "select count(*) from d as p where event_type = 'purchase' and not exists (select 1 "
        "from d as c where c.event_type = 'cart' and c.user_session = p.user_session and "
        "c.product_id = p.product_id and c.event_time <= p.event_time)",
    )[0]
    assert q["purchases_without_cart"] <= without_cart <= q["purchases_without_cart"] + 5
    assert q["purchases_without_cart"] > 0.15 * summary.purchases
    # rows without a user_session
    assert _one(con, "select count(*) from f where user_session is null") == (q["missing_session"],)
    assert q["missing_session"] > 0


def test_quirks_off_gives_a_clean_file(tmp_path: Path) -> None:
    off = Rees46Quirks(**{name: 0.0 for name in Rees46Quirks.__dataclass_fields__})
    path = tmp_path / "clean.csv"
    summary = write_rees46_file(path, sessions=500, seed=3, quirks=off, progress=False, **OCTOBER)
    assert set(summary.quirks.values()) <= {0}
    with duckdb.connect() as con:
        con.execute(f"create view f as select * from read_csv('{path}', all_varchar = true)")
        assert _one(
            con,
            "select count(*) filter (where category_code is null or brand is null "
            "or user_session is null or price = '0.00'), "
            "(select count(*) from (select user_session from f group by 1 "
            "having count(distinct user_id) > 1)), "
            "(select count(*) from (select product_id from f group by 1 "
            "having count(distinct price) > 1)) from f",
        ) == (0, 0, 0)
        # every purchasing session carries its cart events
        assert _one(
            con,
            "select count(*) from (select user_session from f group by 1 having "
            "count(*) filter (where event_type = 'purchase') > 0 and "
            "count(*) filter (where event_type = 'cart') = 0)",
        ) == (0,)
        # exact duplicates only where the simulation repeats an event within one second
        rows, distinct = _one(
            con, "select count(*), (select count(*) from (select distinct * from f)) from f"
        )
        assert rows - distinct < 0.002 * rows


def test_same_seed_same_file_in_every_format(tmp_path: Path) -> None:
    paths = {name: tmp_path / name for name in ("a.csv", "b.csv", "c.csv", "a.csv.gz", "a.parquet")}
    for name, path in paths.items():
        seed = 4 if name != "c.csv" else 5
        write_rees46_file(path, sessions=800, seed=seed, quirks=QUIRKY, progress=False, **OCTOBER)
    assert paths["a.csv"].read_bytes() == paths["b.csv"].read_bytes()
    assert paths["a.csv"].read_bytes() != paths["c.csv"].read_bytes()
    with duckdb.connect() as con:
        as_text = {
            name: con.execute(
                f"select * from read_csv('{paths[name]}', all_varchar = true)"
            ).fetchall()
            for name in ("a.csv", "a.csv.gz")
        }
        assert as_text["a.csv"] == as_text["a.csv.gz"] and len(as_text["a.csv"]) > 3_000
        typed = con.execute(
            f"""
            select strftime(event_time at time zone 'UTC', '%Y-%m-%d %H:%M:%S UTC'), event_type,
                product_id::varchar, category_id::varchar, category_code, brand,
                printf('%.2f', price), user_id::varchar, user_session
            from read_parquet('{paths["a.parquet"]}')
            """
        ).fetchall()
    assert typed == as_text["a.csv"]


def test_session_uuids_are_distinct_and_fixed_per_seed() -> None:
    ids = session_uuids(1, np.arange(100_000)).to_pylist()
    assert len(set(ids)) == 100_000
    assert session_uuids(1, np.array([7])).to_pylist() == [ids[7]]
    assert session_uuids(2, np.array([7])).to_pylist() != [ids[7]]


def test_cli_writes_the_file_and_refuses_bad_options(tmp_path: Path) -> None:
    out = tmp_path / "oct.csv.gz"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([SHOPLENS, "generate", *args], capture_output=True, text=True)

    ok = run(
        "--format",
        "rees46",
        "--out",
        str(out),
        "--sessions",
        "300",
        "--days",
        "31",
        "--end",
        "2019-10-31",
        "--quirk",
        "duplicate=0.05",
        "--seed",
        "9",
    )
    assert ok.returncode == 0, ok.stderr
    assert "REES46 rows" in ok.stdout and "duplicates" in ok.stdout
    written = out.read_bytes()
    failures = {
        "exists": run("--format", "rees46", "--out", str(out)),
        "suffix": run("--format", "rees46", "--out", str(tmp_path / "x.json")),
        "no_out": run("--format", "rees46"),
        "quirk_name": run(
            "--format", "rees46", "--out", str(tmp_path / "y.csv"), "--quirk", "dupe=1"
        ),
        "quirk_rate": run(
            "--format", "rees46", "--out", str(tmp_path / "y.csv"), "--quirk", "duplicate=nan"
        ),
        "db": run(
            "--format",
            "rees46",
            "--out",
            str(tmp_path / "y.csv"),
            "--db",
            str(tmp_path / "w.duckdb"),
        ),
    }
    expected = {
        "exists": "already exists",
        "suffix": "must end in .csv, .csv.gz or .parquet",
        "no_out": "give --format and --out",
        "quirk_name": "unknown quirk 'dupe=1'",
        "quirk_rate": "rate must be between 0 and 1",
        "db": "--db does not apply with --format",
    }
    for name, proc in failures.items():
        assert proc.returncode != 0, name
        assert proc.stderr.count("\n") == 1 and expected[name] in proc.stderr, (name, proc.stderr)
    assert out.read_bytes() == written  # the existing file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oct.csv.gz"]  # no partial files


def test_parse_quirks() -> None:
    quirks = Rees46Quirks.parse(["duplicate=0.5", "long-session = 0"])
    assert (quirks.duplicate, quirks.long_session) == (0.5, 0.0)
    assert quirks.shared_session == Rees46Quirks().shared_session
    with pytest.raises(Rees46FileError, match="not a number"):
        Rees46Quirks.parse(["duplicate=lots"])
    with pytest.raises(Rees46FileError, match="between 0 and 1"):
        Rees46Quirks(duplicate=1.5)


def test_arguments_out_of_range_are_refused_before_any_file(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    cases = [
        ({"sessions": 0}, "sessions must be between 1 and 50,000,000"),
        ({"sessions": 10**12}, "sessions must be between 1 and 50,000,000"),
        ({"end": dt.date(9999, 12, 31)}, "end must be between 1970-01-01 and 2200-12-31"),
        ({"end": dt.date(1970, 1, 1), "days": 2}, "days must be between 1 and 1 "),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ]
    for change, message in cases:
        args = {"sessions": 10, "seed": 1, **OCTOBER, **change}
        with pytest.raises(Rees46FileError, match=message):
            write_rees46_file(out, progress=False, **args)
    assert list(tmp_path.iterdir()) == []
