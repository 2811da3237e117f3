"""Overview: KPI tiles against the previous period, and recommendations drawn from the data."""

from __future__ import annotations

import datetime as dt
from typing import SupportsFloat

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shoplens.reports.content import (
    CURRENCY,
    CURRENCY_SYMBOL,
    Bullets,
    Chart,
    Link,
    Notice,
    Page,
    Section,
    Tile,
    Tiles,
    style,
)
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded, require_rows
from shoplens.reports.pages.audiences import audience_link
from shoplens.reports.stats import MIN_SUPPORT, rate_with_interval, wilson

PERIOD_DAYS = 30
TREND_WINDOW = 7

SESSIONS = "marts.fct_sessions"
ORDER_LINES = "marts.fct_order_lines"
FUNNEL = "marts.mart_funnel_daily"
ACTIVITY = "marts.mart_activity_hour_weekday"
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def last_complete_day(as_of: dt.datetime, today: dt.date | None = None) -> dt.date:
    """The last day of the data that is over: the day of `as_of`, unless that is today (UTC),
    which is still under way (a streamed burst this morning is not a day's traffic)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return as_of.date() if as_of.date() < today else today - dt.timedelta(days=1)


def periods(
    as_of: dt.datetime, today: dt.date | None = None
) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """Bounds (previous start, current start, end) of the last two PERIOD_DAYS windows.

    The current period is the PERIOD_DAYS complete days up to the last complete day
    (`last_complete_day`): a partial day would compare part of a day with whole ones.
    """
    end = dt.datetime.combine(last_complete_day(as_of, today) + dt.timedelta(days=1), dt.time())
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
        f"Last {PERIOD_DAYS} complete days ({current:%Y-%m-%d} to "
        f"{end - dt.timedelta(days=1):%Y-%m-%d})"
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
    where activity_date >= $current and activity_date < $end
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
        f"{r.category} (about {CURRENCY_SYMBOL}{r.lost_revenue:,.0f} from {r.lost_carts:,.0f} of "
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
    as_of = data.scalar(f"select max(activity_date) from {FUNNEL}")
    _, current, end = periods(dt.datetime.combine(as_of, dt.time()))
    frame = data.df(RECOMMEND_SQL, {"current": current.date(), "end": end.date()})
    supported = frame[frame["carts"] >= MIN_SUPPORT]
    small = sorted(frame.loc[(frame["carts"] > 0) & (frame["carts"] < MIN_SUPPORT), "category"])
    viewing = frame[frame["viewing"] >= MIN_SUPPORT]
    # Each finding links to the campaign audience that acts on it (the Audiences page).
    items: list[str] = []
    links: list[Link | None] = []
    if not supported.empty:
        items.append(lost_carts(supported))
        links.append(audience_link("cart_abandoners"))
    if len(supported) >= 2:
        items.append(highest_abandonment(supported))
        links.append(audience_link("cart_abandoners"))
    if len(viewing) >= 2:
        items.append(cart_rates(viewing))
        links.append(audience_link("segment_members"))
    source = (
        f"From {FUNNEL}, {current:%Y-%m-%d} to {end - dt.timedelta(days=1):%Y-%m-%d} (the last "
        f"{PERIOD_DAYS} complete days). Lost revenue: abandoned carts times "
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
            links.append(audience_link("time_promotions"))
            source += f"; timing from {ACTIVITY}, complete weeks"
    if not items:
        return Notice(
            "Recommendations",
            f"Too little data to recommend anything: no category had {MIN_SUPPORT} or more "
            f"viewing sessions in the last {PERIOD_DAYS} days.",
        )
    return Bullets("Recommendations", items, source + ".", links)


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


def daily_trend(data: ReportData) -> Chart:
    """Sessions, revenue and conversion per day with their 7-day averages (three panels)."""
    as_of = data.scalar(f"select max(session_start) from {SESSIONS}")
    last = last_complete_day(as_of)
    frame = data.df(
        f"""select session_date as day, count(*) as sessions,
                   count(*) filter (where purchase_made) as buyers,
                   coalesce(sum(revenue), 0) as revenue
            from {SESSIONS} where session_date <= ? group by all order by day""",
        [last],
    )
    require_rows(frame, f"no complete day in {SESSIONS} yet")
    days = pd.date_range(frame["day"].min(), frame["day"].max(), freq="D")
    daily = frame.set_index(pd.to_datetime(frame["day"]))[["sessions", "buyers", "revenue"]]
    daily = daily.reindex(days, fill_value=0)
    week = daily.rolling(TREND_WINDOW, min_periods=TREND_WINDOW).sum()
    panels = [
        ("sessions", daily["sessions"], week["sessions"] / TREND_WINDOW, ",.0f"),
        (f"revenue ({CURRENCY})", daily["revenue"], week["revenue"] / TREND_WINDOW, ",.0f"),
        (
            "conversion",
            daily["buyers"] / daily["sessions"].where(daily["sessions"] > 0),
            week["buyers"] / week["sessions"].where(week["sessions"] > 0),
            ".1%",
        ),
    ]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for row, (name, values, average, fmt) in enumerate(panels, start=1):
        fig.add_trace(
            go.Scatter(
                x=days,
                y=values,
                mode="lines",
                name=f"{name}, daily",
                line={"color": "#b8c7d9", "width": 1},
                hovertemplate=f"%{{x|%a %Y-%m-%d}}: %{{y:{fmt}}}<extra>{name}</extra>",
                showlegend=row == 1,
                legendgroup="daily",
            ),
            row=row,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=days,
                y=average,
                mode="lines",
                name=f"{TREND_WINDOW}-day average",
                line={"color": "#2f6fb0", "width": 2},
                hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:{fmt}}}<extra>{TREND_WINDOW}-day "
                f"average</extra>",
                showlegend=row == 1,
                legendgroup="average",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=name, rangemode="tozero", row=row, col=1)
    fig.update_yaxes(tickformat=".0%", row=3, col=1)
    fig.data[0].name = "daily"
    style(fig, height=620, legend={"orientation": "h", "y": -0.08})
    return Chart(
        "Daily trend",
        fig,
        f"From {SESSIONS}: sessions by start day, revenue of their purchase events, and the "
        f"share of sessions with a purchase; dark line: {TREND_WINDOW}-day average (days "
        "without sessions count as zero). Complete days only"
        + (
            f": today ({as_of:%Y-%m-%d}, UTC) is still under way and left out."
            if last < as_of.date()
            else "."
        ),
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
            "Daily trend",
            {SESSIONS: ["session_date", "purchase_made", "revenue"]},
            lambda: daily_trend(data),
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
