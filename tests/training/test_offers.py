"""Offers: basket companions and peers' categories, never what a customer already buys often."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from features.data.duck import connect
from features.data.store import DataStore
from features.snapshots import register_canonical_views
from training import offers
from training.offer_evaluation import evaluate

AS_OF = date(2017, 10, 1)


def _connection(settings) -> duckdb.DuckDBPyConnection:
    con = connect()
    register_canonical_views(con, DataStore(settings.data_dir).live_version())
    return con


@pytest.fixture(scope="module")
def ranked(cj_slice_home):
    con = _connection(cj_slice_home)
    offers.prepare(con, AS_OF)
    customers = con.execute("SELECT customer_id FROM customer_orders ORDER BY 1").df()
    peers = customers.assign(
        persona=["Evening shoppers" if i % 2 else "Weekend shoppers" for i in range(len(customers))],
        tier=["Silver" if i % 3 else "Gold" for i in range(len(customers))],
    )
    peers["tier_above"] = peers.tier.map({"Silver": "Gold", "Gold": None})
    return con, peers, offers.rank_offers(con, peers, top=10)


def test_offers_name_only_categories_the_data_has(ranked):
    con, _, found = ranked
    known = set(con.execute("SELECT DISTINCT coalesce(category, department) FROM products").df().iloc[:, 0])
    assert len(found) > 0 and set(found.item) <= known


def test_nothing_a_customer_already_buys_often_is_offered(ranked):
    con, _, found = ranked
    often = con.execute("SELECT customer_id, item FROM customer_items WHERE often").df()
    assert len(often) > 0
    assert found.merge(often, on=["customer_id", "item"]).empty


def test_a_basket_companion_is_offered_because_of_one_of_the_customers_staples(ranked):
    con, _, found = ranked
    companions = found[found.reason.str.startswith("bought with ")]
    staples = con.execute(
        f"""SELECT customer_id, item FROM customer_items
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY orders DESC, item DESC) <= {offers.STAPLES}"""
    ).df()
    pairs = companions.assign(item=companions.reason.str.removeprefix("bought with "))[
        ["customer_id", "item"]
    ]
    assert len(pairs) > 0 and len(pairs.merge(staples, on=["customer_id", "item"])) == len(pairs)


def test_peer_offers_name_the_persona_or_the_tier_above(ranked):
    _, peers, found = ranked
    peer = found[found.reason.str.startswith(("popular with ", "bought by "))].merge(peers, on="customer_id")
    assert len(peer) > 0
    expected = ("popular with " + peer.persona).where(
        peer.reason.str.startswith("popular"), "bought by " + peer.tier_above + " customers"
    )
    assert (peer.reason == expected).all()


def test_a_category_bought_now_and_then_is_offered_with_how_often(ranked):
    con, _, found = ranked
    own = found[found.reason.str.startswith("in ")]
    counts = con.execute(
        "SELECT i.customer_id, i.item, i.orders, c.orders AS total FROM customer_items i JOIN customer_orders c USING (customer_id)"
    ).df()
    joined = own.merge(counts, on=["customer_id", "item"])
    assert len(own) > 0 and len(joined) == len(own)
    assert (
        joined.reason
        == "in " + joined.orders.astype(str) + " of their " + joined.total.astype(str) + " orders this year"
    ).all()
    assert (joined.score == joined.orders / joined.total).all()


def test_each_customer_gets_at_most_the_asked_number_ranked_by_score(ranked):
    _, _, found = ranked
    assert found.groupby("customer_id").size().max() == 10
    ordered = found.groupby("customer_id").score.apply(lambda s: s.is_monotonic_decreasing)
    assert ordered.all()


def test_the_same_data_gives_the_same_offers(cj_slice_home, ranked):
    _, peers, found = ranked
    con = _connection(cj_slice_home)
    offers.prepare(con, AS_OF)
    pd.testing.assert_frame_equal(offers.rank_offers(con, peers, top=10), found)


def test_offers_survive_the_round_trip_through_the_snapshots_text_columns(ranked):
    _, peers, found = ranked
    text = offers.joined(found, peers.customer_id)
    first = found[found.customer_id == peers.customer_id.iloc[0]]
    assert offers.split_offers(text.offers.iloc[0], text.offer_reasons.iloc[0]) == [
        {"item": i, "reason": r} for i, r in zip(first.item, first.reason, strict=True)
    ]
    assert offers.split_offers(None, None) is None


def test_joined_offers_read_in_rank_order_whatever_order_the_rows_come_in(ranked):
    _, peers, found = ranked
    shuffled = found.sample(frac=1.0, random_state=3)
    text = offers.joined(shuffled, peers.customer_id)
    for position in (0, len(peers) // 2, len(peers) - 1):
        own = found[found.customer_id == peers.customer_id.iloc[position]].sort_values("rank")
        assert text.offers.iloc[position] == " | ".join(own.item)
        assert text.offer_reasons.iloc[position] == " | ".join(own.reason)


def test_a_customer_without_offers_gets_null_texts(ranked):
    _, peers, found = ranked
    text = offers.joined(found[found.customer_id != peers.customer_id.iloc[0]], peers.customer_id)
    assert pd.isna(text.offers.iloc[0]) and pd.isna(text.offer_reasons.iloc[0])
    assert text.offers.iloc[1:].notna().all()
    empty = offers.joined(found.iloc[:0], peers.customer_id)
    assert empty.offers.isna().all() and len(empty) == len(peers)


def test_orders_only_data_has_nothing_to_offer_and_says_so(orders_only_home):
    con = _connection(orders_only_home)
    with pytest.raises(offers.NoProducts, match="no order lines with products"):
        offers.prepare(con, AS_OF)


def test_the_evaluation_counts_hits_and_recall_per_customer():
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE products AS SELECT * FROM (VALUES ('p1', 'MILK', 'DAIRY'), ('p2', 'EGGS', 'DAIRY'),
               ('p3', 'BEER', 'DRINKS')) t(product_id, category, department)"""
    )
    con.execute(
        """CREATE TABLE order_lines AS SELECT customer_id, order_id, ordered_at::TIMESTAMPTZ AS ordered_at, product_id
           FROM (VALUES ('a', 'o1', '2020-01-05', 'p1'), ('a', 'o2', '2020-01-12', 'p1'), ('b', 'o3', '2020-01-07', 'p3'),
                        ('a', 'o4', '2020-02-03', 'p2'), ('a', 'o4', '2020-02-03', 'p3'), ('b', 'o5', '2020-02-04', 'p3'))
                t(customer_id, order_id, ordered_at, product_id)"""
    )
    offers.prepare(con, date(2020, 2, 1), days=60)
    listed = pd.DataFrame({"customer_id": ["a", "b"], "rank": [1, 1], "item": ["EGGS", "MILK"]})
    scores = {(s.method, s.target, s.metric): s for s in evaluate(con, listed, date(2020, 2, 1), 30, k=1)}
    # a bought EGGS and BEER next (MILK is a's often-bought staple); b bought BEER (b's staple) again
    assert scores["offers", "all", "hit_rate@1"].value == 0.5
    assert scores["offers", "all", "recall@1"].value == pytest.approx((1 / 2 + 0) / 2)
    assert scores["buy_again", "all", "hit_rate@1"].value == 0.5  # MILK for a (miss), BEER for b (hit)
    # new: what a did not already buy often (EGGS, BEER), and b's BEER (one order before: not often)
    assert scores["offers", "new", "hit_rate@1"].customers == 2
    assert scores["offers", "new", "hit_rate@1"].value == 0.5
    assert scores["buy_again", "new", "hit_rate@1"].value == 0.5  # a has nothing but MILK; b: BEER
    assert scores["popularity", "new", "hit_rate@1"].value == 1.0  # BEER (ties by name) for both


