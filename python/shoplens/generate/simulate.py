"""Sessions as events: vectorised simulation of a World's customers visiting the shop.

Every step works on whole numpy arrays (one entry per session or per event); there is no
per-event Python loop. Output tables follow the raw contract (`warehouse.RAW_TABLES`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoplens.generate.world import (
    CATEGORIES,
    CATEGORY_CODES,
    CATEGORY_IDS,
    CODE_TOP,
    DEVICE_BUY_FACTOR,
    DEVICES,
    HOUR_CURVE,
    HOUR_LOGIT,
    LANDING_PAGE,
    MONTH_BUY_FACTOR,
    MONTH_CURVE,
    MONTH_LOGIT,
    OTHER_PAGE,
    PAGES,
    PERSONA,
    TRAFFIC_BUY_FACTOR,
    TRAFFIC_SHARE,
    TRAFFIC_SOURCES,
    WEEKDAY_CURVE,
    World,
)

EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
)
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT, PURCHASE = range(6)
# Malformed event types the cleaning layer must reject (codes 6.. in the dictionary).
BAD_EVENT_TYPES: tuple[str, ...] = ("clik", "VIEW", "unknown", "")
# Time before an event, relative to the persona's time per page.
GAP_FACTOR = np.array([0.6, 1.0, 0.3, 0.4, 1.5, 0.02])
# Share of the defect rate per kind of defect (sums to 1): `defect_rate` is the expected share
# of generated events that carry some defect.
EVENT_DEFECT_MIX: dict[str, float] = {
    "duplicate": 0.25,  # the same event (same event_id) sent again, arriving seconds later
    "missing_session": 0.10,  # null user_session
    "missing_price": 0.10,  # null price on a product event
    "missing_brand": 0.05,  # null brand on a product event
    "missing_device": 0.10,  # null device
    "late": 0.15,  # arrives 1-72 h after it happened, behind later events in the load
    "out_of_order": 0.15,  # clock skew: event_time earlier than the session's previous event
    "bad_price": 0.03,  # zero or negative price
    "bad_event_type": 0.03,  # an event type outside the contract
    "bad_quantity": 0.02,  # zero or negative quantity
    "future_time": 0.02,  # event_time 2-10 years in the future
}
TRANSACTION_DEFECT_MIX: dict[str, float] = {
    "duplicate": 0.5,  # the same order line (same transaction_id) recorded twice
    "missing_price": 0.25,
    "missing_category": 0.25,
}
US = 1_000_000
HOUR_US = 3600 * US


def to_us(t: dt.datetime) -> int:
    """Microseconds since the epoch of a naive UTC (or aware) datetime."""
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def calendar(us: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hour of day, weekday (Mon=0) and month (0-11) of epoch microseconds."""
    days = us // (24 * HOUR_US)
    hour = (us // HOUR_US) % 24
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    month = us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64) % 12
    return hour, weekday, month


def session_starts(
    rng: np.random.Generator, n: int, start: dt.datetime, end: dt.datetime
) -> np.ndarray:
    """`n` sorted session start times (epoch µs) in [start, end), following the hour-of-day,
    weekday and monthly curves (the Nov-Dec peak)."""
    lo_us, hi_us = to_us(start), to_us(end)
    if hi_us <= lo_us:
        raise ValueError("the simulation window is empty: end must be after start")
    bins = np.arange(lo_us - lo_us % HOUR_US, hi_us, HOUR_US, dtype=np.int64)
    lo = np.maximum(bins, lo_us)
    hi = np.minimum(bins + HOUR_US, hi_us)
    hour, weekday, month = calendar(bins)
    weight = (hi - lo) * HOUR_CURVE[hour] * WEEKDAY_CURVE[weekday] * MONTH_CURVE[month]
    b = rng.choice(len(bins), n, p=weight / weight.sum())
    t = lo[b] + (rng.random(n) * (hi - lo)[b]).astype(np.int64)
    return np.sort(t)


def allocate_customers(rng: np.random.Generator, world: World, n: int) -> np.ndarray:
    """Customer index of each of `n` sessions, in proportion to each customer's activity.

    When there are many sessions per customer, every customer first gets a guaranteed few
    (up to 4, within 40% of the sessions), so per-customer aggregates are stable.
    """
    n_c = world.n_customers
    base = min(4, int(0.4 * n / n_c))
    fixed = np.repeat(np.arange(n_c), base)
    rest = rng.choice(n_c, n - len(fixed), p=world.activity / world.activity.sum())
    return rng.permutation(np.concatenate([fixed, rest]))


