"""What to offer each customer: product categories they are likely to add, not what they already buy.

Four sources of candidates, each scored as the share of the customer's next baskets expected to hold
the category, so that they compare:

- **basket association**: for each of the customer's staple categories x (their most frequent, at
  most `STAPLES`, ties to the later name), the categories y bought in the same baskets more often than chance (lift above 1),
  the `COMPANIONS` most likely first; score: the customer's rate of x times the confidence
  P(y in basket | x in basket). Pairs are counted over a seeded sample of at most `SAMPLE_BASKETS`
  baskets of the year, so the count does not grow with the square of the data.
- **peers**: the share of the orders of the customer's persona, and of the tier above theirs, that
  hold the category ("what customers like them, and customers a step up, put in their baskets").
- **now and then**: categories the customer bought in some orders of the year, but not often.

The candidate's score is its best source's (and the reason says which). On Complete Journey as of
2017-10-01 (README, "Personas and offers") scoring the association by confidence alone made it win
every comparison and fell behind "buy again" on new categories; the per-basket rate above and the
"now and then" source brought recall at 10 on new categories level with it.

A customer's offers are the highest-scoring candidates, each with the reason that scored it, after
removing what they already buy often (in at least `OFTEN_SHARE` of their orders of the year): an
offer is meant to widen the basket, not to discount the milk they buy every week. Data without
products has nothing to offer; `prepare` says so with `NoProducts`.

How, at a million customers (`benchmarks/bench_insight.py`): DuckDB reads the year's lines once
into one row per basket with the integer codes of its categories (`prepare`); categories and
customers get dense integer codes, so nothing after that joins or groups on text ids. The ranking
then takes a share of the customers at a time as a customers x categories array of counts, where
each source is a few vectorized numpy steps and the best offers are found by argmax, not by sorting
or grouping candidate rows. The first version, with SQL windows over worded candidates, took six
minutes; the second, with bounded heaps in SQL over text ids, 136 s and 7.3 GiB.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

#: Staple categories per customer whose basket companions are candidates.
STAPLES = 5
#: Companions kept per category (highest confidence among those with lift above 1).
COMPANIONS = 5
#: A pair must be seen in this many sampled baskets to count (fewer: its lift is noise).
MIN_PAIR_BASKETS = 10
#: Baskets sampled for the pair counts.
SAMPLE_BASKETS = 200_000
#: Categories bought in at least this share of a customer's orders (and twice) are "bought often".
OFTEN_SHARE = 0.25
#: Peer categories kept per persona or tier (most bought first).
PEER_ITEMS = 15
#: Customer x category cells ranked at a time (4,000 customers at 251 categories): memory is bounded
#: by it, not by the number of customers. Each array of a part (8 MB) stays below glibc's largest
#: mmap threshold (32 MB), so it reuses the last part's memory: parts of 4M cells were allocated and
#: faulted in afresh each time, 0.6 s a part instead of 0.05 s.
PART_CELLS = 1_000_000
#: Offers per customer by default, and the most the API answers.
DEFAULT_OFFERS = 5
MAX_OFFERS = 10


class NoProducts(Exception):
    """The data has no products on its order lines: there is nothing to recommend from."""


def bought_sql(since: date, until: date) -> str:
    """Distinct (customer, order, category) of the orders in [since, until) (the department where a
    product has no category; "|" in a name reads "/", as offers are joined by " | ")."""
    return f"""
        SELECT DISTINCT l.customer_id, l.order_id, replace(coalesce(p.category, p.department), '|', '/') AS item
        FROM order_lines l JOIN products p USING (product_id)
        WHERE l.ordered_at >= TIMESTAMPTZ '{since}' AND l.ordered_at < TIMESTAMPTZ '{until}'
          AND coalesce(p.category, p.department) IS NOT NULL"""


def prepare(con: duckdb.DuckDBPyConnection, as_of: date, days: int = 365, seed: int = 0) -> None:
    """Build the temporary tables offers are ranked from: `offer_items` (each category's code),
    `baskets` (one row per order of the window: customer_id, order_id, items: the codes of its distinct
    categories) and `rules` (association rules); and the views `customer_orders` (orders per customer)
    and `customer_items` (orders per customer and category, and whether it is bought often).

    The baskets are grouped by order, 8.8M groups at a million customers, instead of a DISTINCT
    over their 55M (customer, order, category) rows, which took twice the time and 4 GiB; the views
    are for the evaluation and the tests (`rank_offers` reads the baskets).

    Raises:
        NoProducts: no order line in the window has a product with a category or department.
    """
    since = as_of - timedelta(days=days)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE offer_items AS
        SELECT item, CAST(row_number() OVER (ORDER BY item) - 1 AS INTEGER) AS code FROM (
            SELECT DISTINCT replace(coalesce(category, department), '|', '/') AS item FROM products
            WHERE coalesce(category, department) IS NOT NULL)"""
    )
    # DuckDB would push the list aggregate below the join (a list per product, then one list state
    # per order line to combine): at a million customers that spilled 60 GB before failing.
    previous = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    con.execute(
        f"SET disabled_optimizers = '{', '.join(filter(None, (previous, 'partial_aggregate_pushdown')))}'"
    )
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE baskets AS
            WITH product_codes AS (
                SELECT p.product_id, i.code FROM products p
                JOIN offer_items i ON i.item = replace(coalesce(p.category, p.department), '|', '/')
            )
            SELECT l.customer_id, l.order_id, list_distinct(list(p.code)) AS items
            FROM order_lines l JOIN product_codes p USING (product_id)
            WHERE l.ordered_at >= TIMESTAMPTZ '{since}' AND l.ordered_at < TIMESTAMPTZ '{as_of}'
            GROUP BY l.customer_id, l.order_id"""
        )
    finally:
        con.execute(f"SET disabled_optimizers = '{previous}'")
    if not con.execute("SELECT EXISTS (SELECT 1 FROM baskets)").fetchall()[0][0]:
        raise NoProducts(f"no order lines with products in the {days} days before {as_of}")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW customer_orders AS "
        "SELECT customer_id, count(*) AS orders FROM baskets GROUP BY customer_id"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW customer_items AS
        WITH per_item AS (
            SELECT customer_id, code, count(*) AS orders
            FROM (SELECT customer_id, unnest(items) AS code FROM baskets) GROUP BY ALL
        )
        SELECT i.customer_id, n.item, i.orders, i.orders >= 2 AND i.orders >= {OFTEN_SHARE} * c.orders AS often
        FROM per_item i JOIN customer_orders c USING (customer_id) JOIN offer_items n USING (code)"""
    )
    baskets = con.execute("SELECT count(DISTINCT order_id) FROM baskets").fetchall()[0][0]
    # A hash of the order id picks the sample: the same baskets on every run and thread count
    # (DuckDB's seeded samples repeat only single-threaded).
    below = int(min(1.0, SAMPLE_BASKETS / baskets) * (2**64 - 1))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE rules AS
        WITH items AS (
            SELECT order_id, unnest(items) AS item FROM baskets WHERE hash(order_id || ':{int(seed)}') <= {below}
        ),
        total AS (SELECT count(DISTINCT order_id) AS n FROM items),
        single AS (SELECT item, count(*) AS n FROM items GROUP BY item),
        pairs AS (
            SELECT a.item AS x, b.item AS y, count(*) AS n
            FROM items a JOIN items b ON a.order_id = b.order_id AND a.item <> b.item
            GROUP BY ALL HAVING count(*) >= {MIN_PAIR_BASKETS}
        ),
        scored AS (
            SELECT p.x, p.y, p.n / sx.n AS confidence, p.n * t.n / (sx.n * sy.n) AS lift
            FROM pairs p JOIN single sx ON sx.item = p.x JOIN single sy ON sy.item = p.y, total t
        )
        SELECT nx.item AS x, ny.item AS y, s.confidence, s.lift, s.x AS x_code, s.y AS y_code
        FROM scored s JOIN offer_items nx ON nx.code = s.x JOIN offer_items ny ON ny.code = s.y
        WHERE s.lift > 1
        QUALIFY row_number() OVER (PARTITION BY s.x ORDER BY s.confidence DESC, s.y) <= {COMPANIONS}"""
    )


def rank_offers(
    con: duckdb.DuckDBPyConnection, peers: pd.DataFrame, top: int = DEFAULT_OFFERS
) -> pd.DataFrame:
    """The top offers of every customer in `peers`, after `prepare`, one row per offer: customer_id,
    rank (1 = best), item, score (an estimated probability), reason (in words), ordered by
    customer_id and rank (`ranked_parts`, joined)."""
    return pd.concat(list(ranked_parts(con, peers, top)), ignore_index=True)


def offer_texts(
    con: duckdb.DuckDBPyConnection, peers: pd.DataFrame, top: int = DEFAULT_OFFERS
) -> pd.DataFrame:
    """`joined(rank_offers(con, peers, top), peers.customer_id)`, worded a share of customers at a
    time: what a snapshot carries, without the rows of every offer at once (50M at 10M customers)."""
    texts = pd.concat([_texts(part) for part in ranked_parts(con, peers, top)])
    return texts.reindex(peers.customer_id.to_numpy()).reset_index(drop=True).astype("string")


def ranked_parts(
    con: duckdb.DuckDBPyConnection, peers: pd.DataFrame, top: int = DEFAULT_OFFERS
) -> Iterator[pd.DataFrame]:
    """The top offers of every customer in `peers`, after `prepare`, a share of the customers at a
    time (each customer's offers in one part).

    Customers get dense integer codes (in customer_id order) and their baskets are sorted by code
    once; then `PART_CELLS` customer x category cells at a time are counted and scored as arrays
    (`_rank_part`), and only the chosen offers' reasons are worded. Every customer gets their `top`
    best distinct categories (the SQL heaps of the previous version held candidate rows, so a category
    several sources suggested could crowd out the last offer: 6 customers in a million got 4).

    Args:
        peers: customer_id, persona (may be null), tier_above (the next better tier; null at the top
            or without tiers), tier (the customer's own; peers' penetration is computed per tier).
        top: Offers per customer (at most `MAX_OFFERS`).

    Yields:
        customer_id, rank (1 = best), item, score (an estimated probability), reason (in words),
        ordered by customer_id and rank.
    """
    top = max(1, min(int(top), MAX_OFFERS))
    con.register(
        "peer_groups",
        peers[["customer_id", "persona", "tier", "tier_above"]].assign(peer_row=np.arange(len(peers))),
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE offer_customers AS
        SELECT CAST(row_number() OVER (ORDER BY customer_id) - 1 AS INTEGER) AS customer, *
        FROM peer_groups"""
    )
    con.unregister("peer_groups")
    # Sorted by customer code, so that a part's baskets are a range the scan finds by its zone maps.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE customer_baskets AS
        SELECT c.customer, b.items FROM baskets b JOIN offer_customers c USING (customer_id) ORDER BY c.customer"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE peer_rates AS
        WITH joined AS (
            SELECT g.persona, g.tier, b.items FROM customer_baskets b JOIN offer_customers g USING (customer)
        ),
        group_orders AS (
            SELECT persona, tier, count(*) AS orders FROM joined GROUP BY GROUPING SETS ((persona), (tier))
        ),
        rates AS (
            SELECT persona, tier, code, count(*) AS orders
            FROM (SELECT persona, tier, unnest(items) AS code FROM joined)
            GROUP BY GROUPING SETS ((persona, code), (tier, code))
        )
        SELECT r.persona, r.tier, r.code, r.orders / o.orders AS rate,
               CAST(dense_rank() OVER (ORDER BY r.persona, r.tier) AS INTEGER) AS peer
        FROM rates r JOIN group_orders o
          ON (r.persona IS NOT DISTINCT FROM o.persona AND r.tier IS NOT DISTINCT FROM o.tier)
        WHERE r.persona IS NOT NULL OR r.tier IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY r.persona, r.tier ORDER BY rate DESC, r.code) <= {PEER_ITEMS}"""
    )
    items = con.execute("SELECT count(*) FROM offer_items").fetchall()[0][0]
    customers = con.execute("SELECT count(*) FROM offer_customers").fetchall()[0][0]
    companions = _lists(
        con,
        "SELECT x_code AS owner, y_code AS code, confidence AS value, "
        "row_number() OVER (PARTITION BY x_code ORDER BY y_code) - 1 AS slot FROM rules",
        items,
        COMPANIONS,
    )
    peers_of = con.execute("SELECT max(peer) FROM peer_rates").fetchall()[0][0] or 0
    peer_lists = _lists(  # row 0: no peers
        con,
        "SELECT peer AS owner, code, rate AS value, "
        "row_number() OVER (PARTITION BY peer ORDER BY code) - 1 AS slot FROM peer_rates",
        peers_of + 1,
        PEER_ITEMS,
    )
    groups = con.execute(
        """SELECT c.peer_row, coalesce(p.peer, 0) AS persona, coalesce(t.peer, 0) AS tier_above
        FROM offer_customers c
        LEFT JOIN (SELECT DISTINCT persona, peer FROM peer_rates WHERE tier IS NULL) p USING (persona)
        LEFT JOIN (SELECT DISTINCT tier, peer FROM peer_rates WHERE persona IS NULL) t ON t.tier = c.tier_above
        ORDER BY c.customer"""
    ).fetchnumpy()

    # The text columns point at the peers' and the categories' strings (a few thousand distinct
    # reasons are worded once): texts made per offer were the largest allocation of the ranking.
    names = con.execute("SELECT item FROM offer_items ORDER BY code").fetchnumpy()["item"]
    # Once, not per part: a text column's `to_numpy` checks every row for missing values (at 10M
    # customers in 2,500 parts that was most of the time offers took).
    customer_ids, personas, tiers_above = (
        peers[column].to_numpy() for column in ("customer_id", "persona", "tier_above")
    )
    size = max(1, PART_CELLS // max(items, 1))
    for first in range(0, max(customers, 1), size):
        # A share of the customers at a time: what a customer's offers need is theirs alone (and the
        # shared rules and peer rates), so memory is bounded whatever the number of customers.
        last = min(first + size, customers)
        where = f"WHERE customer >= {first} AND customer < {last}"
        lines = con.execute(
            f"SELECT customer, unnest(items) AS code FROM customer_baskets {where}"
        ).fetchnumpy()
        orders = con.execute(f"SELECT customer FROM customer_baskets {where}").fetchnumpy()["customer"]
        counts = np.bincount(
            (lines["customer"] - first).astype(np.int64) * items + lines["code"],
            minlength=(last - first) * items,
        ).reshape(last - first, items)
        ranked = _rank_part(
            counts,
            np.bincount(orders - first, minlength=last - first),
            companions,
            tuple(column[groups["persona"][first:last]] for column in peer_lists),
            tuple(column[groups["tier_above"][first:last]] for column in peer_lists),
            top,
            first,
        )
        row = groups["peer_row"][ranked.customer.to_numpy()]
        yield pd.DataFrame(
            {
                "customer_id": customer_ids[row],
                "rank": ranked["rank"],
                "item": names[ranked.code.to_numpy()],
                "score": ranked.score,
                "reason": _reasons(ranked, names, personas[row], tiers_above[row]),
            }
        )


def _reasons(
    ranked: pd.DataFrame, names: np.ndarray, persona: np.ndarray, tier_above: np.ndarray
) -> np.ndarray:
    """The reason of each offer of `_rank_part` in words, each distinct text made once."""
    source = ranked.source.to_numpy()
    reason = np.empty(len(ranked), dtype=object)
    for number, template, columns in (
        (1, "bought with {}", (names[np.maximum(ranked.via.to_numpy(), 0)],)),
        (2, "popular with {}", (persona,)),
        (3, "bought by {} customers", (tier_above,)),
        (4, "in {} of their {} orders this year", (ranked.orders.to_numpy(), ranked.total.to_numpy())),
    ):
        mine = source == number
        if mine.any():
            codes, distinct = pd.MultiIndex.from_arrays([column[mine] for column in columns]).factorize()
            reason[mine] = np.array([template.format(*values) for values in distinct], dtype=object)[codes]
    return reason


def _lists(
    con: duckdb.DuckDBPyConnection, sql: str, owners: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (owner, slot, code, value) of `sql` as two `owners` x `width` arrays, the codes and their
    values (0 in the slots an owner does not fill): a category's companions, or a peer group's categories."""
    found = con.execute(sql).fetchnumpy()
    codes = np.zeros((owners, width), dtype=np.int64)
    values = np.zeros((owners, width))
    codes[found["owner"], found["slot"]] = found["code"]
    values[found["owner"], found["slot"]] = found["value"]
    return codes, values


