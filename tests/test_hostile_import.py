"""Hostile and malformed input to `shoplens load-events` (issue 10, items 4-10).

Every case asserts values: the stored UTC time, the text kept, the reject's reason, line and
original bytes, and the accounting identity `file rows = raw.events rows + raw.rejects rows`
for each file. No dbt here: these are the importer's and the --db check's own rules.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoplens.rees46 import Rees46FormatError, file_digest, load_rees46
from shoplens.warehouse import WarehouseError, check_warehouse_path

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))
HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)
T0 = dt.datetime(2019, 10, 1, 0, 0, 0)


def row(
    time: str = "2019-10-01 00:00:00 UTC",
    *,
    event_type: str = "view",
    product_id: str = "1",
    category_id: str = "10",
    category_code: str = "electronics.audio",
    brand: str = "acme",
    price: str = "10.50",
    user_id: str = "7",
    session: str = "s1",
) -> bytes:
    fields = [
        time,
        event_type,
        product_id,
        category_id,
        category_code,
        brand,
        price,
        user_id,
        session,
    ]
    return ",".join(fields).encode()


def write_csv(path: Path, lines: list[bytes], *, header: bytes = HEADER.encode()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join([header, *lines]) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def digest_of(path: Path) -> str:
    """Computed here independently of the importer: SHA-256 of the bytes, 16 hex digits."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def events_by_line(db: Path, path: Path) -> dict[int, dict[str, Any]]:
    prefix = f"rees46:{digest_of(path)}:"
    cols = "event_id, event_time, event_type, product_id, category_id, category_code, brand, "
    cols += "price, user_id, user_session"
    with duckdb.connect(str(db), read_only=True) as con:
        cur = con.execute(f"select {cols} from raw.events where starts_with(event_id, ?)", [prefix])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return {int(r["event_id"][len(prefix) :]): r for r in rows}


def rejects_by_line(db: Path, path: Path) -> dict[int, tuple[str, bytes]]:
    rows = query(
        db,
        "select kafka_offset, reason, payload from raw.rejects "
        "where source = 'rees46' and topic = ?",
        [str(path)],
    )
    assert len({r[0] for r in rows}) == len(rows), "one reject per line"
    return {int(n): (reason, bytes(payload)) for n, reason, payload in rows}