def test_ranking_the_customers_in_parts_gives_the_same_offers(ranked, monkeypatch):
    con, peers, found = ranked
    monkeypatch.setattr(offers, "PART_CELLS", 10_000)  # a few dozen customers at a time
    pd.testing.assert_frame_equal(offers.rank_offers(con, peers, top=10), found)


def test_a_customer_without_orders_in_the_year_is_offered_what_their_peers_buy(ranked):
    con, peers, found = ranked
    newcomer = pd.DataFrame(
        {
            "customer_id": ["no-orders"],
            "persona": ["Evening shoppers"],
            "tier": ["Silver"],
            "tier_above": ["Gold"],
        }
    )
    offered = offers.rank_offers(con, pd.concat([peers, newcomer], ignore_index=True), top=10)
    own = offered[offered.customer_id == "no-orders"]
    assert len(own) == 10
    assert own.reason.isin(["popular with Evening shoppers", "bought by Gold customers"]).all()
    pd.testing.assert_frame_equal(offered[offered.customer_id != "no-orders"].reset_index(drop=True), found)


def test_offers_worded_a_share_of_customers_at_a_time_are_the_joined_offers(
    cj_slice_home, ranked, monkeypatch
):
    _, peers, found = ranked
    con = _connection(cj_slice_home)
    offers.prepare(con, AS_OF)
    monkeypatch.setattr(offers, "PART_CELLS", 40 * 251)  # a few customers a part, so many parts
    texts = offers.offer_texts(con, peers, top=10)
    pd.testing.assert_frame_equal(texts, offers.joined(found, peers.customer_id))
    assert texts.offers.notna().sum() > 100
