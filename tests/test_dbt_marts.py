"""The dbt marts against independent pandas recomputations from the raw tables.

Two warehouses: the shared generated one (`built_warehouse`) and the REES46 sample imported
through `shoplens load-events` and built alone (`rees46_warehouse`: models needing
demographics or transactions must build empty, not fail).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dbt_recompute import (
    clean_events,
    early_features,
    funnel_daily,
    monthly_sales,
    read,
    sessionize,
    sessions_summary,
)

# Every test here reads a built warehouse; the parametrized `warehouse` fixture picks one at run
# time, where conftest's fixture-based marking cannot see it.
pytestmark = pytest.mark.warehouse


@pytest.fixture(params=["generated", "rees46"])
def warehouse(request: pytest.FixtureRequest) -> Path:
    """Each built warehouse in turn."""
    name = "built_warehouse" if request.param == "generated" else "rees46_warehouse"
    return request.getfixturevalue(name)


def _events(db: Path) -> pd.DataFrame:
    return sessionize(clean_events(read(db, "select * from raw.events")))


def _assert_columns_match(expected: pd.DataFrame, actual: pd.DataFrame, columns) -> None:
    for col in columns:
        exp, act = expected[col], actual[col]
        if pd.api.types.is_numeric_dtype(exp):
            ok = np.isclose(exp.astype(float), act.astype(float), rtol=1e-9, atol=1e-6)
        else:
            ok = (exp.astype(str) == act.astype(str)).to_numpy()
        assert ok.all(), f"{col}: {int((~ok).sum())} rows differ"


def test_session_features_match_pandas(warehouse: Path) -> None:
    ev = _events(warehouse)
    expected = sessions_summary(ev).sort_index()
    actual = read(warehouse, "select * from marts.fct_sessions").set_index("session_id")
    assert len(expected) > 1000
    assert set(actual.index) == set(expected.index)
    _assert_columns_match(expected, actual.loc[expected.index], expected.columns)


def test_early_intent_features_match_pandas(warehouse: Path) -> None:
    ev = _events(warehouse)
    expected = early_features(ev).sort_index()
    actual = read(warehouse, "select * from intermediate.int_sessions_early_featurized")
    actual = actual.set_index("session_id")
    assert set(actual.index) == set(expected.index)
    _assert_columns_match(expected, actual.loc[expected.index], expected.columns)
    # Buyers' early features stop before the purchase: never the whole session.
    sessions = read(warehouse, "select session_id, events, purchase_made from marts.fct_sessions")
    merged = sessions.set_index("session_id").join(actual[["events_so_far"]])
    buyers = merged[merged.purchase_made]
    assert len(buyers) > 0
    assert (buyers.events_so_far < buyers.events).all()


def test_funnel_matches_pandas(warehouse: Path) -> None:
    expected = funnel_daily(_events(warehouse)).sort_values(["activity_date", "category"])
    actual = read(
        warehouse, "select * from marts.mart_funnel_daily order by activity_date, category"
    )
    assert len(expected) == len(actual) > 0
    expected = expected.reset_index(drop=True)
    assert (pd.to_datetime(actual.activity_date) == expected.activity_date).all()
    _assert_columns_match(expected, actual, expected.columns[1:])
    assert expected.cart_sessions.sum() > 0


def test_monthly_sales_match_pandas(warehouse: Path) -> None:
    expected = monthly_sales(read(warehouse, "select * from raw.transactions"))
    actual = read(warehouse, "select * from marts.mart_sales_monthly order by sales_month")
    assert len(expected) == len(actual)
    if len(expected):
        assert (pd.to_datetime(actual.sales_month) == expected.sales_month).all()
        _assert_columns_match(expected, actual, expected.columns[1:])


def test_generated_data_fills_every_mart(built_warehouse: Path) -> None:
    counts = read(
        built_warehouse,
        """
        select
            (select count(*) from marts.mart_sales_monthly) as months,
            (select count(*) from marts.mart_age_distribution) as age_bands,
            (select count(*) from marts.mart_demographic_category) as demographic_cells,
            (select count(*) from marts.mart_activity_hour_weekday) as heatmap_cells,
            (select count(*) from marts.mart_customer_value) as value_deciles,
            (select count(*) from marts.mart_category_popularity) as categories
    """,
    ).iloc[0]
    assert counts.months == 12
    assert counts.age_bands >= 5
    assert counts.demographic_cells > 50
    assert counts.heatmap_cells > 100
    assert counts.value_deciles == 11
    assert counts.categories == 8


def test_no_raw_event_is_lost(built_warehouse: Path) -> None:
    """raw rows = usable + quarantined, and the quality mart reports the same counts."""
    q = read(
        built_warehouse,
        """
        select
            (select count(*) from raw.events) as raw_rows,
            (select count(*) from staging.stg_shop__events) as usable,
            (select count(*) from staging.stg_shop__events_quarantined) as quarantined,
            (select count(*) from staging.stg_shop__events_quarantined
             where quarantine_reason = 'duplicate_event_id') as duplicates
    """,
    ).iloc[0]
    assert q.raw_rows == q.usable + q.quarantined
    assert q.duplicates > 0
    dq = read(built_warehouse, "select * from marts.mart_data_quality where dataset = 'events'")
    by_check = dict(zip(dq.check_name, dq.row_count, strict=True))
    assert by_check["raw_rows"] == q.raw_rows
    assert by_check["usable_rows"] == q.usable
    assert by_check["duplicate_event_id"] == q.duplicates
    removed = dq[dq.check_kind.isin(["quarantined", "duplicate_removed"])]
    assert removed.row_count.sum() == q.quarantined


def test_price_bands_follow_the_seed(built_warehouse: Path) -> None:
    lines = read(built_warehouse, "select category, price, price_band from marts.fct_order_lines")
    bands = pd.read_csv(Path(__file__).resolve().parents[1] / "seeds" / "price_bands.csv")
    merged = lines.merge(
        bands, left_on=["category", "price_band"], right_on=["category_name", "price_band"]
    )
    assert len(merged) == len(lines) > 0
    assert ((merged.price >= merged.min_price) & (merged.price < merged.max_price)).all()


def test_rees46_alone_builds_with_empty_demographics(rees46_warehouse: Path) -> None:
    counts = read(
        rees46_warehouse,
        """
        select
            (select count(*) from raw.events) as raw_events,
            (select count(*) from marts.fct_events) as events,
            (select count(*) from marts.fct_order_lines) as order_lines,
            (select count(*) from marts.mart_age_distribution) as age_bands,
            (select count(*) from marts.mart_demographic_category) as demographic_cells,
            (select count(*) from marts.dim_customers where is_registered) as registered,
            (select count(*) from marts.dim_customers) as customers,
            (select count(distinct customer_id) from staging.stg_shop__events) as users,
            (select count(*) from marts.fct_events where event_type = 'product_view') as views,
            (select count(*) from raw.events where event_type = 'view') as raw_views
    """,
    ).iloc[0]
    assert counts.raw_events == 3000
    assert counts.order_lines == counts.age_bands == counts.demographic_cells == 0
    assert counts.registered == 0
    assert counts.customers == counts.users > 1000
    assert counts.views == counts.raw_views  # view -> product_view, zero prices included
    assert counts.events == 3000  # the three zero-price views are kept, flagged


def test_docs_generate_describes_every_model(rees46_warehouse: Path, dbt, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(rees46_warehouse, db)  # its on-run hooks log the run: not into the shared one
    dbt(["docs", "generate"], db, tmp_path)
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    ours = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
        and n["original_file_path"].split("/")[1] in ("staging", "intermediate", "marts")
    ]
    assert len(ours) >= 24
    for node in ours:
        assert node["description"].strip(), node["name"]
        columns = catalog["nodes"][node["unique_id"]]["columns"]
        undocumented = [
            c for c in columns if not node["columns"].get(c, {}).get("description", "").strip()
        ]
        assert undocumented == [], f"{node['name']}: {undocumented}"
    exposures = {e["name"] for e in manifest["exposures"].values()}
    assert {
        "report_overview",
        "report_behaviour",
        "report_sales",
        "report_models",
        "report_segments",
        "report_quality",
    } <= exposures
