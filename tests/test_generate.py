"""The synthetic world: determinism, schema, the designed signal, defects and appends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from shoplens.generate import (
    CATEGORIES,
    EVENT_DEFECT_MIX,
    EVENT_TYPES,
    PERSONAS,
    GenerateSummary,
    build_world,
    generate_and_load,
    load_world,
    simulate_sessions,
)
from shoplens.generate.world import n_customers_for, n_products_for
from shoplens.warehouse import RAW_TABLES

END = dt.date(2026, 10, 31)
CONTENT_TABLES = [
    "raw.events",
    "raw.transactions",
    "raw.customers",
    "raw.products",
    "ground_truth.customer_personas",
]


def generate(
    db: Path, sessions: int = 2_000, seed: int = 3, days: int = 365, defect_rate: float = 0.01
) -> GenerateSummary:
    return generate_and_load(
        db,
        sessions=sessions,
        seed=seed,
        days=days,
        end=END,
        defect_rate=defect_rate,
        progress=False,
    )


def content_hash(db: Path, table: str) -> str:
    """md5 over the table's rows, excluding `loaded_at`: that column is the wall-clock time of
    the load, so it differs between two otherwise identical runs by design."""
    with duckdb.connect(str(db), read_only=True) as con:
        cols = [
            c
            for (c,) in con.execute(
                "select column_name from duckdb_columns()"
                " where schema_name || '.' || table_name = ?"
                " and column_name <> 'loaded_at' order by column_index",
                [table],
            ).fetchall()
        ]
        return con.execute(
            f"select md5(string_agg(r::varchar, chr(10) order by r::varchar)) "
            f"from (select {', '.join(cols)} from {table}) r"
        ).fetchone()[0]


def query(db: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


# --------------------------------------------------------------------------------------------
# Determinism and schema
# --------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_and_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{name}.duckdb" for name in "abc")
    generate(a, seed=3)
    generate(b, seed=3)
    generate(c, seed=4)
    for table in CONTENT_TABLES:
        assert content_hash(a, table) == content_hash(b, table), table
    for table in ["raw.events", "raw.transactions", "raw.customers", "raw.products"]:
        assert content_hash(a, table) != content_hash(c, table), table


def test_raw_schema_has_contract_columns_types_and_comments(small_warehouse: Path) -> None:
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        for table, (table_comment, columns) in RAW_TABLES.items():
            schema, name = table.split(".")
            got = con.execute(
                "select column_name, data_type, comment from duckdb_columns() "
                "where schema_name = ? and table_name = ? order by column_index",
                [schema, name],
            ).fetchall()
            assert [(c, t) for c, t, _ in got] == [(c, t) for c, t, _ in columns], table
            assert [comment for _, _, comment in got] == [c for _, _, c in columns], table
            assert (
                con.execute(
                    "select comment from duckdb_tables() where schema_name = ? and table_name = ?",
                    [schema, name],
                ).fetchone()[0]
                == table_comment
            )
        # every column of the generated tables is filled somewhere (no column left out)
        for table in ["raw.events", "raw.transactions", "raw.customers", "raw.products"]:
            cols = [c for c, _, _ in RAW_TABLES[table][1]]
            counts = con.execute(
                f"select {', '.join(f'count({c})' for c in cols)} from {table}"
            ).fetchone()
            assert all(n > 0 for n in counts), dict(zip(cols, counts, strict=True))


def test_summary_matches_what_was_loaded(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    s = generate(db, sessions=1_500, seed=5, defect_rate=0.02)
    assert s.run_id == 1 and s.sessions == 1_500
    assert s.customers == n_customers_for(1_500) and s.products == n_products_for(1_500)
    row = query(
        db,
        """
        select (select count(distinct event_id) from raw.events) events,
               (select count(*) from raw.events) event_rows,
               (select count(distinct user_session) from raw.events) sessions,
               (select count(distinct transaction_id) from raw.transactions) lines,
               (select count(*) from raw.customers) customers,
               (select count(*) from raw.products) products,
               (select count(*) from ground_truth.customer_personas) personas,
               (select count(*) from raw.load_runs where kind = 'generate') runs,
               (select count(*) from raw.events where loaded_at is null) unloaded
    """,
    ).iloc[0]
    assert row.events == s.events
    assert row.event_rows == s.events + s.event_defects["duplicate"]
    assert row.sessions == 1_500
    assert row.lines == s.transactions
    assert row.customers == row.personas == s.customers
    assert row.products == s.products
    assert row.runs == 1 and row.unloaded == 0
    text = str(s)
    assert "\n" not in text and "1,500 sessions" in text and f"{s.events:,} events" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sessions": 0}, "sessions"),
        ({"days": 0}, "days"),
        ({"seed": -1}, "seed"),
        ({"defect_rate": 0.6}, "defect_rate"),
    ],
)
def test_invalid_arguments_are_refused_before_touching_the_file(
    tmp_path: Path,
    kwargs: dict,
    message: str,
) -> None:
    args = {
        "sessions": 10,
        "seed": 1,
        "days": 1,
        "end": END,
        "defect_rate": 0.0,
        "progress": False,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        generate_and_load(tmp_path / "w.duckdb", **args)
    assert not (tmp_path / "w.duckdb").exists()


def test_world_catalogue_covers_every_category_with_its_own_price_level() -> None:
    world = build_world(1, 300, 400)
    counts = np.bincount(world.product_top, minlength=len(CATEGORIES))
    assert (counts > 0).all()
    median = {
        c: np.median(world.product_price[world.product_top == i]) for i, c in enumerate(CATEGORIES)
    }
    assert median["electronics"] > 3 * median["books"] > 3 * median["grocery"]
    assert world.product_price.min() > 0
    assert len(set(world.product_id)) == 400 and len(set(world.customer_id)) == 300


# --------------------------------------------------------------------------------------------
# The designed signal (on the shared small warehouse: 6,000 sessions, 1% defects)
# --------------------------------------------------------------------------------------------

CLEAN_EVENTS = """
    (select distinct on (event_id) * from raw.events
     where user_session is not null and event_time < timestamp '2026-11-01')
