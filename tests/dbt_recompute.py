"""Independent pandas re-implementations of the dbt models, straight from the raw tables.

The dbt tests compare marts with these. They follow the rules documented in the models' YAML
(cleaning, sessionisation, funnel attribution) without sharing any SQL with them.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EVENT_TYPES = {
    "view": "product_view",
    "cart": "add_to_cart",
    "page_view": "page_view",
    "product_view": "product_view",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "checkout": "checkout",
    "purchase": "purchase",
}
PRODUCT_EVENTS = ("product_view", "add_to_cart", "remove_from_cart", "purchase")


def read(db: Path, sql: str) -> pd.DataFrame:
    """A query result as a DataFrame (read-only connection)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).df()


def clean_events(raw: pd.DataFrame) -> pd.DataFrame:
    """Usable events: valid rows, one per event_id (earliest loaded; REES46 rows: one per
    content), types mapped ignoring case and surrounding whitespace, unusable prices (zero,
    negative, NaN, infinite) nulled."""
    ev = raw.copy()
    ev["event_id"] = ev["event_id"].str.strip().replace("", np.nan)
    ev["event_type"] = ev["event_type"].str.strip().str.lower().map(EVENT_TYPES)
    valid = (
        (
            ev["event_id"].notna()
            & ev["event_time"].notna()
            & ev["event_type"].notna()
            & ev["user_id"].notna()
            & (ev["event_time"] <= ev["loaded_at"] + pd.Timedelta(hours=24))
            & ~(ev["quantity"] <= 0).fillna(False)
        )
        .fillna(False)
        .astype(bool)
    )
    unusable = ev["price"].notna() & ~(np.isfinite(ev["price"]) & (ev["price"] > 0))
    ev["price"] = ev["price"].where(~unusable)
    content = [
        *["event_time", "event_type", "product_id", "category_id"],
        *["user_id", "user_session", "price"],
    ]
    rees46 = ev["source"].eq("rees46")
    parts = ev.loc[rees46, content].astype(object)
    ev["key"] = ev["event_id"]
    ev.loc[rees46, "key"] = parts.where(parts.notna(), "").map(str).agg("|".join, axis=1)
    ev = ev[valid].sort_values(["key", "loaded_at", "event_time", "event_id"], kind="stable")
    ev = ev.drop_duplicates("key", keep="first").drop(columns="key").copy()
    qty_events = ev["event_type"].isin(["add_to_cart", "remove_from_cart", "purchase"])
    ev.loc[qty_events, "quantity"] = ev.loc[qty_events, "quantity"].fillna(1)
    categories = pd.read_csv(ROOT / "seeds" / "categories.csv")
    names = dict(zip(categories.category_top_level, categories.category_name, strict=True))
    code = ev["category_code"].str.strip().str.lower().replace("", np.nan)
    top = code.str.split(".").str[0]
    has_product = ev["product_id"].notna() | code.notna()
    ev["category"] = np.where(has_product, top.map(names).fillna("Other"), None)
    ev["user_session"] = ev["user_session"].str.strip().replace("", np.nan)
    return ev.rename(columns={"user_id": "customer_id"})


def sessionize(ev: pd.DataFrame, inactivity_minutes: int = 30) -> pd.DataFrame:
    """A new session after more than N idle minutes, per customer and user_session.

    session_id: the user_session for its piece that starts first (ties: lowest customer),
    '<user_session>#<customer>-<start>' for its other pieces, 'user-<customer>-<start>' for
    events without a user_session.
    """
    ev = ev.copy()
    with_id = ev["user_session"].notna()
    ev["session_id"] = None
    for has_id in (True, False):
        part = ev[with_id == has_id]
        if not len(part):
            continue
        keys = ["user_session", "customer_id"] if has_id else ["customer_id"]
        part = part.sort_values([*keys, "event_time", "event_id"])
        groups = [part[k] for k in keys]
        floored = part["event_time"].dt.floor("s")
        gap = floored.groupby(groups).diff().dt.total_seconds()
        new = gap.isna() | (gap > inactivity_minutes * 60)
        start = part["event_time"].where(new).groupby(groups).ffill()
        fraction = ("." + start.dt.strftime("%f")).str.rstrip("0").str.rstrip(".")
        customer = part["customer_id"].astype("int64").astype(str)
        suffix = customer + "-" + start.dt.strftime("%Y-%m-%d %H:%M:%S") + fraction
        if has_id:
            pieces = pd.DataFrame({"s": part["user_session"], "t": start, "c": part["customer_id"]})
            first = pieces.sort_values(["s", "t", "c"]).drop_duplicates("s").set_index("s")
            keeps = (first["t"].reindex(part["user_session"]).to_numpy() == start.to_numpy()) & (
                first["c"].reindex(part["user_session"]).to_numpy()
                == part["customer_id"].to_numpy()
            )
            ids = part["user_session"].where(keeps, part["user_session"] + "#" + suffix)
        else:
            ids = "user-" + suffix
        ev.loc[part.index, "session_id"] = ids
    return ev


