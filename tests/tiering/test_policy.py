"""Tier policies: the presets load as shipped, and bad files fail naming the field and the file."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest
import yaml

from features.errors import InputError
from tiering import PRESETS, Policy, load_policy, parse_policy
from tiering.policy import PRESETS_DIR

GOOD = """\
name: custom
scoring: value
tiers:
  - {name: Top, share: 0.1, max_days_since_last_order: 30}
  - {name: Rest, max_days_since_last_order: 90}
  - {name: Lapsed, state: inactive, days_since_last_order_over: 90}
immediate_tiers: [Lapsed]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_yaml_round_trips_into_the_typed_model(name):
    path = PRESETS_DIR / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    policy = load_policy(name)
    assert policy.model_dump(mode="json", exclude_unset=True) == raw
    assert Policy.model_validate(yaml.safe_load(yaml.safe_dump(policy.model_dump(mode="json")))) == policy
    assert load_policy(path) == policy


def test_presets_are_the_documented_rules():
    lifecycle, rfmp = load_policy("lifecycle"), load_policy("rfmp")
    assert lifecycle.tier_names == ["Platinum", "Gold", "Silver", "New", "Dormant", "Churned"]
    assert [(t.share, t.max_days_since_last_order) for t in lifecycle.value_tiers] == [
        (0.05, 30),
        (0.15, 60),
        (None, 90),
    ]
    assert [t.days_since_last_order_over for t in lifecycle.state_tiers] == [None, 90, 180]
    assert lifecycle.new_customer_days == 30
    assert set(lifecycle.immediate_tiers) == {"New", "Dormant", "Churned"}
    assert rfmp.tier_names == ["Diamond", "Gold", "Silver", "Bronze"]
    assert [t.share for t in rfmp.tiers] == [0.10, 0.20, 0.40, None]
    assert rfmp.weights.as_dict() == {"recency": 0.30, "frequency": 0.25, "monetary": 0.30, "potential": 0.15}


def test_the_preset_files_ship_inside_the_package():
    assert PRESETS_DIR.parent.name == "tiering" and (PRESETS_DIR.parent / "__init__.py").is_file()
    assert sorted(path.stem for path in PRESETS_DIR.glob("*.yaml")) == sorted(PRESETS)


def test_a_policy_is_frozen():
    policy = load_policy("lifecycle")
    with pytest.raises(pydantic.ValidationError):
        policy.grace_days = 1