def _rank_part(
    counts: np.ndarray,
    orders: np.ndarray,
    companions: tuple[np.ndarray, np.ndarray],
    persona: tuple[np.ndarray, np.ndarray],
    tier_above: tuple[np.ndarray, np.ndarray],
    top: int,
    first: int,
) -> pd.DataFrame:
    """The top offers of consecutive customers from their customer x category counts.

    Args:
        counts: orders holding each category, a row per customer (codes `first`, `first` + 1, ...).
        orders: each customer's orders.
        companions: each category's companions and their confidence (`_lists`).
        persona, tier_above: each customer's persona's and tier above's categories and rates.

    Returns:
        customer, rank, code, score, source (1 companion, 2 persona, 3 tier above, 4 now and then),
        via (the staple of a companion, else -1), orders (of the category), total (the customer's).
    """
    customers, items = counts.shape
    rows = np.arange(customers)
    rate = counts / np.maximum(orders, 1)[:, None]
    often = (counts >= 2) & (counts >= OFTEN_SHARE * orders[:, None])
    score = np.zeros_like(rate)
    source = np.zeros(counts.shape, dtype=np.int8)
    via = np.full(counts.shape, -1, dtype=np.int64)

    def offer(codes: np.ndarray, values: np.ndarray, number: int, staple: np.ndarray | None = None) -> None:
        # Each source in turn; a later one replaces a candidate only with a higher score.
        for code, value in zip(codes.T, values.T, strict=True):
            better = value > score[rows, code]
            where = rows[better], code[better]
            score[where], source[where] = value[better], number
            if staple is not None:
                via[where] = staple[better]

    # Staples, best first: the most frequent categories, ties to the later name (the higher code). A
    # customer with fewer has "staples" they never buy: their rate, and their companions' scores, are 0.
    key = np.where(counts > 0, counts * items + np.arange(items), -1)
    for _ in range(min(STAPLES, items)):
        staple = np.argmax(key, axis=1)
        key[rows, staple] = -1
        offer(companions[0][staple], rate[rows, staple][:, None] * companions[1][staple], 1, staple)
    offer(*persona, 2)
    offer(*tier_above, 3)
    now_and_then = np.where(often, 0.0, rate)
    better = now_and_then > score
    np.copyto(score, now_and_then, where=better)
    np.copyto(source, 4, where=better)
    # The best `top` of what they do not buy often, ties to the later name: over the columns reversed,
    # argmax finds the first maximum.
    reversed_score = np.where(often, 0.0, score)[:, ::-1].copy()
    picked = []
    for rank in range(1, top + 1):
        column = np.argmax(reversed_score, axis=1)
        best = reversed_score[rows, column]
        reversed_score[rows, column] = 0.0
        kept = best > 0
        customer, code = rows[kept], items - 1 - column[kept]
        picked.append(
            pd.DataFrame(
                {
                    "customer": customer + first,
                    "rank": np.int32(rank),
                    "code": code,
                    "score": best[kept],
                    "source": source[customer, code],
                    "via": via[customer, code],
                    "orders": counts[customer, code],
                    "total": orders[customer],
                }
            )
        )
    return pd.concat(picked).sort_values("customer", kind="stable", ignore_index=True)


