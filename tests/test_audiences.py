"""Campaign audiences (models/marts/audiences) and their export, on a hand-made warehouse.

The raw events below are written by hand, so every audience row is worked out here: who left
what in a cart in the last N days (and who bought it since), the intent score of their
session (live beats batch), the campaign of each segment, and the one "happy hour" cell. The
ml and live tables are hand-made too: the SQL models are built without models/ml, first with
neither (the audiences must build on such a warehouse), then with them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from dbt_support import SQL_ONLY
from shoplens import warehouse
from shoplens.audiences import AUDIENCES, PERSONAL_COLUMNS, AudienceError, export_audience
from shoplens.reports.content import Bullets, Notice, Page, Table
from shoplens.reports.data import BuildInfo, open_report_data
from shoplens.reports.pages import audiences as audiences_page
from shoplens.reports.pages import overview
from shoplens.reports.site import build_site
from shoplens.stream.scorer import SCORES_DDL, SCORES_TABLE

pytestmark = pytest.mark.warehouse

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))
MODELS = Path(__file__).resolve().parents[1] / "models" / "marts" / "audiences"
AUDIENCE_MODELS = ["--select", "stg_live__session_scores", "path:models/marts/audiences"]

# The data's as-of time is the end of the latest session (customer 6's purchase).
AS_OF = dt.datetime(2026, 3, 20, 12, 0)
PRODUCTS = {  # product -> (category code, list price)
    10: ("electronics.audio", 100.0),
    11: ("electronics.audio", 20.0),
    12: ("apparel.shoes", 50.0),
    13: ("furniture.kitchen", 35.0),
}


def _at(day: str, clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2026-{day} {clock}")


# (customer, session, time, event type, product, price, quantity)
EVENTS = [
    # 1: left 10 (2 x 100, its latest cart) and 11 (20) in s1; s1old's cart of 10 is older.
    (1, "s1old", _at("03-14", "09:00"), "add_to_cart", 10, 90.0, 1),
    (1, "s1", _at("03-18", "10:00"), "product_view", 10, 100.0, None),
    (1, "s1", _at("03-18", "10:01"), "add_to_cart", 10, 100.0, 2),
    (1, "s1", _at("03-18", "10:02"), "add_to_cart", 11, 20.0, 1),
    # 2: left 10 in s2a, bought it two days later: not an abandoner.
    (2, "s2a", _at("03-15", "10:00"), "add_to_cart", 10, 100.0, 1),
    (2, "s2b", _at("03-17", "10:00"), "add_to_cart", 10, 100.0, 1),
    (2, "s2b", _at("03-17", "10:01"), "checkout", None, None, None),
    (2, "s2b", _at("03-17", "10:02"), "purchase", 10, 100.0, 1),
    # 3: left 10 and 12, bought 12 since (without a cart event): only 10 remains.
    (3, "s3a", _at("03-16", "10:00"), "add_to_cart", 10, 100.0, 1),
    (3, "s3a", _at("03-16", "10:01"), "add_to_cart", 12, 50.0, 1),
    (3, "s3b", _at("03-19", "10:00"), "purchase", 12, 50.0, 1),
    # 4: left 11 ten days before the as-of time: outside 7 days, inside 14.
    (4, "s4", _at("03-10", "10:00"), "add_to_cart", 11, 20.0, 1),
    # 5: added 13 and took it out again in the same second (stored in that order): the removal,
    # with the greater event id, is the last cart event whatever order a scan meets them in.
    (5, "s5", _at("03-18", "10:00"), "add_to_cart", 13, 30.0, 1),
    (5, "s5", _at("03-18", "10:00"), "remove_from_cart", 13, 30.0, 1),
    # 6: bought what it carted; the latest session sets the as-of time.
    (6, "s6", _at("03-20", "11:50"), "product_view", 10, 100.0, None),
    (6, "s6", _at("03-20", "11:55"), "add_to_cart", 11, 20.0, 1),
    (6, "s6", _at("03-20", "11:58"), "checkout", None, None, None),
    (6, "s6", AS_OF, "purchase", 11, 20.0, 1),
    # 7: left 13 with an unusable price (0): valued at the list price, 35.
    (7, "s7", _at("03-19", "10:00"), "add_to_cart", 13, 0.0, 1),
    # Fashion traffic: six sessions on Monday 2 March at 18h view 12 and buy nothing; three on
    # Monday 9 March at 9h, two of them buy it.
    *[(c, f"f{c}", _at("03-02", "18:10"), "product_view", 12, 50.0, None) for c in range(20, 26)],
    *[(c, f"g{c}", _at("03-09", "09:10"), "product_view", 12, 50.0, None) for c in range(26, 29)],
    *[(c, f"g{c}", _at("03-09", "09:12"), "purchase", 12, 50.0, 1) for c in (26, 27)],
]
# Fashion: sessions f20-f25 (0 buy), g26-g28 (2 buy), s3a (0), s3b (1) in four cells of 6, 3,
# 1 and 1 sessions: rate 3/11, median cell 2. With minimum support 2 only Monday 18h qualifies.
FASHION_RATE = 3 / 11

CUSTOMERS = [  # customer, age, gender, city, country
    (c, 30 + c, "F" if c % 2 else "M", f"City {c}", "Germany") for c in range(1, 8)
]


def _events() -> pa.Table:
    rows = [dict(zip(("c", "s", "t", "e", "p", "price", "q"), r, strict=True)) for r in EVENTS]
    return pa.table(
        {
            "event_id": pa.array([f"e{i}" for i in range(len(rows))], pa.string()),
            "event_time": pa.array([r["t"] for r in rows], pa.timestamp("us")),
            "event_type": pa.array([r["e"] for r in rows], pa.string()),
            "product_id": pa.array([r["p"] for r in rows], pa.int64()),
            "category_code": pa.array(
                [PRODUCTS[r["p"]][0] if r["p"] else None for r in rows], pa.string()
            ),
            "price": pa.array([r["price"] for r in rows], pa.float64()),
            "quantity": pa.array([r["q"] for r in rows], pa.int32()),
            "user_id": pa.array([r["c"] for r in rows], pa.int64()),
            "user_session": pa.array([r["s"] for r in rows], pa.string()),
            "device": pa.array(["desktop"] * len(rows), pa.string()),
            "traffic_source": pa.array(["direct"] * len(rows), pa.string()),
            "source": pa.array(["generator"] * len(rows), pa.string()),
        }
    )


def _order_lines() -> pa.Table:
    """One order line per purchase event, as the shop's order system writes them."""
    bought = [(i, r) for i, r in enumerate(EVENTS) if r[3] == "purchase"]
    return pa.table(
        {
            "transaction_id": [f"t{i}" for i, _ in bought],
            "order_id": [f"o{i}" for i, _ in bought],
            "event_id": [f"e{i}" for i, _ in bought],
            "customer_id": pa.array([r[0] for _, r in bought], pa.int64()),
            "product_id": pa.array([r[4] for _, r in bought], pa.int64()),
            "category_code": [PRODUCTS[r[4]][0] for _, r in bought],
            "price": [r[5] for _, r in bought],
            "quantity": pa.array([r[6] for _, r in bought], pa.int32()),
            "transaction_time": pa.array([r[2] for _, r in bought], pa.timestamp("us")),
            "source": ["generator"] * len(bought),
        }
    )


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _frame(db: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, dbt) -> Path:
    """The hand-made raw data built without models/ml: no ml tables, no live scores."""
    work = tmp_path_factory.mktemp("audiences")
    db = work / "warehouse.duckdb"
    loaded = AS_OF + dt.timedelta(hours=1)
    with warehouse.connect(db) as con:
        warehouse.ensure_raw_schema(con)
        warehouse.append(con, "raw.events", _events(), loaded_at=loaded)
        products = pa.table(
            {
                "product_id": pa.array(list(PRODUCTS), pa.int64()),
                "product_name": [f"product {p}" for p in PRODUCTS],
                "category_code": [code for code, _ in PRODUCTS.values()],
                "price": [price for _, price in PRODUCTS.values()],
                "source": ["generator"] * len(PRODUCTS),
            }
        )
        warehouse.append(con, "raw.products", products, loaded_at=loaded)
        customers = pa.table(
            {
                "customer_id": pa.array([c[0] for c in CUSTOMERS], pa.int64()),
                "age": pa.array([c[1] for c in CUSTOMERS], pa.int32()),
                "gender": [c[2] for c in CUSTOMERS],
                "city": [c[3] for c in CUSTOMERS],
                "country": [c[4] for c in CUSTOMERS],
                "signup_date": [dt.date(2025, 1, 1)] * len(CUSTOMERS),
                "source": ["generator"] * len(CUSTOMERS),
            }
        )
        warehouse.append(con, "raw.customers", customers, loaded_at=loaded)
        warehouse.append(con, "raw.transactions", _order_lines(), loaded_at=loaded)
    dbt(["build", *SQL_ONLY], db, work)  # seeds too
    return db