def test_a_custom_file_loads(tmp_path):
    policy = load_policy(write(tmp_path, GOOD))
    assert policy.ranks == {"Top": 0, "Rest": 1, "Lapsed": 2}
    assert policy.grace_days == 30


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("share: 0.1", "share: lots", "tiers[0].share: Input should be a valid number"),
        ("share: 0.1", "share: 5", "tiers[0].share: must be between 0 and 1"),
        ("share: 0.1", "share: 0", "tiers[0].share: must be between 0 and 1"),
        ("share: 0.1", "shares: 0.1", "tiers[0].shares: unknown field (allowed: name, description, share"),
        ("scoring: value", "scoring: magic", "scoring: Input should be 'value' or 'rfmp'"),
        ("scoring: value\n", "", "scoring: Field required"),
        ("name: Rest,", "name: Top,", "tiers[1].name: 'Top' is used twice"),
        ("[Lapsed]", "[Lost]", "immediate_tiers: 'Lost' is not a tier of this policy"),
        ("name: Rest,", "name: Rest, share: 0.5,", "tiers[1]: the last value tier takes the rest"),
        ("days_since_last_order_over: 90", "days_since_last_order_over: 120", "an inactive state with"),
        (
            "max_days_since_last_order: 30}",
            "max_days_since_last_order: -1}",
            "tiers[0].max_days_since_last_order",
        ),
        (
            "scoring: value\n",
            "scoring: value\nweights: {recency: 1, frequency: 0, monetary: 0, potential: 0}\n",
            "weights: only used with `scoring: rfmp`",
        ),
    ],
)
def test_a_bad_file_names_the_field_and_the_file(tmp_path, old, new, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(InputError) as error:
        load_policy(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_weights_must_add_up_to_one(tmp_path):
    text = "name: r\nscoring: rfmp\nweights: {recency: 0.5, frequency: 0.5, monetary: 0.5, potential: 0}\n"
    text += "tiers: [{name: A, share: 0.5}, {name: B}]\n"
    with pytest.raises(InputError, match=r"weights: must add up to 1, got 1.5"):
        load_policy(write(tmp_path, text))
    load_policy(write(tmp_path, text.replace("monetary: 0.5", "monetary: 0.0000001")))


def test_shares_out_of_range(tmp_path):
    text = "name: r\nscoring: rfmp\ntiers: [{name: A, share: 0.7}, {name: B, share: 0.6}, {name: C}]\n"
    with pytest.raises(InputError, match=r"shares add up to 1.3; at most 1"):
        load_policy(write(tmp_path, text))
    with pytest.raises(InputError, match=r"tiers\[1\]\.share: must be between 0 and 1"):
        load_policy(write(tmp_path, text.replace("share: 0.6", "share: -0.1")))


def test_tiers_must_go_best_first(tmp_path):
    text = (
        "name: v\nscoring: value\ntiers: [{name: A, min_value: 100}, {name: B, min_value: 200}, {name: C}]\n"
    )
    with pytest.raises(InputError, match=r"tiers\[1\]\.min_value: tiers go best first"):
        load_policy(write(tmp_path, text))
    states_first = GOOD.replace("  - {name: Lapsed, state: inactive, days_since_last_order_over: 90}\n", "")
    states_first = states_first.replace("tiers:\n", "tiers:\n  - {name: Lapsed, state: new}\n")
    with pytest.raises(InputError, match=r"tiers\[0\]: tiers go best first"):
        load_policy(write(tmp_path, states_first))


def test_a_yaml_syntax_error_or_a_list_is_refused(tmp_path):
    with pytest.raises(InputError, match="not valid YAML"):
        load_policy(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(InputError, match="expected a mapping of policy fields, got list"):
        load_policy(write(tmp_path, "- name: x\n"))


def test_an_unknown_preset_name_lists_the_presets():
    with pytest.raises(InputError, match=r"'platinum': not a preset \(lifecycle, rfmp\) and no such file"):
        load_policy("platinum")


@pytest.mark.parametrize("name", ["../../../escaped", "a/b", "", ".hidden", "x y"])
def test_a_policy_name_that_is_not_a_plain_name_is_refused(name: str):
    text = f"name: {json.dumps(name)}\nscoring: value\ntiers: [{{name: A, share: 0.5}}, {{name: B}}]\n"
    with pytest.raises(InputError, match="name: String should match pattern"):
        parse_policy(yaml.safe_load(text), "p.yaml")


def test_each_tier_carries_its_benefits_with_their_cost():
    platinum = load_policy("lifecycle").tier("Platinum")
    assert platinum.benefit_names == "free delivery; double points" and platinum.benefit_cost == 7.0


@pytest.mark.parametrize(
    ("benefit", "message"),
    [
        ({"name": "x", "kind": "cash"}, r"tiers\[0\].benefits\[0\].kind: Input should be 'discount'"),
        (
            {"name": "x", "kind": "points", "cost_per_customer": -1},
            r"tiers\[0\].benefits\[0\].cost_per_customer",
        ),
        (
            {"name": "x", "kind": "points", "price": 2},
            r"tiers\[0\].benefits\[0\].price: unknown field \(allowed: name, kind, cost_per_customer\)",
        ),
    ],
)
def test_a_bad_benefit_is_refused_naming_the_field(benefit, message):
    tiers = [{"name": "Top", "share": 0.1, "benefits": [benefit]}, {"name": "Rest"}]
    with pytest.raises(InputError, match=message):
        parse_policy({"name": "custom", "scoring": "value", "tiers": tiers})


def test_the_tier_above_is_the_next_better_value_tier_and_the_lowest_for_states():
    policy = load_policy("lifecycle")
    values = [tier.name for tier in policy.value_tiers]
    above = policy.tier_above
    assert above[values[0]] is None and above[values[1]] == values[0]
    assert all(above[tier.name] == values[-1] for tier in policy.state_tiers)
