"""`generate_and_load`: one generate run, from seed to rows in the warehouse."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from shoplens import warehouse
from shoplens.generate.simulate import (
    allocate_customers,
    session_starts,
    simulate_block,
)
from shoplens.generate.world import World, build_world, n_customers_for, n_products_for

# Sessions simulated and appended per step. Part of the design: the content of a run depends
# on it (each chunk has its own random stream), so changing it changes the data of a seed.
CHUNK_SESSIONS = 100_000

# Bounds on the arguments, checked before anything is created. The calendar window keeps
# dates, timedeltas and epoch microseconds in range; the session bound keeps one run inside
# memory: peak memory measured 1,497 MiB at 1,000,000 sessions (docs/benchmarks.md), so
# 1,500 bytes a session and at most half of the machine's memory.
FIRST_DAY = dt.date(1970, 1, 1)
LAST_DAY = dt.date(2200, 12, 31)
MAX_DAYS = 36_525
MEMORY_PER_SESSION = 1_500


class GenerateArgumentError(ValueError):
    """An argument a generate run cannot work with; `argument` names it (sessions, end...)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory, or the cgroup limit if lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def max_sessions(memory: int | None = None) -> int:
    """The most sessions one run may simulate with `memory` bytes (default: this machine)."""
    memory = machine_memory() if memory is None else memory
    return max(1, memory // 2 // MEMORY_PER_SESSION)


def check_arguments(
    *,
    sessions: int,
    seed: int,
    days: int,
    end: dt.date,
    defect_rate: float,
    today: dt.date | None = None,
) -> None:
    """Raise GenerateArgumentError for arguments that cannot give a usable run.

    `today` (default: the current UTC date) decides when the history is entirely in the
    future: dbt quarantines events more than a day after their load time, so a history that
    starts after tomorrow would be quarantined whole.
    """
    if sessions < 1:
        raise GenerateArgumentError("sessions", "sessions must be at least 1")
    limit = max_sessions()
    if sessions > limit:
        raise GenerateArgumentError(
            "sessions",
            f"{sessions:,} sessions do not fit in one run on this machine: at most {limit:,} "
            f"(about {MEMORY_PER_SESSION:,} bytes of memory a session, half of "
            f"{machine_memory() / 2**30:.1f} GiB); split it into several runs (each run appends)",
        )
    if seed < 0:
        raise GenerateArgumentError("seed", "seed must be a non-negative integer")
    if not 1 <= days <= MAX_DAYS:
        raise GenerateArgumentError("days", f"days must be between 1 and {MAX_DAYS:,}")
    if not FIRST_DAY <= end <= LAST_DAY:
        raise GenerateArgumentError(
            "end", f"end must be between {FIRST_DAY} and {LAST_DAY}, not {end}"
        )
    first = end - dt.timedelta(days=days - 1)
    if first < FIRST_DAY:
        raise GenerateArgumentError(
            "days", f"{days:,} days ending {end} would start before {FIRST_DAY}"
        )
    today = today or dt.datetime.now(dt.UTC).date()
    if first > today + dt.timedelta(days=1):
        raise GenerateArgumentError(
            "end",
            f"the whole history ({first} to {end}) is in the future (today is {today}, UTC): "
            "dbt would quarantine every event as future_event_time; choose an earlier end",
        )
    if not 0.0 <= defect_rate <= 0.5:
        raise GenerateArgumentError("defects", "defect_rate must be between 0 and 0.5")


def future_days(end: dt.date, days: int, today: dt.date | None = None) -> int:
    """How many of the `days` simulated days ending at `end` lie after `today` (UTC)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return max(0, min(days, (end - today).days))


@dataclass(frozen=True)
class GenerateSummary:
    """What one generate run wrote; `str()` is the one-line summary the CLI prints."""

    db: Path
    run_id: int
    sessions: int
    events: int
    transactions: int
    customers: int
    products: int
    defect_rate: float
    seconds: float
    event_defects: dict[str, int] = field(default_factory=dict)
    transaction_defects: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        defects = sum(self.event_defects.values())
        return (
            f"run {self.run_id}: {self.sessions:,} sessions, {self.events:,} events, "
            f"{self.transactions:,} order lines, {self.customers:,} customers, "
            f"{self.products:,} products ({defects:,} events with defects at rate "
            f"{self.defect_rate:g}) loaded into {self.db} in {self.seconds:.1f} s"
        )


def _max_id(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    [(value,)] = con.execute(sql).fetchall()
    return int(value or 0)


def _customers_with_defects(world: World, rng: np.random.Generator, defect_rate: float) -> pa.Table:
    """raw.customers rows with missing age and gender at half the defect rate each."""
    table = world.customers_table()
    n = table.num_rows
    for column in ("age", "gender"):
        count = round(defect_rate * 0.5 * n)
        if count:
            mask = np.zeros(n, dtype=bool)
            mask[rng.choice(n, count, replace=False)] = True
            col = table.column(column)
            nulled = pc.if_else(pa.array(mask), pa.nulls(n, col.type), col)
            table = table.set_column(table.schema.get_field_index(column), column, nulled)
    return table


def generate_and_load(
    db: str | Path,
    *,
    sessions: int,
    seed: int,
    days: int,
    end: dt.date,
    defect_rate: float = 0.01,
    progress: bool = True,
) -> GenerateSummary:
    """Build a world, simulate `sessions` sessions over `days` days ending at `end`, and append
    customers, products, personas, events and order lines to the warehouse `db`.

    One write connection, one transaction: a failed run leaves nothing behind. Arguments are
    checked (`check_arguments`) before the warehouse is opened or created.
    """
    check_arguments(sessions=sessions, seed=seed, days=days, end=end, defect_rate=defect_rate)
    started = time.perf_counter()
    start = dt.datetime.combine(end - dt.timedelta(days=days - 1), dt.time())
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    params = {
        "sessions": sessions,
        "seed": seed,
        "days": days,
        "end": end.isoformat(),
        "defect_rate": defect_rate,
    }
    event_defects: Counter[str] = Counter()
    transaction_defects: Counter[str] = Counter()
    n_events = n_transactions = 0

    console = Console(stderr=True)
    with (
        warehouse.connect(db) as con,
        Progress(
            TextColumn("[bold]generate[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} sessions"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not (progress and console.is_terminal),
        ) as bar,
    ):
        task = bar.add_task("world", total=sessions)
        con.execute("set enable_progress_bar = false")  # ours is on stderr; DuckDB's on stdout
        con.execute("begin transaction")
        warehouse.ensure_raw_schema(con)
        customer_offset = max(
            _max_id(con, "select max(customer_id) from raw.customers"),
            _max_id(con, "select max(user_id) from raw.events"),
        )
        product_offset = max(
            _max_id(con, "select max(product_id) from raw.products"),
            _max_id(con, "select max(product_id) from raw.events"),
        )
        run_id = warehouse.start_run(con, "generate", params)
        world = build_world(
            seed,
            n_customers_for(sessions),
            n_products_for(sessions),
            customer_offset=customer_offset,
            product_offset=product_offset,
            signup_before=start.date(),
        )
        rng = np.random.default_rng([seed, 2])
        warehouse.append(
            con,
            "raw.customers",
            _customers_with_defects(world, rng, defect_rate),
            loaded_at=loaded_at,
        )
        warehouse.append(con, "raw.products", world.products_table(), loaded_at=loaded_at)
        warehouse.append(con, "ground_truth.customer_personas", world.personas_table())
        cust = allocate_customers(rng, world, sessions)
        starts = session_starts(rng, sessions, start, stop)
        bar.update(task, description="sessions")
        for chunk, lo in enumerate(range(0, sessions, CHUNK_SESSIONS)):
            hi = min(lo + CHUNK_SESSIONS, sessions)
            block = simulate_block(
                world,
                cust[lo:hi],
                starts[lo:hi],
                np.random.default_rng([seed, 3, chunk]),
                id_prefix=f"g{run_id}-",
                event_base=n_events,
                session_base=lo,
                transaction_base=n_transactions,
                defect_rate=defect_rate,
            )
            warehouse.append(con, "raw.events", block.events, loaded_at=loaded_at)
            warehouse.append(con, "raw.transactions", block.transactions, loaded_at=loaded_at)
            # Numbering continues over distinct (not duplicated) events and order lines.
            n_events += block.events.num_rows - block.event_defects["duplicate"]
            n_transactions += block.transactions.num_rows - block.transaction_defects["duplicate"]
            event_defects.update(block.event_defects)
            transaction_defects.update(block.transaction_defects)
            bar.update(task, completed=hi)
        con.execute("commit")

    return GenerateSummary(
        db=Path(db),
        run_id=run_id,
        sessions=sessions,
        events=n_events,
        transactions=n_transactions,
        customers=world.n_customers,
        products=world.n_products,
        defect_rate=defect_rate,
        seconds=time.perf_counter() - started,
        event_defects=dict(event_defects),
        transaction_defects=dict(transaction_defects),
    )