@pytest.fixture(scope="module")
def scored(bare: Path, tmp_path_factory: pytest.TempPathFactory, dbt) -> Path:
    """`bare` plus hand-made intent predictions, live scores and segments, audiences rebuilt."""
    work = tmp_path_factory.mktemp("scored")
    db = work / "warehouse.duckdb"
    shutil.copy(bare, db)
    with warehouse.connect(db) as con:
        con.execute("create schema if not exists ml; create schema if not exists live")
        con.execute(
            "create table ml.session_predictions (session_id varchar, model_name varchar, "
            "probability double, threshold double)"
        )
        con.execute(
            "insert into ml.session_predictions values ('s1', 'purchase_intent', 0.1, 0.4), "
            "('s3a', 'purchase_intent', 0.3, 0.4), ('s3a', 'purchase_intent_stratified', 0.9, 0.4)"
        )
        con.execute(SCORES_DDL)  # the live scorer's own table
        con.execute(
            f"insert into {SCORES_TABLE} values "
            "('2026-03-18 10:00:30', 's1', 1, 'purchase_intent', 1, 1, 'e1', "
            " '2026-03-18 10:00:00', 0.2, 0.4, false), "
            "('2026-03-18 10:02:30', 's1', 1, 'purchase_intent', 1, 3, 'e3', "
            " '2026-03-18 10:02:00', 0.9, 0.4, true)"
        )
        con.execute(
            "create table ml.customer_segments as select * from (values "
            "(1, 0, 'Cart Abandoners', 1), (2, 2, 'Regulars 2', 1), (3, 1, 'Browsers', 1)"
            ") as t(customer_id, segment_id, segment_name, model_version)"
        )
        con.execute(
            "create table ml.segment_profiles as select * from (values "
            "(0, 'Cart Abandoners', 1, 0.25, 3.0, 0.9, 0.8, 0.1, 40.0, 5.0), "
            "(1, 'Browsers', 2, 0.5, 6.0, 0.1, 0.05, 0.02, 30.0, 8.0), "
            "(2, 'Regulars 2', 1, 0.25, 2.0, 0.3, 0.1, 0.2, 20.0, 3.0)"
            ") as t(segment_id, segment_name, customers, share, mean_views_per_session, "
            "mean_cart_session_rate, mean_abandoned_session_rate, mean_purchase_rate, "
            "mean_seconds_per_page, mean_pages_per_session)"
        )
    dbt(["build", *AUDIENCE_MODELS], db, work)
    return db


