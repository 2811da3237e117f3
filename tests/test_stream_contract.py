"""The topic contracts: typed rows for good messages, one readable reason per poison message."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa
import pytest

from shoplens.generate import build_world
from shoplens.stream.contract import (
    BATCH_SCHEMA,
    EVENTS,
    MAX_PAYLOAD_BYTES,
    PLAIN_PROBE_ROWS,
    PLAIN_SKIP_ROWS,
    TIME_RANGE_TEXT,
    TRANSACTIONS,
    TopicContract,
    Validator,
    plain_sql,
    validation_sql,
)
from shoplens.stream.producer import encode, session_stream

GOOD_EVENT = {
    "event_id": "k1-e1",
    "event_time": "2026-11-21T09:00:01.500000",
    "event_type": "add_to_cart",
    "product_id": 5,
    "category_id": 2,
    "category_code": "electronics.audio",
    "brand": "Acme",
    "price": 19.5,
    "user_id": 3,
    "user_session": "k1-s1",
    "quantity": 2,
    "device": "mobile",
    "traffic_source": "email",
    "page": None,
}
GOOD_LINE = {
    "transaction_id": "k1-t1",
    "order_id": "k1-o1",
    "event_id": "k1-e9",
    "customer_id": 3,
    "product_id": 5,
    "category_code": "electronics.audio",
    "price": 19.5,
    "quantity": 2,
    "transaction_time": "2026-11-21 09:03:00",
}


def batch(payloads: Sequence[bytes | None]) -> pa.Table:
    n = len(payloads)
    return pa.table(
        {
            "partition": pa.array([1] * n, pa.int32()),
            "kafka_offset": pa.array(range(100, 100 + n), pa.int64()),
            "payload": pa.array(payloads, pa.binary()),
        },
        schema=BATCH_SCHEMA,
    )


def event(**changes: object) -> bytes:
    return json.dumps({**GOOD_EVENT, **changes}).encode()


def raw_event(field: str, json_text: str) -> bytes:
    """The good event with `field`'s value replaced by `json_text` (possibly not JSON)."""
    doc = json.dumps({**GOOD_EVENT, field: "@@"})
    return doc.replace('"@@"', json_text).encode()


def compact(payload: bytes) -> bytes:
    """`payload` written by json.dumps with its default separators, made compact (what the
    producers send, the form `plain_sql` recognises)."""
    return payload.replace(b'", "', b'","').replace(b', "', b',"').replace(b'": ', b'":')


def both_queries(contract: TopicContract, payloads: list[bytes]) -> tuple[pa.Table, pa.Table]:
    """(`plain_sql`, `validation_sql`) results on the same batch."""
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'").fetchall()
        con.register("b", batch(payloads))
        plain = con.sql(plain_sql(contract, "b")).to_arrow_table()
        full = con.sql(validation_sql(contract, "b")).to_arrow_table()
    return plain, full


@pytest.fixture(scope="module")
def events() -> Iterator[Validator]:
    v = Validator(EVENTS)
    yield v
    v.close()


def test_good_event_becomes_a_typed_row(events: Validator) -> None:
    valid, rejects = events.validate(batch([event()]))
    assert rejects.num_rows == 0
    row = valid.to_pylist()[0]
    assert row == {**GOOD_EVENT, "event_time": dt.datetime(2026, 11, 21, 9, 0, 1, 500000)}
    assert valid.schema.field("quantity").type == pa.int32()
    assert valid.schema.field("user_id").type == pa.int64()


def test_timestamps_with_an_offset_are_converted_to_utc(events: Validator) -> None:
    valid, _ = events.validate(batch([event(event_time="2026-11-21T11:00:00+02:00")]))
    assert valid["event_time"].to_pylist() == [dt.datetime(2026, 11, 21, 9, 0)]


