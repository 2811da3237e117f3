"""Shared benchmark plumbing: machine description, peak memory, and docs/benchmarks.md sections."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import resource
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH_DOC = ROOT / "docs" / "benchmarks.md"
DBT = str(Path(sys.executable).with_name("dbt"))


def dbt_command(args: list[str], db: Path, work: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run `dbt *args` on the warehouse `db` from the
    project root, with its own target and log folders under `work`."""
    env = {**os.environ, "SHOPLENS_DB": str(db), "DBT_PROFILES_DIR": str(ROOT)}
    cmd = [
        DBT,
        *args,
        "--project-dir",
        str(ROOT),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    return cmd, env


def machine() -> str:
    """One line describing this machine: CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def today() -> str:
    return dt.date.today().isoformat()


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory of this process (or of its waited-for children) in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md with `body`."""
    text = BENCH_DOC.read_text() if BENCH_DOC.exists() else "# Benchmarks\n"
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n{body.strip()}\n\n"
        f"Machine: {machine()}. Date: {today()}.\n<!-- /bench:{name} -->"
    )
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + block + "\n")
    )
    BENCH_DOC.write_text(text)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
