"""A synthetic grocery shop at any scale, written straight into the canonical tables.

The models and tier policies need data with the heterogeneity of a real shop (light and heavy buyers,
customers who join late or stop buying, seasonality, promotions, households) at sizes no public data
set has, and benchmarks need exactly the same data again from a seed.

Purchasing follows the BG/NBD story: each customer buys at their own Poisson rate (Gamma across
customers) from their first order on, and after any order drops out for good with their own
probability (Beta across customers); or, with `half_life_days`, all customers join in the first
weeks as one cohort and their rates decay (the population where value levels drift). Days are weighted by weekday and the December holidays, hours
by a morning and an evening peak. Orders are filled with lines from an assortment with Zipf-like
popularity, each customer's favourite products and preferred departments; promotions, coupons of
campaigns the customer received, weighed items, free items and returns follow.

Everything is vectorized with numpy over blocks of `BLOCK_CUSTOMERS` customers, each drawn from its own
random stream (`SeedSequence(seed, spawn_key=(1, block))`); the assortment, stores and campaigns come
from stream `(0,)`. A chunk is a whole number of blocks (`chunk_customers` is rounded up to one), so
every table's content depends only on (customers, seed, start, days) and never on `chunk_customers`;
only the split into files does (and only for the same numpy version: its generators may change).
Memory holds at most two chunks: one being generated while the previous one is written by
background threads.

At these parameters a customer averages about 15 orders and 128 lines a year: one million customers
give about 128 million lines (1.6 GB of Parquet) in two to three minutes on two cores. The
transaction ends with the derived tables the features read (`features.data.derived`), like an
import: about 5 more minutes for a million customers (61M lines with seed 7), 20-25 s for 100k.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.data.derived import write_derived_tables
from features.data.duck import connect
from features.data.schema import (
    CAMPAIGN_RECIPIENTS,
    CAMPAIGNS,
    COUPON_REDEMPTIONS,
    CUSTOMERS,
    IMPORTS,
    ORDER_LINES,
    ORDER_TABLES,
    ORDERS,
    PRODUCTS,
    REFERENCE_TABLES,
    Table,
)
from features.data.store import DataStore
from features.errors import InputError

__all__ = ["SynthReport", "generate"]

BLOCK_CUSTOMERS = 500
"""Customers per random stream: the unit of determinism (chunks are whole blocks)."""

MAX_CHUNK_CUSTOMERS = 1_000_000
"""Larger chunks would overflow Arrow's 2 GB string columns (and need tens of GB of memory)."""

WRITER_THREADS = 2
"""Threads writing Parquet files (Arrow releases the GIL) while the main thread generates."""

PREEXISTING_SHARE = 0.35  # customers already buying on the first day; the others join during the period
COHORT_WEEKS = 4  # a single cohort (`half_life_days`) joins during its first four weeks
RATE_SHAPE, RATE_SCALE, MAX_RATE = 1.2, 0.03, 1.5  # orders per day: median 1 per 5-6 weeks, top 1 % weekly+
DROPOUT_A, DROPOUT_B = 1.0, 100.0  # probability of leaving for good after an order: mean 1 %
LINES_MEDIAN, LINES_SIGMA, ORDER_NOISE_SHAPE, MAX_LINES = (
    6.0,
    0.45,
    6.0,
    120,
)  # per customer: 2 people, mid income
FAVOURITES, FAVOURITE_SHARE, PREFERRED_SHARE = 24, 0.45, 0.2
HOME_STORE_SHARE = 0.92
HOUSEHOLD_SHARE = 0.35
PROMO_BASE, PROMO_SLOPE = 0.05, 0.45  # chance a line is on promotion, by the customer's sensitivity
PROMO_DEPTHS = np.array([0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50])
COUPON_VALUES_CENTS = np.array([50, 100, 150, 200, 300])
COUPONS_PER_CAMPAIGN, CAMPAIGNS_PER_YEAR = 25, 8
ZERO_VALUE_SHARE, RETURN_SHARE, REFUND_ORDER_SHARE = 0.005, 0.002, 0.0005
YEARLY_INFLATION = 0.03
QUANTITIES, QUANTITY_P = np.array([1, 2, 3, 4, 6]), np.array([0.70, 0.19, 0.06, 0.03, 0.02])
WEEKDAY_WEIGHTS = np.array([1.12, 0.92, 0.90, 0.97, 0.88, 1.05, 1.25])  # Monday .. Sunday
HOUR_WEIGHTS = np.array(
    [0.2, 0.1, 0.05, 0.05, 0.05, 0.15, 0.5, 1.0, 1.6, 2.0, 2.1, 1.8,
     1.6, 1.4, 1.3, 1.3, 1.5, 1.8, 2.2, 2.5, 2.4, 1.8, 1.0, 0.5]
)  # fmt: skip
HOUR_CDF = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()

