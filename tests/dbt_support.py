"""Shared by the tests that build generated or hand-made data with dbt."""

from __future__ import annotations

# The SQL models, seeds and their data tests, for `dbt build`: not the ml models, and not the
# unit tests (fixed inputs, not this data), which conftest's `built_warehouse` build runs once
# (test_dbt_run_log checks it ran every one).
SQL_ONLY = ["--exclude", "path:models/ml", "resource_type:unit_test"]
