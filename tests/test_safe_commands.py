"""Commands that must not do harm: `sql` is read-only in fact and prints data as data, `report`
writes only where a site belongs, `generate` and the lock timeout refuse what cannot work."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import subprocess
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from cli_support import run_shoplens
from shoplens.cli import cli
from shoplens.generate import generate_and_load
from shoplens.generate.run import (
    LAST_DAY,
    MEMORY_PER_SESSION,
    GenerateArgumentError,
    check_arguments,
    future_days,
    max_sessions,
)
from shoplens.query import printable
from shoplens.reports.publish import (
    SITE_FORMAT,
    SITE_MARKER,
    SiteFolderError,
    check_site_folder,
    new_site,
)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed `shoplens` script, as a user runs it (a hang fails the test)."""
    return run_shoplens(*args, env=env, timeout=60)


def one_line_error(proc: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a failed command (no traceback, nothing on stdout)."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("shoplens: error: "), lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated warehouse (raw.* only)."""
    db = tmp_path_factory.mktemp("safe") / "safe.duckdb"
    generate_and_load(
        db, sessions=60, seed=3, days=30, end=dt.date(2026, 10, 31), defect_rate=0, progress=False
    )
    return db


# ----------------------------------------------------------------- item 13: sql is read-only


def write_attempts(tmp: Path, db: Path) -> list[tuple[str, list[Path]]]:
    """Statements that would write or reach outside the warehouse, with the paths they would
    create (which must not exist afterwards)."""
    other = tmp / "other.duckdb"
    return [
        (f"copy (select 'x') to '{db}' (format csv)", []),
        (f"copy (select 1 as a) to '{tmp / 'out.csv'}'", [tmp / "out.csv"]),
        (f"copy raw.events to '{tmp / 'out.parquet'}'", [tmp / "out.parquet"]),
        (f"export database '{tmp / 'exported'}'", [tmp / "exported"]),
        (f"attach '{other}' as o (read_only false); create table o.t (a int)", [other]),
        (f"attach '{other}' as o", [other]),
        ("install httpfs", []),
        ("load httpfs", []),
        ("set enable_external_access = true", []),
        ("reset enable_external_access", []),
        ("set lock_configuration = false", []),
        (f"set profiling_output = '{tmp / 'profile.txt'}'", [tmp / "profile.txt"]),
        ("pragma enable_profiling", []),
        ("create table raw.intruder (a int)", []),
        ("insert into raw.events (event_id) values ('intruder')", []),
        ("delete from raw.events", []),
        ("drop table raw.events", []),
        ("update raw.customers set age = 0", []),
        (f"select * from read_csv('{tmp / 'data.csv'}')", []),
        (f"select * from read_text('{tmp / 'data.csv'}')", []),
        (f"select * from glob('{tmp}/*')", []),
    ]


def test_sql_refuses_every_write_path_and_leaves_the_file_identical(
    warehouse: Path, tmp_path: Path
) -> None:
    (tmp_path / "data.csv").write_text("a\n1\n")
    before = digest(warehouse)
    for query, created in write_attempts(tmp_path, warehouse):
        proc = run("sql", "--db", str(warehouse), query)
        line = one_line_error(proc, 1)
        assert line.startswith(
            f"shoplens: error: refused: `shoplens sql` only reads the warehouse {warehouse} ("
        ), (query, line)
        for path in created:
            assert not path.exists(), (query, path)
        assert digest(warehouse) == before, query
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]
    with duckdb.connect(str(warehouse), read_only=True) as con:  # still a working warehouse
        assert con.execute("select count(*) from raw.events").fetchone()[0] > 0


def test_sql_refuses_writing_into_another_duckdb_file(warehouse: Path, tmp_path: Path) -> None:
    other = tmp_path / "app.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("create table t as select 1 as a")
    before = digest(other)
    proc = run(
        "sql",
        "--db",
        str(warehouse),
        f"attach '{other}' as app (read_only false); insert into app.t values (2)",
    )
    assert "file system operations are disabled" in one_line_error(proc, 1)
    assert digest(other) == before
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.execute("select a from t").fetchall() == [(1,)]


