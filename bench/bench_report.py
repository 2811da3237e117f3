"""Benchmark: build the report site from a warehouse of 1M generated sessions (target <= 10 s).

    .venv/bin/python -m bench.bench_report [--db PATH] [--sessions N] [--repeat 3]

Without --db it generates N sessions (default 1,000,000) into bench/out/report/ and runs
`dbt seed` + `dbt build` there (own target and log folders), then times `build_site` on it.
With --db it times an existing built warehouse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import ROOT, dbt_command, markdown_table, peak_rss_mib, write_section
from shoplens.reports import build_site
from shoplens.warehouse import connect

TARGET_SECONDS = 10.0
OUT = ROOT / "bench" / "out" / "report"


def prepare(sessions: int) -> tuple[Path, float]:
    """Generate and build a fresh warehouse; return it and the seconds the build took."""
    from shoplens.generate import generate_and_load

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    db = OUT / "warehouse.duckdb"
    generate_and_load(
        db, sessions=sessions, seed=42, days=365, end=dt.date(2026, 10, 31), progress=False
    )
    started = time.perf_counter()
    for args in (["seed"], ["build"]):
        cmd, env = dbt_command(args, db, OUT)
        subprocess.run(
            cmd,
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return db, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an already built warehouse")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.db:
        db, build_note = args.db, f"existing, {args.db}"
    else:
        db, seconds = prepare(args.sessions)
        build_note = f"generated, then `dbt seed` + `dbt build` ({seconds:.0f} s)"
    with connect(db, read_only=True) as con:
        sessions = con.execute("select count(*) from marts.fct_sessions").fetchone()[0]
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    times = []
    for i in range(args.repeat):
        out = OUT / f"site-{i}"
        shutil.rmtree(out, ignore_errors=True)
        result = build_site(db, out)
        times.append(result.seconds)
    charts = sum(result.charts.values())
    notices = sum(result.notices.values())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    best, worst = min(times), max(times)
    verdict = "PASS" if worst <= TARGET_SECONDS else "FAIL"
    rows = [
        [
            f"{sessions:,}",
            f"{customers:,}",
            len(result.charts),
            charts,
            notices,
            f"{best:.2f}",
            f"{worst:.2f}",
            f"{size:.1f}",
            f"{peak_rss_mib():.0f}",
            f"<= {TARGET_SECONDS:.0f} s",
            verdict,
        ]
    ]
    body = "\n\n".join(
        [
            markdown_table(
                [
                    "sessions",
                    "customers",
                    "pages",
                    "charts",
                    "sections without data",
                    "best s",
                    "worst s",
                    "site MiB",
                    "peak RSS MiB",
                    "target",
                    "result",
                ],
                rows,
            ),
            "Command: `.venv/bin/python -m bench.bench_report"
            f"{' --db ' + str(db) if args.db else ''}"
            f"` ({args.repeat} builds of the whole site in one process, the first with cold "
            f"imports; the result uses the worst; read-only connection; warehouse: "
            f"{build_note}). Scatter plots are sampled (5,000 sessions, 6,000 customers) and drawn "
            "with WebGL; every other chart reads an aggregate. Measured while other engineers' "
            "jobs shared the 2 cores, so times are pessimistic.",
        ]
    )
    write_section("report", "Report site build", body)
    print(body)


if __name__ == "__main__":
    main()