def data_rows(path: Path) -> int:
    """Rows in a CSV as the rules count them: the non-blank lines after the header."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")[1:]
    return sum(1 for line in lines if line.strip(b" \t"))


def assert_identity(db: Path, path: Path, rows: int | None = None) -> None:
    """file rows = raw.events rows from it + raw.rejects rows from it."""
    expected = data_rows(path) if rows is None else rows
    loaded = len(events_by_line(db, path))
    rejected = len(rejects_by_line(db, path))
    assert loaded + rejected == expected, (loaded, rejected, expected)


# ----------------------------------------------------------------- one file, one row per case
# (case id, line text, expected): expected is a dict of raw.events values for a loaded row or
# the reject reason (str). The rows go into one file, line = position + 2, loaded once.

ROW_CASES: list[tuple[str, bytes, dict[str, Any] | str]] = [
    # item 6: time zones, stored in UTC
    ("utc-suffix", row("2019-10-01 00:00:04 UTC"), {"event_time": T0.replace(second=4)}),
    ("offset-colon", row("2019-10-01 02:00:00+02:00"), {"event_time": T0}),
    ("offset-negative", row("2019-09-30 19:00:00-05:00"), {"event_time": T0}),
    ("offset-compact", row("2019-10-01 02:00:00+0200"), {"event_time": T0}),
    ("offset-hours", row("2019-10-01 02:00:00+02"), {"event_time": T0}),
    ("offset-spaced", row("2019-10-01 02:00:00 +02:00"), {"event_time": T0}),
    ("zulu", row("2019-10-01 00:00:00Z"), {"event_time": T0}),
    ("iso-t-zulu", row("2019-10-01T03:30:00Z"), {"event_time": T0.replace(hour=3, minute=30)}),
    ("no-zone-is-utc", row("2019-10-01 00:00:00"), {"event_time": T0}),
    ("cet-summer", row("2019-10-01 02:00:00 CET"), {"event_time": T0}),
    ("cet-winter", row("2019-12-01 01:00:00 CET"), {"event_time": dt.datetime(2019, 12, 1)}),
    ("zone-name", row("2019-10-01 02:00:00 Europe/Berlin"), {"event_time": T0}),
    (
        "fraction",
        row("2019-10-01 00:00:00.25 UTC"),
        {"event_time": T0.replace(microsecond=250_000)},
    ),
    ("time-null-word", row("NULL"), "event_time is not a timestamp"),
    ("time-na", row("NA"), "event_time is not a timestamp"),
    ("time-infinity", row("infinity"), "event_time is not a timestamp"),
    ("time-epoch-word", row("epoch"), "event_time is not a timestamp"),
    ("time-offset-25h", row("2019-10-01 02:00:00+25:00"), "event_time is not a timestamp"),
    (
        "time-unknown-zone",
        row("2019-10-01 02:00:00 Mars/Base"),
        "event_time has an unknown time zone",
    ),
    ("time-feb-30", row("2019-02-30 00:00:00 UTC"), "event_time is not a valid date and time"),
    # item 7: null-like strings are text; empty is missing
    ("brand-NA", row(brand="NA"), {"brand": "NA"}),
    ("brand-N/A", row(brand="N/A"), {"brand": "N/A"}),
    ("brand-null", row(brand="null"), {"brand": "null"}),
    ("brand-NULL", row(brand="NULL"), {"brand": "NULL"}),
    ("brand-#N/A", row(brand="#N/A"), {"brand": "#N/A"}),
    ("brand-n/a", row(brand="n/a"), {"brand": "n/a"}),
    ("brand-nan", row(brand="nan"), {"brand": "nan"}),
    ("category-code-NA", row(category_code="NA"), {"category_code": "NA"}),
    ("session-None", row(session="None"), {"user_session": "None"}),
    ("brand-empty", row(brand=""), {"brand": None}),
    ("brand-quoted-empty", row(brand='""'), {"brand": None}),
    ("brand-spaces", row(brand="   "), {"brand": None}),
    ("brand-trimmed", row(brand="  acme  "), {"brand": "acme"}),
    ("time-empty-is-missing", row(""), {"event_time": None}),
    # item 5: non-finite prices are rejected; zero loads
    ("price-1e400", row(price="1e400"), "price is not a finite number"),
    ("price-NaN", row(price="NaN"), "price is not a finite number"),
    ("price-nan", row(price="nan"), "price is not a finite number"),
    ("price-Infinity", row(price="Infinity"), "price is not a finite number"),
    ("price-minus-inf", row(price="-inf"), "price is not a finite number"),
    ("price-inf", row(price="inf"), "price is not a finite number"),
    ("price-word", row(price="ten"), "price is not a number"),
    ("price-underscore", row(price="1_000"), "price is not a number"),
    ("price-NA", row(price="NA"), "price is not a number"),
    ("price-zero", row(price="0.00"), {"price": 0.0}),
    ("price-negative", row(price="-1.5"), {"price": -1.5}),
    ("price-exponent", row(price="1.25e2"), {"price": 125.0}),
    ("price-empty", row(price=""), {"price": None}),
    # item 8: ids are whole numbers
    ("user-7.9", row(user_id="7.9"), "user_id is not an integer"),
    ("user-7.0", row(user_id="7.0"), {"user_id": 7}),
    ("user-padded", row(user_id=" 8 "), {"user_id": 8}),
    ("user-leading-zeros", row(user_id="007"), {"user_id": 7}),
    ("user-overflow", row(user_id="99999999999999999999"), "user_id is not an integer"),
    ("user-NULL", row(user_id="NULL"), "user_id is not an integer"),
    ("product-exponent", row(product_id="1e3"), "product_id is not an integer"),
    ("category-hex", row(category_id="0x10"), "category_id is not an integer"),
    ("product-underscore", row(product_id="1_000"), "product_id is not an integer"),
    (
        "several-reasons",
        row("yesterday", product_id="abc", price="NaN", user_id="x7"),
        "event_time is not a timestamp; product_id is not an integer; "
        "price is not a finite number; user_id is not an integer",
    ),
    # item 9: broken rows are rejected one by one
    (
        "ragged-short",
        b"2019-10-01 00:00:00 UTC,view,1,10,a.b,acme,1.5,7",
        "expected 9 fields, found 8",
    ),
    ("ragged-long", row() + b",extra", "expected 9 fields, found 10"),
    (
        "unterminated-quote",
        row(brand='"acme'),
        "unterminated quote (a quoted field must end on its line)",
    ),
    ("stray-quote-after-field", row(brand='"ac"me'), "malformed quoted field"),
    ("latin1-byte", row(brand="cafX").replace(b"X", b"\xe9"), "not valid UTF-8 text"),
    (
        "control-bytes",
        row(brand="a\x01\x02\x03\x04b"),
        "line contains the control bytes 01 02 03 04, which the importer reserves",
    ),
    # quoting that is valid CSV loads
    ("quoted-comma", row(brand='"acme, inc"'), {"brand": "acme, inc"}),
    ("doubled-quote", row(brand='"the ""best"""'), {"brand": 'the "best"'}),
    ("quote-inside-text", row(brand='ac"me'), {"brand": 'ac"me'}),
    ("quoted-comma-and-quote", row(brand='"x"",y"'), {"brand": 'x",y'}),
    ("quoted-spaces", row(brand='" acme "'), {"brand": "acme"}),
    (
        "all-fields-quoted",
        b",".join(b'"' + f + b'"' for f in row(brand="acme").split(b",")),
        {"brand": "acme", "price": 10.5, "user_id": 7},
    ),
    ("utf8-text", row(brand="caf\u00e9 \u6771\u4eac"), {"brand": "caf\u00e9 \u6771\u4eac"}),
    ("tab-in-type", row(event_type="\tVIEW\t"), {"event_type": "\tVIEW\t"}),
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    folder = tmp_path_factory.mktemp("hostile")
    path = write_csv(folder / "hostile.csv", [line for _, line, _ in ROW_CASES])
    db = folder / "w.duckdb"
    summary = load_rees46(db, [path])
    return db, path, summary


