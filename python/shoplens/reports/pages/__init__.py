"""One module per page; each has `build(data) -> Page`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from shoplens.reports.content import Notice, Section
from shoplens.reports.data import ReportData

HINT = "run `dbt build` to create it"


class NoRows(Exception):
    """A section's query found nothing to show; the message says what is missing."""


def require_rows(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """`frame` itself, or NoRows(`what`) when it is empty."""
    if frame.empty:
        raise NoRows(what)
    return frame


def guarded(
    data: ReportData,
    title: str,
    needs: Mapping[str, Sequence[str]],
    draw: Callable[[], Section],
    empty_hint: str = HINT,
    missing_hint: str = HINT,
) -> Section:
    """`draw()` when every relation in `needs` exists, has rows and the columns; else a notice.

    `empty_hint` explains an empty relation, `missing_hint` a missing one.
    """
    reason = data.lacks(needs)
    if reason:
        hint = empty_hint if all(data.exists(r) for r in needs) else missing_hint
        return Notice(title, f"No data yet: {reason} ({hint}).")
    try:
        return draw()
    except NoRows as empty:
        return Notice(title, f"No data yet: {empty}.")
