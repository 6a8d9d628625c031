"""Offers and personas judged offline on Complete Journey: hit rate and recall at 10 against popularity
and buy-again, persona stability between consecutive monthly fits and separation.

    .venv/bin/python -m benchmarks.eval_offers --home H [--as-of 2017-10-01] [--horizon 92] [--months 4]

Offers are made as of `--as-of` from the year before it (personas fitted on that day's features,
peers: the persona and the classic lifecycle tier above, from history only, so no model trained on
later data is involved) and judged on what each customer bought in the `--horizon` days after
(`training.offer_evaluation`: targets `all` and `new`, 95% bootstrap intervals over customers).
Personas are fitted on the first of each of the `--months` months up to `--as-of`, each refit
starting from the previous one as `tierwise personas fit` does; printed: k, silhouette and the
adjusted Rand index of consecutive fits on the later month's customers. Missing feature snapshots
are built (and kept) in the home.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import pandas as pd

from features.live_data import open_live_data
from features.settings import Settings
from pipelines import build_features
from tiering import assign_tiers, load_policy
from training import offers
from training.offer_evaluation import evaluate, score_table
from training.personas import fit_personas, stability


def month_starts(as_of: date, months: int) -> list[date]:
    starts = []
    year, month = as_of.year, as_of.month
    for _ in range(months):
        starts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--as-of", default="2017-10-01")
    parser.add_argument("--horizon", type=int, default=92)
    parser.add_argument("--months", type=int, default=4)
    args = parser.parse_args()
    settings = Settings.resolve(args.home)
    as_of = date.fromisoformat(args.as_of)

    rows, previous = [], None
    for day in month_starts(as_of, args.months):
        features = build_features.features_at(settings, day)
        started = time.perf_counter()
        model = fit_personas(features, previous=previous)
        rows.append(
            {
                "month": day,
                "k": len(model.ids),
                "silhouette": round(model.silhouette, 3),
                "adjusted_rand_vs_previous": None
                if previous is None
                else round(stability(previous, model, features), 3),
                "fit_s": round(time.perf_counter() - started, 1),
                "names": "; ".join(model.names[i] for i in sorted(model.ids)),
            }
        )
        previous = model
    print("Personas, monthly refits")
    print(pd.DataFrame(rows).to_string(index=False))

    features = build_features.features_at(settings, as_of)
    policy = load_policy("lifecycle")
    tiers = assign_tiers(features, policy, classic=True)
    peers = tiers[["customer_id", "tier"]].assign(
        persona=previous.name_of(previous.assign(features)), tier_above=tiers.tier.map(policy.tier_above)
    )
    con = open_live_data(settings)
    started = time.perf_counter()
    offers.prepare(con, as_of)
    ranked = offers.rank_offers(con, peers, top=10)
    seconds = time.perf_counter() - started
    scores = evaluate(con, ranked, as_of, args.horizon, k=10)
    print(f"\nOffers as of {as_of}, next {args.horizon} days ({len(ranked):,} offers in {seconds:.1f} s)")
    with pd.option_context("display.width", 250, "display.max_columns", 10):
        print(score_table(scores).to_string())
    print(
        "\nOffer sources:",
        ranked.reason.str.extract(r"^(bought with|popular with|bought by|in)")[0].value_counts().to_dict(),
    )


if __name__ == "__main__":
    main()