@pytest.mark.parametrize(
    ("line", "text", "expected"),
    [pytest.param(i + 2, text, exp, id=case) for i, (case, text, exp) in enumerate(ROW_CASES)],
)
def test_row(
    hostile: tuple[Path, Path, Any], line: int, text: bytes, expected: dict[str, Any] | str
) -> None:
    db, path, _ = hostile
    events, rejects = events_by_line(db, path), rejects_by_line(db, path)
    if isinstance(expected, str):
        assert line not in events
        reason, payload = rejects[line]
        assert reason == expected
        assert payload == text  # the original line, byte for byte
    else:
        assert line not in rejects, rejects.get(line)
        event = events[line]
        for column, value in expected.items():
            assert event[column] == value, column
        if "event_time" not in expected:
            assert event["event_time"] == T0


def test_hostile_file_accounts_for_every_row(hostile: tuple[Path, Path, Any]) -> None:
    db, path, summary = hostile
    expected_rejects = sum(isinstance(e, str) for _, _, e in ROW_CASES)
    assert summary.rows == len(ROW_CASES)
    assert (summary.loaded, summary.rejected) == (
        len(ROW_CASES) - expected_rejects,
        expected_rejects,
    )
    assert_identity(db, path, len(ROW_CASES))
    (params,) = query(db, "select params from raw.load_runs")[0]
    assert json.loads(params) == {
        "files": [
            {
                "path": str(path),
                "digest": digest_of(path),
                "rows": len(ROW_CASES),
                "loaded": summary.loaded,
                "rejected": summary.rejected,
            }
        ]
    }


