"""Write REES46-format clickstream files (CSV, .csv.gz or Parquet) from the simulated shop.

The sessions come from the same world and simulation as `generate_and_load`
(`allocate_customers`, `session_starts`, `simulate_block`); only their product events are
written (view, cart, remove_from_cart, purchase), in the public REES46 columns and formats:
`2019-10-01 00:00:04 UTC` times, dotted category codes, 19-digit category ids, 7-8 digit
product ids, 9-digit user ids, UUID sessions, prices with two decimals, rows in event_time order.

The real files' quirks are injected at configurable rates (`Rees46Quirks`): exact duplicate rows,
products without category_code or brand, prices that change from day to day, views (and a few
purchases) priced 0.00, sessions that carry a second user_id, very long sessions (several visits
over hours or days under one session id), purchasing sessions without cart events, and rows
without a user_session.

Sessions are simulated block by block and written in event_time order through a bounded buffer:
rows earlier than the next block's first session start are final and written; the rest (mostly
long sessions' later visits) wait for the next block. Memory stays about one block plus the
pending tail, whatever the file size. The same seed and options give the same file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from shoplens.generate.simulate import (
    ADD_TO_CART,
    PRODUCT_VIEW,
    PURCHASE,
    REMOVE_FROM_CART,
    US,
    allocate_customers,
    session_starts,
    simulate_block,
    to_us,
)
from shoplens.generate.world import (
    CATEGORY_CODES,
    CATEGORY_IDS,
    World,
    build_world,
    n_customers_for,
    n_products_for,
)
from shoplens.rees46 import REES46_COLUMNS

# Simulator event type code -> REES46 event type (page views and checkouts are not written).
REES46_TYPES: dict[int, str] = {
    PRODUCT_VIEW: "view",
    ADD_TO_CART: "cart",
    REMOVE_FROM_CART: "remove_from_cart",
    PURCHASE: "purchase",
}
# Sessions simulated per block. Part of the design: the content of a file depends on it.
BLOCK_SESSIONS = 50_000
# REES46-looking ids: 9-digit user ids, 7-8 digit product ids (bijective in the world ids).
USER_ID_BASE = 510_000_000
USER_ID_STEP = 17
PRODUCT_ID_BASE = 1_000_000
PRODUCT_ID_STEP = 4_099
# A long session absorbs this many other visits, spread over this many hours after its start.
LONG_SESSION_VISITS = (3, 30)
LONG_SESSION_HOURS = (2.0, 7 * 24.0)
SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Argument bounds. Besides the block being written, memory holds about 17 bytes a session (its
# customer, start and a written flag): peak 428 MB measured flat from 100k to 2M sessions, so
# 50M sessions (about 280M rows, six times the real October 2019 file) need about 1.3 GB.
MAX_SESSIONS = 50_000_000
FIRST_DAY = dt.date(1970, 1, 1)
LAST_DAY = dt.date(2200, 12, 31)


class Rees46FileError(ValueError):
    """Options that cannot make a file (existing or badly named output, bad quirk rates)."""


@dataclass(frozen=True)
class Rees46Quirks:
    """Rates of the quirks of real REES46 files (each a share, 0 turns it off).

    Defaults follow what the public files show where a figure is known (the 3,000-row sample
    in shared/data, the 5,066-session slice of issue 10) and are small guesses otherwise.
    """

    duplicate: float = 0.001  # share of rows written twice, identically, one after the other
    missing_category_code: float = 0.32  # share of products without category_code (sample: 33%)
    missing_brand: float = 0.13  # share of products without brand (sample: 13% of rows)
    zero_price_view: float = 0.001  # share of views priced 0.00 (sample: 3 of 2,941 views)
    zero_price_purchase: float = 0.0005  # share of purchases priced 0.00
    price_change: float = 0.2  # share of products whose price changes from day to day (0-25% off)
    shared_session: float = 0.0002  # share of sessions whose later events carry a second user
    long_session: float = 0.001  # share of sessions that absorb 3-30 visits over 2 h to 7 days
    purchase_without_cart: float = 0.3  # share of purchasing sessions without cart events
    missing_session: float = 0.000001  # share of rows with an empty user_session

    @classmethod
    def parse(cls, items: tuple[str, ...] | list[str]) -> Rees46Quirks:
        """Defaults overridden by `name=rate` items; Rees46FileError naming the bad item."""
        names = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, float] = {}
        for item in items:
            name, sep, text = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise Rees46FileError(
                    f"unknown quirk {item!r}: expected NAME=RATE, NAME one of {', '.join(names)}"
                )
            try:
                values[name] = float(text)
            except ValueError:
                raise Rees46FileError(
                    f"quirk {name}: rate {text.strip()!r} is not a number"
                ) from None
        return cls(**values)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            rate = getattr(self, f.name)
            if not 0.0 <= rate <= 1.0:  # also refuses NaN
                raise Rees46FileError(f"quirk {f.name}: rate must be between 0 and 1, got {rate}")


@dataclass(frozen=True)
class Rees46FileSummary:
    """What one file write produced; `str()` is the one-line summary the CLI prints."""

    path: Path
    rows: int
    sessions: int
    purchases: int
    seconds: float
    quirks: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        quirks = ", ".join(f"{k} {v:,}" for k, v in self.quirks.items() if v)
        rate = self.rows / self.seconds if self.seconds > 0 else float("inf")
        return (
            f"wrote {self.rows:,} REES46 rows ({self.sessions:,} sessions, {self.purchases:,} "
            f"purchases; quirks: {quirks or 'none'}) to {self.path} in {self.seconds:.1f} s "
            f"({rate:,.0f} rows/s)"
        )


def file_kind(path: Path) -> str:
    """csv, csv.gz or parquet from the file name; Rees46FileError for anything else."""
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:]
    raise Rees46FileError(f"{path.name}: the file name must end in .csv, .csv.gz or .parquet")


# ------------------------------------------------------------------------------ formatting


@functools.cache
def _time_of_day() -> pa.Array:
    """'HH:MM:SS UTC' for every second of a day (index = seconds since midnight)."""
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d} UTC" for s in range(86_400)])


@functools.cache
def _cents() -> pa.Array:
    """'.00' to '.99' (index = cents)."""
    return pa.array([f".{c:02d}" for c in range(100)])


def _format_times(seconds: np.ndarray) -> pa.Array:
    """`2019-10-01 00:00:04 UTC` strings of epoch seconds (table lookups, no per-row Python)."""
    days, day_index = np.unique(seconds // 86_400, return_inverse=True)
    day_text = pa.array(np.datetime_as_string(days.astype("datetime64[D]")))
    return pc.binary_join_element_wise(
        day_text.take(pa.array(day_index)), _time_of_day().take(pa.array(seconds % 86_400)), " "
    )


def _format_prices(cents: np.ndarray) -> pa.Array:
    """Prices with two decimals (`35.79`, `0.00`) from integer cents."""
    whole = pc.cast(pa.array(cents // 100), pa.string())
    return pc.binary_join_element_wise(whole, _cents().take(pa.array(cents % 100)), "")


_HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")
_VARIANT = np.frombuffer(b"89ab", dtype="S1")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser of uint64 values."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def session_uuids(seed: int, session_no: np.ndarray) -> pa.Array:
    """A version-4-looking UUID string per session number, a pure function of (seed, number)."""
    with np.errstate(over="ignore"):
        base = session_no.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
    halves = np.stack([_mix(base), _mix(base ^ np.uint64(0xD1B54A32D192ED03))], axis=1)
    nibbles = np.empty((len(session_no), 32), dtype=np.uint8)
    raw = halves.astype(">u8").view(np.uint8).reshape(-1, 16)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 15
    chars = _HEX[nibbles]
    chars[:, 12] = b"4"
    chars[:, 16] = _VARIANT[nibbles[:, 16] & 3]
    text = np.full((len(session_no), 36), b"-", dtype="S1")
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at : at + hi - lo] = chars[:, lo:hi]
    fixed = np.ascontiguousarray(text).view("S36").ravel()
    return pc.cast(pa.array(fixed, pa.binary(36)), pa.string())


# ------------------------------------------------------------------------------ writer


class _Writer:
    """Streams typed REES46 batches to CSV (optionally gzip) or Parquet."""

    def __init__(self, path: Path, kind: str) -> None:
        self.kind = kind
        if kind == "parquet":
            self.parquet = pq.ParquetWriter(path, _parquet_schema(), compression="zstd")
            return
        sink = pa.OSFile(str(path), "wb")
        self.stream = pa.CompressedOutputStream(sink, "gzip") if kind == "csv.gz" else sink
        self.stream.write((",".join(REES46_COLUMNS) + "\n").encode())
        self.csv: pacsv.CSVWriter | None = None

    def write(self, cols: dict[str, np.ndarray | pa.Array], seconds: np.ndarray) -> None:
        """Write one batch (`cols` as built by `_materialise`)."""
        if self.kind == "parquet":
            table = pa.table(
                {
                    "event_time": pa.array(
                        seconds.astype("datetime64[s]"), pa.timestamp("s", tz="UTC")
                    ),
                    **{k: cols[k] for k in REES46_COLUMNS[1:6]},
                    "price": pa.array(cols["price_cents"] / 100.0, pa.float64()),
                    **{k: cols[k] for k in REES46_COLUMNS[7:]},
                },
                schema=_parquet_schema(),
            )
            self.parquet.write_table(table)
            return
        table = pa.table(
            {
                "event_time": _format_times(seconds),
                **{k: cols[k] for k in REES46_COLUMNS[1:6]},
                "price": _format_prices(cols["price_cents"]),
                **{k: cols[k] for k in REES46_COLUMNS[7:]},
            }
        )
        if self.csv is None:
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            self.csv = pacsv.CSVWriter(self.stream, table.schema, write_options=options)
        self.csv.write_table(table)

    def close(self) -> None:
        """Flush and close the file (again: nothing)."""
        if self.kind == "parquet":
            self.parquet.close()
            return
        if self.csv is not None:
            self.csv.close()
            self.csv = None
        if not self.stream.closed:
            self.stream.close()


@functools.cache
def _parquet_schema() -> pa.Schema:
    return pa.schema(
        [
            ("event_time", pa.timestamp("s", tz="UTC")),
            ("event_type", pa.string()),
            ("product_id", pa.int64()),
            ("category_id", pa.int64()),
            ("category_code", pa.string()),
            ("brand", pa.string()),
            ("price", pa.float64()),
            ("user_id", pa.int64()),
            ("user_session", pa.string()),
        ]
    )


# ------------------------------------------------------------------------------ rows


# Per-row arrays carried between blocks (all numpy, one entry per row to write).
_ROW_FIELDS = ("time", "etype", "product", "cents", "customer", "session", "no_session")


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """The dictionary indices of a dictionary-encoded column."""
    return column.combine_chunks().indices.to_numpy(zero_copy_only=False)


def _pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """A boolean mask choosing each of `n` entries with probability `rate`."""
    return rng.random(n) < rate if rate > 0 else np.zeros(n, dtype=bool)


def _block_rows(
    world: World,
    product_index: np.ndarray,
    repriced: np.ndarray,
    cust: np.ndarray,
    starts: np.ndarray,
    session_base: int,
    stop_us: int,
    seed: int,
    block: int,
    quirks: Rees46Quirks,
    counts: Counter[str],
) -> dict[str, np.ndarray]:
    """Simulate one block of sessions and turn its product events into REES46 rows with quirks."""
    sim = simulate_block(
        world,
        cust,
        starts,
        np.random.default_rng([seed, 3, block]),
        id_prefix="",
        session_base=session_base,
        defect_rate=0.0,
        source="rees46",
    ).events
    rng = np.random.default_rng([seed, 5, block])
    n = len(cust)
    etype = _codes(sim.column("event_type")).astype(np.int8)
    sess = _codes(sim.column("user_session")).astype(np.int64)
    t = sim.column("event_time").combine_chunks().cast(pa.int64()).to_numpy()
    product_id = pc.fill_null(sim.column("product_id"), 0).to_numpy()
    keep = np.isin(etype, list(REES46_TYPES))
    etype, sess, t = etype[keep], sess[keep], t[keep]
    product = product_index[
        np.searchsorted(world.product_id, product_id[keep], sorter=product_index)
    ]

    # Purchasing sessions without cart events ("buy now", or the cart before the file began).
    buyers = np.unique(sess[etype == PURCHASE])
    no_cart = buyers[_pick(rng, len(buyers), quirks.purchase_without_cart)]
    drop = np.isin(sess, no_cart) & ((etype == ADD_TO_CART) | (etype == REMOVE_FROM_CART))
    counts["purchases_without_cart"] += int(np.sum((etype == PURCHASE) & np.isin(sess, no_cart)))
    etype, sess, t, product = etype[~drop], sess[~drop], t[~drop], product[~drop]

    # Long sessions: a lead session absorbs other visits, moved to later times (hours to days)
    # under its session id and user.
    owner = np.arange(n)
    leads = np.flatnonzero(_pick(rng, n, quirks.long_session))
    if len(leads):
        visits = rng.integers(LONG_SESSION_VISITS[0], LONG_SESSION_VISITS[1] + 1, len(leads))
        others = rng.permutation(np.setdiff1d(np.arange(n), leads))
        taken_before = np.cumsum(visits) - visits  # a small block may run out of visits
        visits = np.clip(len(others) - taken_before, 0, visits)
        followers = others[: visits.sum()]
        lead_of = np.repeat(leads, visits)
        low, high = np.log(LONG_SESSION_HOURS[0]), np.log(LONG_SESSION_HOURS[1])
        hours = np.exp(rng.uniform(low, high, len(leads)))
        span = np.repeat((hours * 3600 * US).astype(np.int64), visits)
        new_start = starts[lead_of] + (rng.random(len(followers)) * span).astype(np.int64)
        shift = np.zeros(n, dtype=np.int64)
        shift[followers] = np.minimum(new_start, stop_us) - starts[followers]
        owner[followers] = lead_of
        t = t + shift[sess]
        sess = owner[sess]
        counts["long_sessions"] += int(np.sum(visits > 0))

    # Rows in session order, then time, for the per-session quirks.
    order = np.lexsort((t, sess))
    etype, sess, t, product = etype[order], sess[order], t[order], product[order]
    customer = cust[sess]

    # Shared sessions: from a random event on, the session's events carry another user.
    bounds = np.flatnonzero(np.concatenate([[True], sess[1:] != sess[:-1], [True]]))
    first, size = bounds[:-1], np.diff(bounds)
    group = np.repeat(np.arange(len(first)), size)
    shared = _pick(rng, len(first), quirks.shared_session) & (size >= 2)
    if world.n_customers > 1 and shared.any():
        cut = np.full(len(first), np.iinfo(np.int64).max)
        cut[shared] = rng.integers(1, size[shared])
        other = (customer[first] + rng.integers(1, world.n_customers, len(first))) % (
            world.n_customers
        )
        late = np.arange(len(t)) - first[group] >= cut[group]
        customer[late] = other[group[late]]
        counts["shared_sessions"] += int(shared.sum())

    # Day-to-day prices: a repriced product costs 0-25% less on some days (the same all day).
    with np.errstate(over="ignore"):
        day = (t // (24 * 3600 * US)).astype(np.uint64)
        key = world.product_id[product].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        u = _mix(key ^ (day * np.uint64(0xD1B54A32D192ED03)) ^ np.uint64(seed)) >> np.uint64(11)
    off = np.maximum(u.astype(np.float64) / float(1 << 53) * 0.5 - 0.25, 0.0) * repriced[product]
    cents = np.round(world.product_price[product] * (1.0 - off) * 100).astype(np.int64)
    counts["repriced_rows"] += int(np.count_nonzero(off))
    views, buys = etype == PRODUCT_VIEW, etype == PURCHASE
    zero = (views & _pick(rng, len(t), quirks.zero_price_view)) | (
        buys & _pick(rng, len(t), quirks.zero_price_purchase)
    )
    cents[zero] = 0
    counts["zero_price_views"] += int(np.sum(zero & views))
    counts["zero_price_purchases"] += int(np.sum(zero & buys))
    no_session = _pick(rng, len(t), quirks.missing_session)
    counts["missing_session"] += int(no_session.sum())

    # Exact duplicates: the row again, right after itself.
    dup = np.flatnonzero(_pick(rng, len(t), quirks.duplicate))
    counts["duplicates"] += len(dup)
    rows = np.sort(np.concatenate([np.arange(len(t)), dup]), kind="stable")
    return {
        "time": t[rows],
        "etype": etype[rows],
        "product": product[rows],
        "cents": cents[rows],
        "customer": customer[rows],
        "session": session_base + sess[rows],
        "no_session": no_session[rows],
    }


def _materialise(
    world: World, rows: dict[str, np.ndarray], seed: int, missing: dict[str, np.ndarray]
) -> dict[str, np.ndarray | pa.Array]:
    """The REES46 columns (except event_time and price) of rows to write."""
    product, code = rows["product"], world.product_code[rows["product"]]
    types = np.array([REES46_TYPES.get(i, "") for i in range(max(REES46_TYPES) + 1)], dtype=object)
    sessions, session_index = np.unique(rows["session"], return_inverse=True)
    return {
        "event_type": pa.array(types[rows["etype"]], pa.string()),
        "product_id": pa.array(PRODUCT_ID_BASE + world.product_id[product] * PRODUCT_ID_STEP),
        "category_id": pa.array(CATEGORY_IDS[code], pa.int64()),
        "category_code": pa.DictionaryArray.from_arrays(
            pa.array(code.astype(np.int32), mask=missing["category_code"][product]),
            pa.array(CATEGORY_CODES, pa.string()),
        ).cast(pa.string()),
        "brand": pa.array(
            world.product_brand[product], pa.string(), mask=missing["brand"][product]
        ),
        "price_cents": rows["cents"],
        "user_id": pa.array(USER_ID_BASE + world.customer_id[rows["customer"]] * USER_ID_STEP),
        "user_session": pa.DictionaryArray.from_arrays(
            pa.array(session_index.astype(np.int32), mask=rows["no_session"]),
            session_uuids(seed, sessions),
        ).cast(pa.string()),
    }


def write_rees46_file(
    out: str | Path,
    *,
    sessions: int,
    seed: int,
    days: int,
    end: dt.date,
    quirks: Rees46Quirks | None = None,
    progress: bool = True,
) -> Rees46FileSummary:
    """Simulate `sessions` sessions over the `days` days ending at `end` and write their product
    events to `out` as a REES46 file (.csv, .csv.gz or .parquet), with `quirks`.

    Refuses an existing `out` (Rees46FileError); writes `<out>.partial` and renames it when
    complete, so a failed or interrupted run leaves no file behind.
    """
    if not 1 <= sessions <= MAX_SESSIONS:
        raise Rees46FileError(f"sessions must be between 1 and {MAX_SESSIONS:,} for one file")
    if seed < 0:
        raise Rees46FileError("seed must be a non-negative integer")
    if not FIRST_DAY <= end <= LAST_DAY:
        raise Rees46FileError(f"end must be between {FIRST_DAY} and {LAST_DAY}, not {end}")
    if not 1 <= days <= (end - FIRST_DAY).days + 1:
        raise Rees46FileError(
            f"days must be between 1 and {(end - FIRST_DAY).days + 1:,} (from {FIRST_DAY})"
        )
    quirks = quirks or Rees46Quirks()
    out = Path(out)
    kind = file_kind(out)
    if out.exists() or out.is_symlink():
        raise Rees46FileError(f"{out} already exists: remove it or choose another name")
    if not out.parent.is_dir():
        raise Rees46FileError(f"{out.parent} is not a folder")
    started = time.perf_counter()
    start = dt.datetime.combine(end - dt.timedelta(days=days - 1), dt.time())
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    world = build_world(
        seed, n_customers_for(sessions), n_products_for(sessions), signup_before=start.date()
    )
    rng = np.random.default_rng([seed, 2])
    cust = allocate_customers(rng, world, sessions)
    starts = session_starts(rng, sessions, start, stop)
    product_rng = np.random.default_rng([seed, 4])
    missing = {
        "category_code": _pick(product_rng, world.n_products, quirks.missing_category_code),
        "brand": _pick(product_rng, world.n_products, quirks.missing_brand),
    }
    repriced = _pick(product_rng, world.n_products, quirks.price_change)
    product_index = np.argsort(world.product_id)
    counts: Counter[str] = Counter()
    n_rows = n_purchases = 0
    seen = np.zeros(sessions, dtype=bool)  # sessions with a row that carries their id
    partial = out.with_name(out.name + ".partial")
    console = Console(stderr=True)
    writer = _Writer(partial, kind)
    try:
        with Progress(
            TextColumn("[bold]generate[/] rees46"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} sessions"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not (progress and console.is_terminal),
        ) as bar:
            task = bar.add_task("rees46", total=sessions)
            pending: dict[str, np.ndarray] | None = None
            for block, lo in enumerate(range(0, sessions, BLOCK_SESSIONS)):
                hi = min(lo + BLOCK_SESSIONS, sessions)
                new = _block_rows(
                    world,
                    product_index,
                    repriced,
                    cust[lo:hi],
                    starts[lo:hi],
                    lo,
                    to_us(stop),
                    seed,
                    block,
                    quirks,
                    counts,
                )
                if pending is not None:
                    new = {k: np.concatenate([pending[k], new[k]]) for k in _ROW_FIELDS}
                order = np.argsort(new["time"], kind="stable")
                rows = {k: v[order] for k, v in new.items()}
                # Later blocks start at starts[hi] or later: rows before that are final.
                final = len(order) if hi == sessions else np.searchsorted(rows["time"], starts[hi])
                ready = {k: v[:final] for k, v in rows.items()}
                pending = {k: v[final:] for k, v in rows.items()}
                if final:
                    writer.write(_materialise(world, ready, seed, missing), ready["time"] // US)
                    n_rows += final
                    n_purchases += int(np.sum(ready["etype"] == PURCHASE))
                    seen[ready["session"][~ready["no_session"]]] = True
                    for name in ("category_code", "brand"):
                        counts[f"missing_{name}"] += int(missing[name][ready["product"]].sum())
                bar.update(task, completed=hi)
        writer.close()
        os.replace(partial, out)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return Rees46FileSummary(
        path=out,
        rows=n_rows,
        sessions=int(seen.sum()),
        purchases=n_purchases,
        seconds=time.perf_counter() - started,
        quirks=dict(counts),
    )
