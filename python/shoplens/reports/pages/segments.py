"""Segments: customers in PCA space by segment, segment sizes and profiles, silhouette by k."""

from __future__ import annotations

import plotly.graph_objects as go

from shoplens.reports.content import PALETTE, Chart, Page, Table, esc, style
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded

SEGMENTS = "ml.customer_segments"
PROFILES = "ml.segment_profiles"
K_SELECTION = "ml.segment_k_selection"
SCATTER_SAMPLE = 6_000


def pca_scatter(data: ReportData) -> Chart:
    """A sample of customers on the first two principal components, coloured by segment."""
    frame = data.df(f"""
        select segment_name, pc1, pc2, customer_id from {SEGMENTS}
        using sample reservoir({SCATTER_SAMPLE} rows) repeatable (42)
        order by segment_name""")
    fig = go.Figure(
        [
            go.Scattergl(
                x=part["pc1"],
                y=part["pc2"],
                mode="markers",
                name=esc(name),
                marker={"size": 5, "opacity": 0.6, "color": PALETTE[i % len(PALETTE)]},
                customdata=part["customer_id"],
                hovertemplate="customer %{customdata}<extra>" + esc(name) + "</extra>",
            )
            for i, (name, part) in enumerate(frame.groupby("segment_name", sort=True))
        ]
    )
    style(fig, height=520, xaxis_title="principal component 1", yaxis_title="principal component 2")
    return Chart(
        "Customers in PCA space",
        fig,
        f"A random sample of up to {SCATTER_SAMPLE:,} customers; K-Means on "
        "standardised behaviour features, projected to two components.",
    )


def sizes(data: ReportData) -> Chart:
    """Customers per segment."""
    frame = data.df(
        f"select segment_name, count(*) as customers from {SEGMENTS} "
        "group by all order by customers desc"
    )
    names = sorted(frame["segment_name"])  # the scatter's colour order
    fig = go.Figure(
        go.Bar(
            x=esc(frame["segment_name"]),
            y=frame["customers"],
            text=frame["customers"],
            textposition="outside",
            marker_color=[PALETTE[names.index(n) % len(PALETTE)] for n in frame["segment_name"]],
        )
    )
    style(fig, height=340, yaxis_title="customers")
    return Chart("Segment sizes", fig, f"From {SEGMENTS}.")


def profiles(data: ReportData) -> Table:
    """Size, share and mean behaviour features per segment."""
    frame = data.df(f"select * from {PROFILES} order by customers desc")
    frame = frame.drop(columns=[c for c in ("segment_id",) if c in frame.columns])
    frame.columns = [c.removeprefix("mean_").replace("_", " ") for c in frame.columns]
    formats = {c: ",.2f" for c in frame.columns if frame[c].dtype.kind == "f"}
    formats["share"] = ".1%"
    return Table.from_frame(
        "Segment profiles",
        frame,
        f"From {PROFILES}: size, share and the mean of each behaviour feature per segment.",
        formats,
    )


def k_selection(data: ReportData) -> Chart:
    """Silhouette (and Davies-Bouldin) for each candidate number of segments."""
    frame = data.df(f"select k, silhouette, davies_bouldin, chosen from {K_SELECTION} order by k")
    chosen = frame[frame["chosen"]]
    fig = go.Figure(
        [
            go.Scatter(
                x=frame["k"],
                y=frame["silhouette"],
                mode="lines+markers",
                name="silhouette (higher is better)",
            ),
            go.Scatter(
                x=frame["k"],
                y=frame["davies_bouldin"],
                mode="lines+markers",
                name="Davies-Bouldin (lower is better)",
                yaxis="y2",
            ),
            go.Scatter(
                x=chosen["k"],
                y=chosen["silhouette"],
                mode="markers",
                name="chosen k",
                marker={"size": 14, "symbol": "star", "color": "#c8453c"},
            ),
        ]
    )
    style(
        fig,
        height=360,
        xaxis_title="k (number of segments)",
        xaxis_dtick=1,
        yaxis_title="silhouette",
        yaxis2={
            "title": "Davies-Bouldin",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "tickmode": "auto",
        },
    )
    return Chart("Silhouette by k", fig, f"From {K_SELECTION}.")


def build(data: ReportData) -> Page:
    """The segments page."""
    sections = [
        guarded(
            data,
            "Customers in PCA space",
            {SEGMENTS: ["customer_id", "segment_name", "pc1", "pc2"]},
            lambda: pca_scatter(data),
        ),
        guarded(data, "Segment sizes", {SEGMENTS: ["segment_name"]}, lambda: sizes(data)),
        guarded(
            data,
            "Segment profiles",
            {PROFILES: ["segment_name", "customers", "share"]},
            lambda: profiles(data),
        ),
        guarded(
            data,
            "Silhouette by k",
            {K_SELECTION: ["k", "silhouette", "davies_bouldin", "chosen"]},
            lambda: k_selection(data),
        ),
    ]
    return Page(
        "segments",
        "Segments",
        "Groups of customers who behave alike, found by K-Means and named by a fixed rule.",
        sections,
    )