# Departments in order of popularity: name, median unit price, share of products sold by weight.
DEPARTMENTS = (
    ("PRODUCE", 1.87, 0.45), ("DAIRY", 2.21, 0.0), ("BAKERY", 2.55, 0.05), ("MEAT", 6.38, 0.5),
    ("PANTRY", 2.38, 0.0), ("SNACKS", 2.72, 0.0), ("BEVERAGES", 2.46, 0.0), ("FROZEN", 3.57, 0.0),
    ("DELI", 4.25, 0.4), ("BREAKFAST", 3.23, 0.0), ("CANNED GOODS", 1.61, 0.0), ("HOUSEHOLD", 4.67, 0.0),
    ("PERSONAL CARE", 4.93, 0.0), ("CONDIMENTS", 2.63, 0.0), ("SEAFOOD", 8.07, 0.5), ("BABY", 7.22, 0.0),
    ("ALCOHOL", 9.35, 0.0), ("PET", 5.52, 0.0), ("HEALTH", 6.38, 0.0), ("INTERNATIONAL", 3.06, 0.0),
    ("PREPARED MEALS", 5.78, 0.0), ("FLORAL", 7.65, 0.0),
)  # fmt: skip
PRIVATE_LABEL_SHARE, PRIVATE_LABEL = 0.2, "OWN BRAND"
CAMPAIGN_TYPES = ("Mailer", "Email", "App", "Loyalty")

AGE_BANDS = ("19-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_P = np.array([0.06, 0.18, 0.24, 0.26, 0.14, 0.12])
INCOME_BANDS = (
    "Under 15K", "15-24K", "25-34K", "35-49K", "50-74K", "75-99K",
    "100-124K", "125-149K", "150-174K", "175-199K", "200-249K", "250K+",
)  # fmt: skip
INCOME_P = np.array([61, 74, 77, 172, 192, 96, 34, 38, 30, 11, 5, 11]) / 801
HOUSEHOLD_SIZES, KIDS_COUNTS = ("1", "2", "3", "4", "5+"), ("0", "1", "2", "3+")
SIZE_P_FAMILY, SIZE_P_SINGLE = (
    np.array([0.26, 0.36, 0.17, 0.12, 0.09]),
    np.array([0.5, 0.35, 0.08, 0.04, 0.03]),
)
HOUSEHOLD_COMPS = ("1 Adult Kids", "1 Adult No Kids", "2 Adults Kids", "2 Adults No Kids")
MARITAL_STATUSES = ("Married", "Unmarried")
HOME_OWNERSHIPS = ("Homeowner", "Probable Homeowner", "Renter", "Probable Renter")
HOUSEHOLD_LABELS = {
    "age_band": AGE_BANDS,
    "income_band": INCOME_BANDS,
    "household_size": HOUSEHOLD_SIZES,
    "kids_count": KIDS_COUNTS,
    "home_ownership": HOME_OWNERSHIPS,
    "marital_status": MARITAL_STATUSES,
    "household_comp": HOUSEHOLD_COMPS,
}

SYNTH_TABLES: tuple[Table, ...] = (*ORDER_TABLES, *REFERENCE_TABLES)
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}
_US_PER_DAY = 86_400_000_000
_Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class SynthReport:
    """What `generate` wrote."""

    customers: int
    orders: int
    order_lines: int
    products: int
    seconds: float


@dataclass(frozen=True)
class _Calendar:
    """Days of the period with their seasonal weight (mean 1), month and price index."""

    start_us: int
    days: int
    cum_weight: np.ndarray  # days + 1 values: total weight of the days before each day
    month_of_day: np.ndarray
    months: tuple[str, ...]
    price_index: np.ndarray