def test_the_machines_time_zone_changes_nothing(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "tz.csv",
        [row("2019-10-01 00:00:00"), row("2019-10-01 02:00:00+02:00"), row("2019-10-01 02:00 CET")],
    )
    db = tmp_path / "w.duckdb"
    env = {**os.environ, "TZ": "America/New_York"}
    proc = subprocess.run(
        [SHOPLENS, "load-events", "--db", str(db), str(path)], capture_output=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert {n: e["event_time"] for n, e in events_by_line(db, path).items()} == {
        2: T0,
        3: T0,
        4: T0,
    }


# ----------------------------------------------------------------- line numbers and ids (item 4)


def test_blank_lines_crlf_and_reader_rejects_keep_line_numbers(tmp_path: Path) -> None:
    lines = [
        row("2019-10-01 00:00:01 UTC"),  # line 2
        b"",  # 3: blank, not a row
        row("2019-10-01 00:00:04 UTC", brand="cafX").replace(b"X", b"\xe9"),  # 4: bad UTF-8
        b"   ",  # 5: blank
        row("2019-10-01 00:00:06 UTC"),  # 6
        row("2019-10-01 00:00:07 UTC", brand="x" * 2_200_000),  # 7: over 2 MiB
        row("2019-10-01 00:00:08 UTC", price="NaN"),  # 8: rejected by the conversion
        row("2019-10-01 00:00:09 UTC"),  # 9
    ]
    for ending, name in ((b"\n", "lf.csv"), (b"\r\n", "crlf.csv")):
        path = tmp_path / name
        path.write_bytes(ending.join([HEADER.encode(), *lines]) + ending)
        db = tmp_path / f"{name}.duckdb"
        summary = load_rees46(db, [path])
        assert (summary.rows, summary.loaded, summary.rejected) == (6, 3, 3)
        events = events_by_line(db, path)
        # the event on line n carries the second n: numbering survives the blank and bad lines
        assert {n: e["event_time"].second for n, e in events.items()} == {2: 1, 6: 6, 9: 9}
        rejects = rejects_by_line(db, path)
        assert sorted(rejects) == [4, 7, 8]
        assert rejects[4] == ("not valid UTF-8 text", lines[2])
        assert rejects[7][0] == "line longer than 2,097,152 bytes"
        assert rejects[8] == ("price is not a finite number", lines[6])
        assert_identity(db, path, 6)


def test_same_name_in_two_folders_gets_different_ids(tmp_path: Path) -> None:
    day1 = write_csv(tmp_path / "day1" / "events.csv", [row(session="d1a"), row(session="d1b")])
    day2 = write_csv(tmp_path / "day2" / "events.csv", [row(session="d2a"), row(session="d2b")])
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [day1, day2])
    assert (summary.rows, summary.loaded) == (4, 4)
    assert digest_of(day1) != digest_of(day2)
    ids = [r[0] for r in query(db, "select event_id from raw.events")]
    assert len(set(ids)) == 4
    assert {e["user_session"] for e in events_by_line(db, day1).values()} == {"d1a", "d1b"}
    assert {e["user_session"] for e in events_by_line(db, day2).values()} == {"d2a", "d2b"}
    for path in (day1, day2):
        assert_identity(db, path)


def test_same_content_gives_the_same_ids_under_any_name(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a" / "oct.csv", [row(), row(session="s2")])
    copy = tmp_path / "b" / "renamed.csv"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    db = tmp_path / "w.duckdb"
    load_rees46(db, [first])
    load_rees46(db, [first])
    load_rees46(db, [copy])
    ids = query(db, "select event_id, count(*) from raw.events group by 1 order by 1")
    digest = digest_of(first)
    assert file_digest(first) == digest
    assert ids == [(f"rees46:{digest}:2", 3), (f"rees46:{digest}:3", 3)]


def test_gzip_ids_use_the_compressed_bytes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "oct.csv.gz", [row(), row(price="inf")])
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [path])
    assert (summary.rows, summary.loaded, summary.rejected) == (2, 1, 1)
    assert list(events_by_line(db, path)) == [2]
    assert rejects_by_line(db, path) == {3: ("price is not a finite number", row(price="inf"))}


def test_glob_characters_in_the_file_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events[1]*.csv", [row()])
    write_csv(tmp_path / "events1x.csv", [row(), row()])  # what the name would match as a glob
    db = tmp_path / "w.duckdb"
    assert load_rees46(db, [path]).rows == 1


# ----------------------------------------------------------------- files refused whole


def refused_cases(tmp: Path) -> list[tuple[str, Path, str]]:
    tmp.mkdir(parents=True, exist_ok=True)
    mixed = tmp / "mixed.csv"
    mixed.write_bytes(HEADER.encode() + b"\r\n" + row() + b"\n" + row() + b"\r\n")
    bare_cr = tmp / "bare_cr.csv"
    bare_cr.write_bytes(HEADER.encode() + b"\n" + row(brand="a\rb") + b"\n")
    truncated = tmp / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress(b"\n".join([HEADER.encode()] + [row()] * 5000))[:-400])
    not_gzip = tmp / "plain.csv.gz"
    not_gzip.write_bytes(HEADER.encode() + b"\n" + row() + b"\n")
    not_parquet = tmp / "fake.parquet"
    not_parquet.write_bytes(HEADER.encode() + b"\n" + row() + b"\n")
    truncated_parquet = tmp / "cut.parquet"
    pq.write_table(pa.table({c: ["x"] for c in HEADER.split(",")}), truncated_parquet)
    truncated_parquet.write_bytes(truncated_parquet.read_bytes()[:-20])
    empty = tmp / "empty.csv"
    empty.write_bytes(b"")
    return [
        (
            "repeated-column",
            write_csv(
                tmp / "dup.csv", [row() + b",x"], header=(HEADER + ",category_code").encode()
            ),
            "the header repeats column(s) category_code",
        ),
        (
            "missing-column",
            write_csv(tmp / "few.csv", [b"a,b"], header=b"event_time,brand"),
            "missing column(s) event_type",
        ),
        (
            "header-latin1",
            write_csv(tmp / "h.csv", [row()], header=HEADER.encode() + b",caf\xe9"),
            "the header is not UTF-8 text",
        ),
        ("empty", empty, "empty file"),
        ("mixed-line-endings", mixed, "mixed or bare-CR line endings"),
        ("bare-cr", bare_cr, "mixed or bare-CR line endings"),
        ("truncated-gzip", truncated, "cannot read"),
        ("not-gzip", not_gzip, "cannot read"),
        ("not-parquet", not_parquet, "not a readable Parquet file"),
        ("truncated-parquet", truncated_parquet, "not a readable Parquet file"),
    ]