def _rebuilt(db: Path, tmp_path: Path, dbt, model: str, variables: str) -> Path:
    """A copy of `db` with `model` rebuilt under `variables`."""
    tmp_path.mkdir(exist_ok=True)
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    dbt(["build", "--select", model, "--vars", variables], copy, tmp_path)
    return copy


ABANDONERS = (
    "select customer_id, abandoned_products, abandoned_units, abandoned_value, "
    "abandoned_product_ids, last_session_id, first_abandoned_at, last_abandoned_at "
    "from marts.aud_cart_abandoners order by customer_id"
)


def test_cart_abandoners_leave_out_what_was_bought_since(bare: Path) -> None:
    assert _rows(bare, ABANDONERS) == [
        (1, 2, 3, 220.0, "10;11", "s1", _at("03-18", "10:01"), _at("03-18", "10:02")),
        (3, 1, 1, 100.0, "10", "s3a", _at("03-16", "10:00"), _at("03-16", "10:00")),
        (7, 1, 1, 35.0, "13", "s7", _at("03-19", "10:00"), _at("03-19", "10:00")),
    ]
    assert _rows(
        bare, "select distinct window_start, as_of_time from marts.aud_cart_abandoners"
    ) == [(AS_OF - dt.timedelta(days=7), AS_OF)]


