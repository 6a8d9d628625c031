"""Manual overrides: they win while in force, lapse on their date and must name a real tier."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.errors import InputError
from tests.tiering.customers import customer
from tiering import apply_overrides, apply_retention, assign_tiers, load_overrides, load_policy

LIFECYCLE = load_policy("lifecycle")
AS_OF = date(2024, 3, 1)


def silver(*names: str) -> pd.DataFrame:
    """Policy tiers as `assign_tiers` gives them: everyone Silver."""
    return pd.DataFrame(
        {
            "customer_id": list(names),
            "tier": "Silver",
            "tier_rank": 2,
            "score": 1.0,
            "rule": "rule says Silver",
        }
    )


def snapshot() -> pd.DataFrame:
    """Three Silver customers after retention (the first run)."""
    return apply_retention(silver("a", "b", "c"), None, AS_OF, policy=LIFECYCLE)


def overrides(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "tier", "expires", "note"])


def test_an_unexpired_override_wins_and_says_why():
    tiers = snapshot()
    before = tiers.copy()
    result = apply_overrides(
        tiers, overrides(("b", "Platinum", "2024-03-31", "complaint #812")), AS_OF, policy=LIFECYCLE
    )
    b = result.set_index("customer_id").loc["b"]
    assert (b.tier, b.tier_rank, b.change, b.reason) == ("Platinum", 0, "override", "complaint #812")
    assert b.policy_tier == "Silver" and b.previous_tier is None
    untouched = result[result.customer_id != "b"]
    pd.testing.assert_frame_equal(untouched, before[before.customer_id != "b"])
    pd.testing.assert_frame_equal(tiers, before)
    assert result.dtypes.equals(before.dtypes)


def test_overrides_are_in_force_through_their_expiry_date_then_ignored():
    rows = overrides(("a", "Gold", "2024-03-01", "until today"), ("b", "Gold", "2024-02-29", "yesterday"))
    result = apply_overrides(snapshot(), rows, AS_OF, policy=LIFECYCLE)
    assert result.tier.tolist() == ["Gold", "Silver", "Silver"]
    assert result.change.tolist() == ["override", "new", "new"]


def test_an_override_without_a_note_says_until_when():
    result = apply_overrides(snapshot(), overrides(("c", "Gold", "2024-04-01", "")), AS_OF, policy=LIFECYCLE)
    assert result.reason.iloc[2] == "manual override until 2024-04-01"


def test_an_override_naming_an_unknown_tier_names_the_customer_and_the_tier():
    rows = overrides(("b", "Titanium", "2024-12-31", "vip"))
    with pytest.raises(
        InputError, match=r"override for customer b: unknown tier 'Titanium' \(policy 'lifecycle' has"
    ):
        apply_overrides(snapshot(), rows, AS_OF, policy=LIFECYCLE)
    expired = overrides(("b", "Titanium", "2023-12-31", "old"))
    assert apply_overrides(snapshot(), expired, AS_OF, policy=LIFECYCLE).tier.tolist() == ["Silver"] * 3


def test_two_live_overrides_for_one_customer_are_refused():
    rows = overrides(("a", "Gold", "2024-12-31", "x"), ("a", "Platinum", "2024-06-30", "y"))
    with pytest.raises(InputError, match="customer a has more than one unexpired override"):
        apply_overrides(snapshot(), rows, AS_OF, policy=LIFECYCLE)


def test_an_expired_override_ends_on_the_next_run_without_grace():
    tiers = apply_overrides(
        snapshot(), overrides(("a", "Platinum", "2024-03-10", "goodwill")), AS_OF, policy=LIFECYCLE
    )
    later = date(2024, 3, 11)
    rerun = apply_retention(silver("a", "b", "c"), tiers, later, policy=LIFECYCLE)
    rows = overrides(("a", "Platinum", "2024-03-10", "goodwill"))
    final = apply_overrides(rerun, rows, later, policy=LIFECYCLE).set_index("customer_id").loc["a"]
    assert (final.tier, final.change, final.reason) == (
        "Silver",
        "downgrade",
        "override ended: rule says Silver",
    )


def test_overrides_also_apply_to_assigned_tiers():
    assigned = assign_tiers(pd.DataFrame([customer("7"), customer("8", expected_value=1.0)]), LIFECYCLE)
    rows = pd.DataFrame({"customer_id": [7], "tier": ["New"], "expires": [date(2024, 3, 2)]})
    result = apply_overrides(assigned, rows, AS_OF, policy=LIFECYCLE)
    assert result.tier.tolist() == ["New", "Silver"]
    assert result.change.tolist() == ["override", ""]
    assert result.reason.tolist()[0] == "manual override until 2024-03-02"


def test_csv_and_yaml_files_load_the_same_overrides(tmp_path):
    csv = tmp_path / "overrides.csv"
    csv.write_text("customer_id,tier,expires,note\n00042,Gold,2024-03-31,complaint\n7,Platinum,2024-06-30,\n")
    yaml_file = tmp_path / "overrides.yaml"
    yaml_file.write_text(
        "- {customer_id: '00042', tier: Gold, expires: 2024-03-31, note: complaint}\n"
        "- {customer_id: 7, tier: Platinum, expires: 2024-06-30}\n"
    )
    from_csv, from_yaml = load_overrides(csv), load_overrides(yaml_file)
    pd.testing.assert_frame_equal(from_csv, from_yaml)
    assert from_csv.customer_id.tolist() == ["00042", "7"]
    assert from_csv.expires.tolist() == [pd.Timestamp("2024-03-31"), pd.Timestamp("2024-06-30")]
    assert from_csv.note.tolist() == ["complaint", ""]
    (tmp_path / "wrapped.yml").write_text("overrides: []\n")
    assert load_overrides(tmp_path / "wrapped.yml").empty


def test_bad_override_files_name_the_place_and_the_field(tmp_path):
    csv = tmp_path / "overrides.csv"
    csv.write_text("customer_id,tier,expires,note\n1,Gold,2024-03-31,ok\n2,Gold,next week,bad\n")
    with pytest.raises(
        InputError, match=r"overrides.csv: line 3 \(customer 2\): expires: Input should be a valid date"
    ):
        load_overrides(csv)
    yaml_file = tmp_path / "overrides.yaml"
    yaml_file.write_text("- {customer_id: 1, tier: Gold, expires: 2024-03-31, reason: x}\n")
    with pytest.raises(
        InputError, match=r"overrides\[0\] \(customer 1\): reason: Extra inputs are not permitted"
    ):
        load_overrides(yaml_file)
    (tmp_path / "overrides.json").write_text("[]")
    with pytest.raises(InputError, match="unsupported overrides file"):
        load_overrides(tmp_path / "overrides.json")
    with pytest.raises(InputError, match="no such overrides file"):
        load_overrides(tmp_path / "missing.csv")