@pytest.mark.parametrize(
    "case",
    [
        "repeated-column",
        "missing-column",
        "header-latin1",
        "empty",
        "mixed-line-endings",
        "bare-cr",
        "truncated-gzip",
        "not-gzip",
        "not-parquet",
        "truncated-parquet",
    ],
)
def test_unreadable_files_are_refused_naming_the_file(tmp_path: Path, case: str) -> None:
    files = {name: (path, needle) for name, path, needle in refused_cases(tmp_path / "in")}
    path, needle = files[case]
    good = write_csv(tmp_path / "in" / "good.csv", [row()])
    db = tmp_path / "new.duckdb"
    with pytest.raises(Rees46FormatError) as err:
        load_rees46(db, [good, path])
    assert str(path) in str(err.value) and needle in str(err.value)
    assert not db.exists()  # a failed import into a new path leaves no file
    # into an existing warehouse: nothing changes
    load_rees46(db, [good])
    before = query(db, "select count(*) from raw.events union all select count(*) from raw.rejects")
    with pytest.raises(Rees46FormatError):
        load_rees46(db, [good, path])
    after = query(db, "select count(*) from raw.events union all select count(*) from raw.rejects")
    assert before == after == [(1,), (0,)]
    # the CLI: one line naming the file, exit 1
    proc = subprocess.run(
        [SHOPLENS, "load-events", "--db", str(db), str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr, proc.stderr
    assert "Error:" not in proc.stderr.split(str(path))[0]  # no raw exception name first


# ----------------------------------------------------------------- Parquet


def test_parquet_hostile_values(tmp_path: Path) -> None:
    berlin = pa.array(
        [dt.datetime(2019, 10, 1, 0, 0, tzinfo=dt.UTC)] * 5, pa.timestamp("us", tz="Europe/Berlin")
    )
    table = pa.table(
        {
            "event_time": berlin,
            "event_type": ["view", "view", "cart", "purchase", "view"],
            "product_id": pa.array([1.0, 2.0, 3.0, 4.0, 5.5], pa.float64()),
            "category_id": pa.array([10, 10, 10, 10, 10], pa.int64()),
            "category_code": ["NA", None, "a.b", "a.b", "a.b"],
            "brand": ["N/A", "", "acme", "acme", "acme"],
            "price": pa.array([[1.5], [2.0], [float("inf")], [3.0], [4.0]], pa.list_(pa.float64())),
            "user_id": pa.array([7, 8, 9, 10, 11], pa.int64()),
            "user_session": ["u", "u", "u", "u", "u"],
        }
    )
    path = tmp_path / "part.parquet"
    pq.write_table(table, path)
    db = tmp_path / "w.duckdb"
    summary = load_rees46(db, [path])
    assert (summary.rows, summary.loaded, summary.rejected) == (5, 0, 5)
    rejects = rejects_by_line(db, path)
    assert rejects[1][0] == "price is not a number"  # a list, not a crash
    assert rejects[5][0] == "product_id is not an integer; price is not a number"
    assert json.loads(rejects[1][1])["brand"] == "N/A"

    table = table.set_column(6, "price", pa.array([1.5, 0.0, float("inf"), float("nan"), 2.0]))
    path = tmp_path / "part2.parquet"
    pq.write_table(table, path)
    summary = load_rees46(db, [path])
    assert (summary.rows, summary.loaded, summary.rejected) == (5, 2, 3)
    events = events_by_line(db, path)
    assert sorted(events) == [1, 2]
    assert events[1]["event_time"] == T0  # a zone-aware column is stored in UTC
    assert (events[1]["product_id"], events[1]["category_code"], events[1]["brand"]) == (
        1,
        "NA",
        "N/A",
    )
    assert (events[2]["price"], events[2]["brand"], events[2]["category_code"]) == (0.0, None, None)
    reasons = {n: r for n, (r, _) in rejects_by_line(db, path).items()}
    assert reasons[3] == "price is not a finite number"
    assert reasons[4] == "price is not a finite number"
    assert reasons[5] == "product_id is not an integer"
    assert_identity(db, path, 5)


def test_parquet_with_a_repeated_column_is_refused(tmp_path: Path) -> None:
    names = [*HEADER.split(","), "brand"]
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["x"])] * len(names), names=names), path)
    with pytest.raises(Rees46FormatError, match="repeats column"):
        load_rees46(tmp_path / "w.duckdb", [path])


