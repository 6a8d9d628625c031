"""What the service may say about a tier: a staff override's note stays with staff."""

from __future__ import annotations

from tiering.lookup import caller_rule


def test_an_overridden_tier_is_explained_without_the_staff_note():
    assert (
        caller_rule("override", "complained about deliveries, keep Gold (Anna)") == "manual override by staff"
    )


def test_every_other_rule_is_passed_on():
    assert caller_rule("up", "top 5% by predicted value") == "top 5% by predicted value"
    assert caller_rule(None, "cold start") == "cold start"