POISON: list[tuple[bytes | None, str]] = [
    (b"not json at all", "not valid JSON"),
    (b"", "not valid JSON"),
    (None, "empty message (no value)"),
    (b"[1, 2, 3]", "not a JSON object (got array)"),
    (b'"just a string"', "not a JSON object (got string)"),
    (event(price="19.5"), "field price: expected a number, got string"),
    (event(user_id="3"), "field user_id: expected an integer, got string"),
    (event(quantity=1.5), "field quantity: expected an integer, got number"),
    (event(quantity=2**40), "field quantity: invalid integer 1099511627776"),
    (event(product_id={"id": 5}), "field product_id: expected an integer, got object"),
    (event(event_id=None), "missing field event_id"),
    (
        json.dumps({k: v for k, v in GOOD_EVENT.items() if k != "user_id"}).encode(),
        "missing field user_id",
    ),
    (event(event_time="yesterday"), "field event_time: invalid timestamp yesterday"),
    (event(event_type="teleport"), "unknown event_type 'teleport'"),
    (event(device="toaster"), "unknown device 'toaster'"),
    (event(brand="<script>alert(1)</script>"), "field brand: markup in text"),
    (event(category_code="<img src=x onerror=alert(1)>"), "field category_code: markup in text"),
    (event(brand="x" * (MAX_PAYLOAD_BYTES + 10)), "payload too large"),
    (json.dumps(GOOD_EVENT).encode("utf-16"), "not valid UTF-8"),
    (
        json.dumps({**GOOD_EVENT, "brand": "Café"}, ensure_ascii=False).encode("latin-1"),
        "not valid UTF-8",
    ),
]

# Strict JSON where DuckDB's parser is lenient, and the time range. Full reasons.
STRICT: list[tuple[bytes, str]] = [
    (raw_event("price", "NaN"), "field price: non-finite number NaN"),
    (raw_event("price", "nan"), "field price: non-finite number nan"),
    (raw_event("price", "Infinity"), "field price: non-finite number Infinity"),
    (raw_event("price", "-Infinity"), "field price: non-finite number -Infinity"),
    (raw_event("price", "1e309"), "field price: non-finite number 1e309"),
    (raw_event("price", "-1E400"), "field price: non-finite number -1E400"),
    (raw_event("quantity", "Infinity"), "field quantity: non-finite number Infinity"),
    (raw_event("user_id", "1e400"), "field user_id: non-finite number 1e400"),
    (raw_event("price", '19.5, "price": 20'), "ambiguous object: key 'price' repeated"),
    (raw_event("page", 'null, "page": null'), "ambiguous object: key 'page' repeated"),
    (
        raw_event("brand", '"Acme", "extra": 1, "extra": 2'),
        "ambiguous object: key 'extra' repeated",
    ),
    # The same key written with an escape is still the same key.
    (
        event().replace(b'"brand"', b'"br\\u0061nd"').replace(b'"price"', b'"brand": 1, "price"'),
        "ambiguous object: key 'brand' repeated",
    ),
    (b"null", "not a JSON object (got null)"),
    (b" \r\n\tnull\n", "not a JSON object (got null)"),
    (b"true", "not a JSON object (got boolean)"),
    (b"\n42", "not a JSON object (got number)"),
    (b'\t"text"', "not a JSON object (got string)"),
    (b"\r\n[]", "not a JSON object (got array)"),
    (
        event(event_time="10000-01-01T00:00:00"),
        f"field event_time: 10000-01-01T00:00:00 outside {TIME_RANGE_TEXT}",
    ),
    (
        event(event_time="-0044-03-15T12:00:00"),
        f"field event_time: -0044-03-15T12:00:00 outside {TIME_RANGE_TEXT}",
    ),
    (event(event_time="0044-03-15 BC"), "field event_time: invalid timestamp 0044-03-15 BC"),
    (
        event(event_time="1969-12-31T23:59:59.999999"),
        f"field event_time: 1969-12-31T23:59:59.999999 outside {TIME_RANGE_TEXT}",
    ),
    (
        event(event_time="1970-01-01T01:00:00+02:00"),
        f"field event_time: 1970-01-01T01:00:00+02:00 outside {TIME_RANGE_TEXT}",
    ),
    (
        event(event_time="2101-01-01T00:00:00"),
        f"field event_time: 2101-01-01T00:00:00 outside {TIME_RANGE_TEXT}",
    ),
    (event(event_time="infinity"), f"field event_time: infinity outside {TIME_RANGE_TEXT}"),
]


