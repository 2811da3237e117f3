"""The synthetic shop's world: catalogue, customers with latent personas, and the curves of time.

Everything a session simulation needs is in `World` as numpy arrays (one row per customer or
product). `build_world` draws a new world from a seed; `load_world` rebuilds the world of
customers and products already in a warehouse, so new sessions can be simulated for them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

# --------------------------------------------------------------------------------------------
# Catalogue: top-level categories (our own codes, the seed maps them to display names), their
# sub levels, brands and price level (median list price and log-normal spread).
# --------------------------------------------------------------------------------------------

CATEGORIES: tuple[str, ...] = (
    "electronics",
    "fashion",
    "home_kitchen",
    "beauty",
    "sports",
    "books",
    "toys",
    "grocery",
)
SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "electronics": ("audio", "smartphone", "laptop", "camera", "accessories"),
    "fashion": ("shoes", "dress", "jacket", "bag", "accessories"),
    "home_kitchen": ("cookware", "furniture", "decor", "appliances", "bedding"),
    "beauty": ("skincare", "makeup", "fragrance", "haircare"),
    "sports": ("fitness", "cycling", "running", "outdoor"),
    "books": ("fiction", "nonfiction", "children", "comics"),
    "toys": ("construction", "dolls", "games", "outdoor"),
    "grocery": ("snacks", "beverages", "pantry", "organic"),
}
BRANDS: dict[str, tuple[str, ...]] = {
    "electronics": ("sonik", "voltra", "pixelon", "auralis", "nordtek", "kyoto"),
    "fashion": ("linea", "urbano", "velvet", "northrow", "marlo"),
    "home_kitchen": ("casalux", "ferro", "hygge", "cookwell", "domus"),
    "beauty": ("lumiere", "aqualis", "rosewood", "purea"),
    "sports": ("stride", "peakline", "velox", "trailhead"),
    "books": ("penfold", "inkwell", "papyrus", "larkspur"),
    "toys": ("brickly", "funbox", "tinkertot", "playwise"),
    "grocery": ("greenfield", "dailyfarm", "nutrico", "harvest"),
}
PRICE_MEDIAN = np.array([180.0, 45.0, 60.0, 22.0, 55.0, 14.0, 28.0, 6.0])
PRICE_SIGMA = np.array([0.8, 0.6, 0.8, 0.5, 0.7, 0.35, 0.6, 0.5])

CATEGORY_CODES: tuple[str, ...] = tuple(
    f"{top}.{sub}" for top in CATEGORIES for sub in SUBCATEGORIES[top]
)
CODE_TOP = np.array([CATEGORIES.index(c.split(".")[0]) for c in CATEGORY_CODES], dtype=np.int8)
# Stable REES46-style category ids: the same code has the same id in every run and seed.
CATEGORY_ID_BASE = 2_300_000_000_000_000_000
CATEGORY_IDS = np.array(
    [CATEGORY_ID_BASE + (int(CODE_TOP[i]) + 1) * 1000 + i for i in range(len(CATEGORY_CODES))],
    dtype=np.int64,
)

# --------------------------------------------------------------------------------------------
# Personas: the latent behaviour types. Each row drives the session simulation.
# --------------------------------------------------------------------------------------------

PERSONAS: tuple[str, ...] = ("browser", "cart_abandoner", "one_click_buyer", "explorer", "ordinary")
PERSONA_SHARE = np.array([0.20, 0.18, 0.12, 0.16, 0.34])


@dataclass(frozen=True)
class PersonaParams:
    """Per-persona session behaviour (arrays indexed by persona code)."""

    session_weight: np.ndarray  # relative number of sessions per customer
    extra_pages: np.ndarray  # mean page views after the landing page
    views: np.ndarray  # mean product views (at least one)
    p_cart: np.ndarray  # probability that a session adds to cart
    cart_adds: np.ndarray  # mean cart additions when it does
    p_remove: np.ndarray  # probability that a cart addition is removed again
    p_buy: np.ndarray  # probability of buying what is left in the cart
    dwell: np.ndarray  # mean seconds before each event (time per page)


PERSONA = PersonaParams(
    session_weight=np.array([1.2, 1.0, 0.7, 1.5, 1.0]),
    extra_pages=np.array([1.0, 1.0, 0.2, 4.0, 1.2]),
    views=np.array([9.0, 4.0, 1.4, 6.0, 3.0]),
    p_cart=np.array([0.01, 0.85, 0.55, 0.22, 0.20]),
    cart_adds=np.array([1.0, 2.2, 1.1, 1.4, 1.2]),
    p_remove=np.array([0.10, 0.35, 0.02, 0.10, 0.10]),
    p_buy=np.array([0.05, 0.04, 0.90, 0.25, 0.22]),
    dwell=np.array([30.0, 45.0, 10.0, 95.0, 40.0]),
)

# --------------------------------------------------------------------------------------------
# Demographics and their effect on category preference (logits added per category).
# --------------------------------------------------------------------------------------------

GENDERS: tuple[str, ...] = ("F", "M", "X")
GENDER_SHARE = np.array([0.49, 0.48, 0.03])
CITIES: tuple[tuple[str, str, float], ...] = (
    ("New York", "United States", 0.10),
    ("Los Angeles", "United States", 0.07),
    ("Chicago", "United States", 0.05),
    ("London", "United Kingdom", 0.09),
    ("Manchester", "United Kingdom", 0.04),
    ("Berlin", "Germany", 0.07),
    ("Munich", "Germany", 0.04),
    ("Paris", "France", 0.07),
    ("Lyon", "France", 0.03),
    ("Madrid", "Spain", 0.05),
    ("Milan", "Italy", 0.04),
    ("Mumbai", "India", 0.08),
    ("Bangalore", "India", 0.06),
    ("Sao Paulo", "Brazil", 0.06),
    ("Toronto", "Canada", 0.05),
    ("Sydney", "Australia", 0.04),
    ("Tokyo", "Japan", 0.06),
)
COUNTRIES: tuple[str, ...] = tuple(dict.fromkeys(c for _, c, _ in CITIES))
CITY_COUNTRY = np.array([COUNTRIES.index(c) for _, c, _ in CITIES], dtype=np.int8)
CITY_SHARE = np.array([w for _, _, w in CITIES]) / sum(w for _, _, w in CITIES)

#                         elec  fash  home  beau  spor  book  toys  groc
BASE_LOGIT = np.array([0.3, 0.3, 0.2, 0.0, 0.0, -0.1, -0.2, 0.1])
# Per 15 years above 40: younger customers lean to electronics, fashion and sports, older
# ones to books, home & kitchen and grocery.
AGE_SLOPE = np.array([-0.55, -0.40, 0.40, 0.0, -0.35, 0.60, -0.10, 0.30])
# Parents (30-45) buy toys: a bump centred on 37.
TOYS_BUMP = 0.9
GENDER_LOGIT = np.array(
    [
        [-0.40, 0.50, 0.10, 0.90, -0.30, 0.10, 0.00, 0.00],  # F
        [0.45, -0.30, -0.10, -0.70, 0.40, -0.10, 0.00, 0.00],  # M
        [0.10, 0.10, 0.00, 0.10, 0.00, 0.10, 0.00, 0.00],  # X
    ]
)
COUNTRY_LOGIT = {
    "India": np.array([0.35, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "Germany": np.array([0.0, 0.0, 0.0, 0.0, 0.30, 0.0, 0.0, 0.0]),
    "Japan": np.array([0.20, 0.0, 0.0, 0.20, 0.0, 0.0, 0.0, -0.2]),
    "Brazil": np.array([0.0, 0.30, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
}
CUSTOMER_LOGIT_NOISE = 0.4

# --------------------------------------------------------------------------------------------
# Time: activity by hour of day (UTC), weekday (Mon..Sun) and month; a Nov-Dec peak.
# --------------------------------------------------------------------------------------------

HOUR_CURVE = np.array(
    [
        0.25,
        0.15,
        0.10,
        0.08,
        0.08,
        0.12,
        0.30,
        0.55,
        0.75,
        0.85,
        0.90,
        0.95,
        1.05,
        1.00,
        0.95,
        0.95,
        1.00,
        1.10,
        1.30,
        1.50,
        1.60,
        1.45,
        1.05,
        0.60,
    ]
)
WEEKDAY_CURVE = np.array([0.95, 0.93, 0.95, 0.97, 1.00, 1.12, 1.08])
MONTH_CURVE = np.array([0.85, 0.80, 0.90, 0.90, 0.95, 0.95, 0.90, 0.90, 0.95, 1.00, 1.45, 1.60])
# Conversion and category interest by month: gifts before Christmas, sport in summer.
MONTH_BUY_FACTOR = np.array([0.95, 0.95, 1, 1, 1, 1, 1, 1, 1, 1, 1.2, 1.25])
MONTH_LOGIT = np.zeros((12, len(CATEGORIES)))
MONTH_LOGIT[10] = [0.40, 0.10, 0.0, 0.10, 0.0, 0.0, 0.50, 0.0]
MONTH_LOGIT[11] = [0.30, 0.20, 0.0, 0.30, 0.0, 0.20, 0.90, 0.10]
MONTH_LOGIT[4:8, 4] = 0.40
# Evening sessions drift to books and fashion, lunchtime to grocery.
HOUR_LOGIT = np.zeros((24, len(CATEGORIES)))
HOUR_LOGIT[19:24, 5] = 0.30
HOUR_LOGIT[19:24, 1] = 0.15
HOUR_LOGIT[11:14, 7] = 0.30

DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
DEVICE_BUY_FACTOR = np.array([1.15, 0.90, 1.0])
TRAFFIC_SOURCES: tuple[str, ...] = (
    "direct",
    "organic",
    "paid_search",
    "social",
    "email",
    "referral",
)
TRAFFIC_SHARE = np.array([0.28, 0.27, 0.15, 0.15, 0.08, 0.07])
TRAFFIC_BUY_FACTOR = np.array([1.10, 1.0, 1.0, 0.70, 1.30, 0.90])
PAGES: tuple[str, ...] = ("home", "search", "category", "cart", "account", "help")
# Landing page by traffic source (rows follow TRAFFIC_SOURCES, columns PAGES).
LANDING_PAGE = np.array(
    [
        [0.80, 0.05, 0.10, 0.00, 0.05, 0.00],
        [0.20, 0.30, 0.50, 0.00, 0.00, 0.00],
        [0.05, 0.60, 0.35, 0.00, 0.00, 0.00],
        [0.20, 0.00, 0.80, 0.00, 0.00, 0.00],
        [0.30, 0.00, 0.50, 0.10, 0.10, 0.00],
        [0.60, 0.10, 0.30, 0.00, 0.00, 0.00],
    ]
)
OTHER_PAGE = np.array([0.15, 0.35, 0.35, 0.05, 0.06, 0.04])


@dataclass
class World:
    """Customers and products as parallel numpy arrays (codes index the tuples above).

    `persona` is the latent ground truth; the simulation uses it, loaders write it only to
    `ground_truth.customer_personas`.
    """

    customer_id: np.ndarray  # int64
    persona: np.ndarray  # int8 code into PERSONAS
    age: np.ndarray  # int16
    gender: np.ndarray  # int8 code into GENDERS
    city: np.ndarray  # int8 code into CITIES
    signup_date: np.ndarray  # datetime64[D]
    activity: np.ndarray  # float: relative sessions per customer
    dwell_factor: np.ndarray  # float: multiplies the persona's time per page
    device: np.ndarray  # int8: preferred device
    category_logit: np.ndarray  # (customers, categories) float
    product_id: np.ndarray  # int64, sorted by (category, product_id)
    product_code: np.ndarray  # int16 index into CATEGORY_CODES
    product_brand: np.ndarray  # object array of brand strings
    product_name: np.ndarray  # object array of names
    product_price: np.ndarray  # float64 list price
    category_offsets: np.ndarray  # products of category c are [offsets[c], offsets[c+1])
    popularity_cum: np.ndarray  # c + cumulative popularity within category (for sampling)

    @property
    def n_customers(self) -> int:
        return len(self.customer_id)

    @property
    def n_products(self) -> int:
        return len(self.product_id)

    @property
    def product_top(self) -> np.ndarray:
        """Top-level category code of each product."""
        return CODE_TOP[self.product_code]

    def customers_table(self, source: str = "generator") -> pa.Table:
        """raw.customers rows (without loaded_at)."""
        names = np.array([c for c, _, _ in CITIES], dtype=object)
        countries = np.array(COUNTRIES, dtype=object)
        return pa.table(
            {
                "customer_id": pa.array(self.customer_id, pa.int64()),
                "age": pa.array(self.age.astype(np.int32), pa.int32()),
                "gender": pa.array(np.array(GENDERS, dtype=object)[self.gender], pa.string()),
                "city": pa.array(names[self.city], pa.string()),
                "country": pa.array(countries[CITY_COUNTRY[self.city]], pa.string()),
                "signup_date": pa.array(self.signup_date, pa.date32()),
                "source": pa.array(np.full(self.n_customers, source, dtype=object), pa.string()),
            }
        )

    def products_table(self, source: str = "generator") -> pa.Table:
        """raw.products rows (without loaded_at)."""
        codes = np.array(CATEGORY_CODES, dtype=object)
        return pa.table(
            {
                "product_id": pa.array(self.product_id, pa.int64()),
                "product_name": pa.array(self.product_name, pa.string()),
                "category_id": pa.array(CATEGORY_IDS[self.product_code], pa.int64()),
                "category_code": pa.array(codes[self.product_code], pa.string()),
                "brand": pa.array(self.product_brand, pa.string()),
                "price": pa.array(self.product_price, pa.float64()),
                "source": pa.array(np.full(self.n_products, source, dtype=object), pa.string()),
            }
        )

    def personas_table(self) -> pa.Table:
        """ground_truth.customer_personas rows."""
        return pa.table(
            {
                "customer_id": pa.array(self.customer_id, pa.int64()),
                "persona": pa.array(np.array(PERSONAS, dtype=object)[self.persona], pa.string()),
            }
        )


# --------------------------------------------------------------------------------------------
# Per-customer latent traits are a hash of the customer id, so that `load_world` recovers the
# same traits that `build_world` drew, without storing them.
# --------------------------------------------------------------------------------------------


def _hash_uniform(ids: np.ndarray, salt: int) -> np.ndarray:
    """A uniform [0, 1) value per id (splitmix64 of id and salt), stable across processes."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _hash_normal(ids: np.ndarray, salt: int) -> np.ndarray:
    """A standard normal value per id (Box-Muller on two hashed uniforms)."""
    u1 = np.maximum(_hash_uniform(ids, salt), 1e-12)
    u2 = _hash_uniform(ids, salt + 7919)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _customer_traits(
    customer_id: np.ndarray,
    persona: np.ndarray,
    age: np.ndarray,
    gender: np.ndarray,
    city: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Activity, dwell factor, preferred device and category logits of each customer."""
    activity = PERSONA.session_weight[persona] * np.exp(0.25 * _hash_normal(customer_id, 11))
    dwell_factor = np.exp(0.12 * _hash_normal(customer_id, 23))
    # Older customers use desktops more, younger ones phones.
    p_desktop = np.clip(0.15 + 0.008 * (age - 18), 0.1, 0.6)
    u = _hash_uniform(customer_id, 37)
    device = np.where(u < p_desktop, 0, np.where(u < p_desktop + 0.1, 2, 1)).astype(np.int8)
    age_z = (age - 40.0) / 15.0
    logit = BASE_LOGIT + age_z[:, None] * AGE_SLOPE + GENDER_LOGIT[gender]
    logit[:, CATEGORIES.index("toys")] += TOYS_BUMP * np.exp(-(((age - 37.0) / 7.0) ** 2))
    countries = CITY_COUNTRY[city]
    for name, effect in COUNTRY_LOGIT.items():
        logit += (countries == COUNTRIES.index(name))[:, None] * effect
    noise = np.stack([_hash_normal(customer_id, 101 + k) for k in range(len(CATEGORIES))], axis=1)
    return activity, dwell_factor, device, logit + CUSTOMER_LOGIT_NOISE * noise


def _product_index(
    product_id: np.ndarray,
    code: np.ndarray,
    brand: np.ndarray,
    name: np.ndarray,
    price: np.ndarray,
) -> dict[str, np.ndarray]:
    """Sort products by (category, id) and build the popularity table for sampling.

    Popularity within a category follows Zipf (s=1.1) over the product's rank by id, so it is
    the same whether the world was just built or loaded from the warehouse.
    """
    top = CODE_TOP[code]
    order = np.lexsort((product_id, top))
    top = top[order]
    counts = np.bincount(top, minlength=len(CATEGORIES))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rank = np.arange(len(order)) - offsets[top] + 1
    weight = rank**-1.1
    cum = np.zeros(len(order))
    for c in range(len(CATEGORIES)):
        lo, hi = offsets[c], offsets[c + 1]
        if hi > lo:
            w = np.cumsum(weight[lo:hi])
            cum[lo:hi] = c + w / w[-1]
    return {
        "product_id": product_id[order],
        "product_code": code[order],
        "product_brand": brand[order],
        "product_name": name[order],
        "product_price": price[order],
        "category_offsets": offsets,
        "popularity_cum": cum,
    }


def n_customers_for(sessions: int) -> int:
    """Customers for a run of `sessions`: about 12 sessions each, so aggregates are stable."""
    return max(1, sessions // 12)


def n_products_for(sessions: int) -> int:
    """Catalogue size for a run of `sessions`: 200 to 5,000 products."""
    return int(np.clip(sessions // 25, 200, 5_000))


def build_world(
    seed: int,
    n_customers: int,
    n_products: int,
    *,
    customer_offset: int = 0,
    product_offset: int = 0,
    signup_before: dt.date = dt.date(2025, 11, 1),
) -> World:
    """Draw a new world: `n_customers` customers (ids offset+1...) and `n_products` products."""
    rng = np.random.default_rng([seed, 1])
    customer_id = np.arange(1, n_customers + 1, dtype=np.int64) + customer_offset
    persona = rng.choice(len(PERSONAS), n_customers, p=PERSONA_SHARE).astype(np.int8)
    age = np.clip(np.round(rng.normal(39, 13, n_customers)), 18, 80).astype(np.int16)
    gender = rng.choice(len(GENDERS), n_customers, p=GENDER_SHARE).astype(np.int8)
    city = rng.choice(len(CITIES), n_customers, p=CITY_SHARE).astype(np.int8)
    signup = np.datetime64(signup_before) - rng.integers(1, 1_100, n_customers).astype(
        "timedelta64[D]"
    )
    activity, dwell_factor, device, logit = _customer_traits(
        customer_id, persona, age, gender, city
    )

    # Products: every category gets a share, at least two products each.
    n_products = max(n_products, 2 * len(CATEGORIES))
    top = np.concatenate(
        [
            np.repeat(np.arange(len(CATEGORIES)), 2),
            rng.choice(
                len(CATEGORIES),
                n_products - 2 * len(CATEGORIES),
                p=[0.18, 0.18, 0.14, 0.11, 0.11, 0.10, 0.08, 0.10],
            ),
        ]
    )
    top = np.sort(rng.permutation(top), kind="stable")
    first_code = np.array([CATEGORY_CODES.index(f"{c}.{SUBCATEGORIES[c][0]}") for c in CATEGORIES])
    n_sub = np.array([len(SUBCATEGORIES[c]) for c in CATEGORIES])
    code = (first_code[top] + rng.integers(0, n_sub[top])).astype(np.int16)
    sub_factor = np.exp(rng.normal(0, 0.25, len(CODE_TOP)))  # each sub level its own level
    price = np.exp(rng.normal(np.log(PRICE_MEDIAN[top] * sub_factor[code]), PRICE_SIGMA[top]))
    price = np.maximum(np.round(price) - 0.01, 0.99)
    brand_u = rng.random(n_products)
    brand = np.empty(n_products, dtype=object)
    name = np.empty(n_products, dtype=object)
    model = rng.integers(100, 1000, n_products)
    letters = rng.integers(0, 26, n_products)
    for i in range(n_products):
        cat = CATEGORIES[top[i]]
        brands = BRANDS[cat]
        brand[i] = brands[min(int(brand_u[i] ** 1.6 * len(brands)), len(brands) - 1)]
        sub = CATEGORY_CODES[code[i]].split(".")[1]
        name[i] = f"{brand[i].title()} {sub} {chr(65 + letters[i])}{model[i]}"
    product_id = np.arange(1, n_products + 1, dtype=np.int64) + product_offset
    return World(
        customer_id=customer_id,
        persona=persona,
        age=age,
        gender=gender,
        city=city,
        signup_date=signup,
        activity=activity,
        dwell_factor=dwell_factor,
        device=device,
        category_logit=logit,
        **_product_index(product_id, code, brand, name, price),
    )


def load_world(con: duckdb.DuckDBPyConnection) -> World:
    """Rebuild the World of the customers and products already in the warehouse.

    Reads raw.customers, raw.products and ground_truth.customer_personas (a customer without a
    persona is `ordinary`; missing age or gender become 40 and X). Only products whose category
    code is in our catalogue are kept. Latent traits are hashes of the customer id, so they
    match what `build_world` drew.
    """
    cust = con.execute(
        """
        select c.customer_id, any_value(c.age), any_value(c.gender), any_value(c.city),
               any_value(c.signup_date), any_value(p.persona)
        from raw.customers c
        left join ground_truth.customer_personas p using (customer_id)
        group by c.customer_id order by c.customer_id
        """
    ).fetchnumpy()
    prod = con.execute(
        """
        select product_id, any_value(category_code), any_value(brand),
               any_value(product_name), any_value(price)
        from raw.products group by product_id order by product_id
        """
    ).fetchnumpy()
    keys = list(cust)
    customer_id = np.asarray(cust[keys[0]], dtype=np.int64)
    if len(customer_id) == 0:
        raise ValueError("the warehouse has no customers: run `shoplens generate` first")
    age = (
        np.asarray(
            np.ma.filled(np.ma.masked_invalid(np.ma.asarray(cust[keys[1]], dtype=float)), 40.0)
        )
        .round()
        .astype(np.int16)
    )
    gender_map: dict[str | None, int] = {g: i for i, g in enumerate(GENDERS)}
    gender = np.array([gender_map.get(g, 2) for g in _strings(cust[keys[2]])], dtype=np.int8)
    city_map: dict[str | None, int] = {c: i for i, (c, _, _) in enumerate(CITIES)}
    city = np.array([city_map.get(c, 0) for c in _strings(cust[keys[3]])], dtype=np.int8)
    signup = np.asarray(cust[keys[4]]).astype("datetime64[D]")
    persona_map: dict[str | None, int] = {p: i for i, p in enumerate(PERSONAS)}
    persona = np.array([persona_map.get(p, 4) for p in _strings(cust[keys[5]])], dtype=np.int8)
    activity, dwell_factor, device, logit = _customer_traits(
        customer_id, persona, age, gender, city
    )

    pkeys = list(prod)
    code_map: dict[str | None, int] = {c: i for i, c in enumerate(CATEGORY_CODES)}
    codes = np.array([code_map.get(c, -1) for c in _strings(prod[pkeys[1]])], dtype=np.int16)
    keep = codes >= 0
    if not keep.any():
        raise ValueError("the warehouse has no products in the shoplens catalogue")
    price: np.ndarray = np.asarray(np.ma.filled(np.ma.asarray(prod[pkeys[4]], dtype=float), 0.99))
    world = World(
        customer_id=customer_id,
        persona=persona,
        age=age,
        gender=gender,
        city=city,
        signup_date=signup,
        activity=activity,
        dwell_factor=dwell_factor,
        device=device,
        category_logit=logit,
        **_product_index(
            np.asarray(prod[pkeys[0]], dtype=np.int64)[keep],
            codes[keep],
            np.array(_strings(prod[pkeys[2]]), dtype=object)[keep],
            np.array(_strings(prod[pkeys[3]]), dtype=object)[keep],
            price[keep],
        ),
    )
    # Categories without products cannot be browsed.
    empty = np.diff(world.category_offsets) == 0
    world.category_logit[:, empty] = -np.inf
    return world


def _strings(values: np.ndarray) -> list[str | None]:
    """A fetched string column as a list (masked entries become None)."""
    if isinstance(values, np.ma.MaskedArray):
        return [
            None if m else v for v, m in zip(values.data, np.ma.getmaskarray(values), strict=True)
        ]
    return list(values)
