"""What to offer each customer: product categories they are likely to add, not what they already buy.

Four sources of candidates, each scored as the share of the customer's next baskets expected to hold
the category, so that they compare:

- **basket association**: for each of the customer's staple categories x (their most frequent, at
  most `STAPLES`), the categories y bought in the same baskets more often than chance (lift above 1),
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

from datetime import date

import duckdb
import pandas as pd

#: Staple categories per customer whose basket companions are candidates.
STAPLES = 5
#: Companions kept per category (highest confidence among those with lift above 1).
COMPANIONS = 10
#: A pair must be seen in this many sampled baskets to count (fewer: its lift is noise).
MIN_PAIR_BASKETS = 10
#: Baskets sampled for the pair counts.
SAMPLE_BASKETS = 200_000
#: Categories bought in at least this share of a customer's orders (and twice) are "bought often".
OFTEN_SHARE = 0.25
#: Peer categories kept per persona or tier (most bought first).
PEER_ITEMS = 30
#: Offers per customer by default, and the most the API answers.
DEFAULT_OFFERS = 5
MAX_OFFERS = 10


class NoProducts(Exception):
    """The data has no products on its order lines: there is nothing to recommend from."""


def _bought_sql(as_of: date, days: int) -> str:
    """Distinct (customer, order, category) of the `days` before `as_of` (department where a product
    has no category)."""
    return f"""
        SELECT DISTINCT l.customer_id, l.order_id, replace(coalesce(p.category, p.department), '|', '/') AS item
        FROM order_lines l JOIN products p USING (product_id)
        WHERE l.ordered_at >= TIMESTAMPTZ '{as_of}' - INTERVAL {days} DAY AND l.ordered_at < TIMESTAMPTZ '{as_of}'
          AND coalesce(p.category, p.department) IS NOT NULL"""


def prepare(con: duckdb.DuckDBPyConnection, as_of: date, days: int = 365, seed: int = 0) -> None:
    """Build the temporary tables offers are ranked from: `bought`, `customer_orders`, `customer_items`
    (orders per customer and category, and whether it is bought often) and `rules` (association
    rules).

    Raises:
        NoProducts: no order line in the window has a product with a category or department.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE bought AS {_bought_sql(as_of, days)}")
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


def rank_offers(
    con: duckdb.DuckDBPyConnection, peers: pd.DataFrame, top: int = DEFAULT_OFFERS
) -> pd.DataFrame:
    """The top offers of every customer in `peers`, after `prepare`.

    Args:
        peers: customer_id, persona (may be null), tier_above (the next better tier; null at the top
            or without tiers), tier (the customer's own; peers' penetration is computed per tier).
        top: Offers per customer (at most `MAX_OFFERS`).

    Returns:
        customer_id, rank (1 = best), item, score (an estimated probability), reason (in words).
    """
    top = max(1, min(int(top), MAX_OFFERS))
    con.register("peer_groups", peers[["customer_id", "persona", "tier", "tier_above"]])
    return con.execute(
        f"""
        WITH staples AS (
            SELECT i.customer_id, i.item, i.orders / c.orders AS rate
            FROM customer_items i JOIN customer_orders c USING (customer_id)
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY i.orders DESC, i.item) <= {STAPLES}
        ),
        by_basket AS (
            SELECT s.customer_id, r.y AS item, s.rate * r.confidence AS score, 'bought with ' || s.item AS reason
            FROM staples s JOIN rules r ON r.x = s.item
        ),
        group_orders AS (
            SELECT g.persona, g.tier, sum(c.orders) AS orders
            FROM peer_groups g JOIN customer_orders c USING (customer_id) GROUP BY ALL
        ),
        persona_rate AS (
            SELECT g.persona, i.item, sum(i.orders) / any_value(s.orders) AS rate
            FROM customer_items i JOIN peer_groups g USING (customer_id)
            JOIN (SELECT persona, sum(orders) AS orders FROM group_orders GROUP BY persona) s USING (persona)
            WHERE g.persona IS NOT NULL GROUP BY g.persona, i.item
            QUALIFY row_number() OVER (PARTITION BY g.persona ORDER BY rate DESC, i.item) <= {PEER_ITEMS}
        ),
        tier_rate AS (
            SELECT g.tier, i.item, sum(i.orders) / any_value(s.orders) AS rate
            FROM customer_items i JOIN peer_groups g USING (customer_id)
            JOIN (SELECT tier, sum(orders) AS orders FROM group_orders GROUP BY tier) s USING (tier)
            WHERE g.tier IS NOT NULL GROUP BY g.tier, i.item
            QUALIFY row_number() OVER (PARTITION BY g.tier ORDER BY rate DESC, i.item) <= {PEER_ITEMS}
        ),
        by_persona AS (
            SELECT g.customer_id, r.item, r.rate AS score, 'popular with ' || g.persona AS reason
            FROM peer_groups g JOIN persona_rate r USING (persona)
        ),
        by_tier AS (
            SELECT g.customer_id, r.item, r.rate AS score, 'bought by ' || g.tier_above || ' customers' AS reason
            FROM peer_groups g JOIN tier_rate r ON r.tier = g.tier_above
        ),
        by_self AS (
            SELECT i.customer_id, i.item, i.orders / c.orders AS score,
                   'in ' || i.orders || ' of their ' || c.orders || ' orders this year' AS reason
            FROM customer_items i JOIN customer_orders c USING (customer_id) WHERE NOT i.often
        ),
        candidates AS (
            SELECT * FROM by_basket UNION ALL SELECT * FROM by_persona UNION ALL SELECT * FROM by_tier
            UNION ALL SELECT * FROM by_self
        ),
        best AS (
            SELECT c.customer_id, c.item, max(c.score) AS score,
                   arg_max(c.reason, struct_pack(s := c.score, r := c.reason)) AS reason
            FROM candidates c SEMI JOIN peer_groups g USING (customer_id)
            ANTI JOIN (SELECT customer_id, item FROM customer_items WHERE often) o USING (customer_id, item)
            GROUP BY ALL
        )
        SELECT customer_id, CAST(row_number() OVER (PARTITION BY customer_id ORDER BY score DESC, item) AS INTEGER)
                   AS rank, item, score, reason
        FROM best
        QUALIFY rank <= {top}
        ORDER BY customer_id, rank"""
    ).df()


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
