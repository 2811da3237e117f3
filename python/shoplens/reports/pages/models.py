"""Models: purchase intent against its baseline, the leakage demonstration, curves, confusion
matrix, importances, the category model, and the live scorer's activity."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shoplens.reports.content import (
    PALETTE,
    Bullets,
    Chart,
    Page,
    Section,
    Table,
    esc,
    style,
)
from shoplens.reports.data import ReportData
from shoplens.reports.pages import NoRows, guarded, require_rows

METRICS = "ml.model_metrics"
CURVES = "ml.model_curves"
CONFUSION = "ml.confusion_matrices"
IMPORTANCES = "ml.feature_importances"
LEAKAGE = "ml.leakage_comparison"
SCORES = "live.session_scores"
RECOMMENDATION_EVAL = "ml.recommendation_evaluation"
RECOMMENDATION_COLS = ["history_cut", "method", "k", "hit_rate", "sessions", "is_baseline"]
CUT_LABELS = {
    "before_checkout": "up to the first checkout (what the live recommender sees)",
    "browsing": "while browsing (before the first cart add)",
}

DEPLOYED = "purchase_intent"
DEPLOYED_EVAL = "time_holdout"
STRATIFIED = "purchase_intent_stratified"
REPLICATION = "session_study_replication"
REPLICATION_NO_LEAK = "session_study_replication_no_leak"
CATEGORY = "category_choice"
STUDY_ACCURACY = 0.9998
LIVE_HINT = "no streaming run has scored sessions yet: see `shoplens sink --help`"
SHOWN_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"]
METRIC_HEADERS = {"f1": "F1", "roc_auc": "ROC AUC", "pr_auc": "PR AUC", "brier": "Brier score"}
MODEL_LABELS = {
    DEPLOYED: "early intent, time hold-out (deployed)",
    STRATIFIED: "early intent, stratified 75/25",
    REPLICATION: "study replication, all features",
    REPLICATION_NO_LEAK: "study replication, leaky features removed",
}


def _test_metrics(data: ReportData, model: str) -> dict[str, tuple[float, float]]:
    frame = data.df(
        f"select metric, value, baseline_value from {METRICS} "
        "where model_name = ? and split = 'test' and class_label is null",
        [model],
    )
    return {r.metric: (r.value, r.baseline_value) for r in frame.itertuples()}


def intent_vs_baseline(data: ReportData) -> Section:
    """The deployed model's test metrics beside the majority-class baseline."""
    values = _test_metrics(data, DEPLOYED)
    if not values:
        raise NoRows(f"no test metrics for {DEPLOYED} in {METRICS}")
    shown = [m for m in SHOWN_METRICS if m in values]
    fig = go.Figure(
        [
            go.Bar(
                name="model",
                x=shown,
                y=[values[m][0] for m in shown],
                text=[f"{values[m][0]:.3f}" for m in shown],
                textposition="outside",
            ),
            go.Bar(
                name="majority baseline",
                x=shown,
                y=[values[m][1] for m in shown],
                text=[f"{values[m][1]:.3f}" for m in shown],
                textposition="outside",
                marker_color="#9aa5b1",
            ),
        ]
    )
    style(fig, barmode="group", yaxis_range=[0, 1.1], yaxis_title="score on the test set")
    brier = values.get("brier")
    note = (
        "The deployed model sees only events before a session's first checkout or "
        "purchase; trained on earlier sessions, tested on the latest weeks."
    )
    if brier:
        note += f" Brier score {brier[0]:.3f} (baseline {brier[1]:.3f}; lower is better)."
    return Chart("Purchase intent against the baseline", fig, note)


def metrics_table(data: ReportData) -> Table:
    """Every purchase-intent model's test metrics, baseline beside each."""
    frame = data.df(
        f"""
        select model_name, evaluation, metric, value, baseline_value from {METRICS}
        where split = 'test' and class_label is null and model_name <> ?
        order by model_name, metric""",
        [CATEGORY],
    )
    require_rows(frame, f"no purchase-intent test metrics in {METRICS}")
    rows = []
    for (model, evaluation), part in frame.groupby(["model_name", "evaluation"], sort=False):
        cells = {r.metric: f"{r.value:.3f} ({r.baseline_value:.3f})" for r in part.itertuples()}
        rows.append(
            [
                MODEL_LABELS.get(model, model),
                evaluation.replace("_", " "),
                *(cells.get(m, "") for m in [*SHOWN_METRICS, "brier"]),
            ]
        )
    return Table(
        "All intent models on their test sets",
        ["model", "evaluation", *(METRIC_HEADERS.get(m, m) for m in [*SHOWN_METRICS, "brier"])],
        rows,
        "Each cell: model (majority baseline). Thresholds were chosen on validation "
        "data carved from the training part, never on the test set.",
    )