@dataclass(frozen=True)
class _Catalog:
    """Products grouped by department, with popularity and prices."""

    table: pa.Table
    dept_cdf: np.ndarray
    dept_start: np.ndarray
    dept_size: np.ndarray
    by_popularity: np.ndarray  # product indices, each department's from most to least popular
    price_cents: np.ndarray
    by_weight: np.ndarray

    def sample(self, dept: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Products of departments `dept` for uniforms `u`: rank r is drawn with probability ~1/(r+1) (Zipf)."""
        size = self.dept_size[dept]
        rank = np.minimum(np.exp(u * np.log1p(size)).astype(np.int64) - 1, size - 1)
        return self.by_popularity[self.dept_start[dept] + rank]


@dataclass(frozen=True)
class _World:
    """Everything shared by all customers: calendar, assortment, stores and campaigns."""

    calendar: _Calendar
    catalog: _Catalog
    store_cdf: np.ndarray
    store_ids: pa.Array
    campaigns: pa.Table
    campaign_reach: np.ndarray
    campaign_active: np.ndarray  # (days, campaigns)
    half_life_days: float | None = None  # a single cohort whose order rate decays (see `generate`)


def generate(
    store: DataStore,
    customers: int,
    seed: int,
    *,
    start: date = date(2024, 1, 1),
    days: int = 365,
    chunk_customers: int = 50_000,
    half_life_days: float | None = None,
    now: datetime | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    summarize: Callable[[Path], None] | None = None,
) -> SynthReport:
    """Generate a synthetic shop and write it into `store` as one transaction.

    The order tables and reference tables of the live version, if any, are replaced (the caller
    decides whether that is allowed); quarantine is kept and one row is added to the imports log.

    Args:
        store: Destination tables.
        customers: Number of customers; every one has at least one order.
        seed: Random seed (non-negative); with the same customers, start and days it gives the
            same tables whatever `chunk_customers` is.
        start: First day of the period (UTC).
        days: Length of the period; no order falls outside [start, start + days).
        chunk_customers: Customers generated and written at a time, rounded up to a multiple of
            `BLOCK_CUSTOMERS` and at most `MAX_CHUNK_CUSTOMERS`; memory grows with it (about
            1.6 GB peak for the default 50,000).
        half_life_days: Instead of a shop whose customers join all year at steady rates, one
            acquisition cohort: every customer's first order falls in the first `COHORT_WEEKS`
            weeks, and each one's order rate then halves every `half_life_days` (on top of the
            dropout). A population whose purchase rate decays is where value predictions trained
            on older cutoffs get their level wrong; this makes one to check against.
        now: Time recorded in the imports log (default: the current time).
        on_chunk: Called with (customers done, customers in total) after each chunk.
        summarize: Writes the derived tables into the new version (a Spark engine's
            `features.spark_derived.write_derived_tables`); None: DuckDB.

    Returns:
        Counts of what was written and the time it took.

    Raises:
        InputError: a count, the seed or the period is out of range.
    """
    _check_arguments(customers, seed, days, chunk_customers)
    if half_life_days is not None and not half_life_days > 0:
        raise InputError(f"half_life_days must be positive, got {half_life_days}")
    began = time.perf_counter()
    import_id = f"synth-{seed}-{customers}"
    world = dataclasses.replace(_world(customers, seed, start, days), half_life_days=half_life_days)
    blocks = -(-customers // BLOCK_CUSTOMERS)
    per_chunk = -(-min(chunk_customers, MAX_CHUNK_CUSTOMERS) // BLOCK_CUSTOMERS)
    with store.transaction() as draft:
        with ExitStack() as files:
            for table in SYNTH_TABLES:
                shutil.rmtree(draft / table.name, ignore_errors=True)
            _write_single(world.catalog.table, draft / PRODUCTS.name)
            _write_single(world.campaigns, draft / CAMPAIGNS.name)
            output = _ChunkWriter(draft, world, import_id, files)
            for chunk, first in enumerate(range(0, blocks, per_chunk)):
                last = min(first + per_chunk, blocks)
                output.write(
                    chunk, _concat([_simulate_block(world, seed, b, customers) for b in range(first, last)])
                )
                if on_chunk:
                    on_chunk(min(last * BLOCK_CUSTOMERS, customers), customers)
            output.wait()
            source = f"synth:customers={customers},seed={seed}"
            _write_import_log(draft, import_id, source, output.orders, output.lines, now)
        if summarize is None:
            write_derived_tables(connect(temp_directory=store.root / ".spill"), draft)
        else:
            summarize(draft)
    seconds = time.perf_counter() - began
    return SynthReport(customers, output.orders, output.lines, world.catalog.table.num_rows, seconds)


def _check_arguments(customers: int, seed: int, days: int, chunk_customers: int) -> None:
    if customers < 1:
        raise InputError(f"customers must be at least 1, got {customers}")
    if seed < 0:
        raise InputError(f"seed must be non-negative, got {seed}")
    if days < 1:
        raise InputError(f"days must be at least 1, got {days}")
    if chunk_customers < 1:
        raise InputError(f"chunk_customers must be at least 1, got {chunk_customers}")


def _world(customers: int, seed: int, start: date, days: int) -> _World:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    calendar = _calendar(start, days)
    n_products = int(np.clip(round(5_000 * (customers / 1_000) ** (1 / 3)), 5_000, 50_000))
    n_stores = int(np.clip(round(12 + 6 * np.log10(customers)), 12, 60))
    store_weights = rng.lognormal(0.0, 0.6, n_stores)
    campaigns, reach, active = _campaigns(rng, calendar)
    return _World(
        calendar=calendar,
        catalog=_catalog(rng, n_products),
        store_cdf=np.cumsum(store_weights) / store_weights.sum(),
        store_ids=pa.array([f"S{i + 1:02d}" for i in range(n_stores)]),
        campaigns=campaigns,
        campaign_reach=reach,
        campaign_active=active,
    )


def _calendar(start: date, days: int) -> _Calendar:
    dates = np.datetime64(start, "D") + np.arange(days)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    month_start = dates.astype("datetime64[M]")
    day_of_month = (dates - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    weight = WEEKDAY_WEIGHTS[weekday] * _holiday_factor(month_start.astype(np.int64) % 12 + 1, day_of_month)
    weight = weight / weight.mean()
    months, month_of_day = np.unique(month_start, return_inverse=True)
    return _Calendar(
        start_us=int(dates[0].astype("datetime64[us]").astype(np.int64)),
        days=days,
        cum_weight=np.concatenate([[0.0], np.cumsum(weight)]),
        month_of_day=month_of_day,
        months=tuple(str(m) for m in months),
        price_index=1 + YEARLY_INFLATION * np.arange(days) / 365,
    )


def _holiday_factor(month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """A mild December bump before Christmas, quiet holidays themselves."""
    december = month == 12
    factor = np.where(december & (day <= 23), 1.12, 1.0)
    factor = np.where(december & (day >= 17) & (day <= 23), 1.3, factor)
    factor = np.where(december & (day == 24), 0.8, factor)
    factor = np.where(december & (day == 25), 0.25, factor)
    factor = np.where(december & (day == 26), 0.7, factor)
    return np.where((month == 1) & (day == 1), 0.4, factor)


def _catalog(rng: np.random.Generator, n_products: int) -> _Catalog:
    names = [d[0] for d in DEPARTMENTS]
    dept_weight = 1 / np.arange(1, len(DEPARTMENTS) + 1) ** 0.8
    share = np.sqrt(dept_weight) / np.sqrt(dept_weight).sum()  # popular departments have more products
    counts = np.maximum(20, np.round(n_products * share)).astype(int)
    dept = np.repeat(np.arange(len(DEPARTMENTS)), counts)
    dept_start = np.cumsum(counts) - counts
    by_popularity = np.concatenate(
        [
            rng.permutation(np.arange(s, s + c, dtype=np.int32))
            for s, c in zip(dept_start, counts, strict=True)
        ]
    )
    median_price = np.array([d[1] for d in DEPARTMENTS])[dept]
    by_weight = rng.random(dept.size) < np.array([d[2] for d in DEPARTMENTS])[dept]
    private = rng.random(dept.size) < PRIVATE_LABEL_SHARE
    price = median_price * rng.lognormal(0.0, 0.45, dept.size) * np.where(private, 0.75, 1.0)
    price = np.where(by_weight, price * 2.2, price)  # per kg
    return _Catalog(
        table=_products_table(rng, names, dept, counts, private),
        dept_cdf=np.cumsum(dept_weight) / dept_weight.sum(),
        dept_start=dept_start,
        dept_size=counts,
        by_popularity=by_popularity,
        price_cents=np.maximum(np.round(price * 100), 19),
        by_weight=by_weight,
    )


def _products_table(
    rng: np.random.Generator, names: list[str], dept: np.ndarray, counts: np.ndarray, private: np.ndarray
) -> pa.Table:
    n = dept.size
    categories = np.clip(counts // 150, 3, 12)[dept]
    category = (categories * rng.random(n) ** 1.5).astype(int)
    subcategory = (6 * rng.random(n) ** 1.3).astype(int)
    brands = np.maximum(4, counts // 20)[dept]
    brand = (brands * rng.random(n) ** 2).astype(int)
    dept_names = np.array(names, dtype=object)[dept]
    return pa.table(
        {
            "product_id": _id_strings(np.arange(1, n + 1)),
            "department": pa.array(dept_names, pa.string()),
            "category": pa.array([f"{d} {c + 1:02d}" for d, c in zip(dept_names, category, strict=True)]),
            "subcategory": pa.array(
                [
                    f"{d} {c + 1:02d}-{s + 1}"
                    for d, c, s in zip(dept_names, category, subcategory, strict=True)
                ]
            ),
            "brand": pa.array(
                [
                    PRIVATE_LABEL if p else f"{d[:4]} BRAND {b + 1:03d}"
                    for d, b, p in zip(dept_names, brand, private, strict=True)
                ]
            ),
            "is_private_label": pa.array(private),
        },
        schema=_arrow_schema(PRODUCTS),
    )


def _campaigns(rng: np.random.Generator, calendar: _Calendar) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """A handful of campaigns a year, 2 to 8 weeks long: table, reach and (day, campaign) activity."""
    days = calendar.days
    n = max(2, round(CAMPAIGNS_PER_YEAR * days / 365))
    first = np.sort(rng.integers(0, max(1, days - 14), n))
    last = np.minimum(first + rng.integers(13, 56, n), days - 1)
    day = np.arange(days)[:, None]
    table = pa.table(
        {
            "campaign_id": _id_strings(np.arange(1, n + 1)),
            "campaign_type": pa.array(
                np.array(CAMPAIGN_TYPES, dtype=object)[rng.integers(0, len(CAMPAIGN_TYPES), n)], pa.string()
            ),
            "start_date": _timestamps(calendar.start_us + first * _US_PER_DAY),
            "end_date": _timestamps(calendar.start_us + last * _US_PER_DAY),
        },
        schema=_arrow_schema(CAMPAIGNS),
    )
    return table, rng.uniform(0.1, 0.4, n), (day >= first) & (day <= last)


def _simulate_block(world: _World, seed: int, block: int, customers: int) -> dict[str, _Columns]:
    """All tables' rows for the customers of one block, from the block's own random stream."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, block)))
    first = block * BLOCK_CUSTOMERS
    people = _customers(rng, world, np.arange(first + 1, min(first + BLOCK_CUSTOMERS, customers) + 1))
    orders = _orders(rng, world, people)
    lines = _lines(rng, world, people, orders)
    redemptions = _coupons(rng, world, people, orders, lines)
    _finish_orders(orders, lines, people)
    recipient_row, campaign = np.nonzero(people["recipient"])
    return {
        "customers": {k: people[k] for k in ("number", *HOUSEHOLD_LABELS)},
        "recipients": {"customer": people["number"][recipient_row], "campaign": campaign},
        "redemptions": redemptions,
        "orders": orders,
        "lines": lines,
    }