# Kinds, forms and enumerations the lists above do not cover. Full reasons.
MORE: list[tuple[bytes, str]] = [
    (raw_event("event_type", "5"), "field event_type: expected a string, got integer"),
    (raw_event("page", "true"), "field page: expected a string, got boolean"),
    (raw_event("brand", '["a"]'), "field brand: expected a string, got array"),
    (
        raw_event("event_time", "20261121"),
        "field event_time: expected an ISO timestamp string, got integer",
    ),
    (
        raw_event("user_id", "9223372036854775808"),
        "field user_id: invalid bigint 9223372036854775808",
    ),
    (
        raw_event("product_id", "-9223372036854775809"),
        "field product_id: invalid bigint -9223372036854775809",
    ),
    (raw_event("quantity", "1.0"), "field quantity: expected an integer, got number"),
    (raw_event("quantity", "1e3"), "field quantity: expected an integer, got number"),
    (raw_event("quantity", "2147483648"), "field quantity: invalid integer 2147483648"),
    (raw_event("price", "[1, 2]"), "field price: expected a number, got array"),
    (raw_event("price", "true"), "field price: expected a number, got boolean"),
    (event(traffic_source="tv"), "unknown traffic_source 'tv'"),
    (event(device="Mobile"), "unknown device 'Mobile'"),
    (event(event_type="page_view "), "unknown event_type 'page_view '"),
    (event(page="</div>"), "field page: markup in text"),
    (raw_event("brand", '"\\u003cscript>"'), "field brand: markup in text"),  # escaped '<'
    (raw_event("brand", '"\\ud83d"'), "not valid JSON"),  # a lone surrogate
    (raw_event("brand", '"a\x01b"'), "not valid JSON"),  # a raw control character
    (b"\f" + event(), "not valid JSON"),  # form feed: not JSON whitespace
    (b"\xef\xbb\xbf" + event(), "not valid JSON"),  # byte order mark
    (event() + event(), "not valid JSON"),
    (event()[:-1] + b", }", "not valid JSON (a trailing comma)"),  # DuckDB reads it
    (raw_event("brand", '["a",\n]'), "not valid JSON (a trailing comma)"),
    (
        event(event_time="2026-02-30T00:00:00"),
        "field event_time: invalid timestamp 2026-02-30T00:00:00",
    ),
]


def test_a_comma_before_a_bracket_inside_a_string_is_text(events: Validator) -> None:
    texts = ["a,}", "b, ]", 'c\\",}', "d,\n}"]
    # (a leading space: not plain, so the full check reads them)
    valid, rejects = events.validate(batch([b" " + event(brand=t) for t in texts]))
    assert rejects.num_rows == 0
    assert valid["brand"].to_pylist() == texts


def test_one_validator_sees_each_batch_on_its_own(events: Validator) -> None:
    # The statement is prepared once over a source that yields the current batch.
    first, _ = events.validate(batch([event(event_id="a1"), event(event_id="a2")]))
    second, rejects = events.validate(batch([b"{", event(event_id="b1")]))
    third, none = events.validate(batch([]))
    assert first["event_id"].to_pylist() == ["a1", "a2"]
    assert second["event_id"].to_pylist() == ["b1"]
    assert rejects["kafka_offset"].to_pylist() == [100]
    assert rejects["reason"].to_pylist() == ["not valid JSON"]
    assert third.num_rows == 0 and none.num_rows == 0


def test_each_poison_message_is_rejected_with_its_reason(events: Validator) -> None:
    payloads = [p for p, _ in POISON]
    valid, rejects = events.validate(batch([event(), *payloads, event(event_id="k1-e2")]))
    assert valid["event_id"].to_pylist() == ["k1-e1", "k1-e2"]
    got = {r["kafka_offset"]: r for r in rejects.to_pylist()}
    assert len(got) == len(POISON)
    for i, (payload, reason) in enumerate(POISON):
        row = got[101 + i]
        assert row["reason"].startswith(reason), (reason, row["reason"])
        assert row["payload"] == payload
        assert row["partition"] == 1