def test_cart_abandoner_window_counts_back_from_the_data_not_the_clock(
    bare: Path, tmp_path: Path, dbt
) -> None:
    wider = _rebuilt(
        bare, tmp_path, dbt, "aud_cart_abandoners", "{audience_cart_abandoner_days: 14}"
    )
    assert _rows(wider, ABANDONERS)[2] == (
        4,
        1,
        1,
        20.0,
        "11",
        "s4",
        _at("03-10", "10:00"),
        _at("03-10", "10:00"),
    )
    assert [r[0] for r in _rows(wider, ABANDONERS)] == [1, 3, 4, 7]
    narrower = _rebuilt(
        bare, tmp_path / "n", dbt, "aud_cart_abandoners", "{audience_cart_abandoner_days: 2}"
    )
    assert [r[0] for r in _rows(narrower, ABANDONERS)] == [7]


def test_without_ml_or_live_tables_audiences_build_empty_or_unscored(bare: Path) -> None:
    assert _rows(
        bare,
        "select count(*), count(intent_probability), count(intent_score_source) "
        "from marts.aud_cart_abandoners",
    ) == [(3, 0, 0)]
    assert _rows(bare, "select count(*) from marts.aud_segment_members") == [(0,)]
    assert _rows(bare, "select count(*) from staging.stg_live__session_scores") == [(0,)]


def test_intent_score_is_the_latest_live_score_else_the_batch_one(scored: Path) -> None:
    assert _rows(
        scored,
        "select customer_id, intent_probability, intent_threshold, intent_score_source, "
        "high_intent from marts.aud_cart_abandoners order by customer_id",
    ) == [(1, 0.9, 0.4, "live", True), (3, 0.3, 0.4, "batch", False), (7, None, None, None, None)]


def test_segment_members_carry_profile_and_campaign(scored: Path) -> None:
    rows = _frame(
        scored,
        "select customer_id, segment_name, segment_description, segment_customers, "
        "segment_share, campaign, campaign_channel, study_recommendation, sessions "
        "from marts.aud_segment_members order by customer_id",
    )
    assert rows["customer_id"].tolist() == [1, 2, 3]
    assert rows["segment_name"].tolist() == ["Cart Abandoners", "Regulars 2", "Browsers"]
    assert rows["campaign"].tolist() == [
        "Cart recovery",
        "Happy-hour offers",
        "Personalised homepage",
    ]
    assert rows["segment_description"].tolist() == [
        "Put products in the cart and leave without buying",
        "Fallback: no rule above fits this segment better than another",
        "Many product views and hardly any cart additions",
    ]
    assert rows["study_recommendation"][0] == "Retarget cart abandoners"
    assert rows["segment_customers"].tolist() == [1, 1, 2]
    assert rows["sessions"].tolist() == [2, 2, 2]


def test_every_naming_rule_has_a_campaign() -> None:
    seeds = Path(__file__).resolve().parents[1] / "seeds"
    rules = set(pd.read_csv(seeds / "segment_naming_rules.csv")["segment_name"])
    campaigns = set(pd.read_csv(seeds / "segment_campaigns.csv")["segment_name"])
    assert rules == campaigns


def test_happy_hour_cells_need_support_traffic_and_low_conversion(
    bare: Path, tmp_path: Path, dbt
) -> None:
    assert _rows(bare, "select count(*) from marts.aud_time_promotions") == [(0,)]
    supported = _rebuilt(
        bare, tmp_path, dbt, "aud_time_promotions", "{audience_promotion_min_sessions: 2}"
    )
    rows = _frame(supported, "select * from marts.aud_time_promotions")
    assert len(rows) == 1
    cell = rows.iloc[0]
    assert (cell.start_weekday, cell.weekday_name, cell.start_hour, cell.category) == (
        1,
        "Monday",
        18,
        "Fashion",
    )
    assert (cell.sessions, cell.purchase_sessions, cell.promotion_rank) == (6, 0, 1)
    assert cell.category_conversion_rate == pytest.approx(FASHION_RATE)
    assert cell.median_cell_sessions == 2
    assert cell.missed_purchase_sessions == pytest.approx(6 * FASHION_RATE)


