"""One text per raw column: the dbt source docs say what `warehouse.RAW_TABLES` says.

RAW_TABLES is the source: its texts become the DuckDB column comments that SQL users see. The
column descriptions in models/staging/shop/_shop__sources.yml must be the same text (a final
period aside); when you change a raw column, change both (this test names the difference).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from shoplens.warehouse import RAW_TABLES

SOURCES_YML = Path(__file__).resolve().parents[1] / "models/staging/shop/_shop__sources.yml"

# Raw tables the loaders keep for themselves and no dbt model reads: not sources.
BOOKKEEPING = {"raw.load_runs", "raw.sink_offsets"}


def source_tables() -> dict[str, dict[str, str]]:
    """`raw.<table>` -> {column: description} for each table of the `shop` source."""
    (shop,) = [s for s in yaml.safe_load(SOURCES_YML.read_text())["sources"] if s["name"] == "shop"]
    return {
        f"{shop['schema']}.{table['name']}": {
            column["name"]: column.get("description", "") for column in table.get("columns", [])
        }
        for table in shop["tables"]
    }


def same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).removesuffix(".") == " ".join(b.split()).removesuffix(".")


def test_every_raw_table_is_a_source_with_its_columns_in_order() -> None:
    sources = source_tables()
    raw = {t for t in RAW_TABLES if t.startswith("raw.")} - BOOKKEEPING
    assert raw == set(sources), "raw tables and `shop` source tables differ"
    for table in raw:
        assert list(sources[table]) == [name for name, _, _ in RAW_TABLES[table][1]], table


def test_source_column_descriptions_are_the_raw_tables_texts() -> None:
    sources = source_tables()
    differ = [
        f"{table}.{name}: sources say {sources[table].get(name)!r}, RAW_TABLES says {text!r}"
        for table, (_, columns) in RAW_TABLES.items()
        if table in sources
        for name, _, text in columns
        if not same_text(sources[table].get(name, ""), text)
    ]
    assert not differ, "\n".join(differ)


def test_the_comparison_sees_a_changed_word() -> None:
    assert same_text("When the row was written, UTC.", "When the row was written, UTC")
    assert same_text("Units bought\n  in total", "Units bought in total.")
    assert not same_text("When the row was written, UTC", "When the row was read, UTC")