def joined(offers: pd.DataFrame, customer_ids: pd.Series) -> pd.DataFrame:
    """Offers as two text columns per customer (`offers`, `offer_reasons`, items and reasons joined by
    " | " in rank order), aligned with `customer_ids` (null where a customer has none): the form a
    snapshot and a CRM export carry."""
    return _texts(offers).reindex(customer_ids.to_numpy()).reset_index(drop=True).astype("string")


def _texts(offers: pd.DataFrame) -> pd.DataFrame:
    """The two text columns of `joined`, indexed by the customers who have offers. Joined as arrays
    (each offer after the first of its customer gets its " | " in front, then one sum per customer):
    a Python join per customer took a twentieth of scoring a snapshot."""
    ordered = offers.sort_values(["customer_id", "rank"], kind="stable")
    customers = ordered.customer_id.to_numpy()
    if len(customers) == 0:
        return pd.DataFrame({"offers": [], "offer_reasons": []}, index=pd.Index([], name="customer_id"))
    first = np.r_[True, customers[1:] != customers[:-1]]
    starts = np.flatnonzero(first)

    def per_customer(texts: pd.Series) -> np.ndarray:
        values = texts.to_numpy(dtype=object)
        return np.add.reduceat(np.where(first, values, " | " + values), starts)

    return pd.DataFrame(
        {"offers": per_customer(ordered.item), "offer_reasons": per_customer(ordered.reason)},
        index=pd.Index(customers[starts], name="customer_id"),
    )


def split_offers(items: str | None, reasons: str | None) -> list[dict[str, str]] | None:
    """The inverse of `joined` for one customer: [{"item", "reason"}, ...] in rank order, or None."""
    if items is None or pd.isna(items):
        return None
    return [
        {"item": item, "reason": reason}
        for item, reason in zip(items.split(" | "), str(reasons).split(" | "), strict=True)
    ]