def test_every_audience_mart_is_exportable() -> None:
    marts = {p.stem for p in MODELS.glob("aud_*.sql")}
    assert {a.relation.split(".")[1] for a in AUDIENCES.values()} == marts


# ------------------------------------------------------------------------------ export


@pytest.mark.parametrize("name", sorted(AUDIENCES))
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_reads_back_equal_to_the_mart(
    scored: Path, tmp_path: Path, name: str, suffix: str
) -> None:
    out = tmp_path / f"{name}{suffix}"
    result = export_audience(scored, name, out)
    audience = AUDIENCES[name]
    mart = _frame(scored, f"select * from {audience.relation} order by {audience.order_by}")
    reader = "read_csv" if suffix == ".csv" else "read_parquet"
    back = _frame(scored, f"select * from {reader}('{out}')")
    assert result.rows == len(mart) and result.file_format == suffix[1:]
    assert list(back.columns) == list(mart.columns) == result.columns
    assert not set(back.columns) & set(PERSONAL_COLUMNS)
    if len(mart):
        pd.testing.assert_frame_equal(back, mart, check_dtype=False)


def test_personal_data_only_when_asked(scored: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    export_audience(scored, "cart_abandoners", plain)
    personal = tmp_path / "personal.parquet"
    result = export_audience(scored, "cart_abandoners", personal, with_personal_data=True)
    back = _frame(scored, f"select * from read_parquet('{personal}') order by customer_id")
    assert set(result.columns) - set(_frame(scored, f"select * from '{plain}'").columns) == set(
        PERSONAL_COLUMNS
    )
    assert back[["customer_id", "age", "gender", "city"]].values.tolist() == [
        [1, 31, "F", "City 1"],
        [3, 33, "F", "City 3"],
        [7, 37, "F", "City 7"],
    ]
    with pytest.raises(AudienceError, match="no customers"):
        export_audience(scored, "time_promotions", tmp_path / "t.csv", with_personal_data=True)


def test_format_option_overrides_the_extension(scored: Path, tmp_path: Path) -> None:
    out = tmp_path / "segments.dat"
    export_audience(scored, "segment_members", out, fmt="parquet")
    assert out.read_bytes()[:4] == b"PAR1"
    with pytest.raises(AudienceError, match="extension"):
        export_audience(scored, "segment_members", tmp_path / "segments.txt")


# ------------------------------------------------------------------------------ CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SHOPLENS, *args], capture_output=True, text=True, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shoplens: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_exports_read_only_and_never_overwrites_without_force(
    scored: Path, tmp_path: Path
) -> None:
    before = _digest(scored)
    out = tmp_path / "abandoners.csv"
    proc = _cli("audience", "export", "cart_abandoners", "--db", str(scored), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote 3 rows of cart_abandoners")
    first = out.read_bytes()
    again = _cli("audience", "export", "segment_members", "--db", str(scored), "--out", str(out))
    _one_line_error(again, "exists", "--force")
    assert out.read_bytes() == first
    forced = _cli(
        "audience", "export", "segment_members", "--db", str(scored), "--out", str(out), "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert pd.read_csv(out)["customer_id"].tolist() == [3, 1, 2]  # by segment name
    assert _digest(scored) == before
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_cli_errors_are_one_line(scored: Path, bare: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    _one_line_error(
        _cli("audience", "export", "lapsed", "--db", str(scored), "--out", out),
        "unknown audience 'lapsed'",
        "cart_abandoners, segment_members, time_promotions",
    )
    _one_line_error(
        _cli("audience", "export", "cart_abandoners", "--db", str(scored), "--out", "x.xlsx"),
        "--format",
    )
    _one_line_error(
        _cli(
            "audience",
            "export",
            "cart_abandoners",
            "--db",
            str(tmp_path / "no.duckdb"),
            "--out",
            out,
        ),
        "not found",
    )
    _one_line_error(
        _cli(
            "audience",
            "export",
            "time_promotions",
            "--db",
            str(scored),
            "--out",
            out,
            "--with-personal-data",
        ),
        "no customers",
    )
    _one_line_error(_cli("audience", "export", "cart_abandoners", "--db", str(scored)), "--out")
    raw_only = tmp_path / "raw_only.duckdb"
    with warehouse.connect(raw_only) as con:
        warehouse.ensure_raw_schema(con)
    _one_line_error(
        _cli("audience", "export", "cart_abandoners", "--db", str(raw_only), "--out", out),
        "marts.aud_cart_abandoners is not in the warehouse yet",
    )
    assert not (tmp_path / "x.csv").exists()


def test_cli_lists_audiences_with_sizes(scored: Path) -> None:
    proc = _cli("audience", "list", "--db", str(scored))
    assert proc.returncode == 0, proc.stderr
    sizes = {line.split("\t")[0]: line.split("\t")[1] for line in proc.stdout.splitlines()}
    assert sizes == {
        "cart_abandoners": "3 rows",
        "segment_members": "3 rows",
        "time_promotions": "0 rows",
    }


# ------------------------------------------------------------------------------ report


def test_audiences_page_lists_each_audience_with_its_size(scored: Path, tmp_path: Path) -> None:
    with open_report_data(scored) as data:
        page = audiences_page.build(data)
    summary = page.sections[0]
    assert isinstance(summary, Table)
    assert [row[0] for row in summary.rows] == [
        "Cart abandoners",
        "Segment audiences",
        "Time-targeted promotions",
    ]
    assert [row[2] for row in summary.rows] == ["3", "3", "0"]
    abandoners, segments, promotions = page.sections[1:]
    assert isinstance(abandoners, Table) and abandoners.anchor == "audience-cart_abandoners"
    assert [row[0] for row in abandoners.rows] == ["1", "3", "7"]  # most valuable first
    assert "3 customers left $355.00 in carts" in abandoners.note
    assert "1 of their latest abandoning sessions scored at or above" in abandoners.note
    assert isinstance(segments, Table)
    assert [row[:2] for row in segments.rows] == [
        ["Browsers", "1"],
        ["Cart Abandoners", "1"],
        ["Regulars 2", "1"],
    ]
    assert isinstance(promotions, Notice) and "minimum support" in promotions.message
    site = tmp_path / "site"
    build_site(scored, site)
    html = (site / "audiences.html").read_text()
    assert 'id="audience-cart_abandoners"' in html and 'id="audience-segment_members"' in html


def test_without_audience_marts_the_page_says_so(tmp_path: Path) -> None:
    db = tmp_path / "raw_only.duckdb"
    with warehouse.connect(db) as con:
        warehouse.ensure_raw_schema(con)
    with open_report_data(db) as data:
        page = audiences_page.build(data)
    assert [row[2] for row in page.sections[0].rows] == ["not built (run `dbt build`)"] * 3
    assert all(isinstance(s, Notice) for s in page.sections[1:])


def test_overview_recommendations_link_to_the_audience_they_act_on(tmp_path: Path) -> None:
    db = tmp_path / "funnel.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.mart_funnel_daily (activity_date date, category varchar, "
            "viewing_sessions bigint, cart_sessions bigint, abandoned_cart_sessions bigint, "
            "purchase_sessions bigint, revenue double)"
        )
        con.execute(
            "insert into marts.mart_funnel_daily values "
            "('2026-10-31', 'Grocery', 400, 100, 60, 40, 400.0), "
            "('2026-10-31', 'Electronics', 400, 50, 30, 20, 10000.0)"
        )
    with open_report_data(db) as data:
        section = overview.recommendations(data)
    assert isinstance(section, Bullets)
    assert section.items[0].startswith("Most revenue is lost in abandoned carts")
    assert [link.href if link else None for link in section.links] == [
        "audiences.html#audience-cart_abandoners",
        "audiences.html#audience-cart_abandoners",
        "audiences.html#audience-segment_members",
    ]
    html = _render_bullets(section)
    assert html.count('<a class="action" href="audiences.html#audience-cart_abandoners">') == 2


def _render_bullets(section: Bullets) -> str:
    """The section as the site's template renders it."""
    from shoplens.reports.site import _environment

    page = Page("index", "Overview", "", [section])
    info = BuildInfo(None, "", None, "")
    return (
        _environment()
        .get_template("base.html")
        .render(page=page, nav=[], info=info, generated_at=None, db_name="x")
    )