def _customers(rng: np.random.Generator, world: _World, number: np.ndarray) -> _Columns:
    """Per-customer traits: purchase rate, dropout, basket size, promotion sensitivity, preferences."""
    n = number.size
    people = _households(rng, n)
    spend = rng.normal(0.0, LINES_SIGMA, n) + 0.12 * (people["size"] - 1) + 0.1 * people["affluence"]
    promo = rng.beta(1.5, 4.0, n)
    reach = world.campaign_reach * (0.5 + 1.8 * promo)[:, None]
    catalog = world.catalog
    favourite_depts = _draw(catalog.dept_cdf, rng.random(n * FAVOURITES))
    people |= {
        "number": number,
        "preexisting": rng.random(n) < PREEXISTING_SHARE,
        "rate": np.clip(rng.gamma(RATE_SHAPE, RATE_SCALE, n), 1e-6, MAX_RATE),
        "dropout": rng.beta(DROPOUT_A, DROPOUT_B, n),
        "basket_lines": LINES_MEDIAN * np.exp(spend),
        "promo": promo,
        "home_store": _draw(world.store_cdf, rng.random(n)),
        "preferred": _draw(catalog.dept_cdf, rng.random((n, 3))),
        "favourites": catalog.sample(favourite_depts, rng.random(n * FAVOURITES)).reshape(n, FAVOURITES),
        "recipient": rng.random(reach.shape) < reach,
    }
    return people