@dataclass(frozen=True)
class WorldShift:
    """A change of the world from `after` on (naive UTC), for drift monitoring: a session that
    starts then comes from `traffic_source` with probability `traffic_share` (else from its
    usual source), and sees every price times `price_factor` (its events and order lines)."""

    after: dt.datetime
    traffic_source: str = "social"
    traffic_share: float = 0.6
    price_factor: float = 1.5

    def __post_init__(self) -> None:
        if self.traffic_source not in TRAFFIC_SOURCES:
            raise ValueError(f"unknown traffic source {self.traffic_source!r}")
        if not (0.0 <= self.traffic_share <= 1.0 and self.price_factor > 0):
            raise ValueError("traffic_share must be in [0, 1] and price_factor above 0")


@dataclass
class Block:
    """One simulated batch of sessions: raw.events and raw.transactions rows (no loaded_at),
    the defects injected (kind -> rows affected) and the counts for the run summary."""

    events: pa.Table
    transactions: pa.Table
    sessions: int
    event_defects: dict[str, int]
    transaction_defects: dict[str, int]


def _within(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For blocks of `counts` items per session: owner session, position within, block start."""
    owner = np.repeat(np.arange(len(counts)), counts)
    start = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - start[owner], start


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of a probability matrix (inverse CDF, vectorised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _gumbel_argmax(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """Sample from softmax(logits) per row via the Gumbel-max trick."""
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)


def _pick_products(rng: np.random.Generator, world: World, cat: np.ndarray) -> np.ndarray:
    """A product index per entry of `cat`, by Zipf popularity within the category."""
    idx = np.searchsorted(world.popularity_cum, cat + rng.random(len(cat)), side="right")
    off = world.category_offsets
    return np.clip(idx, off[cat], off[cat + 1] - 1)


def _choose(rng: np.random.Generator, eligible: np.ndarray, count: int) -> np.ndarray:
    """`count` distinct entries of `eligible` (all of them if fewer)."""
    if count >= len(eligible):
        return eligible
    return np.sort(rng.choice(eligible, count, replace=False))


def _dictionary(
    codes: np.ndarray,
    values: tuple[str, ...] | list[str] | np.ndarray,
    mask: np.ndarray | None = None,
) -> pa.DictionaryArray:
    """A dictionary-encoded string column (DuckDB stores it as VARCHAR)."""
    indices = pa.array(codes.astype(np.int32), pa.int32(), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(values), pa.string()))


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """String ids `<prefix><n>` built in Arrow."""
    return pc.binary_join_element_wise(
        pa.scalar(prefix), pc.cast(pa.array(numbers, pa.int64()), pa.string()), ""
    )


def simulate_block(
    world: World,
    cust: np.ndarray,
    start_us: np.ndarray,
    rng: np.random.Generator,
    *,
    id_prefix: str,
    event_base: int = 0,
    session_base: int = 0,
    transaction_base: int = 0,
    defect_rate: float = 0.0,
    source: str = "generator",
    shift: WorldShift | None = None,
) -> Block:
    """Simulate the sessions of customers `cust` (world indices) starting at `start_us`.

    With `shift`, sessions starting at or after `shift.after` follow the shifted world (its
    draws come from a stream of their own, so the other sessions are the same as without).

    Ids: events `<prefix>e<n>`, sessions `<prefix>s<n>`, orders `<prefix>o<n>` (one per
    checkout, numbered like its session), order lines `<prefix>t<n>`; numbering starts at the
    given bases so several blocks of one run never collide.
    """
    n = len(cust)
    persona = world.persona[cust]
    hour, _, month = calendar(start_us)

    # --- per session: device, traffic, category focus, funnel counts ---
    device = np.where(rng.random(n) < 0.8, world.device[cust], rng.integers(0, 3, n))
    traffic = rng.choice(len(TRAFFIC_SOURCES), n, p=TRAFFIC_SHARE)
    price_factor = np.ones(n)
    if shift is not None:
        shifted = start_us >= to_us(shift.after)
        (shift_rng,) = rng.spawn(1)  # leaves rng's own stream untouched
        moved = shifted & (shift_rng.random(n) < shift.traffic_share)
        traffic = np.where(moved, TRAFFIC_SOURCES.index(shift.traffic_source), traffic)
        price_factor[shifted] = shift.price_factor
    focus = _gumbel_argmax(rng, world.category_logit[cust] + MONTH_LOGIT[month] + HOUR_LOGIT[hour])
    extra = rng.poisson(PERSONA.extra_pages[persona])
    views = 1 + rng.poisson(PERSONA.views[persona] - 1)
    has_cart = rng.random(n) < PERSONA.p_cart[persona]
    n_cart = np.where(
        has_cart, np.minimum(1 + rng.poisson(PERSONA.cart_adds[persona] - 1), views), 0
    )
    n_remove = rng.binomial(n_cart, PERSONA.p_remove[persona])
    p_buy = np.clip(
        PERSONA.p_buy[persona]
        * DEVICE_BUY_FACTOR[device]
        * TRAFFIC_BUY_FACTOR[traffic]
        * MONTH_BUY_FACTOR[month],
        0.0,
        1.0,
    )
    buy = (n_cart > n_remove) & (rng.random(n) < p_buy)
    n_purchase = np.where(buy, n_cart - n_remove, 0)

    # --- events, block by block (session, sort key, type, product, quantity, page) ---
    # A: landing page view
    a_sess = np.arange(n)
    a_page = _sample_rows(rng, LANDING_PAGE[traffic])
    # B: further page views, anywhere in the session
    b_sess, _, _ = _within(extra)
    b_page = rng.choice(len(PAGES), len(b_sess), p=OTHER_PAGE)
    # C: product views, mostly in the session's focus category
    c_sess, c_pos, c_start = _within(views)
    c_key = 0.01 + 0.98 * (c_pos + 0.5) / views[c_sess]
    c_cat = focus[c_sess].copy()
    other = np.flatnonzero(rng.random(len(c_sess)) < 0.25)
    c_cat[other] = _gumbel_argmax(rng, world.category_logit[cust[c_sess[other]]])
    c_prod = _pick_products(rng, world, c_cat)
    # D: cart additions: a run of consecutive viewed products, each added right after its view
    d_sess, d_pos, d_start = _within(n_cart)
    offset = rng.integers(0, views - n_cart + 1)
    d_view = c_start[d_sess] + offset[d_sess] + d_pos
    d_prod = c_prod[d_view]
    d_key = c_key[d_view] + 0.49 * 0.98 / views[d_sess]
    u = rng.random(len(d_sess))
    d_qty = 1 + (u > 0.85) + (u > 0.95)
    grocery = CODE_TOP[world.product_code[d_prod]] == CATEGORIES.index("grocery")
    d_qty = d_qty + grocery * rng.poisson(1.0, len(d_sess))
    # E: removals of the first cart additions, later in the session
    e_sess, e_pos, _ = _within(n_remove)
    e_cart = d_start[e_sess] + e_pos
    e_key = d_key[e_cart] + (0.995 - d_key[e_cart]) * rng.uniform(0.2, 1.0, len(e_sess))
    # F: checkout, then G: one purchase per product left in the cart
    f_sess = np.flatnonzero(buy)
    g_sess, g_pos, _ = _within(n_purchase)
    g_cart = d_start[g_sess] + n_remove[g_sess] + g_pos

    fill = np.full
    sess = np.concatenate([a_sess, b_sess, c_sess, d_sess, e_sess, f_sess, g_sess])
    key = np.concatenate(
        [
            np.zeros(n),
            rng.uniform(0.01, 0.99, len(b_sess)),
            c_key,
            d_key,
            e_key,
            np.ones(len(f_sess)),
            1.0 + 0.001 * (g_pos + 1),
        ]
    )
    etype = np.concatenate(
        [
            fill(n + len(b_sess), PAGE_VIEW),
            fill(len(c_sess), PRODUCT_VIEW),
            fill(len(d_sess), ADD_TO_CART),
            fill(len(e_sess), REMOVE_FROM_CART),
            fill(len(f_sess), CHECKOUT),
            fill(len(g_sess), PURCHASE),
        ]
    ).astype(np.int8)
    prod = np.concatenate(
        [
            fill(n + len(b_sess), -1),
            c_prod,
            d_prod,
            d_prod[e_cart],
            fill(len(f_sess), -1),
            d_prod[g_cart],
        ]
    )
    qty = np.concatenate(
        [
            fill(n + len(b_sess) + len(c_sess), -1),
            d_qty,
            d_qty[e_cart],
            fill(len(f_sess), -1),
            d_qty[g_cart],
        ]
    )
    page = np.concatenate([a_page, b_page, fill(len(key) - n - len(b_sess), -1)])
    order = np.argsort(sess * 4.0 + key, kind="stable")
    sess, etype, prod, qty, page = sess[order], etype[order], prod[order], qty[order], page[order]
    n_events = len(sess)

    # --- timestamps: each event follows the previous one by a persona-driven pause ---
    first = np.concatenate([[True], sess[1:] != sess[:-1]])
    gap = (
        rng.exponential(1.0, n_events)
        * PERSONA.dwell[persona[sess]]
        * world.dwell_factor[cust[sess]]
        * GAP_FACTOR[etype]
        * US
    ).astype(np.int64)
    gap[first] = 0
    elapsed = np.cumsum(gap)
    first_idx = np.flatnonzero(first)
    time = start_us[sess] + elapsed - elapsed[first_idx][sess]
    event_no = event_base + np.arange(n_events, dtype=np.int64)

    # --- transactions: one order line per purchase event (clean values) ---
    purchases = np.flatnonzero(etype == PURCHASE)
    t_prod = prod[purchases]
    t_rows = {
        "transaction_no": transaction_base + np.arange(len(purchases), dtype=np.int64),
        "order_no": session_base + sess[purchases],
        "event_no": event_no[purchases],
        "customer": cust[sess[purchases]],
        "product": t_prod,
        "price": world.product_price[t_prod] * price_factor[sess[purchases]],
        "quantity": qty[purchases],
        "time": time[purchases],
    }

    # --- defects ---
    price = np.where(
        prod >= 0, world.product_price[np.maximum(prod, 0)] * price_factor[sess], np.nan
    )
    has_qty = qty >= 0
    time_clean = time.copy()
    event_defects: dict[str, np.ndarray] = {}
    rows_all = np.arange(n_events)
    product_rows = np.flatnonzero(prod >= 0)
    eligible = {
        "missing_price": product_rows,
        "missing_brand": product_rows,
        "bad_price": product_rows,
        "bad_quantity": np.flatnonzero(has_qty),
        "out_of_order": np.flatnonzero(~first),
    }
    for kind, share in EVENT_DEFECT_MIX.items():
        count = round(defect_rate * share * n_events)
        event_defects[kind] = (
            _choose(rng, eligible.get(kind, rows_all), count)
            if count
            else (np.zeros(0, dtype=np.int64))
        )
    ooo = event_defects["out_of_order"]
    time[ooo] = time[ooo - 1] - rng.integers(1 * US, 120 * US, len(ooo))
    fut = event_defects["future_time"]
    time[fut] += rng.integers(2 * 365 * 24 * HOUR_US, 10 * 365 * 24 * HOUR_US, len(fut))
    bp = event_defects["bad_price"]
    price[bp] = np.where(rng.random(len(bp)) < 0.5, 0.0, -price[bp])
    bq = event_defects["bad_quantity"]
    qty[bq] = np.where(rng.random(len(bq)) < 0.5, 0, -qty[bq])
    bt = event_defects["bad_event_type"]
    etype[bt] = len(EVENT_TYPES) + rng.integers(0, len(BAD_EVENT_TYPES), len(bt))
    price_null = prod < 0
    price_null[event_defects["missing_price"]] = True
    brand_null = prod < 0
    brand_null[event_defects["missing_brand"]] = True
    session_null = np.zeros(n_events, dtype=bool)
    session_null[event_defects["missing_session"]] = True
    device_null = np.zeros(n_events, dtype=bool)
    device_null[event_defects["missing_device"]] = True
    # Arrival order: events arrive as they happen; late ones hours later; duplicates are
    # re-sent seconds to minutes after the original.
    arrival = time_clean.copy()
    late = event_defects["late"]
    arrival[late] += rng.integers(1 * HOUR_US, 72 * HOUR_US, len(late))
    dup = event_defects["duplicate"]
    rows = np.concatenate([rows_all, dup])
    arrival = np.concatenate([arrival, arrival[dup] + rng.integers(US, 600 * US, len(dup))])
    rows = rows[np.argsort(arrival, kind="stable")]

    # --- Arrow: raw.events ---
    r_prod = np.maximum(prod[rows], 0)
    r_code = world.product_code[r_prod]
    brands, brand_code = np.unique(world.product_brand.astype(str), return_inverse=True)
    s_rows = sess[rows]
    session_ids = _ids(f"{id_prefix}s", session_base + np.arange(n, dtype=np.int64))
    events = pa.table(
        {
            "event_id": _ids(f"{id_prefix}e", event_no[rows]),
            "event_time": pa.array(time[rows].astype("datetime64[us]"), pa.timestamp("us")),
            "event_type": _dictionary(etype[rows], EVENT_TYPES + BAD_EVENT_TYPES),
            "product_id": pa.array(world.product_id[r_prod], pa.int64(), mask=prod[rows] < 0),
            "category_id": pa.array(CATEGORY_IDS[r_code], pa.int64(), mask=prod[rows] < 0),
            "category_code": _dictionary(r_code, CATEGORY_CODES, mask=prod[rows] < 0),
            "brand": _dictionary(brand_code[r_prod], brands, mask=brand_null[rows]),
            "price": pa.array(price[rows], pa.float64(), mask=price_null[rows]),
            "user_id": pa.array(world.customer_id[cust[s_rows]], pa.int64()),
            "user_session": pa.DictionaryArray.from_arrays(
                pa.array(s_rows.astype(np.int32), pa.int32(), mask=session_null[rows]), session_ids
            ),
            "quantity": pa.array(qty[rows].astype(np.int32), pa.int32(), mask=~has_qty[rows]),
            "device": _dictionary(device[s_rows], DEVICES, mask=device_null[rows]),
            "traffic_source": _dictionary(traffic[s_rows], TRAFFIC_SOURCES),
            "page": _dictionary(np.maximum(page[rows], 0), PAGES, mask=page[rows] < 0),
            "source": _dictionary(np.zeros(len(rows), dtype=np.int32), [source]),
        }
    )
    transactions, transaction_defects = _transactions_table(
        rng, world, t_rows, id_prefix, defect_rate, source
    )
    return Block(
        events=events,
        transactions=transactions,
        sessions=n,
        event_defects={k: len(v) for k, v in event_defects.items()},
        transaction_defects=transaction_defects,
    )


def _transactions_table(
    rng: np.random.Generator,
    world: World,
    t: dict[str, np.ndarray],
    id_prefix: str,
    defect_rate: float,
    source: str,
) -> tuple[pa.Table, dict[str, int]]:
    """raw.transactions rows with their own duplicates and missing values."""
    n = len(t["transaction_no"])
    picked = {
        kind: _choose(rng, np.arange(n), round(defect_rate * share * n))
        for kind, share in TRANSACTION_DEFECT_MIX.items()
    }
    price_null = np.zeros(n, dtype=bool)
    price_null[picked["missing_price"]] = True
    cat_null = np.zeros(n, dtype=bool)
    cat_null[picked["missing_category"]] = True
    dup = picked["duplicate"]
    rows = np.concatenate([np.arange(n), dup])
    arrival = np.concatenate([t["time"], t["time"][dup] + rng.integers(US, 600 * US, len(dup))])
    rows = rows[np.argsort(arrival, kind="stable")]
    prod = t["product"][rows]
    table = pa.table(
        {
            "transaction_id": _ids(f"{id_prefix}t", t["transaction_no"][rows]),
            "order_id": _ids(f"{id_prefix}o", t["order_no"][rows]),
            "event_id": _ids(f"{id_prefix}e", t["event_no"][rows]),
            "customer_id": pa.array(world.customer_id[t["customer"][rows]], pa.int64()),
            "product_id": pa.array(world.product_id[prod], pa.int64()),
            "category_code": _dictionary(
                world.product_code[prod], CATEGORY_CODES, mask=cat_null[rows]
            ),
            "price": pa.array(t["price"][rows], pa.float64(), mask=price_null[rows]),
            "quantity": pa.array(t["quantity"][rows].astype(np.int32), pa.int32()),
            "transaction_time": pa.array(
                t["time"][rows].astype("datetime64[us]"), pa.timestamp("us")
            ),
            "source": _dictionary(np.zeros(len(rows), dtype=np.int32), [source]),
        }
    )
    return table, {kind: len(v) for kind, v in picked.items()}


def simulate_sessions(
    world: World,
    n_sessions: int,
    start: dt.datetime,
    end: dt.datetime,
    seed: int,
    id_prefix: str,
    defect_rate: float = 0.0,
    source: str = "generator",
    shift: WorldShift | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Simulate `n_sessions` new sessions of the world's customers starting in [start, end).

    Returns (events, transactions) in the raw contract's column names (without loaded_at).
    Ids start with `id_prefix` and are unique per prefix. `shift` changes the world from its
    date on (see WorldShift); without it nothing changes.
    """
    rng = np.random.default_rng([seed, 2])
    cust = allocate_customers(rng, world, n_sessions)
    starts = session_starts(rng, n_sessions, start, end)
    block = simulate_block(
        world,
        cust,
        starts,
        np.random.default_rng([seed, 3]),
        id_prefix=id_prefix,
        defect_rate=defect_rate,
        source=source,
        shift=shift,
    )
    return block.events, block.transactions
