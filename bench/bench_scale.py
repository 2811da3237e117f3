"""Benchmark: a REES46-sized month on this machine, the user's path from a CSV file to the report.

Run: .venv/bin/python -m bench.bench_scale [--sizes 100000,1000000,42000000] [--work DIR]
(writes the `scale` section of docs/benchmarks.md after every step, so an interrupted run still
leaves what it measured)

For each size (events): writes a REES46-format CSV with the generator (`shoplens generate
--format rees46`, seed 42, October 2019, the real files' quirks; no download; reused from
--work/data when present), then in a fresh warehouse runs what a user runs:

1. a bare DuckDB `read_csv` of the same file into a table of a throw-away database (the import
   yardstick, measured in the same run);
2. `shoplens load-events FILE`;
3. `dbt seed`, then `dbt build` (every SQL model, data and unit test and ml model);
4. the after-burst refresh: `shoplens load-events` of a second file of 10,000 newer events,
   then `dbt build --selector after_burst`;
5. `shoplens report --out DIR`.

Each step is a separate process: wall seconds, CPU seconds (user + system, from wait4: they do
not grow with other work on the machine the way wall seconds do), peak resident memory of the
largest process of its tree (wait4's ru_maxrss, and psutil polling of the tree's sum), the
1-minute load average before and after, the warehouse file size after it and the peak size of
DuckDB's temp directory (`<warehouse>.tmp`, where DuckDB spills what does not fit in memory).
The slowest dbt nodes of the full build and of the after-burst refresh (dbt's run_results) are
listed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from bench.common import ROOT, markdown_table, write_section

BIN = Path(sys.executable).parent
DBT, SHOPLENS = str(BIN / "dbt"), str(BIN / "shoplens")
SIZES = (100_000, 1_000_000, 42_000_000)
# Events a generated session gives in the REES46 file (product events only), measured on this
# generator with 31 days ending 2019-10-31: 113,593 rows from 20,000 sessions.
EVENTS_PER_SESSION = 5.68
SEED, BURST_SEED = 42, 43
BURST_EVENTS = 10_000
GOALS = {
    "import_s": 120.0,  # shoplens load-events, wall
    "import_ratio": 2.0,  # ... against a bare read_csv of the same file, wall and CPU
    "build_s": 600.0,  # dbt build with ml
    "memory_gib": 12.0,  # any one process
    "refresh_s": 10.0,  # dbt build --selector after_burst
    "report_s": 10.0,
}
STEPS = (
    ("read_csv", "bare DuckDB read_csv"),
    ("import", "shoplens load-events"),
    ("seed", "dbt seed"),
    ("build", "dbt build (with ml)"),
    ("burst_import", "load-events, 10,000 more"),
    ("refresh", "dbt build --selector after_burst"),
    ("report", "shoplens report"),
)
BARE_READ_CSV = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "con.execute('create table events as select * from read_csv(?)', [sys.argv[2]])\n"
    "print(con.execute('select count(*) from events').fetchone()[0])\n"
)


# --stop-at: a step still running then is interrupted (SIGINT, then SIGKILL) and recorded as
# stopped, with the figures measured so far; the later steps of that size are not run.
STOP_AT: list[float] = []
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DBT_DONE = re.compile(
    r"\d+ of \d+ (?:OK created .*? model|OK loaded seed file|PASS|FAIL|WARN) (\S+) "
    r".*?in ([0-9.]+)s\]"
)


class StepFailed(RuntimeError):
    def __init__(self, step: Step, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass
class Step:
    wall: float = 0.0
    cpu: float = 0.0
    rss_mib: float = 0.0  # largest single process (ru_maxrss)
    tree_mib: float = 0.0  # largest sum over the process tree (polled)
    temp_mib: float = 0.0  # peak size of <warehouse>.tmp (polled)
    file_mib: float = 0.0  # warehouse file (+ wal) after the step
    load_before: float = 0.0
    load_after: float = 0.0
    note: str = ""


@dataclass
class SizeRun:
    events_target: int
    events: int = 0
    file_mib: float = 0.0
    generate_s: float = 0.0
    steps: dict[str, Step] = field(default_factory=dict)
    slowest: list[tuple[str, float]] = field(default_factory=list)
    refresh_slowest: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""


def _dir_bytes(path: Path) -> int:
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(base, name)).st_size
    return total


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}.wal")) if p.exists())


def run_step(cmd: list[str], *, db: Path | None, env: dict | None = None, log: Path) -> Step:
    """Run `cmd`; wall, CPU, peak memory and temp-disk figures. Raises on a non-zero exit."""
    step = Step(load_before=os.getloadavg()[0])
    temp = Path(f"{db}.tmp") if db else None
    stop = threading.Event()
    began = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

        def poll() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not stop.is_set():
                try:
                    tree = [root, *root.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree)
                    step.tree_mib = max(step.tree_mib, rss / 2**20)
                except psutil.Error:
                    pass
                if temp is not None and temp.exists():
                    step.temp_mib = max(step.temp_mib, _dir_bytes(temp) / 2**20)
                if STOP_AT and time.time() >= STOP_AT[0] and not step.note:
                    step.note = "stopped by --stop-at"
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, signal.SIGINT)
                    killer = threading.Timer(30, lambda: os.killpg(proc.pid, signal.SIGKILL))
                    killer.daemon = True
                    killer.start()
                stop.wait(0.25)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        watcher.join()
    step.wall = time.perf_counter() - began
    step.cpu = usage.ru_utime + usage.ru_stime
    step.rss_mib = usage.ru_maxrss / 1024
    step.load_after = os.getloadavg()[0]
    if db is not None:
        step.file_mib = _db_bytes(db) / 2**20
    if proc.returncode != 0:
        step.note = step.note or f"exit {proc.returncode}"
        tail = log.read_text(errors="replace")[-3000:]
        name = f"{Path(cmd[0]).name} {' '.join(cmd[1:3])}"
        raise StepFailed(step, f"{name}: {step.note} after {step.wall:.0f} s:\n{tail}")
    return step


def rees46_file(data: Path, events: int, log: Path) -> tuple[Path, float]:
    """The generated file of about `events` rows (reused when present); seconds to write it."""
    path = data / f"rees46-{events}.csv"
    if path.exists():
        return path, 0.0
    part = data / f"rees46-{events}-part.csv"
    part.unlink(missing_ok=True)
    sessions = max(1, round(events / EVENTS_PER_SESSION))
    cmd = [SHOPLENS, "generate", "--format", "rees46", "--out", str(part)]
    cmd += ["--sessions", str(sessions), "--seed", str(SEED), "--days", "31", "--end", "2019-10-31"]
    step = run_step(cmd, db=None, log=log)
    part.rename(path)
    return path, step.wall


def burst_file(data: Path, log: Path) -> Path:
    """10,000 events of 1 November 2019 (after the month), other seed: the after-burst input."""
    path = data / f"rees46-burst-{BURST_EVENTS}.csv"
    if path.exists():
        return path
    whole = data / "rees46-burst-whole.csv"
    whole.unlink(missing_ok=True)
    sessions = round(BURST_EVENTS / EVENTS_PER_SESSION * 1.3)
    cmd = [SHOPLENS, "generate", "--format", "rees46", "--out", str(whole)]
    cmd += ["--sessions", str(sessions), "--seed", str(BURST_SEED), "--days", "1"]
    run_step([*cmd, "--end", "2019-11-01"], db=None, log=log)
    with whole.open() as src, path.open("w") as dst:
        for i, line in enumerate(src):
            if i > BURST_EVENTS:
                break
            dst.write(line)
    whole.unlink()
    return path


def slowest_nodes(target: Path, log: Path, since: float, n: int = 8) -> list[tuple[str, float]]:
    """dbt's slowest nodes of the last build: from run_results.json, or (a build that did not
    finish) from the nodes its log reports done."""
    results_file = target / "run_results.json"
    if results_file.exists() and results_file.stat().st_mtime >= since:
        results = json.loads(results_file.read_text())["results"]
        done = [(r["unique_id"].split(".", 1)[1], r["execution_time"]) for r in results]
    else:
        text = _ANSI.sub("", log.read_text(errors="replace")).rsplit("\n$ ", 1)[-1]
        done = [(m[1], float(m[2])) for m in _DBT_DONE.finditer(text)]
    return sorted(done, key=lambda r: r[1], reverse=True)[:n]


def run_size(run: SizeRun, data: Path, work: Path, burst: Path, save) -> None:
    log = work / "bench.log"
    src, run.generate_s = rees46_file(data, run.events_target, log)
    run.file_mib = src.stat().st_size / 2**20
    with src.open("rb") as f:
        run.events = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1
    save()
    bare = work / "bare.duckdb"
    try:
        run.steps["read_csv"] = run_step(
            [sys.executable, "-c", BARE_READ_CSV, str(bare), str(src)], db=bare, log=log
        )
    except StepFailed as failed:
        run.steps["read_csv"] = failed.step
        raise
    for leftover in (bare, Path(f"{bare}.wal")):
        leftover.unlink(missing_ok=True)
    save()
    db = work / "warehouse.duckdb"
    env = {**os.environ, "SHOPLENS_DB": str(db), "DBT_PROFILES_DIR": str(ROOT)}
    target = work / "target"
    dbt_paths = ["--project-dir", str(ROOT), "--target-path", str(target)]
    dbt_paths += ["--log-path", str(work / "logs")]
    steps = [
        ("import", [SHOPLENS, "load-events", "--db", str(db), str(src)]),
        ("seed", [DBT, "seed", *dbt_paths]),
        ("build", [DBT, "build", *dbt_paths]),
        ("burst_import", [SHOPLENS, "load-events", "--db", str(db), str(burst)]),
        ("refresh", [DBT, "build", "--selector", "after_burst", *dbt_paths]),
        ("report", [SHOPLENS, "report", "--db", str(db), "--out", str(work / "site")]),
    ]
    for name, cmd in steps:
        print(f"[{run.events_target:,}] {name} ...", flush=True)
        began = time.time()
        try:
            run.steps[name] = run_step(cmd, db=db, env=env, log=log)
        except StepFailed as failed:
            run.steps[name] = failed.step
            raise
        finally:
            if name == "build":
                run.slowest = slowest_nodes(target, log, began)
            elif name == "refresh":
                run.refresh_slowest = slowest_nodes(target, log, began)
        print(f"[{run.events_target:,}] {name}: {asdict(run.steps[name])}", flush=True)
        save()


def _verdict(ok: bool, *steps: Step) -> str:
    stopped = [st.note for st in steps if st.note]
    if stopped:
        return f"FAIL ({stopped[0]}, unfinished)"
    return "PASS" if ok else "FAIL"


def goal_lines(run: SizeRun) -> list[str]:
    s = run.steps
    out = []
    if "import" in s and "read_csv" in s:
        imp, bare = s["import"].wall, s["read_csv"].wall
        # within 2x in wall and in CPU seconds (wall alone follows the machine's other work)
        ok = (
            imp <= GOALS["import_s"]
            and imp <= GOALS["import_ratio"] * bare
            and s["import"].cpu <= GOALS["import_ratio"] * s["read_csv"].cpu
        )
        out.append(
            f"- Import <= {GOALS['import_s']:.0f} s and <= {GOALS['import_ratio']:.0f}x a bare "
            f"`read_csv` in wall and CPU: {imp:.1f} s wall ({s['import'].cpu:.1f} s CPU) "
            f"against {bare:.1f} s "
            f"({s['read_csv'].cpu:.1f} s CPU), {imp / bare:.1f}x wall, "
            f"{s['import'].cpu / max(s['read_csv'].cpu, 1e-9):.1f}x CPU: "
            f"{_verdict(ok, s['import'], s['read_csv'])}."
        )
    if "build" in s:
        b = s["build"]
        out.append(
            f"- Full `dbt build` with ml <= {GOALS['build_s'] / 60:.0f} min: {b.wall:.0f} s wall "
            f"({b.cpu:.0f} s CPU): {_verdict(b.wall <= GOALS['build_s'], b)}."
        )
    if s:
        worst = max(s.items(), key=lambda kv: kv[1].rss_mib)
        out.append(
            f"- Peak memory of any process <= {GOALS['memory_gib']:.0f} GiB: "
            f"{worst[1].rss_mib / 1024:.2f} GiB ({worst[0]}) over the steps run: "
            f"{_verdict(worst[1].rss_mib / 1024 <= GOALS['memory_gib'])}."
        )
    if "refresh" in s:
        r = s["refresh"]
        out.append(
            f"- After-burst refresh <= {GOALS['refresh_s']:.0f} s: {r.wall:.1f} s wall "
            f"({r.cpu:.1f} s CPU; the import of the 10,000 events before it "
            f"{s['burst_import'].wall:.1f} s): {_verdict(r.wall <= GOALS['refresh_s'], r)}."
        )
    if "report" in s:
        r = s["report"]
        out.append(
            f"- Report <= {GOALS['report_s']:.0f} s: {r.wall:.1f} s wall ({r.cpu:.1f} s CPU): "
            f"{_verdict(r.wall <= GOALS['report_s'], r)}."
        )
    return out


def render(runs: list[SizeRun], command: str) -> str:
    header = ["events", "step", "wall s", "CPU s", "peak RSS MiB", "tree MiB", "temp MiB"]
    header += ["warehouse MiB", "load before/after"]
    rows = []
    for run in runs:
        label = f"{run.events:,}" if run.events else f"~{run.events_target:,}"
        for key, title in STEPS:
            st = run.steps.get(key)
            if st is None:
                rows.append([label, title, "not run", "", "", "", "", "", ""])
                continue
            rows.append(
                [
                    label,
                    title,
                    f"{st.wall:.1f}" + (f" ({st.note})" if st.note else ""),
                    f"{st.cpu:.1f}",
                    f"{st.rss_mib:,.0f}",
                    f"{st.tree_mib:,.0f}",
                    f"{st.temp_mib:,.0f}",
                    f"{st.file_mib:,.0f}" if key != "read_csv" else "(throw-away)",
                    f"{st.load_before:.1f}/{st.load_after:.1f}",
                ]
            )
    parts = [
        "The user's path on generated REES46-format CSV files (seed 42, October 2019, the real "
        "files' quirks: shared sessions, zero prices, missing categories and brands, duplicates, "
        "long sessions), each size in a fresh warehouse. Every step is its own process: wall and "
        "CPU seconds (user + system of the process tree), peak RSS of its largest process, peak "
        "RSS summed over its process tree (polled every 0.25 s), peak size of DuckDB's temp "
        "directory (`<warehouse>.tmp`), the warehouse file after the step, and the 1-minute load "
        "average before and after (2 cores: above ~2, other work shares them and wall times "
        "grow, CPU times much less).",
        "",
        "Files: "
        + ", ".join(f"{r.events:,} events = {r.file_mib:,.0f} MiB of CSV" for r in runs if r.events)
        + ".",
        "",
        markdown_table(header, rows),
    ]
    for run in runs:
        lines = goal_lines(run)
        if run.error:
            lines.append(f"- Stopped: {run.error}")
        if lines:
            parts += ["", f"Goals at {run.events or run.events_target:,} events:", "", *lines]
        for what, nodes in (
            ("full build", run.slowest),
            ("after-burst refresh", run.refresh_slowest),
        ):
            if nodes:
                parts += [
                    "",
                    f"Slowest dbt nodes of the {what} at {run.events:,} events (dbt's "
                    "execution seconds): "
                    + ", ".join(f"`{name}` {secs:.0f} s" for name, secs in nodes)
                    + ".",
                ]
    parts += ["", f"Command: `{command}`"]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="comma-separated event counts (default: %(default)s)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="scratch folder (default: a new temporary folder, removed after the run); "
        "the generated files are kept in and reused from WORK/data",
    )
    parser.add_argument(
        "--stop-at",
        metavar="HH:MM",
        help="interrupt the step running at this UTC time and record what was measured",
    )
    parser.add_argument("--keep", action="store_true", help="keep each size's warehouse and site")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.stop_at:
        now = dt.datetime.now(dt.UTC)
        hour, minute = map(int, args.stop_at.split(":"))
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        STOP_AT.append((at if at > now else at + dt.timedelta(days=1)).timestamp())
    work = args.work or Path(tempfile.mkdtemp(prefix="shoplens-bench-scale-"))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    command = f".venv/bin/python -m bench.bench_scale --sizes {','.join(map(str, sizes))}"
    fresh = [SizeRun(events_target=n) for n in sizes]
    # Sizes measured by another run in the same --work folder (earlier, or at the same time)
    # stay in the section: a long size can run on its own without dropping the short ones.
    results_json = work / "scale-results.json"

    def others() -> list[SizeRun]:
        try:
            saved = json.loads(results_json.read_text())
        except (OSError, ValueError):
            return []
        out = []
        for old in saved:
            if old["events_target"] not in sizes:
                steps = {k: Step(**v) for k, v in old.pop("steps").items()}
                out.append(SizeRun(**old, steps=steps))
        return out

    def everything() -> tuple[list[SizeRun], str]:
        other = others()
        note = command
        if other:
            note += f"; {', '.join(f'{r.events_target:,}' for r in other)} by another run"
        return sorted([*other, *fresh], key=lambda r: r.events_target), note

    def save() -> None:
        runs, note = everything()
        write_section("scale", "A REES46-sized month on this machine", render(runs, note))
        part = results_json.with_suffix(".part")
        part.write_text(json.dumps([asdict(r) for r in runs], indent=1))
        part.replace(results_json)

    failed = False
    try:
        burst = burst_file(data, work / "bench.log")
        for run in fresh:
            size_dir = work / f"size-{run.events_target}"
            shutil.rmtree(size_dir, ignore_errors=True)
            size_dir.mkdir()
            try:
                run_size(run, data, size_dir, burst, save)
            except (StepFailed, RuntimeError, OSError) as exc:
                run.error = str(exc).splitlines()[0]
                failed = True
                print(exc, file=sys.stderr, flush=True)
            finally:
                save()
                if not args.keep:
                    shutil.rmtree(size_dir, ignore_errors=True)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(render(*everything()))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
