"""Overview: KPI tiles against the previous period, and recommendations drawn from the data."""

from __future__ import annotations

import datetime as dt

from shoplens.reports.content import Bullets, Notice, Page, Section, Tile, Tiles
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded

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


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


RECOMMEND_SQL = f"""
with recent as (
    select category, sum(viewing_sessions) as viewing, sum(cart_sessions) as carts,
           sum(abandoned_cart_sessions) as lost_carts
    from {FUNNEL}
    where activity_date > (select max(activity_date) from {FUNNEL}) - interval {PERIOD_DAYS} day
    group by all
)
select category, viewing, carts, lost_carts, lost_carts / nullif(carts, 0) as abandonment,
       carts / nullif(viewing, 0) as cart_rate
from recent order by lost_carts desc, category
"""


def recommendations(data: ReportData) -> Section:
    """Plain findings: where carts are lost, which categories convert views worst and best."""
    frame = data.df(RECOMMEND_SQL)
    frame = frame[frame["carts"] > 0]
    if frame.empty:
        return Notice(
            "Recommendations", "No cart additions in the last period: nothing to recommend."
        )
    items: list[str] = []
    worst = frame.head(3)
    lost = ", ".join(
        f"{r.category} ({r.lost_carts:,.0f} of {r.carts:,.0f} carts abandoned)"
        for r in worst.itertuples()
    )
    items.append(
        f"Most carts are lost in {lost}: start cart-recovery e-mails and checkout fixes there."
    )
    ranked = frame.sort_values("abandonment", ascending=False)
    top = ranked.iloc[0]
    items.append(
        f"{top['category']} has the highest abandonment rate ({top['abandonment']:.0%}"
        f" of {top['carts']:,.0f} carts): review its prices, delivery costs and stock "
        "messages."
    )
    by_cart_rate = frame[frame["viewing"] > 0].sort_values("cart_rate")
    if len(by_cart_rate) >= 2:
        low, high = by_cart_rate.iloc[0], by_cart_rate.iloc[-1]
        items.append(
            f"Viewers add to cart least in {low['category']} "
            f"({low['cart_rate']:.1%} of viewing sessions) and most in {high['category']} "
            f"({high['cart_rate']:.1%}): improve product pages where the rate is low."
        )
    source = f"From {FUNNEL}, last {PERIOD_DAYS} days of data"
    if not data.lacks({ACTIVITY: ["start_weekday", "start_hour", "sessions", "purchase_sessions"]}):
        items.append(timing(data))
        source += f"; timing from {ACTIVITY}, all days"
    return Bullets("Recommendations", items, source + ".")


def timing(data: ReportData) -> str:
    """When traffic peaks and when it converts best (weekday-hour slots, busier half only)."""
    frame = data.df(f"""
        select start_weekday, start_hour, sessions, purchase_sessions,
               purchase_sessions / sessions as conversion
        from {ACTIVITY} where sessions > 0""")
    peak = frame.loc[frame["sessions"].idxmax()]
    busy = frame[frame["sessions"] >= frame["sessions"].median()]
    best = busy.loc[busy["conversion"].idxmax()]
    overall = frame["purchase_sessions"].sum() / frame["sessions"].sum()
    return (
        f"Traffic peaks on {WEEKDAYS[int(peak['start_weekday']) - 1]} at "
        f"{int(peak['start_hour']):02d}:00 UTC ({int(peak['sessions']):,} sessions); among "
        f"the busier hours, {WEEKDAYS[int(best['start_weekday']) - 1]} "
        f"{int(best['start_hour']):02d}:00 converts best ({best['conversion']:.1%} against "
        f"{overall:.1%} overall): time campaigns and promotions there."
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