def seconds(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole-second boundaries crossed from start to end (dbt.datediff 'second')."""
    return (end.dt.floor("s") - start.dt.floor("s")).dt.total_seconds()


def sessions_summary(ev: pd.DataFrame) -> pd.DataFrame:
    """Per-session counts, revenue, duration and dominant category."""
    e = ev.assign(
        is_view=ev.event_type.eq("product_view"),
        is_page=ev.event_type.eq("page_view"),
        is_cart=ev.event_type.eq("add_to_cart"),
        is_buy=ev.event_type.eq("purchase"),
        revenue=np.where(ev.event_type.eq("purchase"), ev.price * ev.quantity, np.nan),
    )
    g = e.groupby("session_id")
    out = pd.DataFrame(
        {
            "events": g.size(),
            "page_views": g.is_page.sum(),
            "product_views": g.is_view.sum(),
            "cart_additions": g.is_cart.sum(),
            "purchases": g.is_buy.sum(),
            "revenue": g.revenue.sum(min_count=1).fillna(0.0),
            "session_duration_seconds": seconds(g.event_time.min(), g.event_time.max()),
        }
    )
    views = e[e.event_type.eq("product_view")]
    out["distinct_products_viewed"] = (
        views.groupby("session_id").product_id.nunique().reindex(out.index).fillna(0)
    )
    view_cart = e[e.event_type.isin(["product_view", "add_to_cart"])]
    out["distinct_categories"] = (
        view_cart.groupby("session_id").category.nunique().reindex(out.index).fillna(0)
    )
    prod = e[e.event_type.isin(PRODUCT_EVENTS) & e.category.notna()]
    counts = prod.groupby(["session_id", "category"]).size().rename("n").reset_index()
    counts = counts.sort_values(["session_id", "n", "category"], ascending=[True, False, True])
    dominant = counts.drop_duplicates("session_id").set_index("session_id")["category"]
    out["dominant_category"] = dominant.reindex(out.index).fillna("None")
    return out


def early_features(ev: pd.DataFrame) -> pd.DataFrame:
    """A few early-intent features: events strictly before the first checkout/purchase."""
    intent = (
        ev[ev.event_type.isin(["checkout", "purchase"])].groupby("session_id")["event_time"].min()
    )
    cut = ev["session_id"].map(intent)
    before = ev[cut.isna() | (ev["event_time"] < cut)]
    g = before.groupby("session_id")
    out = pd.DataFrame(
        {
            "events_so_far": g.size(),
            "product_views_so_far": g.event_type.apply(lambda s: (s == "product_view").sum()),
            "cart_adds_so_far": g.event_type.apply(lambda s: (s == "add_to_cart").sum()),
            "duration_seconds_so_far": seconds(g.event_time.min(), g.event_time.max()),
            "pages_so_far": g.event_type.apply(
                lambda s: s.isin(["page_view", "product_view"]).sum()
            ),
        }
    )
    views = before[before.event_type.eq("product_view")].groupby("session_id")
    out["distinct_products_viewed_so_far"] = views.product_id.nunique()
    view_cart = before[before.event_type.isin(["product_view", "add_to_cart"])]
    out["distinct_categories_so_far"] = view_cart.groupby("session_id").category.nunique()
    out = out.reindex(ev["session_id"].unique()).fillna(0)
    out["seconds_per_page_so_far"] = (
        out.duration_seconds_so_far / out.pages_so_far.where(out.pages_so_far > 0)
    ).fillna(0)
    return out


def funnel_daily(ev: pd.DataFrame) -> pd.DataFrame:
    """Funnel by (date of a session's first event in a category, category)."""
    checkout_sessions = set(ev.loc[ev.event_type.eq("checkout"), "session_id"])
    prod = ev[ev.category.notna()].assign(
        date=lambda d: d.event_time.dt.normalize(),
        views=lambda d: d.event_type.eq("product_view"),
        carts=lambda d: d.event_type.eq("add_to_cart"),
        buys=lambda d: d.event_type.eq("purchase"),
        revenue=lambda d: np.where(d.event_type.eq("purchase"), d.price * d.quantity, np.nan),
    )
    sc = (
        prod.groupby(["session_id", "category"])
        .agg(
            activity_date=("date", "min"),
            views=("views", "sum"),
            carts=("carts", "sum"),
            buys=("buys", "sum"),
            revenue=("revenue", lambda s: s.sum(min_count=1)),
        )
        .reset_index()
    )
    sc["revenue"] = sc["revenue"].fillna(0.0)
    sc["checkout"] = sc["session_id"].isin(checkout_sessions)
    sc["cart_session"] = sc.carts > 0
    sc["abandoned"] = sc.cart_session & (sc.buys == 0)
    sc["checkout_session"] = sc.cart_session & sc.checkout
    return (
        sc.groupby(["activity_date", "category"])
        .agg(
            sessions=("session_id", "size"),
            product_views=("views", "sum"),
            cart_additions=("carts", "sum"),
            cart_sessions=("cart_session", "sum"),
            checkouts=("checkout_session", "sum"),
            purchases=("buys", "sum"),
            revenue=("revenue", "sum"),
            abandoned_cart_sessions=("abandoned", "sum"),
        )
        .reset_index()
    )


def monthly_sales(raw_lines: pd.DataFrame) -> pd.DataFrame:
    """Monthly order lines, orders, units and revenue from usable, deduplicated order lines."""
    t = raw_lines.copy()
    t["transaction_id"] = t["transaction_id"].str.strip().replace("", np.nan)
    ok = (
        t.transaction_id.notna()
        & t.transaction_time.notna()
        & (t.price > 0).fillna(False)
        & (t.quantity > 0).fillna(False)
    ).astype(bool)
    t = t[ok].sort_values(["transaction_id", "loaded_at", "transaction_time"], kind="stable")
    t = t.drop_duplicates("transaction_id")
    t["sales_month"] = t.transaction_time.dt.to_period("M").dt.to_timestamp()
    t["revenue"] = t.price * t.quantity
    return (
        t.groupby("sales_month")
        .agg(
            order_lines=("transaction_id", "size"),
            orders=("order_id", "nunique"),
            units=("quantity", "sum"),
            revenue=("revenue", "sum"),
            customers=("customer_id", "nunique"),
        )
        .reset_index()
    )
