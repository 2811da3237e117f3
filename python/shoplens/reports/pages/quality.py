"""Data quality: what was rejected or quarantined and why, duplicates, dbt tests, freshness."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from shoplens.reports.content import Chart, Notice, Page, Section, Table, esc, style
from shoplens.reports.data import (
    DBT_NODE_RESULTS,
    DBT_RUNS,
    DBT_SOURCE_FRESHNESS,
    ReportData,
)
from shoplens.reports.pages import guarded, require_rows

QUALITY = "marts.mart_data_quality"
RAW_LOADED = ["raw.events", "raw.customers", "raw.products", "raw.transactions"]
RUN_COLUMNS = [
    "invocation_id",
    "command",
    "selector",
    "select_args",
    "exclude_args",
    "full_refresh",
    "whole_project",
    "started_at",
    "finished_at",
    "nodes",
    "passed",
    "failed",
    "skipped",
]
RUNS_SHOWN = 20


def _bars(frame: pd.DataFrame, group: str, title: str, note: str, x_title: str) -> Chart:
    """Horizontal stacked bars of `n` per check, one trace per `group`."""
    fig = go.Figure(
        [
            go.Bar(name=esc(name), y=esc(part["check_name"]), x=part["n"], orientation="h")
            for name, part in frame.groupby(group, sort=False)
        ]
    )
    style(
        fig,
        height=max(260, 80 + 28 * frame["check_name"].nunique()),
        barmode="stack",
        xaxis_title=x_title,
        yaxis_autorange="reversed",
        margin={"l": 260, "r": 30, "t": 30, "b": 60},
    )
    return Chart(title, fig, note)


def rejects(data: ReportData) -> Section:
    """Input refused at the door (Kafka sink, importers), by source and reason."""
    title = "Rejected input by reason"
    frame = data.df(f"""
        select replace(dataset, 'rejects:', '') as source, check_name, row_count as n
        from {QUALITY} where check_kind = 'rejected_by_loader' order by n desc""")
    if frame.empty:
        return Notice(
            title,
            "Nothing rejected: the Kafka sink and the importers accepted every "
            "message and row (no raw.rejects rows at the last build).",
        )
    return _bars(
        frame,
        "source",
        title,
        f"From {QUALITY} (raw.rejects at the last build): messages and rows that "
        "could not be parsed, kept whole with the reason.",
        "rejected messages / rows",
    )


def sink_gaps(data: ReportData) -> Section:
    """Kafka messages the broker deleted before the sink read them, per topic."""
    title = "Kafka messages deleted before the sink read them"
    frame = data.df(f"""
        select replace(dataset, 'kafka:', '') as topic,
               sum(row_count) filter (where check_name = 'sink_gaps') as gaps,
               sum(row_count) filter (where check_name = 'messages_deleted_unread') as missing
        from {QUALITY} where check_kind = 'lost_before_read'
        group by dataset order by missing desc""")
    if frame.empty:
        return Notice(
            title,
            "No gaps: the Kafka sink read every message before the broker deleted it "
            "(no raw.sink_gaps rows at the last build).",
        )
    return Table(
        title,
        ["topic", "gaps", "messages missing"],
        [[r.topic, f"{r.gaps:,.0f}", f"{r.missing:,.0f}"] for r in frame.itertuples()],
        f"From {QUALITY} (raw.sink_gaps at the last build): offsets Kafka deleted "
        "(retention) while the sink was stopped or behind. These messages are not in the "
        "warehouse; the offsets are in raw.sink_gaps.",
    )


def quarantine(data: ReportData) -> Section:
    """Rows staging set aside (duplicates, bad values), by dataset and reason."""
    title = "Quarantined rows by reason"
    frame = data.df(f"""
        select dataset, check_name, row_count as n from {QUALITY}
        where check_kind in ('quarantined', 'duplicate_removed') order by n desc""")
    if frame.empty:
        return Notice(title, "Nothing was quarantined: every raw row passed the staging checks.")
    return _bars(
        frame,
        "dataset",
        title,
        f"From {QUALITY}: raw rows staging does not use, each with the first check it failed.",
        "rows",
    )


def duplicates(data: ReportData) -> Table:
    """Raw rows against usable rows, and how many duplicate copies were removed."""
    frame = data.df(f"""
        select dataset,
               sum(row_count) filter (where check_name = 'raw_rows') as raw_rows,
               coalesce(sum(row_count) filter (where check_kind = 'duplicate_removed'), 0)
                   as duplicates,
               coalesce(sum(row_count) filter (where check_kind = 'quarantined'), 0) as other,
               sum(row_count) filter (where check_name = 'usable_rows') as usable
        from {QUALITY} where dataset in ('events', 'transactions')
        group by dataset order by dataset""")
    rows = [
        [
            r.dataset,
            f"{r.raw_rows:,.0f}",
            f"{r.duplicates:,.0f}",
            f"{r.duplicates / r.raw_rows:.2%}" if r.raw_rows else "",
            f"{r.other:,.0f}",
            f"{r.usable:,.0f}",
        ]
        for r in frame.itertuples()
    ]
    repaired = data.scalar(
        f"select sum(row_count) from {QUALITY} where check_name = 'sessionized_by_inactivity'"
    )
    note = (
        "A duplicate is a second copy of the same id (of the same row, for REES46 files); the "
        "first valid copy is kept."
    )
    if repaired:
        note += (
            f" {int(repaired):,} sessions had no session id and were cut by 30 minutes of "
            "inactivity."
        )
    flags = dict(
        data.df(f"""
            select check_name, row_count from {QUALITY}
            where check_kind in ('flagged', 'repaired')""").itertuples(index=False)
    )
    priced = flags.get("non_positive_price", 0) + flags.get("non_finite_price", 0)
    if priced:
        note += (
            f" {int(priced):,} events are kept with their price left empty because it was zero, "
            f"negative or not a finite number; {int(flags.get('purchase_unusable_price', 0)):,} "
            "of them are purchases, counted without revenue."
        )
    if flags.get("session_id_split"):
        note += (
            f" {int(flags['session_id_split']):,} sessions were split off a session id shared "
            "by several users or resumed after 30 minutes of inactivity."
        )
    return Table(
        "Duplicates removed",
        ["dataset", "raw rows", "duplicates removed", "share", "other quarantined", "usable"],
        rows,
        note,
    )


def _when(value: object) -> str:
    return "" if value is None or pd.isna(value) else f"{value:%Y-%m-%d %H:%M:%S}"


def _command(run: dict) -> str:
    """The dbt command line of a recorded run, without paths: `build --selector after_burst`."""
    words = ["source freshness" if run["command"] == "freshness" else str(run["command"])]
    for flag, column in (
        ("--selector", "selector"),
        ("--select", "select_args"),
        ("--exclude", "exclude_args"),
    ):
        if isinstance(run[column], str) and run[column]:
            words.append(f"{flag} {run[column]}")
    if run["full_refresh"]:
        words.append("--full-refresh")
    return " ".join(words)


def last_full_build(data: ReportData) -> dict | None:
    """The latest `dbt build` of the whole project recorded in this warehouse, or None."""
    frame = data.df(f"""
        select * from {DBT_RUNS} where command = 'build' and whole_project
        order by started_at desc limit 1""")
    return None if frame.empty else frame.iloc[0].to_dict()


def dbt_tests(data: ReportData) -> Section:
    """Data and unit tests of the latest full `dbt build`, from the warehouse's own run log."""
    title = "dbt tests at the last full build"
    full = last_full_build(data)
    if full is None:
        return Notice(
            title,
            f"No full `dbt build` recorded in this warehouse yet ({DBT_RUNS} lists partial "
            "runs only): run `dbt build`.",
        )
    nodes = data.df(
        f"""select resource_type, status, node_name, failures
            from {DBT_NODE_RESULTS} where invocation_id = ? order by node_name""",
        [full["invocation_id"]],
    )
    tests = nodes[nodes["resource_type"].isin(["test", "unit_test"])]
    if tests.empty:
        return Notice(title, f"The last full build ({_when(full['started_at'])} UTC) ran no tests.")
    counts = tests.groupby(["status", "resource_type"]).size().unstack(fill_value=0)
    rows = [
        [
            status,
            f"{int(counts.loc[status].get('test', 0)):,}",
            f"{int(counts.loc[status].get('unit_test', 0)):,}",
        ]
        for status in counts.sum(axis=1).sort_values(ascending=False).index
    ]
    # failed tests and errored nodes of any kind (a model error skips the tests after it)
    failing = nodes[~nodes["status"].isin(["pass", "success", "skipped", "no-op"])]
    rows += [
        [
            f"{r.status}: {r.resource_type.replace('_', ' ')} {r.node_name}",
            "" if pd.isna(r.failures) or not r.failures else f"{int(r.failures):,} failing rows",
            "",
        ]
        for r in failing.head(RUNS_SHOWN).itertuples()
    ]
    data_tests = int((tests["resource_type"] == "test").sum())
    unit_tests = int((tests["resource_type"] == "unit_test").sum())
    return Table(
        title,
        ["status / test", "data tests", "unit tests"],
        rows,
        f"The last full `dbt build` of this warehouse, started {_when(full['started_at'])} UTC "
        f"and finished {_when(full['finished_at'])} UTC: {data_tests:,} data tests and "
        f"{unit_tests:,} unit tests, from {DBT_NODE_RESULTS}. Later partial runs are listed "
        "below.",
    )


