"""Audiences: the campaign audiences (models/marts/audiences), their sizes and a look at each."""

from __future__ import annotations

from functools import partial

from shoplens.audiences import AUDIENCES
from shoplens.reports.content import CURRENCY_SYMBOL, Link, Page, Section, Table
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded

SLUG = "audiences"
LABELS = {
    "cart_abandoners": "Cart abandoners",
    "segment_members": "Segment audiences",
    "time_promotions": "Time-targeted promotions",
}
PREVIEW_ROWS = 10
EXPORT = "shoplens audience export {name} --out {name}.csv"


def anchor(name: str) -> str:
    """Element id of an audience's section on the Audiences page."""
    return f"audience-{name}"


def audience_link(name: str) -> Link:
    """A link to audience `name` on the Audiences page (for findings that it acts on)."""
    return Link(f"Audience: {LABELS[name].lower()} →", f"{SLUG}.html#{anchor(name)}")


def overview(data: ReportData) -> Table:
    """Every audience with its size (or why it has none) and how to export it."""
    rows = []
    for name, audience in AUDIENCES.items():
        if not data.exists(audience.relation):
            size = "not built (run `dbt build`)"
        else:
            size = f"{data.scalar(f'select count(*) from {audience.relation}'):,}"
        rows.append(
            [
                LABELS[name],
                audience.description,
                size,
                ", ".join(audience.grain),
                EXPORT.format(name=name),
            ]
        )
    return Table(
        "Audiences",
        ["Audience", "Who or what", "Rows", "One row per", "Export"],
        rows,
        "dbt marts in models/marts/audiences, rebuilt by every `dbt build`; windows count back "
        "from the data's as-of time. Exports hold ids and behaviour only; add "
        "--with-personal-data for age, gender and city, and --format parquet for Parquet.",
    )


def cart_abandoners(data: ReportData) -> Table:
    """The most valuable abandoned carts, with the intent score of their session."""
    relation = AUDIENCES["cart_abandoners"].relation
    summary = data.df(f"""
        select count(*) as customers, sum(abandoned_value) as value,
               count(*) filter (where high_intent) as high_intent,
               count(*) filter (where intent_score_source = 'live') as live,
               min(window_start) as window_start, max(as_of_time) as as_of_time
        from {relation}""").iloc[0]
    frame = data.df(
        f"""select customer_id, abandoned_products, abandoned_value, abandoned_product_ids,
               last_abandoned_at, intent_probability, intent_score_source
        from {relation} order by abandoned_value desc, customer_id limit ?""",
        [PREVIEW_ROWS],
    )
    frame.columns = [
        "Customer",
        "Products",
        f"Value ({CURRENCY_SYMBOL})",
        "Product ids",
        "Last left in cart",
        "Intent score",
        "Score from",
    ]
    return Table.from_frame(
        LABELS["cart_abandoners"],
        frame,
        f"{summary['customers']:,} customers left {CURRENCY_SYMBOL}{summary['value']:,.2f} in "
        f"carts between {summary['window_start']:%Y-%m-%d %H:%M} and "
        f"{summary['as_of_time']:%Y-%m-%d %H:%M} UTC and have not bought those products since; "
        f"{summary['high_intent']:,} of their latest abandoning sessions scored at or above the "
        f"intent model's threshold ({summary['live']:,} scored live). The {PREVIEW_ROWS} most "
        "valuable shown.",
        formats={
            "Intent score": ".2f",
            f"Value ({CURRENCY_SYMBOL})": ",.2f",
            "Last left in cart": "%Y-%m-%d %H:%M",
        },
        anchor=anchor("cart_abandoners"),
    )


def segment_members(data: ReportData) -> Table:
    """Customers per segment and the campaign suggested for each."""
    relation = AUDIENCES["segment_members"].relation
    frame = data.df(f"""
        select segment_name, count(*) as customers, any_value(segment_description),
               any_value(campaign), any_value(campaign_channel), any_value(study_recommendation)
        from {relation} group by segment_name order by customers desc, segment_name""")
    frame.columns = [
        "Segment",
        "Customers",
        "Who they are",
        "Campaign",
        "Channel",
        "Study recommendation",
    ]
    return Table.from_frame(
        LABELS["segment_members"],
        frame,
        "Every segmented customer with the segment's profile and the campaign the seed "
        "segment_campaigns suggests for it, following the studies' recommendations.",
        anchor=anchor("segment_members"),
    )


def time_promotions(data: ReportData) -> Table:
    """The best "happy hour" cells: busy hours that convert below their category's rate."""
    relation = AUDIENCES["time_promotions"].relation
    frame = data.df(
        f"""select promotion_rank, weekday_name, start_hour, category, sessions,
               conversion_rate, category_conversion_rate, missed_purchase_sessions
        from {relation} order by promotion_rank limit ?""",
        [PREVIEW_ROWS],
    )
    frame["start_hour"] = [f"{h:02d}:00" for h in frame["start_hour"]]
    frame.columns = [
        "Rank",
        "Weekday",
        "Hour (UTC)",
        "Category",
        "Sessions",
        "Conversion",
        "Category conversion",
        "Missed purchases",
    ]
    return Table.from_frame(
        LABELS["time_promotions"],
        frame,
        "Cells with at least the minimum support, traffic at or above the category's median "
        "cell and conversion below the category's; ranked by the purchase sessions they miss "
        f"at the category's rate. The top {PREVIEW_ROWS} shown.",
        formats={
            "Conversion": ".1%",
            "Category conversion": ".1%",
            "Missed purchases": ",.1f",
        },
        anchor=anchor("time_promotions"),
    )


# Why an audience can be empty on a built warehouse.
EMPTY = {
    "cart_abandoners": "nobody left a product in a cart in the window without buying it since",
    "segment_members": "the segmentation found no customers (models/ml)",
    "time_promotions": "no hour x weekday x category cell has the minimum support "
    "(var audience_promotion_min_sessions), high traffic and low conversion",
}


def build(data: ReportData) -> Page:
    """The audiences page."""
    sections: list[Section] = [overview(data)]
    for name, draw in (
        ("cart_abandoners", cart_abandoners),
        ("segment_members", segment_members),
        ("time_promotions", time_promotions),
    ):
        relation = AUDIENCES[name].relation
        sections.append(
            guarded(data, LABELS[name], {relation: []}, partial(draw, data), empty_hint=EMPTY[name])
        )
    return Page(
        SLUG,
        "Audiences",
        "Who to reach and when: campaign audiences a campaign tool imports "
        "(`shoplens audience export`).",
        sections,
    )
