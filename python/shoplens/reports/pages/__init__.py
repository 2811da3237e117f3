"""One module per page; each has `build(data) -> Page`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shoplens.reports.content import Notice, Section
from shoplens.reports.data import ReportData

HINT = "run `dbt build` to create it"


def guarded(data: ReportData, title: str, needs: dict[str, Sequence[str]],
            draw: Callable[[], Section], empty_hint: str = HINT,
            missing_hint: str = HINT) -> Section:
    """`draw()` when every relation in `needs` exists, has rows and the columns; else a notice.

    `empty_hint` explains an empty relation, `missing_hint` a missing one.
    """
    reason = data.lacks(needs)
    if reason:
        hint = empty_hint if all(data.exists(r) for r in needs) else missing_hint
        return Notice(title, f"No data yet: {reason} ({hint}).")
    return draw()
