"""Do the offers name what customers go on to buy? Hit rate and recall at K against two baselines.

On a cutoff whose next horizon has passed, each method lists K categories per customer; the truth
is what the customer bought in the horizon. Two targets, because offers deliberately leave out what a
customer already buys often:

- `all`: every category bought in the horizon. "Buy again" (the customer's own most frequent
  categories) is hard to beat here and is the honest ceiling for repeat purchases.
- `new`: categories bought in the horizon that the customer did not already buy often — what an
  offer is for. Every method leaves out the customer's often-bought categories on this target.

Baselines: `popularity` (the categories most customers bought in the year) and `buy_again`. Each
figure is a mean over customers who bought anything in the horizon (for `new`: anything new), with a
95% bootstrap interval (scipy's `bootstrap`, seeded) over customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from training.offers import bought_sql

METHODS = ("offers", "popularity", "buy_again")
TARGETS = ("all", "new")


@dataclass(frozen=True)
class Score:
    method: str
    target: str
    metric: str
    value: float
    low: float
    high: float
    customers: int


def evaluate(
    con: duckdb.DuckDBPyConnection,
    offers: pd.DataFrame,
    as_of: date,
    horizon_days: int,
    k: int = 10,
    seed: int = 0,
) -> list[Score]:
    """Hit rate and recall at `k` of `offers` and the baselines on both targets.

    Args:
        con: A connection where `training.offers.prepare` ran for `as_of` (its `customer_items`).
        offers: customer_id, rank, item: the offers to judge (at least `k` per customer for a fair
            comparison).
        as_of: The cutoff the offers were made at; the horizon starts there.
        horizon_days: Days after `as_of` whose purchases are the truth (must have passed in the data).
    """
    from scipy.stats import bootstrap

    con.register("offer_lists", offers[["customer_id", "rank", "item"]])
    until = as_of + timedelta(days=int(horizon_days))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE truth AS SELECT DISTINCT customer_id, item FROM ({bought_sql(as_of, until)})"
    )
    lists = {
        "offers": f"SELECT customer_id, item FROM offer_lists WHERE rank <= {k}",
        "popularity": f"""SELECT c.customer_id, p.item FROM customer_orders c, (
                SELECT item FROM customer_items GROUP BY item ORDER BY count(*) DESC, item LIMIT {k}) p""",
        "buy_again": f"""SELECT customer_id, item FROM customer_items
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY orders DESC, item) <= {k}""",
    }
    new_lists = {
        **lists,
        "popularity": f"""SELECT customer_id, item FROM (
                SELECT * FROM (
                    SELECT c.customer_id, p.item, p.buyers FROM customer_orders c
                    CROSS JOIN (SELECT item, count(*) AS buyers FROM customer_items GROUP BY item) p
                ) ANTI JOIN (SELECT customer_id, item FROM customer_items WHERE often) o USING (customer_id, item))
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY buyers DESC, item) <= {k}""",
        "buy_again": f"""SELECT customer_id, item FROM customer_items WHERE NOT often
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY orders DESC, item) <= {k}""",
    }
    targets = {
        "all": "SELECT t.* FROM truth t SEMI JOIN customer_orders USING (customer_id)",
        "new": """SELECT t.* FROM truth t SEMI JOIN customer_orders USING (customer_id)
                  ANTI JOIN (SELECT customer_id, item FROM customer_items WHERE often) o USING (customer_id, item)""",
    }
    scores = []
    for target, target_sql in targets.items():
        for method in METHODS:
            listed = (new_lists if target == "new" else lists)[method]
            per_customer = con.execute(
                f"""WITH target AS ({target_sql}), listed AS ({listed})
                SELECT t.customer_id, count(l.item) AS hits, count(*) AS relevant
                FROM target t LEFT JOIN listed l USING (customer_id, item)
                GROUP BY t.customer_id ORDER BY t.customer_id"""
            ).df()
            hits = per_customer.hits.to_numpy(dtype=float)
            relevant = per_customer.relevant.to_numpy(dtype=float)
            for metric, values in (("hit_rate", (hits > 0).astype(float)), ("recall", hits / relevant)):
                ci = bootstrap(
                    (values,),
                    np.mean,
                    n_resamples=1000,
                    random_state=seed,
                    method="percentile",
                    vectorized=True,
                ).confidence_interval
                scores.append(
                    Score(method, target, f"{metric}@{k}", float(values.mean()), ci.low, ci.high, len(values))
                )
    return scores


def score_table(scores: list[Score]) -> pd.DataFrame:
    """Scores as one table: a row per target and metric, a column per method ("0.412 (0.40–0.43)")."""
    frame = pd.DataFrame([s.__dict__ for s in scores])
    frame["text"] = [
        f"{v:.3f} ({lo:.3f}–{hi:.3f})" for v, lo, hi in zip(frame.value, frame.low, frame.high, strict=True)
    ]
    table = frame.pivot_table(
        index=["target", "metric", "customers"], columns="method", values="text", aggfunc="first"
    )
    return table[list(METHODS)]
