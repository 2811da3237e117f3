"""Simulated time for the producer: a stream that continues the warehouse's history.

With wall-clock timestamps a burst of a few thousand sessions lands in a few seconds of one
morning, which no shop sees. A `Replay` instead runs a simulated clock from the history's last
event: sessions start at the history's own pace (its sessions per day over the last
REFERENCE_DAYS days) and follow the world's hour-of-day, weekday and month curves, while the
producer sends them as fast as `--rate` asks. The clock never passes `until` (the wall-clock
time the stream started): a stream that catches up with the present stops there.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb
import numpy as np

from shoplens.generate.simulate import HOUR_US, calendar, to_us
from shoplens.generate.world import HOUR_CURVE, MONTH_CURVE, WEEKDAY_CURVE

# The history window the pace is taken from.
REFERENCE_DAYS = 28
# Hour bins looked at per step while advancing the clock.
STEP_HOURS = 24 * 7


def curve_weight(bins_us: np.ndarray) -> np.ndarray:
    """Relative traffic of each hour starting at `bins_us` (epoch µs, whole hours)."""
    hour, weekday, month = calendar(bins_us)
    return HOUR_CURVE[hour] * WEEKDAY_CURVE[weekday] * MONTH_CURVE[month]


def window_weight(start: dt.datetime, end: dt.datetime) -> float:
    """The curves' total weight of [start, end) in hour units (partial hours pro rata)."""
    lo, hi = to_us(start), to_us(end)
    if hi <= lo:
        return 0.0
    bins = np.arange(lo - lo % HOUR_US, hi, HOUR_US, dtype=np.int64)
    covered = np.minimum(bins + HOUR_US, hi) - np.maximum(bins, lo)
    return float((covered / HOUR_US * curve_weight(bins)).sum())


def _from_us(us: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=round(us))


@dataclass(frozen=True)
class Replay:
    """A simulated clock: `sessions_per_weight` sessions start per unit of curve weight (one
    hour at curve level 1), from `start`, never after `until`."""

    start: dt.datetime
    sessions_per_weight: float
    until: dt.datetime

    def sessions_per_day(self, day: dt.date) -> float:
        """Expected sessions on `day` at this pace."""
        start = dt.datetime.combine(day, dt.time())
        return self.sessions_per_weight * window_weight(start, start + dt.timedelta(days=1))

    def advance(self, clock: dt.datetime, sessions: int) -> tuple[dt.datetime, int]:
        """When `sessions` more sessions have started, counting from `clock`, and how many.

        Returns (`until`, the sessions that fit) when the present comes first.
        """
        need = sessions / self.sessions_per_weight
        t, limit = to_us(clock), to_us(self.until)
        lo, total = t - t % HOUR_US, 0.0
        while lo < limit:
            bins = lo + HOUR_US * np.arange(STEP_HOURS, dtype=np.int64)
            starts = np.maximum(bins, t)
            ends = np.minimum(bins + HOUR_US, limit)
            level = curve_weight(bins)
            weight = np.clip(ends - starts, 0, None) / HOUR_US * level
            cum = total + np.cumsum(weight)
            i = int(np.searchsorted(cum, need))
            if i < STEP_HOURS and weight[i] > 0:
                into = (need - (cum[i] - weight[i])) / level[i] * HOUR_US
                return _from_us(starts[i] + into), sessions
            total = float(cum[-1])
            lo = int(bins[-1]) + HOUR_US
        return self.until, min(sessions, math.floor(total * self.sessions_per_weight))


def history_replay(
    con: duckdb.DuckDBPyConnection, until: dt.datetime, days: int = REFERENCE_DAYS
) -> Replay:
    """A Replay continuing raw.events: from its latest event (up to `until`), at the pace of
    its last `days` days (sessions active in them per unit of curve weight)."""
    first, last = con.execute(
        "select min(event_time), max(event_time) from raw.events where event_time <= ?",
        [until],
    ).fetchone() or (None, None)
    if last is None:
        raise ValueError("the warehouse has no events to continue: run `shoplens generate`")
    since = max(first, last - dt.timedelta(days=days))
    row = con.execute(
        "select count(distinct user_session) from raw.events "
        "where event_time >= ? and event_time <= ?",
        [since, last],
    ).fetchone()
    sessions = int(row[0]) if row else 0
    weight = window_weight(since, last)
    if sessions == 0 or weight == 0:
        raise ValueError(
            f"too little history to take the pace from (sessions between {since} and {last})"
        )
    return Replay(start=last, sessions_per_weight=sessions / weight, until=until)
