"""Monitoring: the deployed intent model on the sessions it scored live, and feature drift."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shoplens.reports.content import PALETTE, Chart, Page, Section, esc, style
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded

DAILY = "marts.mon_intent_daily"
RELIABILITY = "marts.mon_intent_reliability"
DRIFT = "marts.mon_feature_drift"
BINS = "marts.mon_feature_bins"
NOT_SCORED = (
    "nothing scored live has ended yet: stream sessions with `shoplens stream --sink --score`, "
    "then `dbt build`"
)
NO_DRIFT = "no trained model or no session in the latest window"


def daily_quality(data: ReportData) -> Chart:
    """ROC AUC, PR AUC, precision and recall at the threshold; Brier and the share flagged."""
    frame = data.df(f"select * from {DAILY} order by session_date")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for i, (column, name) in enumerate(
        [
            ("roc_auc", "ROC AUC"),
            ("pr_auc", "PR AUC"),
            ("precision_at_threshold", "precision at threshold"),
            ("recall_at_threshold", "recall at threshold"),
        ]
    ):
        fig.add_trace(
            go.Scatter(
                x=frame["session_date"],
                y=frame[column],
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i]},
                hovertemplate="%{x|%Y-%m-%d}: %{y:.3f}<extra>" + name + "</extra>",
            ),
            row=1,
            col=1,
        )
    for i, (column, name) in enumerate(
        [
            ("brier", "Brier score"),
            ("share_above_threshold", "share flagged high intent"),
            ("training_share_above_threshold", "share flagged in training"),
        ],
        start=4,
    ):
        fig.add_trace(
            go.Scatter(
                x=frame["session_date"],
                y=frame[column],
                mode="lines+markers" if column != "training_share_above_threshold" else "lines",
                name=name,
                line={
                    "color": PALETTE[i],
                    "dash": "dot" if column == "training_share_above_threshold" else "solid",
                },
                hovertemplate="%{x|%Y-%m-%d}: %{y:.3f}<extra>" + name + "</extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(range=[0, 1.02], title_text="ranking and threshold", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", title_text="calibration and flags", row=2, col=1)
    style(fig, height=560, legend={"orientation": "h", "y": -0.12})
    sessions = int(frame["scored_sessions"].sum())
    return Chart(
        "Live model quality per day",
        fig,
        f"From {DAILY}: {sessions:,} sessions scored live whose outcome is known (they bought, "
        "or have been idle longer than the inactivity gap), by the day they started; each with "
        "its last live score. A day with a single outcome has no AUC.",
    )


def reliability(data: ReportData) -> Chart:
    """Mean predicted probability against the observed purchase rate, all days pooled."""
    frame = data.df(f"""
        select score_bin, sum(sessions) as sessions,
               sum(mean_probability * sessions) / sum(sessions) as predicted,
               sum(purchase_rate * sessions) / sum(sessions) as observed
        from {RELIABILITY} group by score_bin order by score_bin""")
    fig = go.Figure(
        [
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="perfect calibration",
                line={"color": "#9aa5b1", "dash": "dot"},
                hoverinfo="skip",
            ),
            go.Scatter(
                x=frame["predicted"],
                y=frame["observed"],
                mode="lines+markers",
                name="live scores",
                marker={"size": 6 + 14 * frame["sessions"] / frame["sessions"].max()},
                customdata=frame["sessions"],
                hovertemplate="predicted %{x:.2f}, bought %{y:.2f} (%{customdata:,} sessions)"
                "<extra></extra>",
            ),
        ]
    )
    style(
        fig,
        xaxis_title="mean predicted probability",
        yaxis_title="share that bought",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
    )
    return Chart(
        "Reliability of the live scores",
        fig,
        f"From {RELIABILITY}, every monitored day pooled: sessions binned by their live "
        "probability; points on the diagonal are well calibrated, marker size is the bin's "
        "sessions.",
    )


def drift(data: ReportData) -> Chart:
    """PSI per feature, latest window against the training window, with the limit."""
    frame = data.df(f"select * from {DRIFT} order by psi")
    limit = float(frame["psi_limit"].iloc[0])
    fig = go.Figure(
        go.Bar(
            x=frame["psi"],
            y=esc(frame["feature"]),
            orientation="h",
            marker_color=[PALETTE[3] if d else PALETTE[0] for d in frame["drifted"]],
            customdata=esc(frame["most_shifted_bin"]),
            hovertemplate="%{y}: PSI %{x:.3f} (most shifted: %{customdata})<extra></extra>",
        )
    )
    fig.add_vline(x=limit, line_dash="dash", line_color=PALETTE[3])
    style(fig, height=120 + 24 * len(frame), xaxis_title="population stability index")
    drifted = frame.loc[frame["drifted"], "feature"].tolist()
    start, end = frame["window_start"].min(), frame["as_of_time"].max()
    verdict = (
        f"Above the limit: {', '.join(reversed(drifted))}."
        if drifted
        else "No feature above the limit."
    )
    return Chart(
        "Feature drift",
        fig,
        f"From {DRIFT}: each input of the deployed model in the sessions started {start:%Y-%m-%d} "
        f"to {end:%Y-%m-%d} against its training rows (deciles of the training values, or the "
        f"values of device and traffic source). Dashed line: the limit {limit:g} (var "
        f"monitoring_psi_limit; the dbt test warns above it). {verdict}",
    )


def drifted_feature(data: ReportData) -> Chart:
    """The bins of the most drifted feature: training against latest shares."""
    feature = data.scalar(f"select feature from {DRIFT} order by psi desc, feature limit 1")
    frame = data.df(
        f"select bin, training_share, latest_share from {BINS} where feature = ? "
        "order by bin_order, bin",
        [feature],
    )
    fig = go.Figure(
        [
            go.Bar(x=esc(frame["bin"]), y=frame["training_share"], name="training window"),
            go.Bar(x=esc(frame["bin"]), y=frame["latest_share"], name="latest window"),
        ]
    )
    style(fig, barmode="group", yaxis_tickformat=".0%", yaxis_title="share of sessions")
    return Chart(
        f"The most shifted feature: {feature}",
        fig,
        f"From {BINS}: share of sessions per bin of {feature} in the training window and in "
        "the latest window.",
    )


def build(data: ReportData) -> Page:
    """The monitoring page."""
    sections: list[Section] = [
        guarded(
            data,
            "Live model quality per day",
            {DAILY: ["session_date", "roc_auc", "brier", "share_above_threshold"]},
            lambda: daily_quality(data),
            empty_hint=NOT_SCORED,
        ),
        guarded(
            data,
            "Reliability of the live scores",
            {RELIABILITY: ["score_bin", "sessions", "mean_probability", "purchase_rate"]},
            lambda: reliability(data),
            empty_hint=NOT_SCORED,
        ),
        guarded(
            data,
            "Feature drift",
            {DRIFT: ["feature", "psi", "psi_limit", "drifted"]},
            lambda: drift(data),
            empty_hint=NO_DRIFT,
        ),
        guarded(
            data,
            "The most shifted feature",
            {DRIFT: ["feature", "psi"], BINS: ["bin", "training_share", "latest_share"]},
            lambda: drifted_feature(data),
            empty_hint=NO_DRIFT,
        ),
    ]
    return Page(
        "monitoring",
        "Monitoring",
        "Is the deployed purchase-intent model still right? Its live scores against what the "
        "sessions did, and how far its inputs moved from the training data.",
        sections,
    )
