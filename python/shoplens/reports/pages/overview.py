"""Overview: KPI tiles against the previous period, and recommendations drawn from the data."""

from __future__ import annotations

import datetime as dt
from typing import SupportsFloat

import pandas as pd

from shoplens.reports.content import Bullets, Notice, Page, Section, Tile, Tiles
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded
from shoplens.reports.stats import MIN_SUPPORT, rate_with_interval, wilson

PERIOD_DAYS = 30

SESSIONS = "marts.fct_sessions"
ORDER_LINES = "marts.fct_order_lines"
FUNNEL = "marts.mart_funnel_daily"
ACTIVITY = "marts.mart_activity_hour_weekday"
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def periods(as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Bounds (previous start, current start, end) of the last two PERIOD_DAYS windows.

    The current period is the PERIOD_DAYS days up to and including the day of `as_of`.
    """
    end = dt.datetime.combine(as_of.date() + dt.timedelta(days=1), dt.time())
    current = end - dt.timedelta(days=PERIOD_DAYS)
    return current - dt.timedelta(days=PERIOD_DAYS), current, end


SESSION_KPIS = f"""
    select
        case when session_start >= $current then 'current' else 'previous' end as period,
        count(*) as sessions,
        count(*) filter (where purchase_made) as buying_sessions,
        count(*) filter (where cart_additions > 0) as cart_sessions,
        count(*) filter (where cart_abandoned) as abandoned_sessions
    from {SESSIONS}
    where session_start >= $previous and session_start < $end
    group by all
"""
# Revenue and orders: from order lines when the warehouse has them, else (REES46 imports)
# from the purchase events of each session, one order per buying session.
ORDERS_FROM_LINES = f"""
    select
        case when transaction_time >= $current then 'current' else 'previous' end as period,
        sum(revenue) as revenue,
        count(distinct order_id) as orders
    from {ORDER_LINES}
    where transaction_time >= $previous and transaction_time < $end
    group by all
"""
ORDERS_FROM_SESSIONS = f"""
    select
        case when session_start >= $current then 'current' else 'previous' end as period,
        sum(revenue) as revenue,
        count(*) filter (where purchase_made) as orders
    from {SESSIONS}
    where session_start >= $previous and session_start < $end
    group by all
"""
KPI_SELECT = """
select
    period,
    s.sessions,
    s.buying_sessions / nullif(s.sessions, 0) as conversion_rate,
    coalesce(o.revenue, 0) as revenue,
    o.revenue / nullif(o.orders, 0) as average_order_value,
    s.abandoned_sessions / nullif(s.cart_sessions, 0) as cart_abandonment
from s full join o using (period)
"""


KPIS = [
    ("sessions", "Sessions", "count", True),
    ("conversion_rate", "Conversion rate", "rate", True),
    ("revenue", "Revenue", "money", True),
    ("average_order_value", "Average order value", "money", True),
    ("cart_abandonment", "Cart abandonment", "rate", False),
]


def kpi_tiles(data: ReportData) -> Section:
    """Five KPI tiles for the last PERIOD_DAYS days against the PERIOD_DAYS before."""
    as_of = data.scalar(f"select max(session_start) from {SESSIONS}")
    previous, current, end = periods(as_of)
    from_lines = data.lacks({ORDER_LINES: ["transaction_time", "order_id", "revenue"]}) is None
    orders = ORDERS_FROM_LINES if from_lines else ORDERS_FROM_SESSIONS
    frame = data.df(
        f"with s as ({SESSION_KPIS}), o as ({orders}) {KPI_SELECT}",
        {"previous": previous, "current": current, "end": end},
    )
    by_period = {row["period"]: row for row in frame.to_dict("records")}
    cur, prev = by_period.get("current", {}), by_period.get("previous")
    tiles = [
        Tile(
            key,
            label,
            _number(cur.get(key)),
            _number(prev.get(key)) if prev else None,
            unit,
            better,
        )
        for key, label, unit, better in KPIS
    ]
    note = (
        f"Last {PERIOD_DAYS} days ({current:%Y-%m-%d} to {end - dt.timedelta(days=1):%Y-%m-%d})"
        f" against the {PERIOD_DAYS} days before. Conversion: sessions with a purchase; cart "
        "abandonment: sessions with a cart addition and no purchase; revenue and average "
        + (
            "order value from order lines."
            if from_lines
            else "order value from purchase "
            "events (no order lines in this warehouse), one order per buying session."
        )
    )
    return Tiles(f"Last {PERIOD_DAYS} days", tiles, note)


def _number(value: SupportsFloat | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


RECOMMEND_SQL = f"""
with recent as (
    select category, sum(viewing_sessions) as viewing, sum(cart_sessions) as carts,
           sum(abandoned_cart_sessions) as lost_carts, sum(purchase_sessions) as buying,
           sum(revenue) as revenue
    from {FUNNEL}
    where activity_date > (select max(activity_date) from {FUNNEL}) - interval {PERIOD_DAYS} day
    group by all
),
all_days as (
    select category, sum(revenue) / nullif(sum(purchase_sessions), 0) as value_all_days
    from {FUNNEL} group by all
)
select recent.*, coalesce(revenue / nullif(buying, 0), value_all_days) as value_per_buyer
from recent left join all_days using (category)
order by category
"""


def _names(categories: list[str]) -> str:
    return ", ".join(categories[:-1]) + (" and " if len(categories) > 1 else "") + categories[-1]


def lost_carts(supported: pd.DataFrame) -> str:
    """The three categories whose abandoned carts lose the most revenue."""
    supported = supported.assign(
        lost_revenue=supported["lost_carts"] * supported["value_per_buyer"].fillna(0)
    )
    worst = supported.sort_values(["lost_revenue", "category"], ascending=[False, True]).head(3)
    lost = ", ".join(
        f"{r.category} (about {r.lost_revenue:,.0f} from {r.lost_carts:,.0f} of "
        f"{r.carts:,.0f} carts abandoned)"
        for r in worst.itertuples()
    )
    return (
        f"Most revenue is lost in abandoned carts in {lost}: start cart-recovery e-mails and "
        "checkout fixes there."
    )


def highest_abandonment(supported: pd.DataFrame) -> str:
    """The category with the highest abandonment rate against all the others, with intervals."""
    top = supported.loc[(supported["lost_carts"] / supported["carts"]).idxmax()]
    others_carts = supported["carts"].sum() - top["carts"]
    others_lost = supported["lost_carts"].sum() - top["lost_carts"]
    top_lo, _ = wilson(top["lost_carts"], top["carts"])
    _, others_hi = wilson(others_lost, others_carts)
    verdict = (
        "clearly above the other categories: review its prices, delivery costs and stock messages"
        if top_lo > others_hi
        else "but the intervals overlap, so the difference may be chance: watch it before acting"
    )
    return (
        f"{top['category']} has the highest abandonment rate, "
        f"{rate_with_interval(top['lost_carts'], top['carts'])} of {top['carts']:,.0f} carts, "
        f"against {rate_with_interval(others_lost, others_carts)} in the other categories, "
        f"{verdict}."
    )


def cart_rates(viewing: pd.DataFrame) -> str:
    """The categories where viewers add to cart least and most, with intervals."""
    viewing = viewing.assign(cart_rate=viewing["carts"] / viewing["viewing"])
    viewing = viewing.sort_values(["cart_rate", "category"])
    low, high = viewing.iloc[0], viewing.iloc[-1]
    low_hi = wilson(low["carts"], low["viewing"])[1]
    high_lo = wilson(high["carts"], high["viewing"])[0]
    action = (
        "improve product pages where the rate is low"
        if low_hi < high_lo
        else "the intervals overlap, so no category stands out yet"
    )
    return (
        f"Viewers add to cart least in {low['category']}, "
        f"{rate_with_interval(low['carts'], low['viewing'], 1)} of "
        f"{low['viewing']:,.0f} viewing sessions, and most in {high['category']}, "
        f"{rate_with_interval(high['carts'], high['viewing'], 1)} of "
        f"{high['viewing']:,.0f}: {action}."
    )


def recommendations(data: ReportData) -> Section:
    """Findings ranked by expected impact, from categories with enough support.

    Lost carts are valued at the category's revenue per buying session (the last period's, or
    all days' when the period had no purchase there). Rates are compared only for categories
    with at least MIN_SUPPORT sessions behind them, each with its 95% Wilson interval.
    """
    frame = data.df(RECOMMEND_SQL)
    supported = frame[frame["carts"] >= MIN_SUPPORT]
    small = sorted(frame.loc[(frame["carts"] > 0) & (frame["carts"] < MIN_SUPPORT), "category"])
    viewing = frame[frame["viewing"] >= MIN_SUPPORT]
    items: list[str] = []
    if not supported.empty:
        items.append(lost_carts(supported))
    if len(supported) >= 2:
        items.append(highest_abandonment(supported))
    if len(viewing) >= 2:
        items.append(cart_rates(viewing))
    source = (
        f"From {FUNNEL}, last {PERIOD_DAYS} days of data. Lost revenue: abandoned carts times "
        "the category's revenue per buying session. Rates are compared only for categories "
        f"with at least {MIN_SUPPORT} sessions behind them, with 95% Wilson intervals"
    )
    if small:
        source += (
            f"; abandonment not compared for fewer than {MIN_SUPPORT} sessions with a cart: "
            f"{_names(small)}"
        )
    if not data.lacks({ACTIVITY: ["start_weekday", "start_hour", "sessions", "purchase_sessions"]}):
        slot = timing(data)
        if slot:
            items.append(slot)
            source += f"; timing from {ACTIVITY}, complete weeks"
    if not items:
        return Notice(
            "Recommendations",
            f"Too little data to recommend anything: no category had {MIN_SUPPORT} or more "
            f"viewing sessions in the last {PERIOD_DAYS} days.",
        )
    return Bullets("Recommendations", items, source + ".")


def timing(data: ReportData) -> str | None:
    """When traffic peaks and which busy weekday-hour slot converts best (with its interval).

    Only slots with at least MIN_SUPPORT sessions and in the busier half are compared; None
    when no slot has that many sessions.
    """
    frame = data.df(f"""
        select start_weekday, start_hour, sessions, purchase_sessions
        from {ACTIVITY} where sessions > 0""")
    peak = frame.loc[frame["sessions"].idxmax()]
    busy = frame[
        (frame["sessions"] >= frame["sessions"].median()) & (frame["sessions"] >= MIN_SUPPORT)
    ].copy()
    if busy.empty:
        return None
    busy["lower"] = [
        wilson(b, n)[0] for b, n in zip(busy["purchase_sessions"], busy["sessions"], strict=True)
    ]
    best = busy.sort_values(["lower", "sessions"], ascending=False).iloc[0]
    total_buyers, total = frame["purchase_sessions"].sum(), frame["sessions"].sum()
    return (
        f"Traffic peaks on {WEEKDAYS[int(peak['start_weekday']) - 1]} at "
        f"{int(peak['start_hour']):02d}:00 UTC ({int(peak['sessions']):,} sessions); among "
        f"the busier hours with at least {MIN_SUPPORT} sessions, "
        f"{WEEKDAYS[int(best['start_weekday']) - 1]} {int(best['start_hour']):02d}:00 converts "
        f"best: {rate_with_interval(best['purchase_sessions'], best['sessions'], 1)} of "
        f"{int(best['sessions']):,} sessions (ranked by the interval's lower end) against "
        f"{rate_with_interval(total_buyers, total, 1)} overall. Time campaigns and "
        "promotions there."
    )


def build(data: ReportData) -> Page:
    """The overview page."""
    sections = [
        guarded(
            data,
            f"Last {PERIOD_DAYS} days",
            {
                SESSIONS: [
                    "session_start",
                    "purchase_made",
                    "cart_additions",
                    "cart_abandoned",
                    "revenue",
                ]
            },
            lambda: kpi_tiles(data),
        ),
        guarded(
            data,
            "Recommendations",
            {
                FUNNEL: [
                    "activity_date",
                    "category",
                    "viewing_sessions",
                    "cart_sessions",
                    "abandoned_cart_sessions",
                ]
            },
            lambda: recommendations(data),
        ),
    ]
    return Page("index", "Overview", "How the shop is doing and where to act first.", sections)
