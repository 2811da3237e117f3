"""Behaviour: what sessions look like, where carts are abandoned, the funnel."""

from __future__ import annotations

from itertools import pairwise

import plotly.graph_objects as go

from shoplens.reports.content import Chart, Page, esc, style
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded, require_rows
from shoplens.reports.stats import MIN_SUPPORT

SESSIONS = "marts.fct_sessions"
FUNNEL = "marts.mart_funnel_daily"
SESSION_FUNNEL = "marts.mart_session_funnel_daily"
GREY = "#c3c9d1"
SCATTER_SAMPLE = 5_000
CORRELATION_FEATURES = [
    ("product_views", "product views"),
    ("cart_additions", "cart additions"),
    ("pages_visited", "pages visited"),
    ("session_duration_seconds", "duration"),
    ("time_per_page_seconds", "time per page"),
    ("revenue", "revenue"),
    ("cast(purchase_made as integer)", "purchase made"),
]


def views_and_carts(data: ReportData) -> Chart:
    """Product views and cart additions per category (grouped bars)."""
    frame = data.df(f"""
        select category, sum(product_views) as views, sum(cart_additions) as carts
        from {FUNNEL} group by all order by views desc""")
    fig = go.Figure(
        [
            go.Bar(name="product views", x=esc(frame["category"]), y=frame["views"]),
            go.Bar(name="cart additions", x=esc(frame["category"]), y=frame["carts"]),
        ]
    )
    style(fig, barmode="group", yaxis_title="events")
    return Chart("Product views and cart additions by category", fig, f"All days in {FUNNEL}.")


def abandonment(data: ReportData) -> Chart:
    """Sessions that added a category's products to the cart: bought there or abandoned."""
    frame = data.df(f"""
        select category, sum(cart_sessions) - sum(abandoned_cart_sessions) as bought,
               sum(abandoned_cart_sessions) as abandoned
        from {FUNNEL} group by all having sum(cart_sessions) > 0
        order by abandoned / (bought + abandoned) desc""")
    require_rows(frame, f"no session added to cart in {FUNNEL}")
    share = frame["abandoned"] / (frame["bought"] + frame["abandoned"])
    fig = go.Figure(
        [
            go.Bar(
                name="bought", x=esc(frame["category"]), y=frame["bought"], marker_color="#3a9d5d"
            ),
            go.Bar(
                name="abandoned",
                x=esc(frame["category"]),
                y=frame["abandoned"],
                marker_color="#c8453c",
                text=[f"{s:.0%}" for s in share],
                textposition="outside",
            ),
        ]
    )
    style(fig, barmode="stack", yaxis_title="sessions with a cart addition")
    return Chart(
        "Cart abandonment by category",
        fig,
        f"From {FUNNEL}: sessions that added the category's products to the cart and "
        "bought none of them (label: share abandoned).",
    )


def duration_box(data: ReportData) -> Chart:
    """Session duration by purchase outcome, as box plots from SQL quantiles."""
    frame = data.df(f"""
        select purchase_made,
               quantile_cont(session_duration_seconds, [0.05, 0.25, 0.5, 0.75, 0.95]) as q,
               avg(session_duration_seconds) as mean, count(*) as n
        from {SESSIONS} group by all order by purchase_made""")
    fig = go.Figure()
    for row in frame.itertuples():
        q = [v / 60 for v in row.q]
        name = f"{'purchase' if row.purchase_made else 'no purchase'} (n={row.n:,})"
        fig.add_trace(
            go.Box(
                name=name,
                x=[name],
                q1=[q[1]],
                median=[q[2]],
                q3=[q[3]],
                lowerfence=[q[0]],
                upperfence=[q[4]],
                mean=[row.mean / 60],
                boxpoints=False,
            )
        )
    style(fig, yaxis_title="session duration (minutes)", showlegend=False)
    return Chart(
        "Session duration vs purchase",
        fig,
        "Whiskers at the 5th and 95th percentiles; dashed line: mean.",
    )


def pages_vs_duration(data: ReportData) -> Chart:
    """Pages visited against session duration for a sample of sessions (WebGL scatter)."""
    frame = data.df(f"""
        select pages_visited, session_duration_seconds / 60 as minutes, purchase_made,
               dominant_category
        from {SESSIONS} using sample reservoir({SCATTER_SAMPLE} rows) repeatable (42)""")
    fig = go.Figure()
    for bought, colour in ((False, "#2f6fb0"), (True, "#e07b39")):
        part = frame[frame["purchase_made"] == bought]
        fig.add_trace(
            go.Scattergl(
                x=part["pages_visited"],
                y=part["minutes"],
                mode="markers",
                name="purchase" if bought else "no purchase",
                marker={"size": 5, "opacity": 0.5, "color": colour},
                text=esc(part["dominant_category"]),
                hovertemplate="%{x} pages, %{y:.1f} min<br>%{text}<extra></extra>",
            )
        )
    style(fig, xaxis_title="pages visited", yaxis_title="session duration (minutes)")
    return Chart(
        "Pages visited vs session duration",
        fig,
        f"A random sample of {SCATTER_SAMPLE:,} sessions; zoom and hover for detail.",
    )


