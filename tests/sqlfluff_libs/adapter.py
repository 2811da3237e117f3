"""`adapter.dispatch` for sqlfluff's jinja templater: picks the project's `duckdb__` macro
(else its `default__` one), as dbt-duckdb does."""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context


@pass_context
def dispatch(context: Context, macro_name: str, macro_namespace: str | None = None) -> Any:
    for prefix in ("duckdb__", "default__"):
        macro = context.resolve_or_missing(prefix + macro_name)
        if callable(macro):
            return macro
    raise KeyError(f"no duckdb__ or default__ implementation of {macro_name}")
