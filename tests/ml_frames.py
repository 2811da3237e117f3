"""Small synthetic frames for the ml tests: structure the models must find, made in numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd


def session_frame(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """Sessions whose purchase depends on early behaviour, plus whole-session features where
    checkouts, units purchased and revenue record the outcome itself (the leak)."""
    rng = np.random.default_rng(seed)
    views = rng.poisson(4, n)
    carts = rng.binomial(np.maximum(views, 1), 0.15)
    device = rng.choice(["desktop", "mobile", "tablet"], n)
    logit = -3.2 + 0.9 * carts + 0.1 * views + 0.4 * (device == "desktop")
    bought = rng.random(n) < 1 / (1 + np.exp(-logit))
    early_pages = views + rng.poisson(2, n)
    early_duration = early_pages * rng.gamma(4, 15, n)
    start = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.uniform(0, 300, n), unit="D")
    return pd.DataFrame(
        {
            "session_id": [f"s{i:06d}" for i in range(n)],
            "session_start": start,
            "purchase_made": bought,
            "events_so_far": early_pages + carts,
            "page_views_so_far": early_pages - views,
            "product_views_so_far": views,
            "distinct_products_viewed_so_far": np.minimum(views, rng.poisson(3, n)),
            "distinct_categories_so_far": rng.integers(1, 4, n),
            "cart_adds_so_far": carts,
            "cart_removes_so_far": rng.binomial(carts, 0.2),
            "cart_units_so_far": carts + rng.binomial(carts, 0.3),
            "cart_value_so_far": carts * rng.gamma(3, 20, n),
            "duration_seconds_so_far": early_duration,
            "pages_so_far": early_pages,
            "seconds_per_page_so_far": early_duration / np.maximum(early_pages, 1),
            "mean_price_viewed_so_far": rng.gamma(3, 20, n),
            "max_price_viewed_so_far": rng.gamma(3, 40, n),
            "start_hour": start.hour,
            "start_weekday": start.day_of_week + 1,
            "start_month": start.month,
            "device": device,
            "traffic_source": rng.choice(["direct", "organic", "email"], n),
            "product_views": views,
            "cart_additions": carts,
            "pages_visited": early_pages,
            "session_duration_seconds": early_duration + rng.gamma(2, 30, n),
            "time_per_page_seconds": early_duration / np.maximum(early_pages, 1),
            # Counts over the whole session include the checkout and purchase steps: the leak.
            "checkouts": bought.astype(int),
            "units_purchased": np.where(bought, np.maximum(carts, 1), 0),
            "revenue": np.where(bought, np.maximum(carts, 1) * rng.gamma(3, 20, n), 0.0),
            "dominant_category": rng.choice(["Books", "Fashion", "Toys"], n),
        }
    )


PERSONA_PROFILES = {
    # views/session, cart session rate, abandoned session rate, purchase rate, s/page, pages
    "browser": (8.0, 0.02, 0.02, 0.01, 30.0, 10.0),
    "cart_abandoner": (4.0, 0.85, 0.8, 0.04, 45.0, 5.0),
    "one_click_buyer": (1.4, 0.45, 0.05, 0.4, 10.0, 2.5),
    "explorer": (6.0, 0.22, 0.15, 0.08, 95.0, 11.0),
    "ordinary": (3.0, 0.2, 0.14, 0.06, 40.0, 4.5),
}


def customer_frame(per_persona: int = 300, seed: int = 0) -> pd.DataFrame:
    """Customers drawn around one behaviour profile per persona (column `persona` is truth)."""
    rng = np.random.default_rng(seed)
    parts = []
    for persona, (views, cart, abandon, buy, dwell, pages) in PERSONA_PROFILES.items():
        n = per_persona
        parts.append(
            pd.DataFrame(
                {
                    "persona": persona,
                    "views_per_session": rng.gamma(20, views / 20, n),
                    "cart_session_rate": np.clip(rng.normal(cart, 0.05, n), 0, 1),
                    "abandoned_session_rate": np.clip(rng.normal(abandon, 0.05, n), 0, 1),
                    "purchase_rate": np.clip(rng.normal(buy, 0.03, n), 0, 1),
                    "seconds_per_page": rng.gamma(20, dwell / 20, n),
                    "pages_per_session": rng.gamma(20, pages / 20, n),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "customer_id", rng.permutation(len(frame)) + 1)
    return frame


CATEGORIES = ["Books", "Electronics", "Fashion", "Toys"]


def order_line_frame(n: int = 2_000, seed: int = 0, signal: bool = True) -> pd.DataFrame:
    """Order lines whose category depends on age and gender (or on nothing, signal=False)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    gender = rng.choice(["F", "M"], n)
    if signal:
        idx = (age >= 45).astype(int) * 2 + (gender == "F").astype(int)
        noise = rng.random(n) < 0.15
        idx = np.where(noise, rng.integers(0, 4, n), idx)
    else:
        idx = rng.choice(4, n, p=[0.55, 0.15, 0.15, 0.15])
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:06d}" for i in range(n)],
            "category": np.array(CATEGORIES)[idx],
            "age": age,
            "gender": gender,
            "country": rng.choice(["DE", "FR", "PL"], n),
            "transaction_hour": rng.integers(0, 24, n),
            "transaction_weekday": rng.integers(1, 8, n),
            "transaction_month": rng.integers(1, 13, n),
        }
    )
