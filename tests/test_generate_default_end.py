"""`shoplens generate` without --end simulates the history up to yesterday (UTC), like make demo."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


def test_generate_defaults_to_yesterday(tmp_path: Path) -> None:
    db = tmp_path / "shop.duckdb"
    today = dt.datetime.now(dt.UTC).date()
    proc = subprocess.run(
        [
            SHOPLENS,
            "generate",
            "--db",
            str(db),
            "--sessions",
            "400",
            "--days",
            "2",
            "--defects",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        first, last_start = con.execute(
            "select min(session_start)::date, max(session_start)::date from (select "
            "user_session, min(event_time) as session_start from raw.events group by all)"
        ).fetchone()
    if dt.datetime.now(dt.UTC).date() != today:  # midnight passed during the run
        return
    # sessions start on the two days before today; none starts today or later
    assert first == today - dt.timedelta(days=2)
    assert last_start == today - dt.timedelta(days=1)
    help_text = subprocess.run(
        [SHOPLENS, "generate", "--help"], capture_output=True, text=True
    ).stdout
    assert "yesterday (UTC)" in help_text