"""


def customer_aggregates(db: Path) -> pd.DataFrame:
    """Per-customer behaviour features (the kind the segmentation uses) and the persona."""
    return query(
        db,
        f"""
        with s as (
            select user_id, user_session,
                   epoch(max(event_time) - min(event_time)) as duration,
                   count(*) as events,
                   count(*) filter (where event_type = 'product_view') as views,
                   count(*) filter (where event_type = 'add_to_cart') as carts,
                   count(*) filter (where event_type = 'purchase') > 0 as bought
            from {CLEAN_EVENTS} e group by all)
        select user_id, p.persona, count(*) as sessions, avg(duration) as avg_duration,
               avg(views) as views_per_session, avg(carts) as carts_per_session,
               coalesce(1 - sum(bought::int) / nullif(count(*) filter (where carts > 0), 0), 0)
                   as abandonment, avg(bought::int) as purchase_rate,
               sum(duration) / sum(events) as time_per_page
        from s join ground_truth.customer_personas p on p.customer_id = s.user_id
        group by all
    """,
    )


def test_conversion_rate_is_plausible(small_warehouse: Path) -> None:
    rate = query(
        small_warehouse,
        f"""
        select count(distinct user_session) filter (where event_type = 'purchase')
               / count(distinct user_session) as rate from {CLEAN_EVENTS} e
    """,
    ).rate[0]
    assert 0.02 <= rate <= 0.10


def test_personas_behave_as_designed(small_warehouse: Path) -> None:
    agg = customer_aggregates(small_warehouse).groupby("persona").mean(numeric_only=True)
    assert set(agg.index) == set(PERSONAS)
    assert agg.views_per_session.idxmax() == "browser"
    assert agg.loc["browser", "carts_per_session"] < 0.05
    assert agg.carts_per_session.idxmax() == "cart_abandoner"
    assert agg.loc["cart_abandoner", "abandonment"] > 0.9
    assert agg.purchase_rate.idxmax() == "one_click_buyer"
    assert agg.avg_duration.idxmin() == "one_click_buyer"
    assert agg.time_per_page.idxmin() == "one_click_buyer"
    assert agg.avg_duration.idxmax() == "explorer"
    assert agg.time_per_page.idxmax() == "explorer"
    # ordinary customers sit between the extremes on every axis
    for col in ["views_per_session", "carts_per_session", "purchase_rate", "avg_duration"]:
        assert agg[col].min() < agg.loc["ordinary", col] < agg[col].max(), col
    assert agg.sessions.min() >= 4


def test_kmeans_recovers_personas(small_warehouse: Path) -> None:
    agg = customer_aggregates(small_warehouse)
    features = [
        "sessions",
        "avg_duration",
        "views_per_session",
        "carts_per_session",
        "abandonment",
        "purchase_rate",
        "time_per_page",
    ]
    x = StandardScaler().fit_transform(agg[features])
    labels = KMeans(5, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score(agg.persona, labels) >= 0.8


def test_older_and_younger_customers_prefer_different_categories(small_warehouse: Path) -> None:
    share = (
        query(
            small_warehouse,
            """
        select case when c.age < 30 then 'young' else 'old' end as grp,
               split_part(t.category_code, '.', 1) as category, count(*) as n
        from raw.transactions t join raw.customers c using (customer_id)
        where (c.age < 30 or c.age >= 50) and t.category_code is not null
        group by all
    """,
        )
        .pivot(index="category", columns="grp", values="n")
        .fillna(0)
    )
    share = share / share.sum()
    assert share.old.idxmax() != share.young.idxmax()
    assert share.loc["books", "old"] > 2 * share.loc["books", "young"]
    assert share.loc["electronics", "young"] > 1.5 * share.loc["electronics", "old"]


def test_gender_shifts_category_preference(small_warehouse: Path) -> None:
    share = query(
        small_warehouse,
        """
        select c.gender, split_part(e.category_code, '.', 1) as category, count(*) as n
        from raw.events e join raw.customers c on c.customer_id = e.user_id
        where e.event_type = 'product_view' and c.gender in ('F', 'M') group by all
    """,
    ).pivot(index="category", columns="gender", values="n")
    share = share / share.sum()
    assert share.loc["beauty", "F"] > 2 * share.loc["beauty", "M"]
    assert share.loc["electronics", "M"] > 1.5 * share.loc["electronics", "F"]


def test_time_curves_nov_dec_peak_evening_and_weekend(small_warehouse: Path) -> None:
    starts = query(
        small_warehouse,
        f"""
        select min(event_time) as t from {CLEAN_EVENTS} e group by user_session
    """,
    ).t
    per_month = starts.dt.month.value_counts()
    days = pd.Series(pd.date_range("2025-11-01", "2026-10-31")).dt.month.value_counts()
    per_day = per_month / days
    yearly_mean = len(starts) / days.sum()
    assert per_day[11] > 1.2 * yearly_mean and per_day[12] > 1.2 * yearly_mean
    hours = starts.dt.hour.value_counts()
    assert hours[[19, 20, 21]].sum() > 4 * hours[[2, 3, 4]].sum()
    weekdays = starts.dt.day_of_week.value_counts()  # Monday = 0
    assert weekdays[[5, 6]].mean() > 1.08 * weekdays[[0, 1, 2]].mean()


# --------------------------------------------------------------------------------------------
# Defects
# --------------------------------------------------------------------------------------------


def defect_counts(db: Path) -> dict[str, int]:
    """Each defect kind as the cleaning layer would detect it."""
    known = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    row = query(
        db,
        f"""
        with e as (
            select *, rowid as arrival,
                   cast(regexp_extract(event_id, 'e([0-9]+)$', 1) as bigint) as seq
            from raw.events),
        ordered as (
            select *,
                lag(event_time) over (partition by user_session order by seq) as prev_time,
                max(case when event_time < timestamp '2027-01-01' then event_time end) over (
                    order by arrival rows between unbounded preceding and 1 preceding
                ) as seen_before
            from (select distinct on (event_id) * from e order by event_id, arrival))
        select
            (select count(*) - count(distinct event_id) from raw.events) as duplicate,
            (select count(*) filter (where user_session is null) from raw.events)
                as missing_session,
            (select count(*) filter (where product_id is not null and price is null)
             from raw.events) as missing_price,
            (select count(*) filter (where product_id is not null and brand is null)
             from raw.events) as missing_brand,
            (select count(*) filter (where device is null) from raw.events) as missing_device,
            (select count(*) filter (where price <= 0) from raw.events) as bad_price,
            (select count(*) filter (where event_type not in ({known})) from raw.events)
                as bad_event_type,
            (select count(*) filter (where quantity <= 0) from raw.events) as bad_quantity,
            (select count(*) filter (where event_time > timestamp '2027-01-01') from raw.events)
                as future_time,
            count(*) filter (where user_session is not null and prev_time > event_time
                             and prev_time < timestamp '2027-01-01') as out_of_order,
            count(*) filter (where event_time < seen_before - interval 1 hour) as late,
            (select count(*) - count(distinct transaction_id) from raw.transactions)
                as txn_duplicate,
            (select count(*) filter (where price is null or category_code is null)
             from raw.transactions) as txn_missing
        from ordered
    """,
    ).iloc[0]
    return {k: int(v) for k, v in row.items()}


def test_defects_appear_at_the_requested_rate(tmp_path: Path) -> None:
    db = tmp_path / "defects.duckdb"
    rate = 0.05
    # A dense week, so that late arrivals land behind later events.
    s = generate(db, sessions=3_000, seed=11, days=7, defect_rate=rate)
    got = defect_counts(db)
    for kind, share in EVENT_DEFECT_MIX.items():
        expected = rate * share * s.events
        assert s.event_defects[kind] == pytest.approx(expected, abs=2), kind
        if kind == "late":  # a few late events arrive in a quiet hour, behind nothing later
            assert 0.7 * expected <= got[kind] <= expected + 2, (kind, got[kind], expected)
        elif kind == "out_of_order":  # its predecessor may have lost its session id
            assert 0.8 * expected <= got[kind] <= expected + 2, (kind, got[kind], expected)
        else:
            assert got[kind] == pytest.approx(expected, rel=0.15, abs=3), (kind, got[kind])
    assert got["txn_duplicate"] == s.transaction_defects["duplicate"] > 0
    assert got["txn_missing"] > 0
    total = sum(s.event_defects.values())
    assert total == pytest.approx(rate * s.events, rel=0.01)


def test_no_defects_at_rate_zero_and_transactions_follow_purchases(tmp_path: Path) -> None:
    db = tmp_path / "clean.duckdb"
    s = generate(db, sessions=2_000, seed=12, days=30, defect_rate=0.0)
    assert all(v == 0 for v in defect_counts(db).values())
    assert sum(s.event_defects.values()) == 0
    nulls = query(
        db, "select count(*) filter (where age is null or gender is null) n from raw.customers"
    ).n[0]
    assert nulls == 0
    mismatch = query(
        db,
        """
        select count(*) as n from raw.transactions t
        left join raw.events e on e.event_id = t.event_id and e.event_type = 'purchase'
        where e.event_id is null or e.product_id <> t.product_id or e.user_id <> t.customer_id
           or e.price <> t.price or e.quantity <> t.quantity
           or e.event_time <> t.transaction_time or e.category_code <> t.category_code
    """,
    ).n[0]
    assert mismatch == 0
    counts = query(
        db,
        """
        select (select count(*) from raw.events where event_type = 'purchase') purchases,
               (select count(*) from raw.transactions) lines,
               (select count(distinct order_id) from raw.transactions) orders,
               (select count(*) from raw.events where event_type = 'checkout') checkouts
    """,
    ).iloc[0]
    assert counts.purchases == counts.lines == s.transactions > 0
    assert counts.orders == counts.checkouts
    # each purchase is preceded, in its session, by a checkout and by an add_to_cart of it
    unexplained = query(
        db,
        """
        select count(*) as n from raw.events p
        where p.event_type = 'purchase' and not exists (
            select 1 from raw.events c where c.user_session = p.user_session
              and c.event_type = 'checkout' and c.event_time <= p.event_time)
          or p.event_type = 'purchase' and not exists (
            select 1 from raw.events a where a.user_session = p.user_session
              and a.event_type = 'add_to_cart' and a.product_id = p.product_id
              and a.event_time < p.event_time)
    """,
    ).n[0]
    assert unexplained == 0


# --------------------------------------------------------------------------------------------
# Appends and the world API the stream producer reuses
# --------------------------------------------------------------------------------------------


def test_two_runs_append_with_unique_ids(tmp_path: Path) -> None:
    db = tmp_path / "two.duckdb"
    first = generate(db, sessions=1_200, seed=1)
    second = generate(db, sessions=800, seed=2)
    assert (first.run_id, second.run_id) == (1, 2)
    row = query(
        db,
        """
        select (select count(distinct event_id) from raw.events) events,
               (select count(distinct user_session) from raw.events) sessions,
               (select count(*) = count(distinct customer_id) from raw.customers) cust_unique,
               (select count(*) = count(distinct product_id) from raw.products) prod_unique,
               (select count(distinct transaction_id) from raw.transactions) lines,
               (select count(*) from raw.events where event_id like 'g2-e%') run2_rows,
               (select min(customer_id) from raw.customers where customer_id > 100) c2_min,
               (select count(*) from raw.load_runs) runs
    """,
    ).iloc[0]
    assert row.events == first.events + second.events
    assert row.sessions == 2_000
    assert row.cust_unique and row.prod_unique
    assert row.lines == first.transactions + second.transactions
    assert row.run2_rows == second.events + second.event_defects["duplicate"]
    assert row.c2_min == first.customers + 1
    assert row.runs == 2
    # the second run's events only reference its own customers and products
    foreign = query(
        db,
        f"""
        select count(*) n from raw.events where event_id like 'g2-%'
        and (user_id <= {first.customers} or product_id <= {first.products})
    """,
    ).n[0]
    assert foreign == 0


def test_load_world_recovers_the_built_world(tmp_path: Path) -> None:
    db = tmp_path / "world.duckdb"
    generate(db, sessions=1_200, seed=21, defect_rate=0.0)
    built = build_world(
        21, n_customers_for(1_200), n_products_for(1_200), signup_before=dt.date(2025, 11, 1)
    )
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = load_world(con)
    np.testing.assert_array_equal(loaded.customer_id, built.customer_id)
    np.testing.assert_array_equal(loaded.persona, built.persona)
    np.testing.assert_allclose(loaded.category_logit, built.category_logit)
    np.testing.assert_allclose(loaded.activity, built.activity)
    np.testing.assert_array_equal(loaded.product_id, built.product_id)
    np.testing.assert_allclose(loaded.popularity_cum, built.popularity_cum)


def test_simulate_sessions_streams_new_sessions_of_existing_customers(
    small_warehouse: Path,
) -> None:
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        world = load_world(con)
        customers = {c for (c,) in con.execute("select customer_id from raw.customers").fetchall()}
        products = {p for (p,) in con.execute("select product_id from raw.products").fetchall()}
    start = dt.datetime(2026, 11, 21, 10, 0)
    end = start + dt.timedelta(minutes=5)
    events, lines = simulate_sessions(world, 300, start, end, seed=5, id_prefix="k7-")
    again, _ = simulate_sessions(world, 300, start, end, seed=5, id_prefix="k7-")
    other, _ = simulate_sessions(world, 300, start, end, seed=6, id_prefix="k7-")
    assert events.equals(again) and not events.equals(other)
    contract = [c for c, _, _ in RAW_TABLES["raw.events"][1] if c != "loaded_at"]
    assert events.column_names == contract
    df = events.to_pandas()
    assert df.event_id.is_unique and df.event_id.str.startswith("k7-e").all()
    assert df.user_session.str.startswith("k7-s").all()
    assert df.user_session.nunique() == 300
    assert set(df.user_id) <= customers
    assert set(df.product_id.dropna().astype(int)) <= products
    assert set(df.event_type) <= set(EVENT_TYPES)
    first = df.groupby("user_session").event_time.min()
    assert first.min() >= pd.Timestamp(start) and first.max() < pd.Timestamp(end)
    assert lines.num_rows == (df.event_type == "purchase").sum()
    assert set(lines.column("event_id").to_pylist()) <= set(df.event_id)