def test_strict_json_and_time_range_rejects_carry_their_exact_reason(events: Validator) -> None:
    payloads = [p for p, _ in STRICT]
    valid, rejects = events.validate(batch([event(), *payloads, event(event_id="k1-e2")]))
    assert valid["event_id"].to_pylist() == ["k1-e1", "k1-e2"]
    got = {r["kafka_offset"]: (r["payload"], r["reason"]) for r in rejects.to_pylist()}
    assert got == {101 + i: (payload, reason) for i, (payload, reason) in enumerate(STRICT)}


def test_more_rejects_carry_their_exact_reason(events: Validator) -> None:
    payloads = [p for p, _ in MORE]
    valid, rejects = events.validate(batch([event(), *payloads]))
    assert valid["event_id"].to_pylist() == ["k1-e1"]
    got = {r["kafka_offset"]: (r["payload"], r["reason"]) for r in rejects.to_pylist()}
    assert got == {101 + i: (payload, reason) for i, (payload, reason) in enumerate(MORE)}


def test_compact_poison_gets_the_same_reason(events: Validator) -> None:
    # In the producers' compact form a poison message passes the plain form's first test (its
    # text matches its parse written back) and must still be caught by the checks after it.
    cases = [(compact(p), r) for p, r in STRICT + MORE] + [
        (compact(p), r) for p, r in POISON if p and p.startswith(b"{")
    ]
    valid, rejects = events.validate(batch([compact(event()), *[p for p, _ in cases]]))
    assert valid["event_id"].to_pylist() == ["k1-e1"]
    got = {r["kafka_offset"]: (r["payload"], r["reason"]) for r in rejects.to_pylist()}
    assert len(got) == len(cases)
    for i, (payload, reason) in enumerate(cases):
        assert got[101 + i][0] == payload
        assert got[101 + i][1].startswith(reason), (payload, got[101 + i][1])
        if (payload, reason) in cases[: len(STRICT + MORE)]:
            assert got[101 + i][1] == reason


# Compact messages with nothing to flag, at the edges of what the plain form admits.
PLAIN_EDGES: list[dict[str, object]] = [
    {"brand": 'quote " backslash \\ newline \n tab \t', "page": "ünïcode ✓ 😀"},
    {"price": -0.0, "quantity": 2_147_483_647},
    {"price": 0.1 + 0.2, "quantity": -2_147_483_648},
    {"price": 5e-324, "product_id": 9_223_372_036_854_775_807},
    {
        "price": None,
        "user_id": -9_223_372_036_854_775_808,
        "category_id": 2_053_013_555_631_882_655,
    },
    {"event_time": "2026-11-21T11:00:00+02:00"},
    {"event_time": "2019-10-01 00:00:00 UTC", "event_type": "view", "device": None},
    {"event_time": "2100-12-31T23:59:59.999999", "traffic_source": None},
    {"event_time": "1970-01-01T00:00:00", "page": "", "brand": None},
]


def test_plain_messages_read_the_same_in_both_queries() -> None:
    # Compact (as the producer writes) and with json.dumps' default separators.
    payloads = [
        json.dumps({**GOOD_EVENT, **c}, separators=seps, ensure_ascii=False).encode()
        for seps in ((",", ":"), (", ", ": "))
        for c in PLAIN_EDGES
    ]
    plain, full = both_queries(EVENTS, payloads)
    assert plain["plain"].to_pylist() == [True] * len(payloads)
    assert full["reason"].null_count == len(payloads)
    assert plain.select(EVENTS.columns).to_pylist() == full.select(EVENTS.columns).to_pylist()
    signs = [math.copysign(1, p) for p in plain["price"].to_pylist() if p is not None]
    assert signs == [math.copysign(1, p) for p in full["price"].to_pylist() if p is not None]
    assert math.copysign(1, plain["price"][1].as_py()) == -1  # -0.0 stays negative