def dbt_runs(data: ReportData) -> Section:
    """Every dbt invocation since the last full build (the build itself first), newest last."""
    title = "dbt runs since the last full build"
    full = last_full_build(data)
    since = full["started_at"] if full is not None else None
    frame = data.df(
        f"""select * from {DBT_RUNS}
            where ? is null or started_at >= ?
            order by started_at desc limit {RUNS_SHOWN}""",
        [since, since],
    )
    require_rows(frame, f"{DBT_RUNS} has no runs")
    rows = [
        [
            _when(r["started_at"]),
            _command(r),
            f"{(r['finished_at'] - r['started_at']).total_seconds():,.1f}",
            f"{int(r['nodes']):,}",
            f"{int(r['passed']):,}",
            f"{int(r['failed']):,}",
            f"{int(r['skipped']):,}",
        ]
        for r in frame.sort_values("started_at").to_dict("records")
    ]
    note = (
        f"From {DBT_RUNS}, written by dbt's on-run-end hook into this warehouse at the end of "
        "every dbt command run against it (nodes: models, seeds, tests and sources it ran)."
    )
    if full is None:
        title = "dbt runs"
        note += " No full build recorded yet."
    return Table(
        title,
        ["started (UTC)", "command", "seconds", "nodes", "passed", "failed", "skipped"],
        rows,
        note,
    )


