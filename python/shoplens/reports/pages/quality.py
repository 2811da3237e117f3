"""Data quality: what was rejected or quarantined and why, duplicates, dbt tests, freshness."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import plotly.graph_objects as go

from shoplens.reports.content import Chart, Notice, Page, Section, Table, esc, style
from shoplens.reports.data import ReportData
from shoplens.reports.pages import guarded

QUALITY = "marts.mart_data_quality"
RAW_LOADED = ["raw.events", "raw.customers", "raw.products", "raw.transactions"]


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
    note = "A duplicate is a second copy of the same id; the first valid copy is kept."
    if repaired:
        note += (
            f" {int(repaired):,} sessions had no session id and were cut by 30 minutes of "
            "inactivity."
        )
    return Table(
        "Duplicates removed",
        ["dataset", "raw rows", "duplicates removed", "share", "other quarantined", "usable"],
        rows,
        note,
    )


def dbt_tests(data: ReportData) -> Section:
    """Outcome of the last dbt build's tests, from run_results.json."""
    title = "dbt test results"
    artifact = data.dbt_artifact("run_results.json")
    if artifact is None:
        where = data.dbt_target or "the dbt target folder"
        return Notice(
            title,
            f"No data yet: no run_results.json in {where} (run `dbt build`, "
            "or pass `shoplens report --dbt-target DIR`).",
        )
    results, path = artifact
    tests = [
        r
        for r in results.get("results", [])
        if r.get("unique_id", "").startswith(("test.", "unit_test."))
    ]
    if not tests:
        return Notice(title, f"The last dbt command ({path}) ran no tests.")
    counts = Counter(r.get("status", "unknown") for r in tests)
    failing = [r for r in tests if r.get("status") not in ("pass", "success")]
    rows = [[status, f"{n:,}"] for status, n in counts.most_common()]
    rows += [
        [
            f"{r.get('status')}: {r['unique_id'].split('.')[2]}",
            str(r.get("failures") if r.get("failures") is not None else ""),
        ]
        for r in failing[:20]
    ]
    generated = results.get("metadata", {}).get("generated_at", "unknown time")
    return Table(
        title,
        ["status / test", "count"],
        rows,
        f"{len(tests)} data and unit tests in {path} (generated {generated}).",
    )


def freshness(data: ReportData) -> Section:
    """Source freshness from dbt's sources.json, else the latest loaded_at per raw table."""
    artifact = data.dbt_artifact("sources.json")
    if artifact is not None:
        results, path = artifact
        rows = [
            [
                r["unique_id"].split(".", 2)[-1],
                r.get("status", ""),
                str(r.get("max_loaded_at", "")),
                f"{r.get('max_loaded_at_time_ago_in_s', 0) / 3600:,.1f}",
            ]
            for r in results.get("results", [])
        ]
        return Table(
            "Source freshness",
            ["source", "status", "latest loaded_at", "hours ago"],
            rows,
            f"From `dbt source freshness` ({path}).",
        )
    rows = []
    for relation in RAW_LOADED:
        if data.exists(relation):
            latest, count = data.df(
                f"select max(loaded_at) as latest, count(*) as n from {relation}"
            ).iloc[0]
            rows.append(
                [
                    relation,
                    f"{int(count):,}",
                    "" if pd.isna(latest) else f"{latest:%Y-%m-%d %H:%M:%S}",
                ]
            )
    if not rows:
        return Notice(
            "Source freshness",
            "No data yet: no raw tables in the warehouse (run "
            "`shoplens generate` or `shoplens load-events`).",
        )
    return Table(
        "Source freshness",
        ["raw table", "rows", "latest loaded_at (UTC)"],
        rows,
        "Read from the raw tables: no sources.json from `dbt source freshness` found "
        "in the dbt target folder.",
    )


def build(data: ReportData) -> Page:
    """The data quality page."""
    quality_cols = {QUALITY: ["dataset", "check_name", "check_kind", "row_count"]}
    sections = [
        guarded(data, "Rejected input by reason", quality_cols, lambda: rejects(data)),
        guarded(data, "Quarantined rows by reason", quality_cols, lambda: quarantine(data)),
        guarded(data, "Duplicates removed", quality_cols, lambda: duplicates(data)),
        dbt_tests(data),
        freshness(data),
    ]
    return Page(
        "quality",
        "Data quality",
        "What did not make it into the marts and why, and whether the warehouse passed its tests.",
        sections,
    )
