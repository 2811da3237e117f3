"""Benchmark: generate + load N sessions into a fresh warehouse (target: 1M in <= 60 s, < 4 GB).

Run: .venv/bin/python -m bench.bench_generate [--sessions 1000000 50000]
Each size runs in a fresh child process, so its peak memory is that run's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import markdown_table, write_section

TARGET_SESSIONS = 1_000_000
TARGET_SECONDS = 60.0
TARGET_MEMORY_MIB = 4096.0

CHILD = """
import datetime as dt, json, resource, sys, time
from shoplens.generate import generate_and_load
db, sessions = sys.argv[1], int(sys.argv[2])
began = time.perf_counter()
s = generate_and_load(db, sessions=sessions, seed=42, days=365, end=dt.date(2026, 10, 31),
                      defect_rate=0.01, progress=False)
print(json.dumps({"seconds": time.perf_counter() - began, "events": s.events,
                  "event_rows": s.events + s.event_defects["duplicate"],
                  "transactions": s.transactions, "customers": s.customers,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(sessions: int, workdir: Path) -> dict[str, float]:
    """One generate+load run of `sessions` into a fresh file, in a child process."""
    db = workdir / f"bench_{sessions}.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(sessions)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    result["sessions"] = sessions
    result["file_mib"] = db.stat().st_size / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, nargs="+", default=[50_000, TARGET_SESSIONS])
    args = parser.parse_args()
    rows, verdicts = [], []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_generate_") as tmp:
        for sessions in sorted(args.sessions):
            r = measure(sessions, Path(tmp))
            print(json.dumps(r), file=sys.stderr)
            rows.append(
                [
                    f"{sessions:,}",
                    f"{r['event_rows']:,}",
                    f"{r['transactions']:,}",
                    f"{r['customers']:,}",
                    f"{r['seconds']:.1f}",
                    f"{r['event_rows'] / r['seconds']:,.0f}",
                    f"{r['peak_mib']:,.0f}",
                    f"{r['file_mib']:,.0f}",
                ]
            )
            if sessions == TARGET_SESSIONS:
                ok = r["seconds"] <= TARGET_SECONDS and r["peak_mib"] < TARGET_MEMORY_MIB
                verdicts.append(
                    f"**{'PASS' if ok else 'FAIL'}**: 1,000,000 sessions generated and loaded in "
                    f"{r['seconds']:.1f} s (target <= {TARGET_SECONDS:.0f} s), peak memory "
                    f"{r['peak_mib']:,.0f} MiB (target < {TARGET_MEMORY_MIB:,.0f} MiB)."
                )
    body = "\n\n".join(
        [
            "`shoplens generate` path (`generate_and_load`, seed 42, 365 days, 1% defects) into a "
            "fresh DuckDB file; each size in a fresh process. Events counts include the "
            "duplicated defect rows.",
            "Command: `.venv/bin/python -m bench.bench_generate`. Load average when it ran: "
            f"{load:.1f} on {os.cpu_count()} cores (other work shares the machine when this is "
            "above about 1).",
            markdown_table(
                [
                    "sessions",
                    "event rows",
                    "order lines",
                    "customers",
                    "seconds",
                    "events/s",
                    "peak memory (MiB)",
                    "file (MiB)",
                ],
                rows,
            ),
            *(verdicts or ["Target size (1,000,000 sessions) not run: no verdict."]),
        ]
    )
    write_section("generate", "Generate + load (issue #2)", body)
    print(body)


if __name__ == "__main__":
    main()