def freshness(data: ReportData) -> Section:
    """Source freshness from the latest `dbt source freshness` recorded in the warehouse, else
    the latest loaded_at per raw table."""
    title = "Source freshness"
    if data.lacks({DBT_SOURCE_FRESHNESS: ["invocation_id", "snapshotted_at"]}) is None:
        frame = data.df(f"""
            select source_name, status, max_loaded_at, snapshotted_at, age_seconds
            from {DBT_SOURCE_FRESHNESS}
            where invocation_id = (select invocation_id from {DBT_SOURCE_FRESHNESS}
                                   order by snapshotted_at desc limit 1)
            order by source_name""")
        rows = [
            [r.source_name, r.status, _when(r.max_loaded_at), f"{r.age_seconds / 3600:,.1f}"]
            for r in frame.itertuples()
        ]
        return Table(
            title,
            ["source", "status", "latest loaded_at (UTC)", "hours old when checked"],
            rows,
            "From the latest `dbt source freshness` run against this warehouse "
            f"({_when(frame['snapshotted_at'].max())} UTC), recorded in {DBT_SOURCE_FRESHNESS}.",
        )
    rows = []
    for relation in RAW_LOADED:
        if data.exists(relation):
            latest, count = data.df(
                f"select max(loaded_at) as latest, count(*) as n from {relation}"
            ).iloc[0]
            rows.append([relation, f"{int(count):,}", _when(latest)])
    if not rows:
        return Notice(
            title,
            "No data yet: no raw tables in the warehouse (run "
            "`shoplens generate` or `shoplens load-events`).",
        )
    return Table(
        title,
        ["raw table", "rows", "latest loaded_at (UTC)"],
        rows,
        "Read from the raw tables: no `dbt source freshness` has been recorded in this warehouse.",
    )


def build(data: ReportData) -> Page:
    """The data quality page."""
    quality_cols = {QUALITY: ["dataset", "check_name", "check_kind", "row_count"]}
    sections = [
        guarded(data, "Rejected input by reason", quality_cols, lambda: rejects(data)),
        guarded(
            data,
            "Kafka messages deleted before the sink read them",
            quality_cols,
            lambda: sink_gaps(data),
        ),
        guarded(data, "Quarantined rows by reason", quality_cols, lambda: quarantine(data)),
        guarded(data, "Duplicates removed", quality_cols, lambda: duplicates(data)),
        guarded(
            data,
            "dbt tests at the last full build",
            {DBT_RUNS: RUN_COLUMNS},
            lambda: dbt_tests(data),
            missing_hint="dbt's on-run-end hook writes it: run `dbt build`",
        ),
        guarded(
            data,
            "dbt runs since the last full build",
            {DBT_RUNS: RUN_COLUMNS},
            lambda: dbt_runs(data),
            missing_hint="dbt's on-run-end hook writes it: run `dbt build`",
        ),
        freshness(data),
    ]
    return Page(
        "quality",
        "Data quality",
        "What did not make it into the marts and why, and whether the warehouse passed its tests.",
        sections,
    )
