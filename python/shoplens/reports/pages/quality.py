"""Data quality: what was rejected or quarantined and why, duplicates, dbt tests, freshness."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import plotly.graph_objects as go

from shoplens.reports.content import Chart, Notice, Page, Section, Table, esc, style
from shoplens.reports.data import ReportData

REJECTS = "raw.rejects"
EVENTS_QUARANTINE = "staging.stg_shop__events_quarantined"
LINES_QUARANTINE = "staging.stg_shop__transactions_quarantined"
RAW_LOADED = ["raw.events", "raw.customers", "raw.products", "raw.transactions"]


def rejects(data: ReportData) -> Section:
    """Input refused at the door (Kafka sink, importers), by source and reason."""
    title = "Rejected input by reason"
    if not data.exists(REJECTS):
        return Notice(title, f"No data yet: {REJECTS} is not in the warehouse (run "
                             "`shoplens generate`, `shoplens sink` or `shoplens load-events`).")
    if data.is_empty(REJECTS):
        return Notice(title, f"Nothing rejected: {REJECTS} is empty (the Kafka sink and the "
                             "importers accepted every message and row).")
    frame = data.df(f"""
        select source, reason, count(*) as n from {REJECTS}
        group by all order by n desc""")
    fig = go.Figure([
        go.Bar(name=esc(source), y=esc(part["reason"]), x=part["n"], orientation="h")
        for source, part in frame.groupby("source", sort=False)
    ])
    style(fig, height=max(260, 60 + 28 * frame["reason"].nunique()), barmode="stack",
          xaxis_title="rejected messages / rows", yaxis_autorange="reversed",
          margin={"l": 260, "r": 30, "t": 30, "b": 60})
    return Chart(title, fig,
                 f"From {REJECTS}: messages and rows that could not be parsed, kept whole with "
                 "the reason.")


def quarantine(data: ReportData) -> Section:
    """Rows staging set aside (duplicates, bad values), by table and reason."""
    title = "Quarantined rows by reason"
    parts = []
    for relation, label in ((EVENTS_QUARANTINE, "events"), (LINES_QUARANTINE, "order lines")):
        if data.exists(relation):
            part = data.df(f"select quarantine_reason as reason, count(*) as n from {relation} "
                           "group by all")
            part["table"] = label
            parts.append(part)
    frame = pd.concat(parts).sort_values("n", ascending=False)
    if frame.empty:
        return Notice(title, "Nothing was quarantined: every raw row passed the staging checks.")
    fig = go.Figure([
        go.Bar(name=table, y=esc(part["reason"]), x=part["n"], orientation="h")
        for table, part in frame.groupby("table", sort=False)
    ])
    style(fig, height=max(260, 60 + 28 * frame["reason"].nunique()), barmode="stack",
          xaxis_title="rows", yaxis_autorange="reversed",
          margin={"l": 260, "r": 30, "t": 30, "b": 60})
    return Chart(title, fig,
                 f"From {EVENTS_QUARANTINE} and {LINES_QUARANTINE}: raw rows staging does not "
                 "use, each with the first check it failed.")


def duplicates(data: ReportData) -> Table:
    """Raw rows against kept rows, and how many copies of an id were removed."""
    rows = []
    for raw, quarantined, label in (
        ("raw.events", EVENTS_QUARANTINE, "events"),
        ("raw.transactions", LINES_QUARANTINE, "order lines"),
    ):
        if not (data.exists(raw) and data.exists(quarantined)):
            continue
        row = data.df(f"""
            select (select count(*) from {raw}) as raw_rows,
                   count(*) filter (where quarantine_reason like 'duplicate%') as duplicates,
                   count(*) filter (where quarantine_reason not like 'duplicate%') as other,
                   count(*) as quarantined
            from {quarantined}""").iloc[0]
        kept = int(row["raw_rows"]) - int(row["quarantined"])
        share = row["duplicates"] / row["raw_rows"] if row["raw_rows"] else 0.0
        rows.append([label, f"{int(row['raw_rows']):,}", f"{int(row['duplicates']):,}",
                     f"{share:.2%}", f"{int(row['other']):,}", f"{kept:,}"])
    return Table("Duplicates removed", ["table", "raw rows", "duplicates removed", "share",
                 "other quarantined", "kept"], rows,
                 "A duplicate is a second copy of the same id; the first valid copy is kept.")


def dbt_tests(data: ReportData) -> Section:
    """Outcome of the last dbt build's tests, from run_results.json."""
    title = "dbt test results"
    artifact = data.dbt_artifact("run_results.json")
    if artifact is None:
        where = data.dbt_target or "the dbt target folder"
        return Notice(title, f"No data yet: no run_results.json in {where} (run `dbt build`, "
                             "or pass `shoplens report --dbt-target DIR`).")
    results, path = artifact
    tests = [r for r in results.get("results", []) if r.get("unique_id", "").startswith(
        ("test.", "unit_test."))]
    if not tests:
        return Notice(title, f"The last dbt command ({path}) ran no tests.")
    counts = Counter(r.get("status", "unknown") for r in tests)
    failing = [r for r in tests if r.get("status") not in ("pass", "success")]
    rows = [[status, f"{n:,}"] for status, n in counts.most_common()]
    rows += [[f"{r.get('status')}: {r['unique_id'].split('.')[2]}",
              str(r.get("failures") if r.get("failures") is not None else "")]
             for r in failing[:20]]
    generated = results.get("metadata", {}).get("generated_at", "unknown time")
    return Table(title, ["status / test", "count"], rows,
                 f"{len(tests)} data and unit tests in {path} (generated {generated}).")