def _households(rng: np.random.Generator, n: int) -> _Columns:
    """Household attributes as label indices (-1 = unknown), known for `HOUSEHOLD_SHARE` of customers.

    `affluence` (from income) and `size` (household size index) are drawn for everyone: they shape
    spending.
    """
    age = _draw(np.cumsum(AGE_P), rng.random(n))
    income = _draw(np.cumsum(INCOME_P), rng.random(n))
    affluence = 3.4 * (np.cumsum(INCOME_P)[income] - INCOME_P[income] / 2 - 0.5) + rng.normal(0, 0.3, n)
    mostly_single = (age == 0) | (age == len(AGE_BANDS) - 1)
    size = np.where(
        mostly_single,
        _draw(np.cumsum(SIZE_P_SINGLE), rng.random(n)),
        _draw(np.cumsum(SIZE_P_FAMILY), rng.random(n)),
    )
    adults = np.where(size == 0, 1, np.where(rng.random(n) < 0.78, 2, 1))
    kids = np.clip(size + 1 - adults, 0, 3)
    marital = np.where(adults == 2, rng.random(n) >= 0.92, rng.random(n) < 0.85).astype(int)
    owner = rng.random(n) < np.clip(0.25 + 0.1 * age + 0.15 * affluence, 0.05, 0.95)
    ownership = np.where(owner, (rng.random(n) >= 0.93).astype(int), 2 + (rng.random(n) >= 0.8))
    known = rng.random(n) < HOUSEHOLD_SHARE

    def known_only(values: np.ndarray, missing_share: float = 0.0) -> np.ndarray:
        return np.where(known & (rng.random(n) >= missing_share), values, -1)

    return {
        "affluence": affluence,
        "size": size,
        "age_band": known_only(age),
        "income_band": known_only(income),
        "household_size": known_only(size),
        "kids_count": known_only(kids),
        "home_ownership": known_only(ownership, 0.25),
        "marital_status": known_only(marital, 0.15),
        "household_comp": known_only((adults - 1) * 2 + (kids == 0)),
    }


def _orders(rng: np.random.Generator, world: _World, people: _Columns) -> _Columns:
    """Order times per customer, sorted, cut at the customer's dropout: customer row, seq, day, time, store.

    Time runs in seasonal units (`cum_weight`), so a constant rate there follows the weekly and
    holiday pattern in calendar days. Existing customers' first order is the first arrival of their
    process; new customers' first order is their arrival, uniform over the period.
    """
    rate = people["rate"]
    total = world.calendar.cum_weight[-1]
    if world.half_life_days is None:
        first = np.where(
            people["preexisting"],
            -np.log1p(rng.random(rate.size) * np.expm1(-rate * total)) / rate,
            rng.random(rate.size) * total,
        )
        extra = rng.poisson(rate * (total - first))
        later = first.repeat(extra) + rng.random(extra.sum()) * (total - first).repeat(extra)
    else:
        first, extra, later = _decaying_cohort(rng, rate, total, world.half_life_days)
    row = np.concatenate([np.arange(rate.size), np.repeat(np.arange(rate.size), extra)])
    at = np.concatenate([first, later])
    day, time_us = _clock(rng, world.calendar, at)
    order = np.lexsort((time_us, row))
    row, day, time_us = row[order], day[order], time_us[order]
    seq = np.arange(row.size) - np.repeat(np.cumsum(extra + 1) - (extra + 1), extra + 1)
    keep = seq < rng.geometric(people["dropout"])[row]
    row, day, time_us, seq = row[keep], day[keep], time_us[keep], seq[keep]
    away = rng.random(row.size) >= HOME_STORE_SHARE
    store = np.where(away, _draw(world.store_cdf, rng.random(row.size)), people["home_store"][row])
    return {"row": row, "seq": seq + 1, "day": day, "time_us": time_us, "store": store}


def _decaying_cohort(
    rng: np.random.Generator, rate: np.ndarray, total: float, half_life: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First orders in the first `COHORT_WEEKS` weeks, then a Poisson process whose rate decays as
    `rate * 2 ** (-(t - first) / half_life)`: the count is Poisson with the integral of that rate,
    and the times are drawn by inverting its cumulative. Returns first times, counts and later times."""
    tau = half_life / np.log(2)
    first = rng.random(rate.size) * min(7.0 * COHORT_WEEKS, total)
    mass = -np.expm1(-(total - first) / tau)  # share of the decaying rate's integral before the end
    extra = rng.poisson(rate * tau * mass)
    later = first.repeat(extra) - tau * np.log1p(-rng.random(extra.sum()) * mass.repeat(extra))
    return first, extra, np.minimum(later, np.nextafter(total, 0))


def _clock(rng: np.random.Generator, calendar: _Calendar, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day index and UTC microseconds (whole seconds) for seasonal times; the hour follows the daily profile."""
    day = np.clip(np.searchsorted(calendar.cum_weight, at, side="right") - 1, 0, calendar.days - 1)
    hour = _draw(HOUR_CDF, rng.random(at.size))
    second = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, at.size)
    return day, calendar.start_us + second * 1_000_000