def leakage(data: ReportData) -> Section:
    """The study's 99.98% beside the replication with and without the leaky features."""
    bars = [("session study (reported)", STUDY_ACCURACY, "#c8453c")]
    colours = {
        REPLICATION: "#e07b39",
        REPLICATION_NO_LEAK: "#2f6fb0",
        STRATIFIED: "#2f6fb0",
        DEPLOYED: "#3a9d5d",
    }
    for model in (REPLICATION, REPLICATION_NO_LEAK, STRATIFIED, DEPLOYED):
        values = _test_metrics(data, model)
        if "accuracy" in values:
            bars.append((MODEL_LABELS[model], values["accuracy"][0], colours[model]))
    if len(bars) == 1:
        raise NoRows(f"no purchase-intent accuracy in {METRICS}")
    deployed = _test_metrics(data, DEPLOYED)
    if "accuracy" in deployed:
        bars.append(("majority baseline", deployed["accuracy"][1], "#9aa5b1"))
    fig = go.Figure(
        go.Bar(
            x=[v for _, v, _ in bars],
            y=[label for label, _, _ in bars],
            orientation="h",
            text=[f"{v:.2%}" for _, v, _ in bars],
            textposition="outside",
            marker_color=[c for _, _, c in bars],
        )
    )
    style(
        fig,
        height=360,
        xaxis_range=[0, 1.12],
        xaxis_tickformat=".0%",
        xaxis_title="test accuracy",
        yaxis_autorange="reversed",
        margin={"l": 290, "r": 30, "t": 30, "b": 60},
    )
    note = (
        "The session study (the source study this project grew from: 50,000 synthetic "
        "sessions, a Random Forest on whole-session features, 75/25 split) reported 99.98% "
        "accuracy. Its whole-session features include what happens at and after the purchase "
        "decision."
    )
    if data.exists(LEAKAGE):
        leaky = data.df(
            f"select feature from {LEAKAGE} where leaks and "
            "feature_set = 'session_study' order by univariate_auc desc"
        )["feature"]
        if len(leaky):
            note += (
                f" Leaking features found by the screen: {', '.join(leaky)}; they are "
                "removed in the no-leak replication and absent from the early-intent "
                "features."
            )
    return Chart("Leakage: the session study's 99.98% against honest figures", fig, note)


def leakage_screen(data: ReportData) -> Table:
    """Per-feature univariate AUC and whether it leaks."""
    frame = data.df(f"""
        select feature_set as "feature set", feature, univariate_auc as "univariate AUC",
               permutation_importance as "permutation importance (replication)",
               case when leaks then 'LEAKS' else 'no' end as leaks,
               case when in_no_leak_model or in_early_intent_model then 'yes' else 'no' end
                   as "used by an honest model"
        from {LEAKAGE} order by feature_set desc, univariate_auc desc""")
    return Table.from_frame(
        "Leakage screen",
        frame,
        "Univariate AUC of each feature alone (0.5 = no signal). A feature "
        "that alone nearly predicts the purchase was measured after it.",
        {"univariate AUC": ".3f", "permutation importance (replication)": ".3f"},
    )


def curves(data: ReportData, curve: str) -> Chart:
    """ROC or PR curves of the intent models on their test sets."""
    frame = data.df(
        f"select model_name, x, y from {CURVES} where curve = ? "
        "and model_name <> ? order by model_name, point",
        [curve, CATEGORY],
    )
    require_rows(frame, f"no {curve.upper()} curve points in {CURVES}")
    fig = go.Figure()
    for model, part in frame.groupby("model_name", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["x"], y=part["y"], mode="lines", name=esc(MODEL_LABELS.get(model, model))
            )
        )
    if curve == "roc":
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="chance",
                line={"dash": "dot", "color": "#9aa5b1"},
            )
        )
        style(fig, xaxis_title="false positive rate", yaxis_title="true positive rate")
        return Chart("ROC curves", fig, f"From {CURVES}, test sets.")
    style(fig, xaxis_title="recall", yaxis_title="precision")
    return Chart("Precision-recall curves", fig, f"From {CURVES}, test sets.")


