"""Shared fixtures: small generated warehouses and a dbt runner that keeps runs apart.

The expensive fixtures are session-scoped: one small generated warehouse, one copy of it
after a full `dbt build` (staging to ml), shared by the dbt, ml, report and scoring tests, and
the REES46 sample built alone. Each is made once per run, also under pytest-xdist (`make test`
runs two workers): the first worker to need one makes it while the others wait for it. Tests
read them; a test that writes (dbt, the sink) works on a copy.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling, Scheduling
from xdist.workermanage import WorkerController

ROOT = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).with_name("dbt"))
SHOPLENS = str(Path(sys.executable).with_name("shoplens"))
REES46_SAMPLE = ROOT.parent / "shared" / "data" / "rees46_sample.csv"

# Small but with structure: enough sessions per customer for segments and models to find it.
SMALL_SESSIONS = 6_000
SMALL_SEED = 7
SMALL_END = dt.date(2026, 10, 31)

# What a test needs, read from the fixtures it uses (directly or through other fixtures):
# `make test-fast` deselects these markers, `make test` runs everything. A fixture that builds
# or runs dbt depends on `dbt`; one that starts the embedded Kafka broker is called `broker`.
FIXTURE_MARKERS = {
    "built_warehouse": "warehouse",
    "rees46_warehouse": "warehouse",
    "dbt": "warehouse",
    "broker": "kafka",
    "browser": "browser",
    "spark_full": "spark",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test `warehouse`, `kafka`, `browser` or `spark` when its fixtures need one."""
    for item in items:
        for name in sorted(set(getattr(item, "fixturenames", ())) & FIXTURE_MARKERS.keys()):
            item.add_marker(FIXTURE_MARKERS[name])


# Test files one worker starts with under `--dist loadfile` (make test): the Spark parity test
# (minutes of Spark builds, needing none of the shared warehouses) then runs beside the other
# worker's files instead of alone at the end, where xdist's order (most tests first) puts it.
FIRST_FILES = ("tests/test_spark_parity.py",)


class _FirstFilesFirst(LoadFileScheduling):
    """xdist's file scheduling, FIRST_FILES handed out before the others."""

    def _assign_work_unit(self, node: WorkerController) -> None:
        for scope in reversed(FIRST_FILES):
            if scope in self.workqueue:
                self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """`--dist loadfile` schedules FIRST_FILES first; other modes are xdist's own."""
    return _FirstFilesFirst(config, log) if config.getvalue("dist") == "loadfile" else None


def run_dbt(
    args: list[str],
    db: Path,
    workdir: Path,
    check: bool = True,
    extra_env: dict[str, str] | None = None,
    parse_cache: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run dbt against `db` with its own target and log folders under `workdir`.

    dbt runs in `db`'s folder with SHOPLENS_DB set to the file's bare name: dbt keeps a parsed
    project (target/partial_parse.msgpack) only while the profile's connection values, the
    --vars and the target stay the same, so an absolute path would make every test parse the
    whole project again (6 s of CPU). With `parse_cache`, a folder shared by the test run, each
    run starts from the parse a run before it saved for the same file name, vars, target and
    environment, and saves its own when none is there yet; dbt still checks every file's hash
    and reparses what changed.
    """
    db = db.absolute()
    env = {**os.environ, "SHOPLENS_DB": db.name, "DBT_PROFILES_DIR": str(ROOT), **(extra_env or {})}
    cmd = [
        DBT,
        *args,
        "--project-dir",
        str(ROOT),
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
    ]
    parsed = workdir / "target" / "partial_parse.msgpack"
    saved = None
    if parse_cache is not None:
        key = json.dumps([db.name, _option(args, "--vars"), _option(args, "--target"), extra_env])
        saved = parse_cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.msgpack"
        if saved.exists():
            parsed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, parsed)
    proc = subprocess.run(cmd, env=env, cwd=db.parent, capture_output=True, text=True)
    if saved is not None and not saved.exists() and parsed.exists():
        partial = saved.with_name(f"{saved.name}.{os.getpid()}")
        shutil.copyfile(parsed, partial)
        partial.replace(saved)  # atomic: a worker reading it sees the whole file or none
    if check and proc.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr}")
    return proc


def _option(args: list[str], name: str) -> str | None:
    """The value given to option `name` in `args`, or None."""
    return args[args.index(name) + 1] if name in args[:-1] else None


def shared_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test run's temp folder: under pytest-xdist the one every worker shares."""
    base = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        base = base.parent  # pytest-N, above the workers' own popen-gwN folders
    return base


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]
) -> Path:
    """The folder `name` after `make(folder)`, made once per test run: under pytest-xdist in
    the run's temp folder that every worker shares, the others waiting on its lock meanwhile."""
    base = shared_temp(tmp_path_factory)
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