def funnel(data: ReportData) -> Chart:
    """Sessions that viewed products, added to cart, reached checkout and bought (each once)."""
    row = data.df(f"""
        select sum(viewing_sessions) as viewed, sum(cart_sessions) as carted,
               sum(checkout_sessions) as checkouts, sum(purchase_sessions) as bought
        from {SESSION_FUNNEL}""").iloc[0]
    steps = [int(row[c]) for c in ("viewed", "carted", "checkouts", "bought")]
    text = [f"{steps[0]:,} sessions"] + [
        f"{n:,} sessions<br>{n / before:.1%} of the step before" if before else f"{n:,} sessions"
        for before, n in pairwise(steps)
    ]
    fig = go.Figure(
        go.Funnel(
            y=["viewed products", "added to cart", "reached checkout", "bought"],
            x=steps,
            text=text,
            textinfo="text",
            marker_color="#2f6fb0",
        )
    )
    style(fig, height=360, margin={"l": 140, "r": 30, "t": 30, "b": 40})
    return Chart(
        "Funnel",
        fig,
        f"From {SESSION_FUNNEL}: sessions at each step, each session counted once at its "
        "furthest step and every step before it, all days.",
    )


def category_funnel(data: ReportData) -> Chart:
    """Per category: share of its viewing sessions that added to cart and that bought."""
    frame = data.df(f"""
        select category, sum(viewing_sessions) as viewing, sum(cart_sessions) as carts,
               sum(purchase_sessions) as buying
        from {FUNNEL} group by all having sum(viewing_sessions) > 0
        order by buying / viewing desc, category""")
    small = frame["viewing"] < MIN_SUPPORT
    fig = go.Figure(
        [
            go.Bar(
                name=name,
                x=esc(frame["category"]),
                y=frame[column] / frame["viewing"],
                customdata=frame[[column, "viewing"]].to_numpy(),
                marker_color=[GREY if s else colour for s in small],
                hovertemplate="%{x}: %{y:.1%} (%{customdata[0]:,} of %{customdata[1]:,} "
                "viewing sessions)<extra></extra>",
            )
            for name, column, colour in (
                ("added to cart", "carts", "#2f6fb0"),
                ("bought", "buying", "#3a9d5d"),
            )
        ]
    )
    style(fig, barmode="group", yaxis_tickformat=".0%", yaxis_title="share of viewing sessions")
    note = (
        f"From {FUNNEL}: per category, the sessions that viewed its products and the share of "
        "them that added its products to the cart and that bought them. A session that browses "
        "several categories counts in each, so these do not add up to the funnel above."
    )
    if small.any():
        note += (
            f" Grey: fewer than {MIN_SUPPORT} viewing sessions "
            f"({', '.join(frame.loc[small, 'category'])}), too few for a stable rate."
        )
    return Chart("Funnel by category", fig, note)


def correlation(data: ReportData) -> Chart:
    """Pearson correlation between the session features, computed in DuckDB."""
    names = [c for c, _ in CORRELATION_FEATURES]
    pairs = ", ".join(
        f"corr({a}, {b}) as c_{i}_{j}" for i, a in enumerate(names) for j, b in enumerate(names)
    )
    row = data.df(f"select {pairs} from {SESSIONS}").iloc[0]
    matrix = [[row[f"c_{i}_{j}"] for j in range(len(names))] for i in range(len(names))]
    labels = [label for _, label in CORRELATION_FEATURES]
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            text=[[f"{v:.2f}" for v in r] for r in matrix],
            texttemplate="%{text}",
        )
    )
    style(fig, height=480, yaxis_autorange="reversed")
    return Chart(
        "Feature correlation",
        fig,
        "Pearson correlation over all sessions; the last row shows how each feature "
        "moves with the purchase.",
    )


def build(data: ReportData) -> Page:
    """The behaviour page."""
    session_cols = [
        "dominant_category",
        "purchase_made",
        "session_duration_seconds",
        "pages_visited",
    ]
    funnel_cols = [
        "category",
        "product_views",
        "cart_additions",
        "viewing_sessions",
        "cart_sessions",
        "checkouts",
        "purchase_sessions",
        "abandoned_cart_sessions",
    ]
    sections = [
        guarded(
            data,
            "Product views and cart additions by category",
            {FUNNEL: funnel_cols},
            lambda: views_and_carts(data),
        ),
        guarded(
            data, "Cart abandonment by category", {FUNNEL: funnel_cols}, lambda: abandonment(data)
        ),
        guarded(
            data,
            "Session duration vs purchase",
            {SESSIONS: session_cols},
            lambda: duration_box(data),
        ),
        guarded(
            data,
            "Pages visited vs session duration",
            {SESSIONS: session_cols},
            lambda: pages_vs_duration(data),
        ),
        guarded(
            data,
            "Funnel",
            {
                SESSION_FUNNEL: [
                    "viewing_sessions",
                    "cart_sessions",
                    "checkout_sessions",
                    "purchase_sessions",
                ]
            },
            lambda: funnel(data),
        ),
        guarded(data, "Funnel by category", {FUNNEL: funnel_cols}, lambda: category_funnel(data)),
        guarded(
            data,
            "Feature correlation",
            {SESSIONS: [*(c for c, _ in CORRELATION_FEATURES[:-1]), "purchase_made"]},
            lambda: correlation(data),
        ),
    ]
    return Page(
        "behaviour",
        "Behaviour",
        "How sessions unfold: what people look at, what they put in the cart, and "
        "where they drop out.",
        sections,
    )