def _lines(rng: np.random.Generator, world: _World, people: _Columns, orders: _Columns) -> _Columns:
    """Lines of every order: order index, line number, product, quantity, cents paid and discounted.

    Indices and cents are int32 to halve the memory of a chunk (a line's cents stay far below 2**31).
    """
    n_orders = orders["row"].size
    mean = people["basket_lines"][orders["row"]] * rng.gamma(
        ORDER_NOISE_SHAPE, 1 / ORDER_NOISE_SHAPE, n_orders
    )
    count = np.minimum(1 + rng.poisson(np.maximum(mean - 1, 0)), MAX_LINES)
    order = np.repeat(np.arange(n_orders, dtype=np.int32), count)
    line_number = (np.arange(order.size) - np.repeat(np.cumsum(count) - count, count) + 1).astype(np.int32)
    row = orders["row"][order]
    product = _products_bought(rng, world.catalog, people, row)
    catalog = world.catalog
    quantity = QUANTITIES[_draw(np.cumsum(QUANTITY_P), rng.random(order.size))].astype(np.float64)
    weighed = catalog.by_weight[product]
    quantity[weighed] = np.round(rng.lognormal(np.log(0.6), 0.5, weighed.sum()), 3)
    price_index = world.calendar.price_index[orders["day"][order]]
    gross = np.maximum(np.rint(catalog.price_cents[product] * quantity * price_index).astype(np.int32), 1)
    on_promo = rng.random(order.size) < PROMO_BASE + PROMO_SLOPE * people["promo"][row]
    discount = np.where(
        on_promo, np.rint(gross * PROMO_DEPTHS[rng.integers(0, PROMO_DEPTHS.size, order.size)]), 0
    )
    kind = rng.random(order.size)
    free = kind < ZERO_VALUE_SHARE
    discount = np.where(free, gross, discount).astype(np.int32)
    returned = ((kind >= ZERO_VALUE_SHARE) & (kind < ZERO_VALUE_SHARE + RETURN_SHARE)) | (
        rng.random(n_orders) < REFUND_ORDER_SHARE
    )[order]
    discount[returned] = 0
    quantity[returned] = -quantity[returned]
    return {
        "order": order,
        "line_number": line_number,
        "product": product,
        "quantity": quantity,
        "amount": np.where(returned, -gross, gross - discount),
        "discount": discount,
        "coupon": np.zeros(order.size, np.int32),
    }


def _products_bought(
    rng: np.random.Generator, catalog: _Catalog, people: _Columns, row: np.ndarray
) -> np.ndarray:
    """A favourite, a product of a preferred department, or any product by popularity."""
    n = row.size
    source = rng.random(n)
    favourite = people["favourites"][row, (FAVOURITES * rng.random(n) ** 2).astype(int)]
    preferred = people["preferred"][row, rng.integers(0, 3, n)]
    dept = np.where(
        source < FAVOURITE_SHARE + PREFERRED_SHARE, preferred, _draw(catalog.dept_cdf, rng.random(n))
    )
    return np.where(source < FAVOURITE_SHARE, favourite, catalog.sample(dept, rng.random(n)))


def _coupons(
    rng: np.random.Generator, world: _World, people: _Columns, orders: _Columns, lines: _Columns
) -> _Columns:
    """Redeem a coupon on some orders of campaign recipients while the campaign runs.

    The coupon's value is taken off one line of the order (added to its discount and coupon
    discount); the redemption rows say who redeemed which coupon of which campaign on which day.
    """
    row = orders["row"]
    eligible = world.campaign_active[orders["day"]] & people["recipient"][row]
    score = np.where(eligible, rng.random(eligible.shape), -1.0)
    campaign = score.argmax(axis=1)
    redeem = (score.max(axis=1) >= 0) & (rng.random(row.size) < 0.1 + 0.5 * people["promo"][row])
    count = np.bincount(lines["order"], minlength=row.size)
    start = np.cumsum(count) - count
    line = start + (rng.random(row.size) * count).astype(np.int64)
    value = COUPON_VALUES_CENTS[rng.integers(0, COUPON_VALUES_CENTS.size, row.size)]
    redeem &= lines["amount"][line] > value
    line, value = line[redeem], value[redeem]
    lines["discount"][line] += value
    lines["coupon"][line] += value
    lines["amount"][line] -= value
    number = people["number"][row[redeem]]
    coupon = (
        campaign[redeem] * COUPONS_PER_CAMPAIGN + (number * 7 + orders["seq"][redeem]) % COUPONS_PER_CAMPAIGN
    )
    key = np.unique(np.stack([number, coupon, orders["day"][redeem]], axis=1), axis=0)
    return {
        "customer": key[:, 0],
        "coupon": key[:, 1],
        "campaign": key[:, 1] // COUPONS_PER_CAMPAIGN,
        "day": key[:, 2],
    }


