"""Sales: seasonality, categories, when people shop, who buys what, customer value, prices."""

from __future__ import annotations

import plotly.graph_objects as go

from shoplens.reports.content import Chart, Page, Table, esc, style
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded

MONTHLY = "marts.mart_sales_monthly"
POPULARITY = "marts.mart_category_popularity"
HOUR_WEEKDAY = "marts.mart_activity_hour_weekday"
AGES = "marts.mart_age_distribution"
DEMOGRAPHIC = "marts.mart_demographic_category"
VALUE = "marts.mart_customer_value"
ORDER_LINES = "marts.fct_order_lines"
PRODUCTS = "marts.dim_products"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
NO_DEMOGRAPHICS = "REES46-style data has no customer demographics"


def monthly(data: ReportData) -> Chart:
    """Revenue (bars) and orders (line) per month."""
    frame = data.df(f"select month, revenue, orders from {MONTHLY} order by month")
    fig = go.Figure([
        go.Bar(name="revenue", x=frame["month"], y=frame["revenue"], marker_color="#2f6fb0"),
        go.Scatter(name="orders", x=frame["month"], y=frame["orders"], yaxis="y2",
                   mode="lines+markers", marker_color="#e07b39"),
    ])
    style(fig, yaxis_title="revenue", xaxis_title="month",
          yaxis2={"title": "orders", "overlaying": "y", "side": "right", "showgrid": False})
    return Chart("Monthly sales", fig, f"From {MONTHLY}: seasonality of revenue and orders.")


def popularity(data: ReportData) -> Chart:
    """Units sold and revenue per category."""
    frame = data.df(f"select category, units_sold, revenue from {POPULARITY} "
                    "order by revenue desc")
    fig = go.Figure([
        go.Bar(name="revenue", x=esc(frame["category"]), y=frame["revenue"]),
        go.Bar(name="units sold", x=esc(frame["category"]), y=frame["units_sold"], yaxis="y2",
               offsetgroup=1),
    ])
    style(fig, barmode="group", yaxis_title="revenue",
          yaxis2={"title": "units sold", "overlaying": "y", "side": "right", "showgrid": False})
    return Chart("Category popularity", fig, f"From {POPULARITY}.")


def hour_weekday(data: ReportData) -> Chart:
    """Sessions by hour of day and weekday (heatmap)."""
    frame = data.df(f"select weekday, hour, sessions from {HOUR_WEEKDAY}")
    grid = frame.pivot_table(index="weekday", columns="hour", values="sessions",
                             aggfunc="sum").reindex(index=range(7), columns=range(24))
    fig = go.Figure(go.Heatmap(z=grid.values, x=list(range(24)), y=WEEKDAYS,
                               colorscale="Blues", colorbar={"title": "sessions"}))
    style(fig, height=360, xaxis_title="hour of day (UTC)", yaxis_autorange="reversed",
          xaxis_dtick=2)
    return Chart("Activity by hour and weekday", fig, f"From {HOUR_WEEKDAY}.")


def ages(data: ReportData) -> Chart:
    """Customers per age band."""
    frame = data.df(f"select age_band, customers from {AGES} order by age_band")
    fig = go.Figure(go.Bar(x=esc(frame["age_band"]), y=frame["customers"],
                           marker_color="#3a9d5d"))
    style(fig, height=340, xaxis_title="age band", yaxis_title="customers")
    return Chart("Age distribution", fig, f"From {AGES}.")


