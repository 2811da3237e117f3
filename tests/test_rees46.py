"""The REES46 importer: every row lands in raw.events or raw.rejects, with stable ids.

Event ids are `rees46:<digest>:<line>`, the digest being the first 16 hex digits of the SHA-256
of the file's bytes (issue 10: ids by file name collided for same-named files in different
folders). The hostile cases are in test_hostile_import.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoplens.rees46 import Rees46FormatError, load_rees46

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "rees46_sample.csv"
HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)
SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_sample_loads_every_row_with_content_and_line_ids(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [SAMPLE])
    assert (summary.rows, summary.loaded, summary.rejected) == (3000, 3000, 0)
    digest = _digest(SAMPLE)
    first = _rows(
        db,
        "select event_id, event_time, event_type, product_id, category_code, "
        f"brand, price, user_id, user_session, source from raw.events "
        f"where event_id = 'rees46:{digest}:2'",
    )
    assert first == [
        (
            f"rees46:{digest}:2",
            dt.datetime(2019, 10, 1, 0, 0, 0),
            "view",
            44600062,
            None,
            "shiseido",
            35.79,
            541312140,
            "72d76fde-8bb3-4e00-8c23-a032dfed738c",
            "rees46",
        )
    ]
    types = dict(_rows(db, "select event_type, count(*) from raw.events group by 1"))
    assert types == {"view": 2941, "cart": 23, "purchase": 36}
    last = _rows(db, "select max(cast(split_part(event_id, ':', 3) as integer)) from raw.events")
    assert last == [(3001,)]
    # each file's path, digest and counts, so rows can be traced back to their file
    ((kind, params),) = _rows(db, "select kind, params from raw.load_runs")
    assert kind == "rees46"
    assert json.loads(params) == {
        "files": [
            {"path": str(SAMPLE), "digest": digest, "rows": 3000, "loaded": 3000, "rejected": 0}
        ]
    }


def test_event_ids_are_stored_with_zstd(tmp_path: Path) -> None:
    """Unique ids cost the import less CPU in zstd than in DuckDB's default dictionary + FSST
    (warehouse.COLUMN_STORAGE); the other columns keep DuckDB's choice."""
    db = tmp_path / "w.duckdb"
    load_rees46(db, [SAMPLE])
    storage = dict(
        _rows(
            db,
            "select column_name, string_agg(distinct compression, ',') "
            "from pragma_storage_info('raw.events') "
            "where column_name in ('event_id', 'user_session') and segment_type = 'VARCHAR' "
            "group by 1",
        )
    )
    assert storage == {"event_id": "ZSTD", "user_session": "DICT_FSST"}


def test_line_ids_hold_across_parallel_reads(tmp_path: Path) -> None:
    """A file larger than DuckDB's CSV read buffers (read by several threads, in file order):
    every event's id names its own line, with blank lines, a line the reader refuses and a row
    that does not convert spread over the file, and rows = loaded + rejected."""
    path = tmp_path / "big.csv"
    lines = [HEADER.encode()]
    for n in range(2, 720_002):  # product_id = the line's number
        if n % 100_000 == 0:
            lines.append(b"")
        elif n == 650_000:
            lines.append(b"2019-10-01 00:00:00 UTC,view,\xff,1,,,1,1,s")
        elif n == 420_000:
            lines.append(b"2019-10-01 00:00:00 UTC,view,not-a-number,1,,,1,1,s")
        else:
            lines.append(b"2019-10-01 00:00:00 UTC,view,%d,1,,,1.5,7,s" % n)
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert path.stat().st_size > 32 * 2**20  # more than one of DuckDB's 32 MiB buffers
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [path])
    assert (summary.rows, summary.loaded, summary.rejected) == (719_993, 719_991, 2)
    misplaced = _rows(
        db,
        "select count(*), count(*) filter (where cast(split_part(event_id, ':', 3) as bigint) "
        "<> product_id) from raw.events",
    )
    assert misplaced == [(719_991, 0)]
    rejected = _rows(db, "select kafka_offset from raw.rejects order by 1")
    assert rejected == [(420_000,), (650_000,)]


