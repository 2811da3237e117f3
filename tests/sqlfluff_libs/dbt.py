"""dbt's cross-database macros (`{{ dbt.datediff(...) }}`) for sqlfluff's jinja templater.

sqlfluff lints the models without dbt (see .sqlfluff): these render the SQL dbt-duckdb renders.
"""

from __future__ import annotations

from collections.abc import Sequence


def type_bigint() -> str:
    return "bigint"


def type_int() -> str:
    return "integer"


def type_string() -> str:
    return "varchar"


def type_timestamp() -> str:
    return "timestamp"


def type_float() -> str:
    return "double"


def type_boolean() -> str:
    return "boolean"


def concat(fields: Sequence[str]) -> str:
    return " || ".join(fields)


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def split_part(string_text: str, delimiter_text: str, part_number: int) -> str:
    return f"split_part({string_text}, {delimiter_text}, {part_number})"


def listagg(
    measure: str,
    delimiter_text: str = "','",
    order_by_clause: str | None = None,
    limit_num: int | None = None,
) -> str:
    order = f" {order_by_clause}" if order_by_clause else ""
    return f"string_agg({measure}, {delimiter_text}{order})"


def current_timestamp() -> str:
    return "now()"