def confusion(data: ReportData) -> Chart:
    """The deployed model's confusion matrix on its test set."""
    frame = data.df(
        f"""select actual, predicted, count from {CONFUSION}
                        where model_name = ? and split = 'test'""",
        [DEPLOYED],
    )
    require_rows(frame, f"no confusion matrix for {DEPLOYED} in {CONFUSION}")
    grid = frame.pivot_table(
        index="actual", columns="predicted", values="count", aggfunc="sum", fill_value=0
    )
    labels = {"0": "no purchase", "1": "purchase", "False": "no purchase", "True": "purchase"}
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=[labels.get(str(c), str(c)) for c in grid.columns],
            y=[labels.get(str(i), str(i)) for i in grid.index],
            colorscale="Blues",
            text=grid.values,
            texttemplate="%{text:,}",
            showscale=False,
        )
    )
    style(
        fig, height=360, xaxis_title="predicted", yaxis_title="actual", yaxis_autorange="reversed"
    )
    return Chart("Confusion matrix (deployed model)", fig, f"From {CONFUSION}, test set.")


def importances(data: ReportData, model: str, title: str) -> Chart:
    """Top features by impurity (left) and by permutation importance (right)."""
    frame = data.df(
        f"""select kind, feature, importance, importance_std from {IMPORTANCES}
                        where model_name = ? and rank <= 12 order by kind, rank""",
        [model],
    )
    require_rows(frame, f"no importances for {model} in {IMPORTANCES}")
    kinds = [k for k in ("impurity", "permutation") if k in set(frame["kind"])]
    fig = make_subplots(
        rows=1,
        cols=len(kinds),
        horizontal_spacing=0.25,
        subplot_titles=[f"{k} importance" for k in kinds],
    )
    for col, kind in enumerate(kinds, start=1):
        part = frame[frame["kind"] == kind]
        error = {"type": "data", "array": part["importance_std"]} if kind == "permutation" else None
        fig.add_trace(
            go.Bar(
                y=esc(part["feature"]),
                x=part["importance"],
                orientation="h",
                error_x=error,
                name=kind,
                showlegend=False,
                marker_color=PALETTE[col - 1],
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    style(fig, height=440, margin={"l": 30, "r": 30, "t": 40, "b": 40})
    return Chart(
        title,
        fig,
        f"From {IMPORTANCES}, top 12 of each: impurity (mean decrease over "
        "the trees) and permutation importance on held-out rows (bars: "
        "spread over repeats).",
    )


def category_model(data: ReportData) -> Section:
    """The category-choice model: accuracy and macro-F1 against the baseline, per class."""
    values = _test_metrics(data, CATEGORY)
    if not values:
        raise NoRows(
            f"no test metrics for {CATEGORY} in {METRICS} (it needs order lines with demographics)"
        )
    items = [
        f"{metric}: {model:.3f} against a majority baseline of {base:.3f}"
        for metric, (model, base) in sorted(values.items())
    ]
    beats = (
        values.get("accuracy", (0, 1))[0] > values.get("accuracy", (0, 1))[1]
        and values.get("macro_f1", (0, 1))[0] > values.get("macro_f1", (0, 1))[1]
    )
    items.append(
        "It beats the baseline."
        if beats
        else "It does NOT beat the majority baseline on both measures: demographics and "
        "time say little about which category a customer buys."
    )
    return Bullets(
        "Category choice model",
        items,
        "Random Forest on age, gender, location, hour, weekday and month; 80/20.",
    )


def class_report(data: ReportData) -> Table:
    """Per-class precision, recall and F1 of the category model, baseline beside each."""
    frame = data.df(
        f"""
        select class_label as category,
               any_value(n_rows) as support,
               max(value) filter (where metric = 'precision') as precision,
               max(value) filter (where metric = 'recall') as recall,
               max(value) filter (where metric = 'f1') as f1,
               max(baseline_value) filter (where metric = 'f1') as baseline_f1
        from {METRICS}
        where model_name = ? and split = 'test' and class_label is not null
        group by all order by support desc, category""",
        [CATEGORY],
    )
    require_rows(frame, f"no per-class metrics for {CATEGORY} in {METRICS}")
    return Table.from_frame(
        "Category model per class",
        frame,
        f"From {METRICS} (test set; the baseline always predicts the most common category).",
        {"precision": ".3f", "recall": ".3f", "f1": ".3f", "baseline_f1": ".3f", "support": ",d"},
    )


def _hit_rates(data: ReportData) -> dict[tuple[str, str, int], tuple[float, int]]:
    frame = data.df(f"select history_cut, method, k, hit_rate, sessions from {RECOMMENDATION_EVAL}")
    require_rows(frame, f"no rows in {RECOMMENDATION_EVAL}")
    return {
        (r.history_cut, r.method, int(r.k)): (r.hit_rate, r.sessions) for r in frame.itertuples()
    }


def recommendation_verdict(data: ReportData) -> Bullets:
    """Whether session history (and the category model) add anything over the baselines, per
    history cut, computed from the hold-out hit rates."""
    rates = _hit_rates(data)
    items = []
    for cut in sorted({c for c, _, _ in rates}):
        label = CUT_LABELS.get(cut, cut)
        parts = []
        for k in (1, 3):
            best = max(rates[(cut, m, k)][0] for m in ("most_popular", "customer_most_viewed"))
            rec, hist = rates[(cut, "recommender", k)][0], rates[(cut, "session_history", k)][0]
            parts.append((k, rec, best, hist))
        sessions = rates[(cut, "recommender", 1)][1]
        gains = [
            f"{(rec - best) * 100:+.1f} points at hit@{k} ({rec:.1%} vs {best:.1%})"
            for k, rec, best, _ in parts
        ]
        if all(rec <= best for _, rec, best, _ in parts):
            items.append(
                f"{label}: session history adds NOTHING over the best baseline "
                f"({'; '.join(gains)}; {sessions:,} held-out sessions)."
            )
        else:
            items.append(
                f"{label}: the recommender against the best baseline: {'; '.join(gains)} "
                f"({sessions:,} held-out sessions)."
            )
        if all(rec <= hist for _, rec, _, hist in parts):
            items.append(
                f"{label}: the category model adds nothing over session history alone "
                f"(hit@1 {parts[0][1]:.1%} with it, {parts[0][3]:.1%} without)."
            )
    return Bullets(
        "Session recommendations against the baselines",
        items,
        f"From {RECOMMENDATION_EVAL}: a time hold-out (the latest 20% of sessions with a "
        "purchase); the category model retrained on order lines before the cut-off. A hit: a "
        "category the session bought is among the top k.",
    )


def recommendation_table(data: ReportData) -> Table:
    """Hit rate at 1 and 3 of each method, baselines first."""
    frame = data.df(
        f"""
        select history_cut as history, description as method,
               max(hit_rate) filter (where k = 1) as hit_at_1,
               max(hit_rate) filter (where k = 3) as hit_at_3,
               any_value(sessions) as sessions
        from {RECOMMENDATION_EVAL}
        group by history_cut, method, description, is_baseline
        order by history_cut, is_baseline desc, method"""
    )
    require_rows(frame, f"no rows in {RECOMMENDATION_EVAL}")
    return Table.from_frame(
        "Recommendation hit rates",
        frame,
        f"From {RECOMMENDATION_EVAL}; before_checkout is what the live recommender publishes "
        "to ecommerce_recommendations and live.session_recommendations.",
        {"hit_at_1": ".3f", "hit_at_3": ".3f", "sessions": ",d"},
    )


def live_scores(data: ReportData) -> Table:
    """How many sessions the live scorer rated, how many it flagged, with which model."""
    row = data.df(f"""
        select count(*) as scorings, count(distinct session_id) as sessions,
               count(distinct session_id) filter (where high_intent) as flagged,
               avg(probability) as mean_probability,
               string_agg(distinct model_name || ' v' || model_version, ', ') as models,
               min(scored_at) as first_scored, max(scored_at) as last_scored
        from {SCORES}""").iloc[0]
    return Table(
        "Live scoring",
        [
            "scorings",
            "sessions",
            "sessions flagged high intent",
            "mean probability",
            "model",
            "first",
            "last",
        ],
        [
            [
                f"{int(row['scorings']):,}",
                f"{int(row['sessions']):,}",
                f"{int(row['flagged']):,}",
                f"{row['mean_probability']:.3f}",
                row["models"],
                f"{row['first_scored']:%Y-%m-%d %H:%M:%S}",
                f"{row['last_scored']:%Y-%m-%d %H:%M:%S}",
            ]
        ],
        f"From {SCORES}, written by `shoplens sink --score` as sessions stream in.",
    )


def live_distribution(data: ReportData) -> Chart:
    """Each scored session's latest purchase probability, against the model's threshold."""
    frame = data.df(f"""
        select arg_max(probability, scored_at) as probability,
               arg_max(threshold, scored_at) as threshold
        from {SCORES} group by session_id""")
    fig = go.Figure(
        go.Histogram(
            x=frame["probability"],
            xbins={"start": 0, "end": 1, "size": 0.05},
            marker_color="#2f6fb0",
            name="sessions",
        )
    )
    threshold = float(frame["threshold"].median())
    fig.add_vline(
        x=threshold,
        line_dash="dash",
        line_color="#c8453c",
        annotation_text=f"threshold {threshold:.2f}",
    )
    style(
        fig,
        height=340,
        xaxis_title="latest purchase probability",
        xaxis_range=[0, 1],
        yaxis_title="sessions (log scale)",
        yaxis_type="log",
        showlegend=False,
    )
    flagged = int((frame["probability"] >= threshold).sum())
    return Chart(
        "Live scores",
        fig,
        f"From {SCORES}: the latest score of each in-progress session ({len(frame):,}); the "
        f"{flagged:,} right of the threshold were published to ecommerce_high_intent. The "
        "count axis is logarithmic so the few flagged sessions stay visible.",
    )


def build(data: ReportData) -> Page:
    """The models page."""
    metric_cols = [
        "model_name",
        "evaluation",
        "split",
        "class_label",
        "metric",
        "value",
        "baseline_value",
    ]
    live_cols = [
        "session_id",
        "scored_at",
        "probability",
        "threshold",
        "high_intent",
        "model_name",
        "model_version",
    ]
    sections = [
        guarded(
            data,
            "Purchase intent against the baseline",
            {METRICS: metric_cols},
            lambda: intent_vs_baseline(data),
        ),
        guarded(
            data,
            "Leakage: the session study's 99.98% against honest figures",
            {METRICS: metric_cols},
            lambda: leakage(data),
        ),
        guarded(
            data,
            "Leakage screen",
            {
                LEAKAGE: [
                    "feature_set",
                    "feature",
                    "univariate_auc",
                    "leaks",
                    "permutation_importance",
                    "in_no_leak_model",
                    "in_early_intent_model",
                ]
            },
            lambda: leakage_screen(data),
        ),
        guarded(
            data,
            "All intent models on their test sets",
            {METRICS: metric_cols},
            lambda: metrics_table(data),
        ),
        guarded(
            data,
            "ROC curves",
            {CURVES: ["model_name", "curve", "point", "x", "y"]},
            lambda: curves(data, "roc"),
        ),
        guarded(
            data,
            "Precision-recall curves",
            {CURVES: ["model_name", "curve", "point", "x", "y"]},
            lambda: curves(data, "pr"),
        ),
        guarded(
            data,
            "Confusion matrix (deployed model)",
            {CONFUSION: ["model_name", "split", "actual", "predicted", "count"]},
            lambda: confusion(data),
        ),
        guarded(
            data,
            "Feature importances (deployed model)",
            {IMPORTANCES: ["model_name", "kind", "feature", "importance", "rank"]},
            lambda: importances(data, DEPLOYED, "Feature importances (deployed model)"),
        ),
        guarded(
            data, "Category choice model", {METRICS: metric_cols}, lambda: category_model(data)
        ),
        guarded(
            data,
            "Category model per class",
            {METRICS: [*metric_cols, "class_label"]},
            lambda: class_report(data),
        ),
        guarded(
            data,
            "Feature importances (category model)",
            {IMPORTANCES: ["model_name", "kind", "feature", "importance", "rank"]},
            lambda: importances(data, CATEGORY, "Feature importances (category model)"),
        ),
        guarded(
            data,
            "Session recommendations against the baselines",
            {RECOMMENDATION_EVAL: RECOMMENDATION_COLS},
            lambda: recommendation_verdict(data),
        ),
        guarded(
            data,
            "Recommendation hit rates",
            {RECOMMENDATION_EVAL: [*RECOMMENDATION_COLS, "description"]},
            lambda: recommendation_table(data),
        ),
        guarded(
            data,
            "Live scoring",
            {SCORES: live_cols},
            lambda: live_scores(data),
            empty_hint=LIVE_HINT,
            missing_hint=LIVE_HINT,
        ),
        guarded(
            data,
            "Live scores",
            {SCORES: live_cols},
            lambda: live_distribution(data),
            empty_hint=LIVE_HINT,
            missing_hint=LIVE_HINT,
        ),
    ]
    return Page(
        "models",
        "Models",
        "How well purchases can be predicted honestly, why the session study's reported "
        "99.98% accuracy was too good to be true, and what the live scorer is doing.",
        sections,
    )
