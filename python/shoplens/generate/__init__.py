"""The synthetic e-commerce world: customers with latent personas, a catalogue, and sessions
emitted as events, with order lines and realistic defects. Vectorised numpy, Arrow out.

Public API (signatures are stable; other parts of shoplens build on them):

- ``generate_and_load(db, *, sessions, seed, days, end: datetime.date, defect_rate=0.01,
  progress=True) -> GenerateSummary``: build a world (about sessions/12 customers), simulate
  ``sessions`` sessions over the ``days`` days ending at ``end``, and append everything to
  raw.customers, raw.products, raw.events, raw.transactions and
  ground_truth.customer_personas in one DuckDB transaction. Customer and product ids continue
  after the largest already in the warehouse; event ids are ``g<run_id>-e<n>``, sessions
  ``g<run_id>-s<n>``, orders ``g<run_id>-o<n>``, order lines ``g<run_id>-t<n>``. The same seed
  on a fresh warehouse gives identical tables (except the wall-clock ``loaded_at``).
- ``build_world(seed, n_customers, n_products, *, customer_offset=0, product_offset=0,
  signup_before=date) -> World``: a new world (``World.customers_table()``,
  ``products_table()``, ``personas_table()`` give the raw rows).
- ``load_world(con) -> World``: the world of the customers and products already in a
  warehouse (raw.customers, raw.products, ground_truth.customer_personas).
- ``simulate_sessions(world, n_sessions, start: datetime, end: datetime, seed, id_prefix,
  defect_rate=0.0, source="generator", shift=None) -> (events: pa.Table, transactions:
  pa.Table)``: new sessions of the world's customers starting in [start, end) (naive UTC), in
  the raw contract's column names without ``loaded_at``; ids are ``<id_prefix>e<n>`` (events),
  ``<id_prefix>s<n>`` (sessions), ``<id_prefix>o<n>`` / ``<id_prefix>t<n>`` (orders / order
  lines), unique per prefix. Event rows come in arrival order (roughly event_time order).
  ``shift=WorldShift(after, traffic_source="social", traffic_share=0.6, price_factor=1.5)``
  changes the world for sessions starting at or after ``after`` (a traffic mix and price change,
  to show drift monitoring at work); the sessions before it are the same as without.

Constants describing the design (personas, categories, curves, defect mix) are in
``shoplens.generate.world`` and ``shoplens.generate.simulate``.
"""

from shoplens.generate.run import GenerateSummary, generate_and_load
from shoplens.generate.simulate import (
    BAD_EVENT_TYPES,
    EVENT_DEFECT_MIX,
    EVENT_TYPES,
    TRANSACTION_DEFECT_MIX,
    WorldShift,
    simulate_sessions,
)
from shoplens.generate.world import (
    CATEGORIES,
    CATEGORY_CODES,
    PERSONAS,
    World,
    build_world,
    load_world,
)

__all__ = [
    "BAD_EVENT_TYPES",
    "CATEGORIES",
    "CATEGORY_CODES",
    "EVENT_DEFECT_MIX",
    "EVENT_TYPES",
    "PERSONAS",
    "TRANSACTION_DEFECT_MIX",
    "GenerateSummary",
    "World",
    "WorldShift",
    "build_world",
    "generate_and_load",
    "load_world",
    "simulate_sessions",
]
