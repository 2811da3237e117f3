"""Benchmark: what a `dbt build` with no new data costs, against the first build of the same run.

Run: .venv/bin/python -m bench.bench_rebuild [--sessions 50000]   (writes the `rebuild` section
of docs/benchmarks.md)

Generates the sessions (seed 42, 365 days, 1 % defects) into a fresh warehouse in a temporary
folder, runs `dbt seed`, then `dbt build` three times with no new data in between: the first
build trains every model, the next two should reuse them (shoplens.ml.reuse), then once more
without unit tests (dbt's production variant, reported beside). Records wall and
CPU seconds of each dbt process (CPU time does not grow with the machine's load; wall time
does), the warehouse file size, the registry (rows, versions, pipeline hashes), the cost of
the training-set fingerprints computed in DuckDB, where a no-op build's time goes (dbt's summed
execution seconds by kind of node) and the floor: dbt's own cost for a project of trivial nodes
in the same numbers (seeds, models, data tests, unit tests), built twice like the real one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.common import ROOT, dbt_command, markdown_table, write_section
from shoplens.generate import generate_and_load
from shoplens.ml import reuse

SESSIONS = 50_000
NOOP_TARGET_S = 15.0
SIZE_TOLERANCE = 1 << 20
END = dt.date(2026, 10, 31)
ML_PATH = "models/ml/"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def node_kind(unique_id: str, manifest: dict[str, Any]) -> str:
    """The kind of a run_results node: data test, unit test, SQL or Python model, seed, hook."""
    resource = unique_id.split(".")[0]
    if resource == "model":
        return f"{manifest.get(unique_id, {}).get('language', 'sql')} model"
    return {"test": "data test", "unit_test": "unit test", "operation": "hook"}.get(
        resource, resource
    )


def run_dbt(args: list[str], db: Path, work: Path, project: Path = ROOT) -> dict[str, Any]:
    """Run dbt on `db`; wall and CPU seconds, dbt's elapsed seconds, execution seconds of the
    ml models and summed by kind of node with the node counts, and the nodes that errored or
    failed (the run is measured either way)."""
    cmd, env = dbt_command(args, db, work)
    if project != ROOT:
        cmd[cmd.index("--project-dir") + 1] = str(project)
        env["DBT_PROFILES_DIR"] = str(project)
    cpu, began = _cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - began, _cpu_children() - cpu
    results_file = work / "target" / "run_results.json"
    if proc.returncode != 0 and not results_file.exists():
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}")
    run_results = json.loads(results_file.read_text())
    results = run_results["results"]
    manifest = json.loads((work / "target" / "manifest.json").read_text())["nodes"]
    ml = sum(
        r["execution_time"]
        for r in results
        if manifest.get(r["unique_id"], {}).get("original_file_path", "").startswith(ML_PATH)
        and r["unique_id"].startswith("model.")
    )
    kinds: dict[str, list[float]] = {}
    for r in results:
        entry = kinds.setdefault(node_kind(r["unique_id"], manifest), [0, 0.0])
        entry[0] += 1
        entry[1] += r["execution_time"]
    failed = sorted(
        r["unique_id"].split(".")[-1] for r in results if r["status"] in {"error", "fail"}
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "elapsed": run_results["elapsed_time"],
        "ml": ml,
        "kinds": kinds,
        "failed": failed,
    }


def floor_project(root: Path, kinds: dict[str, list[float]]) -> None:
    """Write a dbt project of trivial nodes in the numbers `kinds` counts (seeds, models, data
    tests, unit tests): two chains of one-row tables, unique and not_null tests spread over
    their columns, unit tests on the chained models. What it costs is dbt's own."""
    seeds = max(int(kinds.get("seed", [1])[0]), 1)
    models = max(int(sum(n for k, (n, _) in kinds.items() if k.endswith("model"))), 3)
    tests = int(kinds.get("data test", [0])[0])
    units = min(int(kinds.get("unit test", [0])[0]), models - 2)
    columns = max(-(-tests // models), 1)
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: floor\nversion: '0.1.0'\nconfig-version: 2\nprofile: floor\n"
        "flags:\n  send_anonymous_usage_stats: false\n  partial_parse: true\n"
        "models:\n  floor:\n    +materialized: table\n"
    )
    (root / "profiles.yml").write_text(
        "floor:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('SHOPLENS_DB') }}\"\n      threads: 2\n"
    )
    header = ",".join(f"c{c}" for c in range(columns))
    for s in range(seeds):
        (root / "seeds" / f"seed_{s}.csv").write_text(
            header + "\n" + ",".join("1" * columns) + "\n"
        )
    yml = ["models:"]
    for m in range(models):
        upstream = f"ref('m_{m - 2}')" if m >= 2 else f"ref('seed_{m % seeds}')"
        (root / "models" / f"m_{m}.sql").write_text(f"select * from {{{{ {upstream} }}}}\n")
        yml += [f"  - name: m_{m}", "    columns:"]
        for c in range(columns):
            index = c * models + m
            if index < tests:
                test = "unique" if index % 2 == 0 else "not_null"
                yml += [f"      - name: c{c}", f"        data_tests: [{test}]"]
    yml.append("unit_tests:" if units else "")
    row = "{" + ", ".join(f"c{c}: 1" for c in range(columns)) + "}"
    for u in range(units):
        yml += [
            f"  - name: unit_{u}",
            f"    model: m_{u + 2}",
            "    given:",
            f"      - input: ref('m_{u}')",
            f"        rows: [{row}]",
            "    expect:",
            f"      rows: [{row}]",
        ]
    (root / "models" / "_models.yml").write_text("\n".join(yml) + "\n")


def floor_build(kinds: dict[str, list[float]], work: Path) -> dict[str, Any]:
    """The second of two `dbt build`s of floor_project (the first parses from scratch)."""
    project, db = work / "floor", work / "floor.duckdb"
    floor_project(project, kinds)
    run_dbt(["build"], db, work / "floor-run", project)
    return run_dbt(["build"], db, work / "floor-run", project)


def registry_state(db: Path) -> list[tuple]:
    """(model_name, version, pipeline_sha256, pipeline_bytes) of every registry row."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "select model_name, version, pipeline_sha256, pipeline_bytes "
            "from ml.model_registry order by model_name, version"
        ).fetchall()


def fingerprint_ms(db: Path) -> dict[str, float]:
    """Milliseconds of each training fingerprint, computed as the training models do."""
    settings = reuse.Settings()
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.execute(
            "select feature_columns from ml.feature_definitions where feature_set = 'early_intent'"
        ).fetchall()[0][0]
        early = con.table("intermediate.int_sessions_early_featurized")
        sessions, lines = con.table("marts.fct_sessions"), con.table("marts.fct_order_lines")
        rules = con.table("reference.segment_naming_rules")
        runs = {
            "purchase intent": lambda: reuse.intent_fingerprint(
                early, sessions, columns.split(","), settings
            ),
            "category choice": lambda: reuse.category_fingerprint(lines, settings),
            "segments": lambda: reuse.segment_fingerprint(sessions, rules, settings),
        }
        out = {}
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            out[name] = (time.perf_counter() - began) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shoplens-bench-rebuild-"))
    load_before = os.getloadavg()
    try:
        db = work / "warehouse.duckdb"
        generate_and_load(
            db, sessions=args.sessions, seed=42, days=365, end=END, defect_rate=0.01, progress=False
        )
        run_dbt(["seed"], db, work)
        builds = []
        for label in ("first build", "no new data (1)", "no new data (2)"):
            figures = run_dbt(["build"], db, work)
            figures["size"] = db.stat().st_size
            figures["load"] = os.getloadavg()[0]
            builds.append((label, figures, registry_state(db)))
            print(label, figures, flush=True)
        # dbt's documented production variant, reported beside plain `dbt build` (not instead)
        before = db.stat().st_size
        variant = run_dbt(["build", "--exclude-resource-type", "unit_test"], db, work)
        variant["growth"] = db.stat().st_size - before
        variant["load"] = os.getloadavg()[0]
        print("without unit tests", variant, flush=True)
        fingerprints = fingerprint_ms(db)
        floor = floor_build(builds[-1][1]["kinds"], work)
        print("floor", floor, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    first = builds[0][1]
    rows = [
        [
            label,
            f"{f['wall']:.1f}",
            f"{f['cpu']:.1f}",
            f"{f['ml']:.1f}",
            f"{f['size'] / 2**20:.2f}",
            f"{len(reg)} rows, {sum(r[3] for r in reg) / 2**20:.1f} MiB of pipelines",
            f"{f['load']:.1f}",
        ]
        for label, f, reg in builds
    ]
    noop = [f for _, f, _ in builds[1:]]
    worst = max(f["wall"] for f in noop)
    worst_cpu = max(f["cpu"] for f in noop)
    same_registry = all(reg == builds[0][2] for _, _, reg in builds[1:])
    growth = [builds[i][1]["size"] - builds[i - 1][1]["size"] for i in range(1, len(builds))]
    verdict = {True: "PASS", False: "FAIL"}
    last = builds[-1][1]
    breakdown = ", ".join(
        f"{kind} {n} nodes {seconds:.1f} s"
        for kind, (n, seconds) in sorted(last["kinds"].items(), key=lambda kv: -kv[1][1])
    )
    floor_nodes = sum(n for n, _ in floor["kinds"].values())
    body = "\n".join(
        [
            f"Plain `dbt build` (every SQL and ml model, data and unit tests) three times on one "
            f"warehouse of {args.sessions:,} generated sessions (seed 42, 365 days, 1 % defects, "
            f"after `dbt seed`), with no new data after the first. Wall and CPU seconds of the dbt "
            f"process; ml s is dbt's execution time summed over the ml models; file is the "
            f"warehouse file after the build; load is the 1-minute load average after it "
            f"(2 cores).",
            "",
            markdown_table(
                ["build", "wall s", "CPU s", "ml s", "file MiB", "ml.model_registry", "load"],
                rows,
            ),
            "",
            f"- Target: a build with no new data <= {NOOP_TARGET_S:.0f} s: worst {worst:.1f} s "
            f"wall ({worst_cpu:.1f} s CPU), {verdict[worst <= NOOP_TARGET_S]}; "
            f"{first['wall'] / worst:.1f}x faster than the first build ({first['wall']:.1f} s) "
            f"in the same run.",
            f"- Where the last build with no new data went: dbt's own elapsed "
            f"{last['elapsed']:.1f} "
            f"s of {last['wall']:.1f} s wall (the rest is starting dbt and parsing the project); "
            f"execution seconds summed over dbt's 2 threads by kind: {breakdown}.",
            f"- Floor: a project of {floor_nodes} trivial nodes in the same numbers (one-row "
            f"tables, unique/not_null tests, unit tests), built the same way: {floor['wall']:.1f} "
            f"s wall, {floor['cpu']:.1f} s CPU; that is dbt's own cost for this many nodes on "
            f"this machine, before any data is read or written.",
            f"- Target: the registry unchanged (same model names, versions and pipeline sha256): "
            f"{verdict[same_registry]}.",
            f"- Target: each build with no new data leaves the warehouse file within 1 MiB of its "
            f"size before that build: {', '.join(f'{g / 2**20:+.2f} MiB' for g in growth)}, "
            f"{verdict[all(abs(g) <= SIZE_TOLERANCE for g in growth)]}; against the size after "
            f"the first build with no new data: "
            f"{(builds[-1][1]['size'] - builds[1][1]['size']) / 2**20:+.2f} MiB. Seeds and SQL "
            f"table models whose rows equal the stored ones are kept, blocks included "
            f"(macros/keep_unchanged.sql).",
            f"- Beside it, dbt's documented production variant `dbt build --exclude-resource-type "
            f"unit_test` (unit tests test logic with fixed inputs, not data), also with no new "
            f"data: {variant['wall']:.1f} s wall, {variant['cpu']:.1f} s CPU at load "
            f"{variant['load']:.1f}, {verdict[variant['wall'] <= NOOP_TARGET_S]} against the "
            f"{NOOP_TARGET_S:.0f} s target; file {variant['growth'] / 2**20:+.2f} MiB.",
            "- Training-set fingerprints (DuckDB, count + sum and xor of row hashes over the "
            "columns each model reads): "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in fingerprints.items())
            + ".",
            "- Nodes that errored or failed (each build is measured anyway): "
            + "; ".join(f"{label}: {', '.join(f['failed']) or 'none'}" for label, f, _ in builds)
            + ".",
            f"- Load average (1/5/15 min) before: {load_before[0]:.1f}/{load_before[1]:.1f}/"
            f"{load_before[2]:.1f}, after: {load_after[0]:.1f}/{load_after[1]:.1f}/"
            f"{load_after[2]:.1f} (other work shares the 2 cores when this is above ~2: wall "
            f"times then grow, CPU times much less).",
            "",
            f"Command: `.venv/bin/python -m bench.bench_rebuild --sessions {args.sessions}`",
        ]
    )
    write_section("rebuild", "dbt build with no new data (model reuse)", body)
    print(body)


if __name__ == "__main__":
    main()