def _finish_orders(orders: _Columns, lines: _Columns, people: _Columns) -> None:
    """Add the order totals and a content fingerprint, from the finished lines.

    Not the import's fingerprint (`features.data.content_hash`, SHA-256 of text, too slow here): 32
    hex digits, which the import takes for an older Tierwise's and recomputes from the stored rows
    the first time it imports into a synthetic home."""
    count = np.bincount(lines["order"], minlength=orders["row"].size)
    start = np.cumsum(count) - count
    for name in ("amount", "discount", "coupon", "quantity"):
        orders[name] = np.add.reduceat(lines[name], start)
    orders["lines"] = count
    orders["customer"] = people["number"][orders["row"]]
    line_hash = _mix_all(
        lines["product"], lines["line_number"], lines["quantity"].view(np.int64), lines["amount"]
    )
    content = np.bitwise_xor.reduceat(line_hash, start)
    fields = (orders["customer"], orders["time_us"], count, orders["amount"], orders["store"], content)
    orders["hash_hi"] = _mix_all(*fields)
    orders["hash_lo"] = _mix_all(*fields, salt=0x9E3779B97F4A7C15)


def _mix_all(*fields: np.ndarray, salt: int = 0) -> np.ndarray:
    """A 64-bit hash of equal-length integer arrays, element-wise (splitmix64 rounds)."""
    h = np.full(fields[0].size, salt, np.uint64)
    for field in fields:
        h = _splitmix(h ^ np.asarray(field, np.int64).view(np.uint64))
    return h


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _concat(parts: list[dict[str, _Columns]]) -> dict[str, _Columns]:
    """Join blocks into one chunk; line-to-order indices are shifted to the joined orders."""
    offsets = np.cumsum([0] + [p["orders"]["row"].size for p in parts[:-1]])
    for part, offset in zip(parts, offsets, strict=True):
        part["lines"]["order"] = part["lines"]["order"] + int(offset)
    return {
        table: {name: np.concatenate([p[table][name] for p in parts]) for name in parts[0][table]}
        for table in parts[0]
    }