# ----------------------------------------------------------------- --db (item 10)


@pytest.fixture
def data_files(tmp_path: Path) -> dict[str, Path]:
    csv_file = write_csv(tmp_path / "x.csv", [row()])
    gz_file = tmp_path / "x.csv.gz"
    gz_file.write_bytes(gzip.compress(csv_file.read_bytes()))
    parquet = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), parquet)
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    return {"csv": csv_file, "csv.gz": gz_file, "parquet": parquet, "empty": empty}


COMMANDS = {
    "generate": ["generate", "--sessions", "10"],
    "load-events": ["load-events", "{sample}"],
    "sql": ["sql", "select 1"],
    "report": ["report", "--out", "{tmp}/site"],
    "sink": ["sink", "--bootstrap", "127.0.0.1:9", "--stop-when-idle", "0.1"],
    "stream": ["stream", "--embedded", "--sink", "--duration", "0.1"],
}


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet", "empty"])
def test_a_db_that_is_not_duckdb_is_refused(data_files: dict[str, Path], kind: str) -> None:
    with pytest.raises(WarehouseError, match="exists but is not a DuckDB database"):
        check_warehouse_path(data_files[kind])


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("generate", "parquet"),
        ("load-events", "csv"),
        ("sql", "csv.gz"),
        ("report", "empty"),
        ("sink", "csv"),
        ("stream", "parquet"),
    ],
)
def test_every_command_refuses_a_db_that_is_not_duckdb(
    tmp_path: Path, data_files: dict[str, Path], command: str, kind: str
) -> None:
    target = data_files[kind]
    before = target.read_bytes()
    sample = write_csv(tmp_path / "in.csv", [row()])
    args = [a.format(sample=sample, tmp=tmp_path) for a in COMMANDS[command]]
    proc = subprocess.run(
        [SHOPLENS, args[0], "--db", str(target), *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert f"warehouse {target} exists but is not a DuckDB database" in proc.stderr
    assert target.read_bytes() == before
    assert not (tmp_path / "site").exists()


def test_a_new_path_and_a_duckdb_file_are_accepted(tmp_path: Path) -> None:
    check_warehouse_path(tmp_path / "new.duckdb")
    check_warehouse_path(tmp_path / "new.csv")  # a new path becomes a DuckDB file, any name
    sample = write_csv(tmp_path / "in.csv", [row()])
    db = tmp_path / "warehouse.csv"
    assert load_rees46(db, [sample]).loaded == 1
    check_warehouse_path(db)  # now a DuckDB file, whatever its name
    assert load_rees46(db, [sample]).loaded == 1
    assert query(db, "select count(*) from raw.events") == [(2,)]
    with pytest.raises(WarehouseError, match="not a DuckDB database"):
        check_warehouse_path(sample)


def test_another_applications_duckdb_is_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.events (id integer, payload varchar)")
        con.execute("insert into raw.events values (1, 'theirs')")
    objects = "select schema_name, table_name from duckdb_tables() order by all"
    before = query(db, objects)
    sample = write_csv(tmp_path / "in.csv", [row()])
    with pytest.raises(WarehouseError, match=r"raw\.events has other columns") as err:
        load_rees46(db, [sample])
    assert "missing event_id" in str(err.value) and "unexpected id, payload" in str(err.value)
    assert query(db, objects) == before == [("raw", "events")]
    assert query(db, "select * from raw.events") == [(1, "theirs")]
    assert (
        query(db, "select schema_name from duckdb_schemas() where schema_name = 'ground_truth'")
        == []
    )
    proc = subprocess.run(
        [SHOPLENS, "load-events", "--db", str(db), str(sample)], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "not a shoplens warehouse, nothing written" in proc.stderr
    assert query(db, objects) == before
