"""Small synthetic frames for the ml tests: structure the models must find, made in numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd


def session_frame(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """Sessions whose purchase depends on early behaviour, plus whole-session features where
    pages and duration include the checkout and purchase steps (the leak)."""
    rng = np.random.default_rng(seed)
    views = rng.poisson(4, n)
    carts = rng.binomial(np.maximum(views, 1), 0.15)
    device = rng.choice(["desktop", "mobile", "tablet"], n)
    logit = -3.2 + 0.9 * carts + 0.1 * views + 0.4 * (device == "desktop")
    bought = rng.random(n) < 1 / (1 + np.exp(-logit))
    early_pages = views + rng.poisson(2, n)
    early_duration = early_pages * rng.gamma(4, 15, n)
    start = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.uniform(0, 300, n), unit="D")
    checkout_pages = np.where(bought, 3 + rng.poisson(1, n), 0)
    return pd.DataFrame({
        "session_id": [f"s{i:06d}" for i in range(n)],
        "session_start": start,
        "purchase_made": bought,
        "early_events": early_pages + carts,
        "early_page_views": early_pages - views,
        "early_products_viewed": views,
        "early_distinct_products_viewed": np.minimum(views, rng.poisson(3, n)),
        "early_cart_additions": carts,
        "early_cart_removals": rng.binomial(carts, 0.2),
        "early_distinct_categories": rng.integers(1, 4, n),
        "early_duration_seconds": early_duration,
        "early_time_per_page_seconds": early_duration / np.maximum(early_pages, 1),
        "early_cart_value": carts * rng.gamma(3, 20, n),
        "start_hour": start.hour,
        "start_weekday": start.day_of_week,
        "device": device,
        "traffic_source": rng.choice(["direct", "organic", "email"], n),
        "products_viewed": views,
        "products_added_to_cart": carts,
        # Whole-session counts include the checkout and purchase pages: near-perfect signal.
        "pages_visited": early_pages + checkout_pages * 10,
        "session_duration_seconds": early_duration + np.where(bought, 900, 0),
        "time_per_page_seconds": early_duration / np.maximum(early_pages, 1),
        "dominant_category": rng.choice(["Books", "Fashion", "Toys"], n),
    })


PERSONA_PROFILES = {
    # views, carts, pages per session, minutes per session, cart abandonment, purchase rate
    "browser": (8.0, 0.1, 10.0, 6.0, 0.5, 0.0),
    "cart_abandoner": (4.0, 2.0, 6.0, 5.0, 0.9, 0.02),
    "one_click_buyer": (1.5, 1.0, 3.0, 1.5, 0.1, 0.8),
    "explorer": (10.0, 1.0, 25.0, 25.0, 0.5, 0.2),
    "ordinary": (4.0, 0.6, 6.0, 5.0, 0.5, 0.15),
}


def customer_frame(per_persona: int = 300, seed: int = 0) -> pd.DataFrame:
    """Customers drawn around one behaviour profile per persona (column `persona` is truth)."""
    rng = np.random.default_rng(seed)
    parts = []
    for persona, (views, carts, pages, minutes, abandon, buy) in PERSONA_PROFILES.items():
        n = per_persona
        parts.append(pd.DataFrame({
            "persona": persona,
            "views_per_session": rng.gamma(20, views / 20, n),
            "carts_per_session": rng.gamma(20, carts / 20, n),
            "pages_per_session": rng.gamma(20, pages / 20, n),
            "avg_session_minutes": rng.gamma(20, minutes / 20, n),
            "cart_abandonment_rate": np.clip(rng.normal(abandon, 0.08, n), 0, 1),
            "purchase_rate": np.clip(rng.normal(buy, 0.05, n), 0, 1),
        }))
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
    return pd.DataFrame({
        "transaction_id": [f"t{i:06d}" for i in range(n)],
        "category": np.array(CATEGORIES)[idx],
        "age": age, "gender": gender,
        "country": rng.choice(["DE", "FR", "PL"], n),
        "order_hour": rng.integers(0, 24, n), "order_weekday": rng.integers(0, 7, n),
        "order_month": rng.integers(1, 13, n),
    })