@pytest.fixture(scope="session")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess]:
    """`dbt(args, db, workdir)` runs dbt on a warehouse file; fails the test on error. The runs
    of a test run share their parsed projects (see `run_dbt`)."""
    cache = shared_temp(tmp_path_factory) / "dbt-partial-parse"
    cache.mkdir(exist_ok=True)
    return functools.partial(run_dbt, parse_cache=cache)


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated (not yet built) warehouse: SMALL_SESSIONS sessions, seed SMALL_SEED."""
    from shoplens.generate import generate_and_load

    # Not "raw.duckdb": a file's stem becomes its catalog name, which would clash with the
    # schema `raw` (warehouse.open_connection refuses such names).
    def make(folder: Path) -> None:
        generate_and_load(
            folder / "small.duckdb",
            sessions=SMALL_SESSIONS,
            seed=SMALL_SEED,
            days=365,
            end=SMALL_END,
            defect_rate=0.01,
            progress=False,
        )

    return made_once(tmp_path_factory, "small", make) / "small.duckdb"


@pytest.fixture(scope="session")
def built_warehouse(
    small_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, dbt: Callable
) -> Path:
    """A copy of `small_warehouse` after `dbt seed` and a full `dbt build` (including ml, and
    the project's unit tests: the other fixtures' builds leave them out); the build's
    run_results.json is in target/ beside it."""

    def make(work: Path) -> None:
        db = work / "warehouse.duckdb"
        shutil.copy(small_warehouse, db)
        dbt(["seed"], db, work)
        dbt(["build"], db, work)

    return made_once(tmp_path_factory, "built", make) / "warehouse.duckdb"


@pytest.fixture(scope="session")
def rees46_warehouse(tmp_path_factory: pytest.TempPathFactory, dbt: Callable) -> Path:
    """The REES46 sample (shared/data) loaded alone by `shoplens load-events`, after `dbt seed`
    and a full `dbt build` (models needing demographics or transactions build empty) without
    the unit tests (fixed inputs: `built_warehouse`'s build runs them); the build's
    run_results.json is in target/ beside it."""

    def make(work: Path) -> None:
        db = work / "warehouse.duckdb"
        load = [SHOPLENS, "load-events", "--db", str(db), "--format", "rees46", str(REES46_SAMPLE)]
        proc = subprocess.run(load, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        dbt(["seed"], db, work)
        dbt(["build", "--exclude-resource-type", "unit_test"], db, work)

    return made_once(tmp_path_factory, "rees46", make) / "warehouse.duckdb"


@pytest.fixture(scope="session")
def notebook_site(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report site of `built_warehouse` with the executed notebook as its Notebook page
    (`--with-notebook`: a kernel start and every query); the chart count build_site returned
    for each page is in charts.json beside it."""
    from shoplens.reports import build_site

    def make(folder: Path) -> None:
        result = build_site(built_warehouse, folder / "site", with_notebook=True)
        (folder / "charts.json").write_text(json.dumps(result.charts))

    return made_once(tmp_path_factory, "notebook-site", make) / "site"