class _ChunkWriter:
    """Writes chunks into the draft on background threads while the caller generates the next one.

    Orders and lines go to month folders, the other tables are appended to one file each. At most
    one chunk is being written at a time (`write` first waits for the previous one), so memory holds
    at most two chunks.
    """

    def __init__(self, draft: Path, world: _World, import_id: str, files: ExitStack) -> None:
        self.draft, self.world, self.import_id = draft, world, import_id
        self.appenders = {
            t.name: files.enter_context(_single_file_writer(draft, t))
            for t in (CUSTOMERS, CAMPAIGN_RECIPIENTS, COUPON_REDEMPTIONS)
        }
        self.pool = files.enter_context(
            ThreadPoolExecutor(WRITER_THREADS)
        )  # shut down before appenders close
        self.pending: list[Future[None]] = []
        self.orders = self.lines = 0

    def write(self, chunk: int, data: dict[str, _Columns]) -> None:
        """Turn a chunk into Arrow tables and start writing them."""
        orders, lines = _sort_by_time(data.pop("orders"), data.pop("lines"))
        month = self.world.calendar.month_of_day[orders["day"]]
        orders_table = _orders_table(orders, self.world, self.import_id)
        lines_table = _lines_table(lines, orders_table, self.world)
        reference = {
            CUSTOMERS.name: _customers_table(data["customers"]),
            CAMPAIGN_RECIPIENTS.name: _recipients_table(data["recipients"]),
            COUPON_REDEMPTIONS.name: _redemptions_table(data["redemptions"], self.world),
        }
        self.wait()
        self.pending = [
            *self._write_months(orders_table, month, ORDERS, chunk),
            *self._write_months(lines_table, month[lines["order"]], ORDER_LINES, chunk),
            self.pool.submit(self._append, reference),
        ]
        self.orders += orders_table.num_rows
        self.lines += lines_table.num_rows

    def wait(self) -> None:
        """Block until the chunk being written is on disk; re-raise its error if it failed."""
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def _write_months(
        self, table: pa.Table, month: np.ndarray, spec: Table, chunk: int
    ) -> list[Future[None]]:
        """Rows sorted by time go to `<table>/month=YYYY-MM/part-synth-<chunk>.parquet`."""
        present, first = np.unique(month, return_index=True)
        ends = np.append(first[1:], month.size)
        pending = []
        for m, a, b in zip(present, first, ends, strict=True):
            folder = self.draft / spec.name / f"month={self.world.calendar.months[m]}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-synth-{chunk:05d}.parquet"
            pending.append(self.pool.submit(pq.write_table, table.slice(a, b - a), path, compression="zstd"))
        return pending

    def _append(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            self.appenders[name].write_table(table)


def _sort_by_time(orders: _Columns, lines: _Columns) -> tuple[_Columns, _Columns]:
    """Orders by time (ties in customer order) and their lines in the same order."""
    order = np.argsort(orders["time_us"], kind="stable")
    count = orders["lines"]
    old_start = np.cumsum(count) - count
    new_count = count[order]
    new_start = np.cumsum(new_count) - new_count
    take = np.arange(lines["order"].size) + np.repeat(old_start[order] - new_start, new_count)
    sorted_lines = {name: values[take] for name, values in lines.items()}
    sorted_lines["order"] = np.repeat(np.arange(order.size, dtype=np.int32), new_count)
    return {name: values[order] for name, values in orders.items()}, sorted_lines


def _orders_table(orders: _Columns, world: _World, import_id: str) -> pa.Table:
    customer_id = _id_strings(orders["customer"])
    amount = orders["amount"]
    return pa.table(
        {
            "order_id": pc.binary_join_element_wise(customer_id, _id_strings(orders["seq"]), "-"),
            "customer_id": customer_id,
            "ordered_at": _timestamps(orders["time_us"]),
            "amount": amount / 100,
            "discount": orders["discount"] / 100,
            "coupon_discount": orders["coupon"] / 100,
            "items": orders["quantity"],
            "lines": orders["lines"],
            "store_id": world.store_ids.take(orders["store"]),
            "is_return": amount < 0,
            "is_zero_value": amount == 0,
            "content_hash": _hex(orders["hash_hi"], orders["hash_lo"]),
            "import_id": pa.repeat(pa.scalar(import_id), amount.size),
        },
        schema=_arrow_schema(ORDERS),
    )


def _lines_table(lines: _Columns, orders_table: pa.Table, world: _World) -> pa.Table:
    order = pa.array(lines["order"])
    amount, quantity = lines["amount"], lines["quantity"]
    return pa.table(
        {
            "order_id": orders_table["order_id"].take(order),
            "line_number": lines["line_number"],
            "customer_id": orders_table["customer_id"].take(order),
            "ordered_at": orders_table["ordered_at"].take(order),
            "product_id": world.catalog.table["product_id"].take(pa.array(lines["product"])),
            "quantity": quantity,
            "amount": amount / 100,
            "discount": lines["discount"] / 100,
            "coupon_discount": lines["coupon"] / 100,
            "is_return": (amount < 0) | (quantity < 0),
            "is_zero_value": (amount == 0) | (quantity == 0),
        },
        schema=_arrow_schema(ORDER_LINES),
    )


def _customers_table(people: _Columns) -> pa.Table:
    columns = {"customer_id": _id_strings(people["number"])}
    columns |= {name: _labels(people[name], values) for name, values in HOUSEHOLD_LABELS.items()}
    return pa.table(columns, schema=_arrow_schema(CUSTOMERS))


def _recipients_table(recipients: _Columns) -> pa.Table:
    return pa.table(
        {
            "campaign_id": _id_strings(recipients["campaign"] + 1),
            "customer_id": _id_strings(recipients["customer"]),
        },
        schema=_arrow_schema(CAMPAIGN_RECIPIENTS),
    )


def _redemptions_table(redemptions: _Columns, world: _World) -> pa.Table:
    return pa.table(
        {
            "customer_id": _id_strings(redemptions["customer"]),
            "coupon_id": _id_strings(500_000 + redemptions["coupon"]),
            "campaign_id": _id_strings(redemptions["campaign"] + 1),
            "redeemed_at": _timestamps(world.calendar.start_us + redemptions["day"] * _US_PER_DAY),
        },
        schema=_arrow_schema(COUPON_REDEMPTIONS),
    )


def _write_single(table: pa.Table, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0.parquet", compression="zstd")


def _single_file_writer(draft: Path, table: Table) -> pq.ParquetWriter:
    folder = draft / table.name
    folder.mkdir(parents=True, exist_ok=True)
    return pq.ParquetWriter(folder / "part-0.parquet", _arrow_schema(table), compression="zstd")


def _write_import_log(
    draft: Path, import_id: str, source: str, orders: int, lines: int, now: datetime | None
) -> None:
    """One imports row; a previous run with the same id is replaced (unlinked first: it is hard-linked)."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    row = {
        "import_id": [import_id],
        "source": [source],
        "source_sha256": [None],
        "started_at": [started],
        "rows_read": [lines],
        "rows_accepted": [lines],
        "rows_quarantined": [0],
        "orders_added": [orders],
        "orders_already_present": [0],
    }
    path = draft / IMPORTS.name / f"part-{import_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    pq.write_table(pa.table(row, schema=_arrow_schema(IMPORTS)), path)


def _arrow_schema(table: Table) -> pa.Schema:
    """The Parquet schema of a canonical table (without the `month` partition column)."""
    return pa.schema([(c.name, _ARROW_TYPES[c.sql_type]) for c in table.columns if c.name != "month"])


def _id_strings(numbers: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(numbers, np.int64)), pa.string())


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(micros, np.int64), pa.timestamp("us", tz="UTC"))


def _labels(index: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Label strings for indices, null where the index is -1."""
    indices = pa.array(index.astype(np.int32), mask=index < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(labels)).cast(pa.string())


def _hex(high: np.ndarray, low: np.ndarray) -> pa.Array:
    """32 lowercase hex digits per pair of 64-bit values, built without a Python loop."""
    raw = np.stack([high, low], axis=1).astype(">u8").view(np.uint8).reshape(-1, 16)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    text = np.stack([digits[raw >> 4], digits[raw & 15]], axis=2).reshape(-1)
    offsets = np.arange(0, 32 * (high.size + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(high.size, pa.py_buffer(offsets), pa.py_buffer(text))


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Categorical draws: index of the first cumulative probability above each uniform."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)
