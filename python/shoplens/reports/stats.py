"""Small statistics the pages share: minimum group sizes and Wilson score intervals.

A rate from a handful of observations ("2 of 2 carts abandoned") is noise. The pages compare
a rate only when its group has at least `MIN_SUPPORT` observations, show the 95% Wilson
interval beside it, and grey out or leave out groups below `MIN_GROUP_SIZE` (saying so).
"""

from __future__ import annotations

import math

# Fewest observations (sessions with a cart, viewing sessions, sessions in an hour slot) behind
# a rate that a recommendation compares or ranks.
MIN_SUPPORT = 20
# Fewest members (customers, order lines) a demographic group needs to be drawn in colour.
MIN_GROUP_SIZE = 30
Z_95 = 1.959963984540054


def wilson(successes: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion `successes / n`.

    Returns (nan, nan) for n = 0. Unlike the normal approximation it stays inside [0, 1] and is
    sensible for rates near 0 or 1 and small n.
    """
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_with_interval(successes: float, n: float, digits: int = 0) -> str:
    """ "83% (95% CI 66-93%)": a rate with its Wilson interval, for a sentence."""
    lo, hi = wilson(successes, n)
    p = successes / n
    return f"{p:.{digits}%} (95% CI {lo * 100:.{digits}f}–{hi:.{digits}%})"
