"""Order events are checked by the import's own rules, and each refusal names its field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from features.data.duck import connect
from features.data.order_events import check_events, check_requests

NOW = datetime(2018, 1, 5, tzinfo=UTC)


def order(**fields) -> dict:
    return {
        "order_id": "o1",
        "customer_id": "c1",
        "ordered_at": "2018-01-03 18:05:00",
        "amount": 12.5,
        **fields,
    }


def with_lines(*lines: dict, **fields) -> dict:
    body = order()
    del body["amount"]
    return {**body, **fields, "lines": list(lines)}


LINE = {"product_id": "p1", "quantity": 2, "amount": 3.58}


def check(*bodies: object, timezone: str = "UTC") -> list:
    return check_events(connect(), list(bodies), now=NOW, timezone=timezone)


def test_a_valid_order_and_a_valid_order_with_lines_pass_with_their_identity():
    plain, lined = check(order(), with_lines(LINE, {**LINE, "product_id": "p2"}, order_id="o2"))
    assert plain.ok and lined.ok
    assert (plain.order_id, plain.customer_id) == ("o1", "c1")
    assert plain.ordered_at == datetime(2018, 1, 3, 18, 5, tzinfo=UTC)
    assert plain.content_hash and lined.content_hash and plain.content_hash != lined.content_hash


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (order(customer_id=None), "missing_customer_id", "customer_id"),
        (order(order_id=" "), "missing_order_id", "order_id"),
        (order(ordered_at="yesterday"), "unparseable_timestamp", "ordered_at"),
        (order(ordered_at="2018-02-01 10:00:00"), "future_timestamp", "ordered_at"),
        (order(amount="12,50"), "non_numeric_amount", "amount"),
        (order(discount="a lot"), "non_numeric_discount", "discount"),
        (order(ammount=3), "unknown_field", "ammount"),
        (with_lines(LINE, {**LINE, "quantity": "two"}), "non_numeric_quantity", "lines[1].quantity"),
        (with_lines({**LINE, "product_id": None}), "missing_product_id", "lines[0].product_id"),
        (with_lines({**LINE, "amount": None}), "missing_amount", "lines[0].amount"),
        (with_lines(LINE, {**LINE, "discount": "some"}), "non_numeric_discount", "lines[1].discount"),
        (with_lines({**LINE, "colour": "red"}), "unknown_field", "lines[0].colour"),
        (with_lines(LINE, amount=3.58), "malformed_event", "amount"),
        ({**order(), "lines": []}, "malformed_event", "lines"),
        ("an order", "malformed_event", ""),
    ],
)
def test_a_bad_event_is_refused_with_the_reason_and_the_field_it_names(body, reason, field):
    (checked,) = check(body)
    assert not checked.ok
    assert (checked.reason, checked.field) == (reason, field)
    assert checked.message.startswith(field or "an order event")


def test_one_bad_event_does_not_refuse_the_others_in_the_request():
    good, bad = check(order(), order(order_id="o2", amount="n/a"))
    assert good.ok and not bad.ok


def test_an_order_sent_twice_is_one_order_unless_the_copies_differ():
    first, again = check(order(), order())
    assert first.ok and again.ok and first.content_hash == again.content_hash
    one, other = check(order(), order(amount=13))
    assert (one.reason, other.reason) == ("conflicting_duplicate_order", "conflicting_duplicate_order")


def test_a_time_with_an_offset_is_that_instant_and_one_without_is_the_shops_local_time():
    offset, local, day = check(
        order(ordered_at="2018-01-03T18:05:00+08:00"),
        order(order_id="o2", ordered_at="2018-01-03 18:05:00"),
        order(order_id="o3", ordered_at="2018-01-03"),
        timezone="Asia/Shanghai",
    )
    assert offset.ordered_at == datetime(2018, 1, 3, 10, 5, tzinfo=UTC)
    assert local.ordered_at == datetime(2018, 1, 3, 10, 5, tzinfo=UTC)
    assert day.ordered_at == datetime(2018, 1, 2, 16, 0, tzinfo=UTC)


def test_requests_checked_together_get_the_answers_each_gets_alone():
    requests = [
        [order(), order(order_id="o2", amount="n/a")],
        [with_lines(LINE, order_id="o3"), order(order_id="o4"), order(order_id="o4", amount=1)],
        ["not an order", with_lines({**LINE, "quantity": "two"}, order_id="o5")],
    ]
    together = check_requests(connect(), requests, now=NOW, timezone="UTC")
    assert together == [check(*bodies) for bodies in requests]


def test_requests_that_send_the_same_order_id_are_checked_apart_not_merged():
    lined = with_lines(LINE, order_id="o1")
    other = with_lines({**LINE, "product_id": "p2"}, order_id="o1")
    first, second = check_requests(connect(), [[lined], [other]], now=NOW, timezone="UTC")
    assert first == check(lined) and second == check(other)
    assert first[0].content_hash != second[0].content_hash