def test_valid_messages_in_both_forms_keep_the_batch_order(events: Validator) -> None:
    # Plain messages and the others (here json.dumps' default separators) are checked by two
    # queries; the valid rows and the rejects still come out in batch order.
    payloads = [
        compact(event(event_id="a")),
        event(event_id="b"),
        b"{",
        compact(event(event_id="c")),
        event(event_id="d", brand="A < B"),
        compact(event(event_id="e", device="toaster")),
        compact(event(event_id="f")),
    ]
    valid, rejects = events.validate(batch(payloads))
    assert valid["event_id"].to_pylist() == ["a", "b", "c", "d", "f"]
    assert valid["brand"].to_pylist() == ["Acme", "Acme", "Acme", "A < B", "Acme"]
    assert rejects["kafka_offset"].to_pylist() == [102, 105]
    assert rejects["reason"].to_pylist() == ["not valid JSON", "unknown device 'toaster'"]
    only_plain_valid = [compact(event(event_id="a")), b"{", compact(event(event_id="b"))]
    valid, rejects = events.validate(batch(only_plain_valid))
    assert valid["event_id"].to_pylist() == ["a", "b"]
    assert rejects["kafka_offset"].to_pylist() == [101]


def test_a_stream_of_other_layouts_skips_the_plain_check() -> None:
    v = Validator(EVENTS)
    try:
        pretty = [
            json.dumps({**GOOD_EVENT, "event_id": f"p{i}"}, indent=1).encode()
            for i in range(PLAIN_PROBE_ROWS)
        ]
        first, _ = v.validate(batch(pretty))
        assert (v.checked_plain, v.checked_full) == (PLAIN_PROBE_ROWS, PLAIN_PROBE_ROWS)
        second, _ = v.validate(batch(pretty))  # straight to the full check
        assert (v.checked_plain, v.checked_full) == (PLAIN_PROBE_ROWS, 2 * PLAIN_PROBE_ROWS)
        assert first.num_rows == PLAIN_PROBE_ROWS and first.equals(second)
        v.validate(batch([event()] * (PLAIN_SKIP_ROWS - 2 * PLAIN_PROBE_ROWS)))
        v.validate(batch(pretty))
        assert v.checked_plain == PLAIN_PROBE_ROWS  # PLAIN_SKIP_ROWS skipped
        valid, _ = v.validate(batch([event()]))  # tried again
        assert v.checked_plain == PLAIN_PROBE_ROWS + 1
        assert valid["event_id"].to_pylist() == ["k1-e1"]
        # Small batches add up: one message at a time, the probe ends after PLAIN_PROBE_ROWS.
        for p in pretty[1:]:
            v.validate(batch([p]))
        assert v.checked_plain == 2 * PLAIN_PROBE_ROWS
        v.validate(batch([pretty[0]]))
        assert v.checked_plain == 2 * PLAIN_PROBE_ROWS  # skipped again
    finally:
        v.close()


def test_json_whitespace_around_an_object_is_accepted(events: Validator) -> None:
    doc = json.dumps(GOOD_EVENT).encode()
    pads = [b"\n", b"\r\n", b"\t", b" ", b" \t\r\n "]
    payloads = [pad + doc for pad in pads] + [doc + pad for pad in pads] + [b"\n" + doc + b"\n"]
    valid, rejects = events.validate(batch(payloads))
    assert rejects.num_rows == 0
    assert valid.num_rows == len(payloads)
    assert set(valid["event_id"].to_pylist()) == {"k1-e1"}
    assert set(valid["price"].to_pylist()) == {19.5}


def test_times_at_the_edges_of_the_range_land(events: Validator) -> None:
    times = ["1970-01-01T00:00:00", "2100-12-31T23:59:59.999999", "2101-01-01T00:59:00+01:00"]
    valid, rejects = events.validate(batch([event(event_time=t) for t in times]))
    assert rejects.num_rows == 0
    assert valid["event_time"].to_pylist() == [
        dt.datetime(1970, 1, 1),
        dt.datetime(2100, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2100, 12, 31, 23, 59),
    ]