def test_sql_still_reads_the_warehouse(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        events = con.execute("select count(*) from raw.events").fetchone()[0]
    result = CliRunner().invoke(
        cli,
        [
            "sql",
            "--db",
            str(warehouse),
            "--csv",
            "create temp table n as select count(*) as events from raw.events; "
            "select events from n",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["events", str(events)]
    before = digest(warehouse)
    for query in ("checkpoint", "vacuum", "force checkpoint"):  # allowed, and change nothing
        assert CliRunner().invoke(cli, ["sql", "--db", str(warehouse), query]).exit_code == 0
    assert digest(warehouse) == before


def test_sql_limit_is_bounded_to_what_duckdb_takes(warehouse: Path) -> None:
    line = one_line_error(run("sql", "--db", str(warehouse), "--limit", str(2**63), "select 1"), 2)
    assert "--limit" in line
    most = run("sql", "--db", str(warehouse), "--csv", "--limit", str(2**63 - 1), "select 7 as a")
    assert most.returncode == 0 and most.stdout.splitlines() == ["a", "7"]


# --------------------------------------------------------------- item 14: data printed as data

HOSTILE_QUERY = (
    "select 'a[b]c' as \"[bold]col\", '[/bold]' as closing, "
    "chr(27) || '[31mred' || chr(27) || '[0m' as ansi, "
    "chr(27) || ']8;;http://x.test' || chr(7) || 'link' as osc, "
    "'one' || chr(10) || 'two' || chr(9) || 'x' || chr(13) as ws, "
    "'abc' || chr(8238) || 'def' as bidi, ':smile: é漢字' as plain, null as nothing"
)


def test_table_output_prints_markup_and_escapes_literally(warehouse: Path) -> None:
    result = CliRunner().invoke(cli, ["sql", "--db", str(warehouse), HOSTILE_QUERY])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert result.output.splitlines() == [
        "┏━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳"
        "━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┓",
        "┃ [bold]col ┃ closing ┃ ansi               ┃ osc                           ┃"
        " ws            ┃ bidi         ┃ plain         ┃ nothing ┃",
        "┡━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇"
        "━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━┩",
        "│ a[b]c     │ [/bold] │ \\x1b[31mred\\x1b[0m │ \\x1b]8;;http://x.test\\x07link │"
        " one\\ntwo\\tx\\r │ abc\\u202edef │ :smile: é漢字 │         │",
        "└───────────┴─────────┴────────────────────┴───────────────────────────────┴"
        "───────────────┴──────────────┴───────────────┴─────────┘",
    ]


def test_csv_output_is_valid_csv_with_values_unchanged(warehouse: Path) -> None:
    query = (
        "select 'a,b' as \"x,y\", 'say \"hi\"' as quoted, 'one' || chr(10) || 'two' as lines, "
        "' padded ' as pad, null as nothing, 1.5 as num"
    )
    result = CliRunner().invoke(cli, ["sql", "--db", str(warehouse), "--csv", query])
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode()  # result.output turns \r\n into \n
    assert text == (
        '"x,y",quoted,lines,pad,nothing,num\r\n"a,b","say ""hi""","one\ntwo", padded ,,1.5\r\n'
    )
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        ["x,y", "quoted", "lines", "pad", "nothing", "num"],
        ["a,b", 'say "hi"', "one\ntwo", " padded ", "", "1.5"],
    ]


def test_printable_escapes_only_what_acts_on_a_terminal() -> None:
    assert printable(None) == ""
    assert printable(12.5) == "12.5"
    assert printable("\x1b[2J\x00\x7f\x9b") == "\\x1b[2J\\x00\\x7f\\x9b"
    assert printable("a\u2028b\u202ec\u2066") == "a\\u2028b\\u202ec\\u2066"
    assert printable("C:\\path [x] é 😀") == "C:\\path [x] é 😀"


# ------------------------------------------------------- item 15: where the site may be written


def fake_site(out: Path, text: str, *, fail: bool = False) -> None:
    """Write a two-file site to `out` the way build_site does; `fail` breaks the build."""
    with new_site(out) as staging:
        (staging / "index.html").write_text(text)
        (staging / "assets").mkdir()
        (staging / "assets" / "site.css").write_text("css")
        if fail:
            raise RuntimeError("build failed")


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_site_goes_to_a_new_folder_with_a_marker(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "site"
    fake_site(out, "v1")
    assert listing(out) == [SITE_MARKER, "assets", "assets/site.css", "index.html"]
    assert (out / SITE_MARKER).read_text() == f"shoplens-site format {SITE_FORMAT}\n"
    assert (out / "index.html").read_text() == "v1"
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["site"]  # no leftovers


def test_site_goes_to_an_empty_folder_keeping_its_permissions(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir(mode=0o750)
    out.chmod(0o750)
    fake_site(out, "v1")
    assert (out / "index.html").read_text() == "v1"
    assert out.stat().st_mode & 0o777 == 0o750


def test_a_users_own_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    with pytest.raises(SiteFolderError, match="not empty and holds no shoplens site"):
        fake_site(out, "v1")
    assert listing(out) == ["index.html"]
    assert (out / "index.html").read_text() == "my own page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_an_earlier_site_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "site"
    fake_site(out, "v1")
    (out / "stale.html").write_text("from an older build")
    fake_site(out, "v2")
    assert listing(out) == [SITE_MARKER, "assets", "assets/site.css", "index.html"]
    assert (out / "index.html").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_symlinks_in_an_earlier_site_are_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "site.css").write_text("someone else's")
    out = tmp_path / "site"
    fake_site(out, "v1")
    (out / "index.html").unlink()
    (out / "index.html").symlink_to(victim)
    for child in (out / "assets").iterdir():
        child.unlink()
    (out / "assets").rmdir()
    (out / "assets").symlink_to(elsewhere, target_is_directory=True)
    fake_site(out, "v2")
    assert victim.read_text() == "precious"
    assert listing(elsewhere) == ["site.css"]
    assert (elsewhere / "site.css").read_text() == "someone else's"
    assert not (out / "index.html").is_symlink() and not (out / "assets").is_symlink()
    assert (out / "index.html").read_text() == "v2"


def test_a_symlinked_index_in_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").symlink_to(victim)
    with pytest.raises(SiteFolderError, match="not empty"):
        fake_site(out, "v1")
    assert victim.read_text() == "precious" and (out / "index.html").is_symlink()


def test_symlinked_out_or_marker_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    fake_site(real, "v1")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(SiteFolderError, match="symbolic link"):
        fake_site(link, "v2")
    assert (real / "index.html").read_text() == "v1"
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "notes.txt").write_text("mine")
    (forged / SITE_MARKER).symlink_to(real / SITE_MARKER)
    with pytest.raises(SiteFolderError, match="holds no shoplens site"):
        check_site_folder(forged)
    (forged / SITE_MARKER).unlink()
    (forged / SITE_MARKER).write_text("not a marker\n")
    with pytest.raises(SiteFolderError, match="holds no shoplens site"):
        check_site_folder(forged)


@pytest.mark.parametrize("root", ["/", "/tmp/..", "/usr", "/etc"])
def test_the_root_and_system_folders_are_refused(root: str) -> None:
    with pytest.raises(SiteFolderError, match=r"root folder|holds no shoplens site"):
        check_site_folder(Path(root))


def test_a_failed_build_leaves_the_earlier_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    fake_site(out, "v1")
    with pytest.raises(RuntimeError, match="build failed"):
        fake_site(out, "v2", fail=True)
    assert (out / "index.html").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


@pytest.mark.warehouse
def test_report_cli_refuses_foreign_folders_and_replaces_its_site(
    built_warehouse: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my own page")
    line = one_line_error(run("report", "--db", str(built_warehouse), "--out", str(mine)), 1)
    assert f"refusing to write the site to {mine}: the folder is not empty" in line
    assert (mine / "index.html").read_text() == "my own page"
    assert listing(mine) == ["index.html"]
    assert "the root folder" in one_line_error(
        run("report", "--db", str(built_warehouse), "--out", "/"), 1
    )
    site = tmp_path / "site"
    first = run("report", "--db", str(built_warehouse), "--out", str(site))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(site / "index.html")
    (site / "stale.html").write_text("old")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (site / "sales.html").unlink()
    (site / "sales.html").symlink_to(victim)
    second = run("report", "--db", str(built_warehouse), "--out", str(site))
    assert second.returncode == 0, second.stderr
    assert victim.read_text() == "precious"
    assert not (site / "stale.html").exists() and not (site / "sales.html").is_symlink()
    assert "<html" in (site / "sales.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "site", "victim.txt"]


# ------------------------------------------- item 16: one clear line for arguments that can't work


def test_generate_refuses_an_end_beyond_the_calendar(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    line = one_line_error(run("generate", "--db", str(db), "--end", "9999-12-31"), 2)
    assert f"--end: end must be between 1970-01-01 and {LAST_DAY}, not 9999-12-31" in line
    assert "Error:" not in line.removeprefix("shoplens: error: ")
    assert not db.exists()


def test_generate_refuses_more_sessions_than_the_machine_holds(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    line = one_line_error(run("generate", "--db", str(db), "--sessions", "1000000000000"), 2)
    assert f"at most {max_sessions():,}" in line and "1,000,000,000,000 sessions" in line
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []


def test_generate_warns_when_part_of_the_history_is_in_the_future(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    today = dt.datetime.now(dt.UTC).date()
    end = today + dt.timedelta(days=10)
    proc = run(
        "generate",
        "--db",
        str(db),
        "--sessions",
        "40",
        "--days",
        "20",
        "--end",
        end.isoformat(),
        "--defects",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "shoplens: warning: 10 of the 20 simulated days are after today (UTC): dbt "
        "quarantines events more than future_event_tolerance_hours (24) after their load as "
        "future_event_time"
    ]
    with duckdb.connect(str(db), read_only=True) as con:
        late = con.execute(
            "select count(*) filter (where event_time > loaded_at + interval 24 hour), "
            "count(*) from raw.events"
        ).fetchone()
    assert 0 < late[0] < late[1]  # the warning is true: some, not all, events are too late


def test_generate_refuses_a_history_entirely_in_the_future(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=400)
    line = one_line_error(
        run("generate", "--db", str(db), "--days", "30", "--end", end.isoformat()), 2
    )
    assert "is in the future" in line and "quarantine every event" in line
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "--days", "100000000"], "--days: days must be between 1 and 36,525"),
        (["generate", "--end", "1970-01-05", "--days", "10"], "would start before 1970-01-01"),
        (["generate", "--days", "0"], "--days"),
        (["generate", "--days", "-5"], "--days"),
        (["generate", "--defects", "nan"], "'--defects': 'nan' is not a finite number"),
        (["stream", "--embedded", "--sink", "--rate", "nan"], "'--rate': 'nan' is not a finite"),
        (["stream", "--embedded", "--sink", "--rate", "0"], "--rate"),
        (["stream", "--embedded", "--sink", "--duration", "inf"], "'--duration': 'inf' is not"),
        (["stream", "--embedded", "--sink", "--seed", "-1"], "--seed"),
        (["sink", "--bootstrap", "x:1", "--batch-interval", "nan"], "'--batch-interval'"),
        (["sink", "--bootstrap", "x:1", "--stop-when-idle", "inf"], "'--stop-when-idle'"),
    ],
)
def test_numeric_options_that_cannot_work_are_usage_errors(
    args: list[str], needle: str, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    line = one_line_error(run(*args, "--db", str(db)), 2)
    assert needle in line, line
    assert not db.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_a_lock_timeout_that_cannot_work_is_one_line(warehouse: Path, value: str) -> None:
    proc = run("sql", "--db", str(warehouse), "select 1", env={"SHOPLENS_LOCK_TIMEOUT": value})
    line = one_line_error(proc, 1)
    assert line == (
        "shoplens: error: SHOPLENS_LOCK_TIMEOUT must be a finite number of seconds >= 0, "
        f"not {value!r}"
    )


def test_argument_bounds_are_checked_before_anything_happens() -> None:
    today = dt.date(2026, 11, 30)
    ok = {"sessions": 10, "seed": 0, "days": 10, "end": today, "defect_rate": 0.0}
    check_arguments(**ok, today=today)
    check_arguments(**{**ok, "end": today + dt.timedelta(days=10)}, today=today)  # starts tomorrow
    with pytest.raises(GenerateArgumentError, match="in the future") as info:
        check_arguments(**{**ok, "end": today + dt.timedelta(days=11)}, today=today)
    assert info.value.argument == "end"
    with pytest.raises(GenerateArgumentError) as info:
        check_arguments(**{**ok, "sessions": max_sessions() + 1}, today=today)
    assert info.value.argument == "sessions"
    assert max_sessions(memory=2 * MEMORY_PER_SESSION * 1_000) == 1_000
    assert future_days(today + dt.timedelta(days=3), 10, today) == 3
    assert future_days(today + dt.timedelta(days=30), 10, today) == 10
    assert future_days(today - dt.timedelta(days=3), 10, today) == 0
