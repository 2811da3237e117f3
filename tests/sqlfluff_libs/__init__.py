"""What sqlfluff's jinja templater needs beyond its dbt builtins to render this project's SQL.

`.sqlfluff` points `library_path` here: the names below, and the modules `dbt` (cross-database
macros) and `adapter` (`adapter.dispatch`), become template globals when sqlfluff lints.
"""

import datetime as _dt

# dbt's `run_started_at` (a datetime), for macros/latest_batch.sql.
run_started_at = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