def test_largest_finite_numbers_land(events: Validator) -> None:
    valid, rejects = events.validate(
        batch([raw_event("price", "1.7976931348623157e308"), raw_event("price", "-5e-324")])
    )
    assert rejects.num_rows == 0
    assert valid["price"].to_pylist() == [1.7976931348623157e308, -5e-324]


def test_transaction_time_has_the_same_range() -> None:
    v = Validator(TRANSACTIONS)
    try:
        late = json.dumps({**GOOD_LINE, "transaction_time": "10000-01-01 00:00:00"}).encode()
        nan = json.dumps({**GOOD_LINE, "price": float("nan")}).encode()
        valid, rejects = v.validate(batch([json.dumps(GOOD_LINE).encode(), late, nan]))
    finally:
        v.close()
    assert valid["transaction_id"].to_pylist() == ["k1-t1"]
    assert rejects["reason"].to_pylist() == [
        f"field transaction_time: 10000-01-01 00:00:00 outside {TIME_RANGE_TEXT}",
        "field price: non-finite number NaN",
    ]


def test_all_problems_of_a_message_are_listed(events: Validator) -> None:
    _, rejects = events.validate(batch([event(price="x", event_type="teleport", user_id=None)]))
    reason = rejects["reason"][0].as_py()
    assert reason.split("; ") == [
        "unknown event_type 'teleport'",
        "field price: expected a number, got string",
        "missing field user_id",
    ]


def test_markup_screen_leaves_ordinary_text_alone(events: Validator) -> None:
    valid, rejects = events.validate(
        batch([event(brand="A < B & C > D"), event(brand="Ünïcode ✓ brand")])
    )
    assert rejects.num_rows == 0
    assert valid["brand"].to_pylist() == ["A < B & C > D", "Ünïcode ✓ brand"]


def test_transaction_contract() -> None:
    v = Validator(TRANSACTIONS)
    try:
        line = json.dumps(GOOD_LINE).encode()
        no_price = json.dumps({**GOOD_LINE, "price": None}).encode()
        bad = json.dumps({**GOOD_LINE, "customer_id": None, "quantity": "2"}).encode()
        valid, rejects = v.validate(batch([line, no_price, bad]))
    finally:
        v.close()
    assert valid["transaction_id"].to_pylist() == ["k1-t1", "k1-t1"]
    assert valid["price"].to_pylist() == [19.5, None]
    assert rejects["reason"].to_pylist() == [
        "missing field customer_id; field quantity: expected an integer, got string"
    ]


def test_everything_the_producer_sends_passes_the_contract(events: Validator) -> None:
    world = build_world(5, 120, 60)
    pairs = list(
        session_stream(
            world,
            3_000,
            dt.datetime(2026, 11, 21, 9),
            dt.timedelta(minutes=5),
            seed=5,
            id_prefix="t-",
        )
    )
    assert len(pairs) == 3_000
    valid, rejects = events.validate(batch([encode(e) for e, _ in pairs]))
    assert rejects.num_rows == 0
    assert valid.num_rows == 3_000
    # All of it in the plain form, the cheap path.
    plain, _ = both_queries(EVENTS, [encode(e) for e, _ in pairs[:500]])
    assert plain["plain"].to_pylist() == [True] * 500
    assert set(valid["event_type"].to_pylist()) >= {"page_view", "product_view", "add_to_cart"}
    lines = [encode(line) for _, ls in pairs for line in ls]
    assert lines, "3,000 events should include some purchases"
    t = Validator(TRANSACTIONS)
    try:
        valid_lines, bad_lines = t.validate(batch(lines))
    finally:
        t.close()
    assert (valid_lines.num_rows, bad_lines.num_rows) == (len(lines), 0)
    plain_lines, _ = both_queries(TRANSACTIONS, lines)
    assert plain_lines["plain"].to_pylist() == [True] * len(lines)