def demographic(data: ReportData) -> Chart:
    """Purchases per age band and category (heatmap of each band's category shares)."""
    frame = data.df(f"select age_band, category, purchases from {DEMOGRAPHIC}")
    grid = frame.pivot_table(index="age_band", columns="category", values="purchases",
                             aggfunc="sum", fill_value=0)
    share = grid.div(grid.sum(axis=1), axis=0)
    fig = go.Figure(go.Heatmap(z=share.values, x=esc(list(share.columns)),
                               y=esc(list(share.index)), colorscale="Viridis",
                               text=grid.values, texttemplate="%{text}",
                               hovertemplate="%{y}, %{x}: %{z:.1%} of the band's purchases"
                                             "<extra></extra>",
                               colorbar={"title": "share", "tickformat": ".0%"}))
    style(fig, height=380, xaxis_title="category", yaxis_title="age band")
    return Chart("Purchases by age band and category", fig,
                 f"From {DEMOGRAPHIC}: colour is the band's share, the number is purchases.")


def customer_value(data: ReportData) -> Chart:
    """Customers per lifetime-value bucket."""
    frame = data.df(f"select value_band, customers, total_revenue from {VALUE} "
                    "order by value_band_order")
    fig = go.Figure(go.Bar(x=esc(frame["value_band"]), y=frame["customers"],
                           customdata=frame["total_revenue"],
                           hovertemplate="%{x}: %{y} customers, revenue %{customdata:,.0f}"
                                         "<extra></extra>"))
    style(fig, height=340, xaxis_title="lifetime spend", yaxis_title="customers")
    return Chart("Customer value distribution", fig, f"From {VALUE}.")


def price_bands(data: ReportData) -> Chart:
    """Units sold per category and price band."""
    frame = data.df(f"""
        select category, price_band, sum(quantity) as units from {ORDER_LINES}
        group by all order by category""")
    order = ["Low", "Medium", "High"]
    bands = [b for b in order if b in set(frame["price_band"])] + sorted(
        set(frame["price_band"].dropna()) - set(order))
    fig = go.Figure([
        go.Bar(name=esc(band), x=esc(part["category"]), y=part["units"])
        for band in bands
        for part in [frame[frame["price_band"] == band]]
    ])
    style(fig, barmode="stack", yaxis_title="units sold")
    return Chart("Price bands", fig, f"From {ORDER_LINES}; band edges per category from the "
                                     "price_bands seed.")


def top_products(data: ReportData) -> Table:
    """The ten products with the most revenue."""
    frame = data.df(f"""
        select product_name as product, brand, category, price_band, units_sold, revenue
        from {PRODUCTS} where revenue > 0 order by revenue desc, product_id limit 10""")
    return Table.from_frame("Top products by revenue", frame, f"From {PRODUCTS}.",
                            {"units_sold": ",.0f", "revenue": ",.2f"})


def build(data: ReportData) -> Page:
    """The sales page."""
    sections = [
        guarded(data, "Monthly sales", {MONTHLY: ["month", "revenue", "orders"]},
                lambda: monthly(data)),
        guarded(data, "Category popularity", {POPULARITY: ["category", "units_sold", "revenue"]},
                lambda: popularity(data)),
        guarded(data, "Activity by hour and weekday",
                {HOUR_WEEKDAY: ["weekday", "hour", "sessions"]}, lambda: hour_weekday(data)),
        guarded(data, "Age distribution", {AGES: ["age_band", "customers"]},
                lambda: ages(data), empty_hint=NO_DEMOGRAPHICS),
        guarded(data, "Purchases by age band and category",
                {DEMOGRAPHIC: ["age_band", "category", "purchases"]},
                lambda: demographic(data), empty_hint=NO_DEMOGRAPHICS),
        guarded(data, "Customer value distribution",
                {VALUE: ["value_band", "value_band_order", "customers", "total_revenue"]},
                lambda: customer_value(data)),
        guarded(data, "Price bands", {ORDER_LINES: ["category", "price_band", "quantity"]},
                lambda: price_bands(data)),
        guarded(data, "Top products by revenue",
                {PRODUCTS: ["product_id", "product_name", "brand", "category", "price_band",
                            "units_sold", "revenue"]},
                lambda: top_products(data)),
    ]
    return Page("sales", "Sales", "What sells, when, and to whom.", sections)
