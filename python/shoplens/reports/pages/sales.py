"""Sales: seasonality, categories, when people shop, who buys what, customer value, prices."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from shoplens.reports.content import CURRENCY, Chart, Page, Table, esc, style
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded, require_rows
from shoplens.reports.stats import MIN_GROUP_SIZE

MONTHLY = "marts.mart_sales_monthly"
POPULARITY = "marts.mart_category_popularity"
HOUR_WEEKDAY = "marts.mart_activity_hour_weekday"
AGES = "marts.mart_age_distribution"
DEMOGRAPHIC = "marts.mart_demographic_category"
VALUE = "marts.mart_customer_value"
ORDER_LINES = "marts.fct_order_lines"
PRODUCTS = "marts.dim_products"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PARTIAL_GREY = "#c3c9d1"
NO_DEMOGRAPHICS = "REES46-style data has no customer demographics"
NO_TRANSACTIONS = "REES46-style data has no order lines"


def monthly(data: ReportData) -> Chart:
    """Revenue (bars) and orders (line) per month; partial months hatched and grey."""
    frame = data.df(
        f"select sales_month, revenue, orders, seasonality_index, is_partial_month, "
        f"days_covered, days_in_month from {MONTHLY} order by sales_month"
    )
    partial = frame["is_partial_month"].astype(bool)
    index_text = [
        f"partial month: {c} of {d} days, no index" if p else f"index {i:.2f}"
        for p, c, d, i in zip(
            partial,
            frame["days_covered"],
            frame["days_in_month"],
            frame["seasonality_index"],
            strict=True,
        )
    ]
    fig = go.Figure(
        [
            go.Bar(
                name="revenue",
                x=frame["sales_month"],
                y=frame["revenue"],
                marker={
                    "color": [PARTIAL_GREY if p else "#2f6fb0" for p in partial],
                    "pattern": {
                        "shape": ["/" if p else "" for p in partial],
                        "fillmode": "overlay",
                        "fgcolor": "#6b7683",
                    },
                },
                customdata=index_text,
                hovertemplate="%{x|%b %Y}: %{y:,.0f} "
                + CURRENCY
                + " (%{customdata})<extra></extra>",
            ),
            go.Scatter(
                name="orders",
                x=frame["sales_month"],
                y=frame["orders"],
                yaxis="y2",
                mode="lines+markers",
                marker_color="#e07b39",
            ),
        ]
    )
    style(
        fig,
        yaxis_title=f"revenue ({CURRENCY})",
        xaxis_title="month",
        xaxis_tickformat="%b %Y",
        yaxis2={
            "title": "orders",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickmode": "auto",  # not plotly's default "sync", which gives odd ticks
        },
    )
    note = (
        f"From {MONTHLY}: seasonality of revenue and orders (hover: revenue against the "
        "average complete month)."
    )
    if partial.any():
        months = ", ".join(
            f"{m:%b %Y} ({c} of {d} days)"
            for m, c, d in frame.loc[
                partial, ["sales_month", "days_covered", "days_in_month"]
            ].itertuples(index=False)
        )
        note += (
            " Hatched grey: months the data covers only in part, with no seasonality index: "
            f"{months}."
        )
    return Chart("Monthly sales", fig, note)


def popularity(data: ReportData) -> Chart:
    """Purchases and revenue per category, most popular first."""
    frame = data.df(
        f"select category, purchases, event_revenue, product_views "
        f"from {POPULARITY} order by popularity_rank"
    )
    fig = go.Figure(
        [
            go.Bar(name="purchases", x=esc(frame["category"]), y=frame["purchases"], offsetgroup=0),
            go.Bar(
                name="revenue",
                x=esc(frame["category"]),
                y=frame["event_revenue"],
                yaxis="y2",
                offsetgroup=1,
            ),
        ]
    )
    style(
        fig,
        barmode="group",
        yaxis_title="purchases",
        yaxis2={
            "title": f"revenue ({CURRENCY})",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickmode": "auto",  # not plotly's default "sync", which gives odd ticks
        },
    )
    return Chart(
        "Category popularity",
        fig,
        f"From {POPULARITY}: purchase events and their revenue, ranked by purchases.",
    )


def hour_weekday(data: ReportData) -> Chart:
    """Sessions by hour of day and weekday (heatmap)."""
    frame = data.df(
        f"select start_weekday, start_hour, sessions, conversion_rate, complete_weeks "
        f"from {HOUR_WEEKDAY}"
    )
    weeks = int(frame["complete_weeks"].max())
    grid = frame.pivot_table(
        index="start_weekday", columns="start_hour", values="sessions", aggfunc="sum"
    ).reindex(index=range(1, 8), columns=range(24))
    conv = frame.pivot_table(
        index="start_weekday", columns="start_hour", values="conversion_rate", aggfunc="mean"
    ).reindex(index=range(1, 8), columns=range(24))
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=list(range(24)),
            y=WEEKDAYS,
            customdata=conv.values,
            colorscale="Blues",
            colorbar={"title": "sessions"},
            hovertemplate="%{y} %{x}h: %{z} sessions, conversion %{customdata:.1%}<extra></extra>",
        )
    )
    style(
        fig, height=360, xaxis_title="hour of day (UTC)", yaxis_autorange="reversed", xaxis_dtick=2
    )
    return Chart(
        "Activity by hour and weekday",
        fig,
        f"From {HOUR_WEEKDAY}: sessions by start time (hover for conversion), "
        + (
            f"over the {weeks} complete weeks (Monday to Sunday) in the data, so every "
            "weekday counts equally; partial first and last weeks are left out."
            if weeks
            else "all days (the data spans no complete week, so weekdays may count unequally)."
        ),
    )


def ages(data: ReportData) -> Chart:
    """Customers and buyers per age band."""
    frame = data.df(f"select age_band, customers, buyers from {AGES} order by band_order")
    fig = go.Figure(
        [
            go.Bar(name="customers", x=esc(frame["age_band"]), y=frame["customers"]),
            go.Bar(name="buyers", x=esc(frame["age_band"]), y=frame["buyers"]),
        ]
    )
    style(
        fig, height=360, barmode="group", xaxis_title="age band", yaxis_title="registered customers"
    )
    return Chart("Age distribution", fig, f"From {AGES}: buyers have at least one order.")


def _small_groups(totals: pd.Series) -> str:
    """ "65+ (4), unknown (2)": groups under MIN_GROUP_SIZE with their sizes."""
    return ", ".join(f"{name} ({int(n):,})" for name, n in totals.items())


def demographic(data: ReportData) -> Chart:
    """Order lines per age band and category (each band's category shares).

    Bands with fewer than MIN_GROUP_SIZE order lines are drawn grey (counts only): their
    shares would be noise in full colour.
    """
    frame = data.df(f"""
        select d.age_band, d.category, sum(d.order_lines) as lines,
               coalesce(min(a.band_order), 99) as band_order
        from {DEMOGRAPHIC} d left join {AGES} a using (age_band)
        where d.age_band is not null group by all""")
    require_rows(frame, f"no order lines with an age band in {DEMOGRAPHIC}")
    order = frame.groupby("age_band")["band_order"].min().sort_values().index
    grid = frame.pivot_table(
        index="age_band", columns="category", values="lines", aggfunc="sum", fill_value=0
    ).reindex(order)
    totals = grid.sum(axis=1)
    small = totals < MIN_GROUP_SIZE
    share = grid.div(totals, axis=0)
    x, y = esc(list(share.columns)), esc(list(share.index))
    fig = go.Figure(
        [
            go.Heatmap(
                z=share.where(~small, axis=0).values,
                x=x,
                y=y,
                colorscale="Viridis",
                text=grid.values,
                texttemplate="%{text}",
                hovertemplate="%{y}, %{x}: %{z:.1%} of the band's purchases<extra></extra>",
                colorbar={"title": "share", "tickformat": ".0%"},
            ),
            go.Heatmap(
                z=[[1 if is_small else None] * len(x) for is_small in small],
                x=x,
                y=y,
                colorscale=[[0, PARTIAL_GREY], [1, PARTIAL_GREY]],
                showscale=False,
                text=grid.values,
                texttemplate="%{text}",
                hovertemplate="%{y}, %{x}: %{text} order lines (band too small for shares)"
                "<extra></extra>",
            ),
        ]
    )
    style(
        fig, height=400, xaxis_title="category", yaxis_title="age band", yaxis_autorange="reversed"
    )
    note = f"From {DEMOGRAPHIC}: colour is the band's share, the number is order lines."
    if small.any():
        note += (
            f" Grey: bands with fewer than {MIN_GROUP_SIZE} order lines, too few for shares: "
            f"{_small_groups(totals[small])}."
        )
    return Chart("Purchases by age band and category", fig, note)


def gender_category(data: ReportData) -> Chart:
    """Each gender's share of order lines per category (groups under MIN_GROUP_SIZE left out)."""
    frame = data.df(f"""
        select coalesce(gender, 'unknown') as gender, category, sum(order_lines) as lines
        from {DEMOGRAPHIC} group by all order by gender, category""")
    totals = frame.groupby("gender")["lines"].sum()
    small = totals[totals < MIN_GROUP_SIZE]
    frame = frame[~frame["gender"].isin(small.index)].copy()
    require_rows(frame, f"no gender group in {DEMOGRAPHIC} has {MIN_GROUP_SIZE} order lines")
    frame["share"] = frame["lines"] / frame.groupby("gender")["lines"].transform("sum")
    fig = go.Figure(
        [
            go.Bar(
                name=esc(g),
                x=esc(part["category"]),
                y=part["share"],
                customdata=part["lines"],
                hovertemplate="%{x}: %{y:.1%} (%{customdata} lines)<extra></extra>",
            )
            for g, part in frame.groupby("gender", sort=True)
        ]
    )
    style(fig, barmode="group", yaxis_tickformat=".0%", yaxis_title="share of the group's lines")
    note = f"From {DEMOGRAPHIC}."
    if not small.empty:
        note += (
            f" Left out: groups with fewer than {MIN_GROUP_SIZE} order lines, too few for "
            f"shares: {_small_groups(small)}."
        )
    return Chart("Purchases by gender and category", fig, note)


def customer_value(data: ReportData) -> Chart:
    """Customers and their share of all spend per lifetime-value decile."""
    frame = data.df(f"""select value_decile, customers, avg_lifetime_value, share_of_value
                        from {VALUE} order by value_decile""")
    labels = ["never bought" if d == 0 else f"decile {d}" for d in frame["value_decile"]]
    fig = go.Figure(
        [
            go.Bar(
                name="customers",
                x=labels,
                y=frame["customers"],
                customdata=frame["avg_lifetime_value"],
                hovertemplate="%{x}: %{y} customers, mean spend %{customdata:,.2f} "
                + CURRENCY
                + "<extra></extra>",
            ),
            go.Scatter(
                name="share of all spend",
                x=labels,
                y=frame["share_of_value"],
                yaxis="y2",
                mode="lines+markers",
            ),
        ]
    )
    style(
        fig,
        height=380,
        yaxis_title="customers",
        yaxis2={
            "title": "share of all spend",
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "showgrid": False,
            "rangemode": "tozero",
            "tickmode": "auto",  # not plotly's default "sync", which gives odd ticks
        },
    )
    return Chart(
        "Customer value distribution",
        fig,
        f"From {VALUE}: buyers in deciles of lifetime spend (10 = top spenders).",
    )


def price_bands(data: ReportData) -> Chart:
    """Units sold per category and price band."""
    frame = data.df(f"""
        select category, price_band, sum(quantity) as units from {ORDER_LINES}
        group by all order by category""")
    order = ["Low", "Medium", "High"]
    bands = [b for b in order if b in set(frame["price_band"])] + sorted(
        set(frame["price_band"].dropna()) - set(order)
    )
    fig = go.Figure(
        [
            go.Bar(name=esc(band), x=esc(part["category"]), y=part["units"])
            for band in bands
            for part in [frame[frame["price_band"] == band]]
        ]
    )
    style(fig, barmode="stack", yaxis_title="units sold")
    return Chart(
        "Price bands",
        fig,
        f"From {ORDER_LINES}; band edges per category from the price_bands seed.",
    )


def top_products(data: ReportData) -> Table:
    """The ten products with the most revenue."""
    frame = data.df(f"""
        select product_name as product, brand, category, price_band as "price band",
               units_sold as "units sold", revenue as "revenue ({CURRENCY})"
        from {PRODUCTS} where revenue > 0 order by revenue desc, product_id limit 10""")
    require_rows(frame, f"no product in {PRODUCTS} has revenue yet")
    return Table.from_frame(
        "Top products by revenue",
        frame,
        f"From {PRODUCTS}.",
        {"units sold": ",.0f", f"revenue ({CURRENCY})": ",.2f"},
    )


def build(data: ReportData) -> Page:
    """The sales page."""
    sections = [
        guarded(
            data,
            "Monthly sales",
            {
                MONTHLY: [
                    "sales_month",
                    "revenue",
                    "orders",
                    "seasonality_index",
                    "is_partial_month",
                    "days_covered",
                    "days_in_month",
                ]
            },
            lambda: monthly(data),
            empty_hint=NO_TRANSACTIONS,
        ),
        guarded(
            data,
            "Category popularity",
            {POPULARITY: ["category", "purchases", "event_revenue", "popularity_rank"]},
            lambda: popularity(data),
        ),
        guarded(
            data,
            "Activity by hour and weekday",
            {
                HOUR_WEEKDAY: [
                    "start_weekday",
                    "start_hour",
                    "sessions",
                    "conversion_rate",
                    "complete_weeks",
                ]
            },
            lambda: hour_weekday(data),
        ),
        guarded(
            data,
            "Age distribution",
            {AGES: ["age_band", "band_order", "customers", "buyers"]},
            lambda: ages(data),
            empty_hint=NO_DEMOGRAPHICS,
        ),
        guarded(
            data,
            "Purchases by age band and category",
            {DEMOGRAPHIC: ["age_band", "category", "order_lines"], AGES: ["band_order"]},
            lambda: demographic(data),
            empty_hint=NO_DEMOGRAPHICS,
        ),
        guarded(
            data,
            "Purchases by gender and category",
            {DEMOGRAPHIC: ["gender", "category", "order_lines"]},
            lambda: gender_category(data),
            empty_hint=NO_DEMOGRAPHICS,
        ),
        guarded(
            data,
            "Customer value distribution",
            {VALUE: ["value_decile", "customers", "avg_lifetime_value", "share_of_value"]},
            lambda: customer_value(data),
        ),
        guarded(
            data,
            "Price bands",
            {ORDER_LINES: ["category", "price_band", "quantity"]},
            lambda: price_bands(data),
            empty_hint=NO_TRANSACTIONS,
        ),
        guarded(
            data,
            "Top products by revenue",
            {
                PRODUCTS: [
                    "product_id",
                    "product_name",
                    "brand",
                    "category",
                    "price_band",
                    "units_sold",
                    "revenue",
                ]
            },
            lambda: top_products(data),
        ),
    ]
    return Page("sales", "Sales", "What sells, when, and to whom.", sections)
