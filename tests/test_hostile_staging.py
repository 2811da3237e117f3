"""Staging and sessionisation on hostile input, through a real `dbt build` of hand-written rows.

One warehouse holds a REES46 file with the real files' quirks (upper-case types, zero prices on
a view and a purchase, a session shared by two users, an exact duplicate line, one session id
spread over three years) and Kafka-style rows with prices no file should carry (NaN, infinity,
negative) and event types wrapped in whitespace. The values in the marts are asserted against
figures worked out by hand below. Two more warehouses check the quality gate: a mostly garbage
load fails `dbt build`, a slightly bad one only warns.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dbt_support import SQL_ONLY
from shoplens import warehouse
from shoplens.rees46 import load_rees46
from shoplens.reports.data import ReportData
from shoplens.reports.pages import quality

HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)
# The REES46 file: (time, type, product, price, user, session). Purchases with a usable price:
# 25.00 (shared, user 102; its exact duplicate line counts once) and 40.00 (long, user 103).
REES46_ROWS = [
    ("2019-10-01 10:00:00", "VIEW", 1, "0.00", 101, "shared"),
    ("2019-10-01 10:01:00", "VIEW", 2, "25.00", 102, "shared"),
    ("2019-10-01 10:02:00", "CART", 2, "25.00", 102, "shared"),
    ("2019-10-01 10:03:00", "PURCHASE", 2, "25.00", 102, "shared"),
    ("2019-10-01 10:03:00", "PURCHASE", 2, "25.00", 102, "shared"),  # exact duplicate line
    ("2019-10-01 10:05:00", "Purchase", 3, "0.00", 101, "shared"),  # zero-price purchase
    ("2016-10-01 09:00:00", "View", 4, "40.00", 103, "long"),
    ("2016-10-01 09:20:00", "cart", 4, "40.00", 103, "long"),
    ("2017-10-01 09:00:00", "view", 4, "40.00", 103, "long"),
    ("2019-10-01 09:00:00", "purchase", 4, "40.00", 103, "long"),
]
REES46_REVENUE = 25.0 + 40.0
# Kafka-style rows (source kafka): usable purchase 10.0 x 2 = 20.0 of revenue; the others have
# unusable prices or whitespace around their types.
T = dt.datetime(2026, 3, 2, 12, 0, 0)
KAFKA_ROWS = [
    {"event_id": "k1", "event_type": " product_view\t", "price": math.nan},
    {"event_id": "k2", "event_type": "Add_To_Cart\n", "price": math.inf, "quantity": 1},
    {"event_id": "k3", "event_type": "PURCHASE\r\n", "price": math.nan, "quantity": 1},
    {"event_id": "k4", "event_type": "purchase", "price": -math.inf, "quantity": 3},
    {"event_id": "k5", "event_type": "product_view", "price": -5.0},
    {"event_id": "k6", "event_type": "\tpurchase ", "price": 10.0, "quantity": 2},
]
KAFKA_REVENUE = 20.0
# Their order lines, as the stream writes them: k6's, and k3's with its NaN price.
ORDER_LINES = pa.table(
    {
        "transaction_id": ["t3", "t6"],
        "order_id": ["o1", "o1"],
        "event_id": ["k3", "k6"],
        "customer_id": pa.array([201, 201], pa.int64()),
        "product_id": pa.array([7, 7], pa.int64()),
        "category_code": ["kids.toys", "kids.toys"],
        "price": [math.nan, 10.0],
        "quantity": pa.array([1, 2], pa.int32()),
        "transaction_time": pa.array([T, T], pa.timestamp("us")),
        "source": ["kafka", "kafka"],
    }
)


def _kafka_events(rows: list[dict], session: str, customer: int) -> pa.Table:
    """Raw contract rows (missing columns null) for one session of one customer."""
    return pa.table(
        {
            "event_id": pa.array([r["event_id"] for r in rows], pa.string()),
            "event_time": pa.array(
                [T + dt.timedelta(seconds=i) for i in range(len(rows))], pa.timestamp("us")
            ),
            "event_type": pa.array([r["event_type"] for r in rows], pa.string()),
            "product_id": pa.array([7] * len(rows), pa.int64()),
            "category_code": pa.array(["kids.toys"] * len(rows), pa.string()),
            "price": pa.array([r.get("price") for r in rows], pa.float64()),
            "quantity": pa.array([r.get("quantity") for r in rows], pa.int32()),
            "user_id": pa.array([customer] * len(rows), pa.int64()),
            "user_session": pa.array([session] * len(rows), pa.string()),
            "source": pa.array(["kafka"] * len(rows), pa.string()),
        }
    )


def _write_rees46(path: Path, rows: list[tuple]) -> None:
    lines = [
        f"{t} UTC,{kind},{product},5,kids.toys,acme,{price},{user},{session}"
        for t, kind, product, price, user, session in rows
    ]
    path.write_text("\n".join([HEADER, *lines]) + "\n")


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, dbt) -> Path:
    """A warehouse built (SQL models) from the REES46 file and the Kafka-style rows."""
    work = tmp_path_factory.mktemp("hostile")
    db = work / "warehouse.duckdb"
    _write_rees46(work / "quirks.csv", REES46_ROWS)
    load_rees46(db, [work / "quirks.csv"])
    with warehouse.connect(db) as con:
        warehouse.append(
            con,
            "raw.events",
            _kafka_events(KAFKA_ROWS, "k-session", 201),
            loaded_at=T + dt.timedelta(hours=1),
        )
        warehouse.append(con, "raw.transactions", ORDER_LINES, loaded_at=T + dt.timedelta(hours=1))
    dbt(["build", *SQL_ONLY], db, work)  # seeds too
    return db


def test_unusable_prices_keep_their_events_with_a_null_price_and_a_flag(hostile: Path) -> None:
    rees46 = _rows(
        hostile,
        "select customer_id, event_type, price, price_flag from marts.fct_events "
        "where price_flag is not null and load_source = 'rees46' order by event_time",
    )
    assert rees46 == [
        (101, "product_view", None, "non_positive_price"),
        (101, "purchase", None, "non_positive_price"),
    ]
    kafka = dict(
        _rows(
            hostile,
            "select event_id, coalesce(price_flag, 'usable ' || price) "
            "from marts.fct_events where load_source = 'kafka'",
        )
    )
    assert kafka == {
        "k1": "non_finite_price",
        "k2": "non_finite_price",
        "k3": "non_finite_price",
        "k4": "non_finite_price",
        "k5": "non_positive_price",
        "k6": "usable 10.0",
    }
    assert _rows(hostile, "select count(*) from staging.stg_shop__events_quarantined") == [(1,)]


def test_quality_mart_counts_the_flags(hostile: Path) -> None:
    flagged = dict(
        _rows(
            hostile,
            "select check_name, row_count from marts.mart_data_quality "
            "where check_kind = 'flagged'",
        )
    )
    assert flagged == {
        "non_positive_price": 3,  # REES46 zero view and purchase, Kafka -5.0
        "non_finite_price": 4,
        "purchase_unusable_price": 3,  # REES46 zero purchase, Kafka NaN and -inf purchases
    }
    removed = _rows(
        hostile,
        "select dataset, check_name, row_count from marts.mart_data_quality "
        "where check_kind in ('quarantined', 'duplicate_removed') and row_count > 0 order by 1",
    )
    assert removed == [("events", "duplicate_row", 1), ("transactions", "invalid_price", 1)]


def test_revenue_leaves_out_unusable_prices_and_stays_finite(hostile: Path) -> None:
    purchases, revenue, non_finite = _rows(
        hostile,
        "select sum(purchases), sum(revenue), count(*) filter (where not isfinite(revenue)) "
        "from marts.fct_sessions",
    )[0]
    # every purchase event counts, the duplicate line once: 2 + 1 REES46 zero-price, 3 Kafka
    assert purchases == 2 + 1 + 3
    assert revenue == pytest.approx(REES46_REVENUE + KAFKA_REVENUE)
    assert non_finite == 0
    popularity = _rows(
        hostile,
        "select sum(event_revenue), sum(purchases), bool_and(isfinite(event_revenue)), "
        "bool_and(isfinite(revenue_share)) from marts.mart_category_popularity",
    )[0]
    assert popularity[0] == pytest.approx(REES46_REVENUE + KAFKA_REVENUE)
    assert popularity[1:] == (6, True, True)
    assert _rows(
        hostile, "select sum(lifetime_value), bool_and(isfinite(monetary)) from marts.dim_customers"
    ) == [(pytest.approx(REES46_REVENUE + KAFKA_REVENUE), True)]
    # a NaN order line is quarantined, so order-line revenue is finite too
    assert _rows(hostile, "select sum(revenue) from marts.fct_order_lines") == [(KAFKA_REVENUE,)]
    assert _rows(
        hostile,
        "select transaction_id, quarantine_reason from staging.stg_shop__transactions_quarantined",
    ) == [("t3", "invalid_price")]


def test_every_user_of_a_shared_session_is_a_customer(hostile: Path) -> None:
    sessions = _rows(
        hostile,
        "select session_id, customer_id, events, purchases, revenue from marts.fct_sessions "
        "where user_session = 'shared' order by session_start",
    )
    assert sessions == [
        ("shared", 101, 2, 1, 0.0),
        ("shared#102-2019-10-01 10:01:00", 102, 3, 1, 25.0),
    ]
    customers = {c for (c,) in _rows(hostile, "select customer_id from marts.dim_customers")}
    assert customers == {101, 102, 103, 201}
    orphans = _rows(
        hostile,
        "select count(*) from marts.fct_events e left join marts.dim_customers c "
        "using (customer_id) where c.customer_id is null",
    )
    assert orphans == [(0,)]


def test_every_loaded_session_id_is_a_session(hostile: Path) -> None:
    missing = _rows(
        hostile,
        "select distinct user_session from raw.events where user_session not in "
        "(select session_id from marts.fct_sessions)",
    )
    assert missing == []
    assert _rows(hostile, "select count(distinct user_session) from marts.fct_sessions") == [(3,)]


def test_a_session_id_spread_over_three_years_is_split(hostile: Path) -> None:
    pieces = _rows(
        hostile,
        "select session_id, events, session_duration_seconds, purchases from marts.fct_sessions "
        "where user_session = 'long' order by session_start",
    )
    assert pieces == [
        ("long", 2, 20 * 60, 0),
        ("long#103-2017-10-01 09:00:00", 1, 0, 0),
        ("long#103-2019-10-01 09:00:00", 1, 0, 1),
    ]
    split = _rows(
        hostile,
        "select row_count from marts.mart_data_quality where check_name = 'session_id_split'",
    )
    assert split == [(3,)]  # the two later pieces of 'long', and user 102's piece of 'shared'


def test_upper_case_and_padded_types_fill_the_marts(hostile: Path) -> None:
    types = dict(
        _rows(hostile, "select event_type, count(*) from marts.fct_events group by event_type")
    )
    assert types == {"product_view": 6, "add_to_cart": 3, "purchase": 6}
    popularity = _rows(
        hostile,
        "select sum(product_views), sum(cart_additions), sum(purchases) "
        "from marts.mart_category_popularity",
    )
    assert popularity == [(6, 3, 6)]
    raw, usable, quarantined = _rows(
        hostile,
        "select (select count(*) from raw.events), (select count(*) from marts.fct_events), "
        "(select count(*) from staging.stg_shop__events_quarantined)",
    )[0]
    assert raw == usable + quarantined == len(REES46_ROWS) + len(KAFKA_ROWS)


def _gate_build(tmp_path: Path, dbt, bad: int, good: int) -> tuple[int, str]:
    """Build a warehouse holding one Kafka load of `bad` unknown-type and `good` valid rows."""
    db = tmp_path / "warehouse.duckdb"
    rows = [{"event_id": f"b{i}", "event_type": "teleport"} for i in range(bad)]
    rows += [{"event_id": f"g{i}", "event_type": "page_view"} for i in range(good)]
    with warehouse.connect(db) as con:
        warehouse.ensure_raw_schema(con)
        warehouse.append(
            con, "raw.events", _kafka_events(rows, "gate", 301), loaded_at=T + dt.timedelta(1)
        )
    proc = dbt(["build", *SQL_ONLY], db, tmp_path, check=False)  # seeds too
    return proc.returncode, proc.stdout


def test_a_mostly_garbage_load_fails_the_build(tmp_path: Path, dbt) -> None:
    code, out = _gate_build(tmp_path, dbt, bad=30, good=10)
    assert code != 0
    assert "Failure in test assert_load_quarantine_share_below_error_threshold" in out
    assert "Warning in test assert_load_quarantine_share_below_warn_threshold" in out
    # the gate runs after the quality mart: the counts are there to look at
    assert _rows(
        tmp_path / "warehouse.duckdb",
        "select row_count from marts.mart_data_quality where check_name = 'unknown_event_type'",
    ) == [(30,)]


def test_a_slightly_bad_load_only_warns(tmp_path: Path, dbt) -> None:
    code, out = _gate_build(tmp_path, dbt, bad=4, good=36)
    assert code == 0, out[-3000:]
    assert "Warning in test assert_load_quarantine_share_below_warn_threshold" in out
    assert "assert_load_quarantine_share_below_error_threshold" in out  # ran, and passed
    assert "Failure in test" not in out


def test_quality_page_tells_the_flags_and_splits(hostile: Path) -> None:
    with duckdb.connect(str(hostile), read_only=True) as con:
        table = quality.duplicates(ReportData(con, hostile))
    assert "7 events are kept with their price left empty" in table.note
    assert "3 of them are purchases, counted without revenue" in table.note
    assert "3 sessions were split off a session id" in table.note
    events = next(row for row in table.rows if row[0] == "events")
    assert events[1:] == ["16", "1", "6.25%", "0", "15"]