def freshness(data: ReportData) -> Section:
    """Source freshness from dbt's sources.json, else the latest loaded_at per raw table."""
    artifact = data.dbt_artifact("sources.json")
    if artifact is not None:
        results, path = artifact
        rows = [[r["unique_id"].split(".", 2)[-1], r.get("status", ""),
                 str(r.get("max_loaded_at", "")),
                 f"{r.get('max_loaded_at_time_ago_in_s', 0) / 3600:,.1f}"]
                for r in results.get("results", [])]
        return Table("Source freshness", ["source", "status", "latest loaded_at", "hours ago"],
                     rows, f"From `dbt source freshness` ({path}).")
    rows = []
    for relation in RAW_LOADED:
        if data.exists(relation):
            latest, count = data.df(
                f"select max(loaded_at) as latest, count(*) as n from {relation}").iloc[0]
            rows.append([relation, f"{int(count):,}",
                         "" if pd.isna(latest) else f"{latest:%Y-%m-%d %H:%M:%S}"])
    if not rows:
        return Notice("Source freshness", "No data yet: no raw tables in the warehouse (run "
                                          "`shoplens generate` or `shoplens load-events`).")
    return Table("Source freshness", ["raw table", "rows", "latest loaded_at (UTC)"], rows,
                 "Read from the raw tables: no sources.json from `dbt source freshness` found "
                 "in the dbt target folder.")


def build(data: ReportData) -> Page:
    """The data quality page."""
    sections = [
        rejects(data),
        quarantine(data) if data.exists(EVENTS_QUARANTINE) else Notice(
            "Quarantined rows by reason", f"No data yet: {EVENTS_QUARANTINE} is not in the "
            "warehouse (run `dbt build`)."),
        duplicates(data) if data.exists(EVENTS_QUARANTINE) else Notice(
            "Duplicates removed", f"No data yet: {EVENTS_QUARANTINE} is not in the warehouse "
            "(run `dbt build`)."),
        dbt_tests(data),
        freshness(data),
    ]
    return Page("quality", "Data quality",
                "What did not make it into the marts and why, and whether the warehouse "
                "passed its tests.", sections)
