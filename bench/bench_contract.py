"""Benchmark: the topic contract's validation (`contract.Validator`), thread CPU per batch.

The sink validates each micro-batch in a thread of its own; this measures that thread's CPU
(`time.thread_time`) per `Validator.validate` call on batches of 1, 1,000 and 20,000 messages of
each topic, and derives a fixed cost per batch (the 1-message batch) and a cost per message
beyond it ((20,000-message batch - 1-message batch) / 19,999). Inputs, all valid but one:

- compact: what shoplens producers send: `plain_sql` alone;
- json.dumps defaults: the same with `, ` and `: ` separators: `plain_sql` alone;
- 1 % poison: compact with one message in 100 made hostile (not JSON, not an object, markup,
  NaN, a repeated key, invalid UTF-8): `plain_sql`, then `validation_sql` on those;
- pretty-printed: JSON indented (never plain): `validation_sql` alone once the validator has
  seen that the stream is not plain.

Every figure is the minimum over `--repeat` runs (least disturbed by other work on the machine).

Run: .venv/bin/python -m bench.bench_contract [--repeat 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable

import pyarrow as pa

from bench.common import markdown_table, write_section
from shoplens.generate import build_world
from shoplens.stream.contract import BATCH_SCHEMA, EVENTS, TRANSACTIONS, Validator
from shoplens.stream.producer import encode, session_stream

SIZES = (1, 1_000, 20_000)
POISON_EVERY = 100


def messages(n: int) -> dict[str, list[bytes]]:
    """`n` producer-encoded events and `n` order lines (the simulated lines, repeated under
    new transaction ids: a stream of `n` events holds far fewer)."""
    pairs = list(
        session_stream(
            build_world(50, 2_000, 200),
            n,
            dt.datetime(2026, 11, 21, 9),
            dt.timedelta(minutes=30),
            seed=5,
            id_prefix="b-",
        )
    )
    lines = [line for _, ls in pairs for line in ls]
    return {
        EVENTS.topic: [encode(event) for event, _ in pairs],
        TRANSACTIONS.topic: [
            encode({**lines[i % len(lines)], "transaction_id": f"b-t{i}"}) for i in range(n)
        ],
    }


def poisoned(payloads: list[bytes]) -> list[bytes]:
    """`payloads` with one in `POISON_EVERY` made hostile, in turn one of six ways."""
    harms: list[Callable[[bytes], bytes]] = [
        lambda p: p[:-1],  # not valid JSON
        lambda p: b"[" + p + b"]",  # not a JSON object
        lambda p: p.replace(b'":"', b'":"<b>', 1),  # markup
        lambda p: re.sub(rb'"price":[^,}]+', b'"price":NaN', p),  # non-finite number
        lambda p: p[:-1] + b',"' + p[2 : p.index(b'"', 2)] + b'":1}',  # repeated key
        lambda p: b"\xff" + p,  # not valid UTF-8
    ]
    return [
        harms[(i // POISON_EVERY) % len(harms)](p) if i % POISON_EVERY == POISON_EVERY - 1 else p
        for i, p in enumerate(payloads)
    ]


def batch(payloads: list[bytes]) -> pa.Table:
    n = len(payloads)
    return pa.table(
        {
            "partition": pa.array([0] * n, pa.int32()),
            "kafka_offset": pa.array(range(n), pa.int64()),
            "payload": pa.array(payloads, pa.binary()),
        },
        schema=BATCH_SCHEMA,
    )


def cpu_ms(run: Callable[[pa.Table], object], rows: pa.Table, repeat: int) -> float:
    """Least thread CPU of `run(rows)` over `repeat` runs (after one warm-up), in ms."""
    run(rows)
    best = float("inf")
    for _ in range(repeat):
        began = time.thread_time()
        run(rows)
        best = min(best, time.thread_time() - began)
    return best * 1e3


def relaid(payloads: list[bytes], indent: int | None = None) -> list[bytes]:
    """`payloads` written again by json.dumps with its default separators (and `indent`)."""
    return [json.dumps(json.loads(p), indent=indent).encode() for p in payloads]


def measure(repeat: int) -> list[list[object]]:
    """One table row per topic and input."""
    data = messages(max(SIZES))
    rows: list[list[object]] = []
    for contract in (EVENTS, TRANSACTIONS):
        compact = data[contract.topic]
        inputs = {
            "compact": compact,
            "json.dumps defaults": relaid(compact),
            "1 % poison": poisoned(compact),
            "pretty-printed": relaid(compact, indent=1),
        }
        for name, payloads in inputs.items():
            validator = Validator(contract)
            try:
                ms = {n: cpu_ms(validator.validate, batch(payloads[:n]), repeat) for n in SIZES}
            finally:
                validator.close()
            per_message = (ms[SIZES[-1]] - ms[1]) / (SIZES[-1] - 1) * 1e3
            rows.append(
                [
                    contract.topic,
                    name,
                    f"{ms[1]:.2f}",
                    f"{ms[1_000]:.2f}",
                    f"{ms[20_000]:.1f}",
                    f"{per_message:.2f}",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (the least kept)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = measure(args.repeat)
    load_after = os.getloadavg()[0]
    header = [
        "topic",
        "input",
        "1 message: ms (fixed per batch)",
        "1,000: ms",
        "20,000: ms",
        "µs per message beyond the fixed cost",
    ]
    body = (
        "Thread CPU of one `Validator.validate` call (what the sink's validation thread spends "
        f"per batch), least of {args.repeat} runs after a warm-up, on producer-encoded messages "
        "(see the module docstring of bench/bench_contract.py for the inputs).\n\n"
        + markdown_table(header, rows)
        + f"\n\nLoad average {load_before:.1f} before, {load_after:.1f} after (2 cores, shared)."
        f"\n\nCommand: `.venv/bin/python -m bench.bench_contract --repeat {args.repeat}`"
    )
    print(body)
    write_section("contract", "Contract validation per batch (thread CPU)", body)


if __name__ == "__main__":
    main()
