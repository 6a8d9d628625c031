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
offer is meant to widen the basket, not to discount the milk they buy every week. Everything is one
DuckDB query per step over the canonical `order_lines` and `products` views, so a million customers
take seconds, not a Python loop. Data without products has nothing to offer; `offers_for` says so
with `NoProducts`.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import duckdb
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
#: Customers ranked at a time (memory is bounded by it, not by the number of customers).
PARTITION_CUSTOMERS = 125_000
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
    """Build the temporary tables offers are ranked from: `customer_orders`, `customer_items` (orders
    per customer and category, and whether it is bought often) and `rules` (association rules).

    Raises:
        NoProducts: no order line in the window has a product with a category or department.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE bought AS {bought_sql(as_of - timedelta(days=days), as_of)}")
    if not con.execute("SELECT EXISTS (SELECT 1 FROM bought)").fetchall()[0][0]:
        raise NoProducts(f"no order lines with products in the {days} days before {as_of}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE customer_orders AS "
        "SELECT customer_id, count(DISTINCT order_id) AS orders FROM bought GROUP BY ALL"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE customer_items AS
        WITH per_item AS (SELECT customer_id, item, count(*) AS orders FROM bought GROUP BY ALL)
        SELECT i.customer_id, i.item, i.orders,
               i.orders >= 2 AND i.orders >= {OFTEN_SHARE} * c.orders AS often
        FROM per_item i JOIN customer_orders c USING (customer_id)"""
    )
    baskets = con.execute("SELECT count(DISTINCT order_id) FROM bought").fetchall()[0][0]
    # A hash of the order id picks the sample: the same baskets on every run and thread count
    # (DuckDB's seeded samples repeat only single-threaded).
    below = int(min(1.0, SAMPLE_BASKETS / baskets) * (2**64 - 1))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE rules AS
        WITH baskets AS (
            SELECT DISTINCT order_id FROM bought WHERE hash(order_id || ':{int(seed)}') <= {below}
        ),
        items AS (SELECT b.order_id, b.item FROM bought b SEMI JOIN baskets USING (order_id)),
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
        SELECT x, y, confidence, lift FROM scored WHERE lift > 1
        QUALIFY row_number() OVER (PARTITION BY x ORDER BY confidence DESC, y) <= {COMPANIONS}"""
    )
    con.execute("DROP TABLE bought")  # a row per line of the year: gigabytes at a million customers


def rank_offers(
    con: duckdb.DuckDBPyConnection, peers: pd.DataFrame, top: int = DEFAULT_OFFERS
) -> pd.DataFrame:
    """The top offers of every customer in `peers`, after `prepare`.

    Written for a million customers: per customer only a bounded heap of the best candidates is kept
    (`max_by(..., n)`), never a window over every (customer, category) pair, and the reasons are
    worded for the chosen offers only (a first version with windows and worded candidates took six
    minutes at 1M customers; see `benchmarks/bench_insight.py`).

    Args:
        peers: customer_id, persona (may be null), tier_above (the next better tier; null at the top
            or without tiers), tier (the customer's own; peers' penetration is computed per tier).
        top: Offers per customer (at most `MAX_OFFERS`).

    Returns:
        customer_id, rank (1 = best), item, score (an estimated probability), reason (in words).
    """
    top = max(1, min(int(top), MAX_OFFERS))
    con.register("peer_groups", peers[["customer_id", "persona", "tier", "tier_above"]])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE peer_rates AS
        WITH joined AS (
            SELECT g.persona, g.tier, i.item, i.orders FROM customer_items i JOIN peer_groups g USING (customer_id)
        ),
        group_orders AS (
            SELECT g.persona, g.tier, sum(c.orders) AS orders
            FROM peer_groups g JOIN customer_orders c USING (customer_id) GROUP BY GROUPING SETS ((g.persona), (g.tier))
        ),
        rates AS (
            SELECT j.persona, j.tier, j.item, sum(j.orders) AS orders FROM joined j
            GROUP BY GROUPING SETS ((j.persona, j.item), (j.tier, j.item))
        )
        SELECT r.persona, r.tier, r.item, r.orders / o.orders AS rate
        FROM rates r JOIN group_orders o
          ON (r.persona IS NOT DISTINCT FROM o.persona AND r.tier IS NOT DISTINCT FROM o.tier)
        WHERE r.persona IS NOT NULL OR r.tier IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY r.persona, r.tier ORDER BY rate DESC, r.item) <= {PEER_ITEMS}"""
    )
    query = f"""
        WITH rated AS (
            SELECT i.customer_id, i.item, i.orders, c.orders AS total, i.often
            FROM part_items i JOIN part_orders c USING (customer_id)
        ),
        staples AS (
            SELECT customer_id, unnest(staples) AS s FROM (
                SELECT customer_id, max_by(struct_pack(item := item, rate := orders / total),
                                           struct_pack(o := orders, i := item), {STAPLES}) AS staples
                FROM rated GROUP BY customer_id)
        ),
        candidates AS (
            SELECT s.customer_id, r.y AS item, s.s.rate * r.confidence AS score, 1 AS source, s.s.item AS via
            FROM staples s JOIN rules r ON r.x = s.s.item
            UNION ALL
            SELECT g.customer_id, r.item, r.rate, 2, NULL FROM part_groups g JOIN peer_rates r USING (persona)
            UNION ALL
            SELECT g.customer_id, r.item, r.rate, 3, NULL FROM part_groups g JOIN peer_rates r ON r.tier = g.tier_above
            UNION ALL
            SELECT customer_id, item, orders / total, 4, NULL FROM rated WHERE NOT often
        ),
        kept AS (
            SELECT c.* FROM candidates c
            ANTI JOIN (SELECT customer_id, item FROM part_items WHERE often) o USING (customer_id, item)
        ),
        heaps AS (
            SELECT customer_id, unnest(best) AS b FROM (
                SELECT customer_id, max_by(struct_pack(item := item, score := score, source := source, via := via),
                                           struct_pack(s := score, i := item), {4 * top}) AS best
                FROM kept GROUP BY customer_id)
        ),
        distinct_items AS (
            SELECT customer_id, b.item AS item, max(b.score) AS score,
                   arg_max(struct_pack(source := b.source, via := b.via), struct_pack(s := b.score, n := -b.source)) AS why
            FROM heaps GROUP BY customer_id, b.item
        ),
        ranked AS (
            SELECT customer_id, unnest(chosen) AS o, generate_subscripts(chosen, 1) AS rank FROM (
                SELECT customer_id, max_by(struct_pack(item := item, score := score, why := why),
                                           struct_pack(s := score, i := item), {top}) AS chosen
                FROM distinct_items GROUP BY customer_id)
        )
        SELECT r.customer_id, CAST(r.rank AS INTEGER) AS rank, r.o.item AS item, r.o.score AS score,
               CASE r.o.why.source
                   WHEN 1 THEN 'bought with ' || r.o.why.via
                   WHEN 2 THEN 'popular with ' || g.persona
                   WHEN 3 THEN 'bought by ' || g.tier_above || ' customers'
                   ELSE 'in ' || i.orders || ' of their ' || c.orders || ' orders this year'
               END AS reason
        FROM ranked r JOIN part_groups g USING (customer_id)
        LEFT JOIN part_items i ON r.o.why.source = 4 AND i.customer_id = r.customer_id AND i.item = r.o.item
        LEFT JOIN part_orders c ON r.o.why.source = 4 AND c.customer_id = r.customer_id
        ORDER BY r.customer_id, rank"""
    parts = max(1, math.ceil(len(peers) / PARTITION_CUSTOMERS))
    frames = []
    for part in range(parts):
        # A share of the customers at a time: what a customer's offers need is theirs alone (and the
        # shared rules and peer rates), so memory is bounded whatever the number of customers.
        mine = f"hash(customer_id) % {parts} = {part}"
        for view, table in (
            ("part_items", "customer_items"),
            ("part_orders", "customer_orders"),
            ("part_groups", "peer_groups"),
        ):
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {table} WHERE {mine}")
        frames.append(con.execute(query).df())
    ranked = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return ranked.sort_values(["customer_id", "rank"], ignore_index=True)


def joined(offers: pd.DataFrame, customer_ids: pd.Series) -> pd.DataFrame:
    """Offers as two text columns per customer (`offers`, `offer_reasons`, items and reasons joined by
    " | " in rank order), aligned with `customer_ids` (null where a customer has none): the form a
    snapshot and a CRM export carry."""
    grouped = offers.sort_values(["customer_id", "rank"]).groupby("customer_id")
    text = pd.DataFrame(
        {"offers": grouped.item.agg(" | ".join), "offer_reasons": grouped.reason.agg(" | ".join)}
    )
    return text.reindex(customer_ids.to_numpy()).reset_index(drop=True).astype("string")


def split_offers(items: str | None, reasons: str | None) -> list[dict[str, str]] | None:
    """The inverse of `joined` for one customer: [{"item", "reason"}, ...] in rank order, or None."""
    if items is None or pd.isna(items):
        return None
    return [
        {"item": item, "reason": reason}
        for item, reason in zip(items.split(" | "), str(reasons).split(" | "), strict=True)
    ]