def test_uncastable_rows_go_to_rejects_with_reason(tmp_path: Path) -> None:
    path = tmp_path / "oct.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                "2019-10-01 00:00:00 UTC,view,1,10,electronics.audio,acme,10.50,7,s1",
                "yesterday,view,1,10,electronics.audio,acme,10.50,7,s1",
                "2019-10-01 00:00:02 UTC,cart,1,10,,acme,ten,7,s1",
                "2019-10-01 00:00:03 UTC,purchase,abc,10,,acme,10.50,x7,s1",
                "2019-10-01 00:00:04 UTC,teleport,2,,,,,8,",
            ]
        )
        + "\n"
    )
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [path])
    assert (summary.rows, summary.loaded, summary.rejected) == (5, 2, 3)
    loaded = _rows(db, "select event_id, event_type, user_session from raw.events order by 1")
    # an unknown event type still casts: it lands, and dbt staging quarantines it
    digest = _digest(path)
    assert loaded == [
        (f"rees46:{digest}:2", "view", "s1"),
        (f"rees46:{digest}:6", "teleport", None),
    ]
    rejects = _rows(
        db, "select topic, kafka_offset, reason, payload from raw.rejects order by kafka_offset"
    )
    # topic is the file's path as given; the payload is the original line (issue 10, item 9)
    assert [(t, n, r) for t, n, r, _ in rejects] == [
        (str(path), 3, "event_time is not a timestamp"),
        (str(path), 4, "price is not a number"),
        (str(path), 5, "product_id is not an integer; user_id is not an integer"),
    ]
    assert bytes(rejects[1][3]) == b"2019-10-01 00:00:02 UTC,cart,1,10,,acme,ten,7,s1"


def test_parquet_with_typed_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "event_time": pa.array(
                [1569888000_000000, 1569888001_000000], pa.timestamp("us", tz="UTC")
            ),
            "event_type": ["view", "purchase"],
            "product_id": pa.array([5, 6], pa.int64()),
            "category_id": pa.array([None, 9], pa.int64()),
            "category_code": [None, "kids.toys"],
            "brand": ["a", None],
            "price": [1.5, 2.25],
            "user_id": pa.array([11, 11], pa.int64()),
            "user_session": ["u", "u"],
        }
    )
    path = tmp_path / "part.parquet"
    pq.write_table(table, path)
    db = tmp_path / "w.duckdb"
    load_rees46(db, [path])
    rows = _rows(
        db,
        "select event_id, event_time, event_type, price, category_code from raw.events order by 1",
    )
    digest = _digest(path)
    assert rows == [
        (f"rees46:{digest}:1", dt.datetime(2019, 10, 1, 0, 0, 0), "view", 1.5, None),
        (f"rees46:{digest}:2", dt.datetime(2019, 10, 1, 0, 0, 1), "purchase", 2.25, "kids.toys"),
    ]


def test_wrong_files_are_refused_and_nothing_loaded(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(Rees46FormatError, match="missing column"):
        load_rees46(db, [SAMPLE, bad])
    assert not db.exists()  # refused before anything was written: no warehouse file either
    other = tmp_path / "x.json"
    other.write_text("{}")
    with pytest.raises(Rees46FormatError, match="unknown file type"):
        load_rees46(db, [other])


def test_cli_load_events(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    ok = subprocess.run(
        [SHOPLENS, "load-events", "--db", str(db), "--format", "rees46", str(SAMPLE)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "3,000 loaded" in ok.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    fail = subprocess.run(
        [SHOPLENS, "load-events", "--db", str(db), str(bad)], capture_output=True, text=True
    )
    assert fail.returncode == 1
    assert fail.stderr.count("\n") == 1
    assert "missing column(s)" in fail.stderr


def test_gzipped_csv(tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines()[:11]
    path = tmp_path / "oct.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [path])
    assert (summary.rows, summary.loaded, summary.rejected) == (10, 10, 0)
    ids = [r[0] for r in _rows(db, "select event_id from raw.events")]
    assert sorted(ids, key=lambda i: int(i.rsplit(":", 1)[1])) == [
        f"rees46:{_digest(path)}:{line}" for line in range(2, 12)
    ]
