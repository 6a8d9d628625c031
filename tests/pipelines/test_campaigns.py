"""Campaigns end to end on the Complete Journey slice: launch, log, export, then measure a planted effect."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from features.errors import InputError
from pipelines import build_features, campaigns, personas
from pipelines.import_data import import_file
from pipelines.score import score
from tests.conftest import copy_home
from tests.pipelines.test_cli import tierwise

pytestmark = pytest.mark.slow
LAUNCH, LATER = date(2017, 10, 1), date(2017, 11, 5)
PLANTED_ORDERS, PLANTED_AMOUNT = 3, 100.0  # every treated customer buys 3 more orders of 100
CAMPAIGN = """name: reactivate
offer: 3 coupons of 10 EUR
policy: lifecycle
cost_per_contact: 0.5
cost_per_redemption: 10
control_share: 0.5
window_days: 56
outcome: spend
"""


@pytest.fixture(scope="module")
def scored(trained_home, tmp_path_factory):
    """A copy of the trained slice with personas and a lifecycle tier snapshot at the launch date."""
    settings = copy_home(trained_home[0], tmp_path_factory.mktemp("campaigns") / "home")
    build_features.build(settings, [LAUNCH, LATER])
    personas.fit(settings, LAUNCH)
    score(settings, LAUNCH)
    score(settings, LATER)
    (settings.home / "campaigns").mkdir()
    (settings.home / "campaigns" / "reactivate.yaml").write_text(CAMPAIGN)
    return settings


@pytest.fixture(scope="module")
def launched(scored):
    return campaigns.launch(scored, "reactivate", LAUNCH)


def test_a_launch_records_every_member_with_their_group_and_exports_the_treated(launched):
    members = pd.read_parquet(launched.folder / "members.parquet")
    assert (members.group == "treatment").sum() == launched.treated and launched.control > 0
    assert 0.35 < launched.control / len(members) < 0.65
    record = json.loads((launched.folder / "launch.json").read_text())
    assert record["policy"] == "lifecycle" and set(record["model_versions"]) == {
        "churn",
        "customer_value",
        "growth_potential",
    }
    exported = pd.read_csv(launched.treatment_file, dtype={"customer_id": str})
    assert set(exported.customer_id) == set(members.customer_id[members.group == "treatment"])
    assert set(exported.offer) == {"3 coupons of 10 EUR"} and exported.benefit.notna().all()
    persona = members.set_index("customer_id").persona
    assert exported.persona.tolist() == persona[exported.customer_id].tolist() and persona.notna().all()


def test_launching_again_on_the_same_date_changes_nothing(scored, launched):
    before = (launched.folder / "launch.json").read_text()
    again = campaigns.launch(scored, "reactivate", LAUNCH)
    assert again.already_launched and (launched.folder / "launch.json").read_text() == before
    log = (campaigns.campaigns_dir(scored) / "launches.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["as_of"] == LAUNCH.isoformat()


def test_launching_on_another_date_needs_again(scored, launched):
    with pytest.raises(InputError, match="already launched on 2017-10-01; pass --again"):
        campaigns.launch(scored, "reactivate", LATER)


def test_a_changed_definition_cannot_relaunch_under_the_same_name(scored, launched, tmp_path):
    changed = tmp_path / "reactivate.yaml"
    changed.write_text(CAMPAIGN.replace("control_share: 0.5", "control_share: 0.3"))
    with pytest.raises(InputError, match="with another definition; give the changed campaign a new name"):
        campaigns.launch(scored, "reactivate", LAUNCH, definition=changed)


def test_measuring_before_the_window_has_ended_is_refused(scored, launched, tmp_path):
    early = copy_home(scored, tmp_path / "early")
    late = CAMPAIGN.replace("name: reactivate", "name: late").replace("window_days: 56", "window_days: 120")
    (early.home / "campaigns" / "late.yaml").write_text(late)
    campaigns.launch(early, "late", LAUNCH)
    with pytest.raises(
        InputError, match="measured over 120 days, until 2018-01-29; orders are imported up to 2018-01-01"
    ):
        campaigns.measure(early, "late")


@pytest.fixture(scope="module")
def measured(scored, launched, tmp_path_factory):
    """The treated customers buy the planted extra orders in the window; then the campaign is measured."""
    members = pd.read_parquet(launched.folder / "members.parquet")
    treated = members.customer_id[members.group == "treatment"]
    extra = pd.DataFrame(
        [
            {
                "customer_id": customer,
                "order_id": f"planted-{customer}-{n}",
                "ordered_at": (LAUNCH + timedelta(days=10 + n)).isoformat() + " 12:00:00",
                "amount": PLANTED_AMOUNT,
            }
            for customer in treated
            for n in range(PLANTED_ORDERS)
        ]
    )
    path = tmp_path_factory.mktemp("planted") / "orders.csv"
    extra.to_csv(path, index=False)
    import_file(scored, path, [])
    return campaigns.measure(scored, "reactivate")


def test_the_planted_effect_is_measured_with_intervals_that_cover_it(measured):
    spend, orders = measured["outcomes"]["spend"], measured["outcomes"]["orders"]
    planted_spend = PLANTED_ORDERS * PLANTED_AMOUNT
    for estimate in (spend["raw"], spend["cuped"]):
        assert estimate["low"] <= planted_spend <= estimate["high"] and estimate["excludes_zero"]
    assert orders["cuped"]["low"] <= PLANTED_ORDERS <= orders["cuped"]["high"]
    assert measured["verdict"].startswith("the campaign raised spend per treated customer")


def test_cuped_narrows_the_spend_interval(measured):
    spend = measured["outcomes"]["spend"]
    assert spend["cuped"]["high"] - spend["cuped"]["low"] < spend["raw"]["high"] - spend["raw"]["low"]


def test_money_cost_and_roi_follow_from_the_effect(measured, launched):
    money = measured["money"]
    assert money["incremental_revenue"] == pytest.approx(measured["primary"]["difference"] * launched.treated)
    assert money["cost"] == pytest.approx(0.5 * launched.treated + 10 * money["redemptions_assumed"])
    assert money["roi"] == pytest.approx((money["incremental_margin"] - money["cost"]) / money["cost"])


def test_the_effect_is_broken_down_by_tier_and_churn_risk_decile(measured, launched):
    deciles = measured["by_churn_risk_decile"]
    assert [row["group"] for row in deciles] == [str(d) for d in range(1, 11)]
    assert sum(row["treatment"] + row["control"] for row in deciles) == launched.treated + launched.control
    assert {row["group"] for row in measured["by_tier"]} <= {
        "Platinum",
        "Gold",
        "Silver",
        "New",
        "Dormant",
        "Churned",
    }


def test_the_measurement_is_written_beside_the_launch_and_listed(scored, measured, launched):
    assert json.loads((launched.folder / "measurement.json").read_text())["primary"] == measured["primary"]
    listed = json.loads(tierwise("campaigns", "list", "--format", "json", home=scored.home).stdout)
    assert listed[0]["campaign"] == "reactivate" and listed[0]["effect"] == pytest.approx(
        measured["primary"]["difference"]
    )


def test_the_operations_report_shows_the_measured_campaign(scored, measured):
    from pipelines import tier_reports

    page = tier_reports.html_report(scored, "lifecycle", LATER).read_text()
    assert '<section id="campaigns">' in page and "reactivate" in page and "the campaign raised spend" in page


def test_a_second_launch_on_another_date_is_made_when_asked(scored, launched, tmp_path):
    home = copy_home(scored, tmp_path / "home")
    second = campaigns.launch(home, "reactivate", LATER, again=True)
    assert not second.already_launched and campaigns.launch_dates(home, "reactivate") == [LAUNCH, LATER]


def test_a_launch_targeted_by_uplift_contacts_the_budget_with_the_largest_predicted_uplift(scored, tmp_path):
    """An A/A campaign over two weeks (nothing sent) is enough to exercise the path: measure, learn
    uplift, then launch on another date to the 40 customers with the largest predicted uplift."""
    import numpy as np

    from pipelines.uplift import model_name, train_uplift, uplift_scores
    from tiering import load_policy
    from tiering.campaigns import audience_of, load_campaign
    from training import registry

    home = copy_home(scored, tmp_path / "home")
    probe = CAMPAIGN.replace("name: reactivate", "name: probe").replace("window_days: 56", "window_days: 14")
    (home.home / "campaigns" / "probe.yaml").write_text(probe)
    campaigns.launch(home, "probe", LAUNCH)
    report = train_uplift(home, "probe")
    registry.configure(home)
    registry.promote(model_name("probe"), report.version)  # champion whatever its Qini on 250 customers
    done = campaigns.launch(home, "probe", LATER, again=True, budget=40, target="uplift")
    members = pd.read_parquet(done.folder / "members.parquet")
    assert len(members) == 40 == done.treated + done.control
    assert json.loads((done.folder / "launch.json").read_text())["targeting"]["by"] == "uplift"
    campaign = load_campaign(home.home / "campaigns" / "probe.yaml")
    audience = audience_of(campaign, home.tier_snapshots("lifecycle").read(LATER), load_policy("lifecycle"))
    scores = uplift_scores(home, "probe", audience, LATER)
    expected = audience.customer_id.to_numpy()[np.lexsort((audience.customer_id.to_numpy(), -scores))[:40]]
    assert set(members.customer_id) == set(expected)


def test_uplift_from_a_campaign_everyone_responded_to_is_refused_saying_why(scored, measured, tmp_path):
    from pipelines.uplift import train_uplift

    home = copy_home(scored, tmp_path / "home")
    with pytest.raises(
        InputError, match="same outcome .retained = 1.: there is no difference to learn uplift from"
    ):
        train_uplift(home, "reactivate")


def test_uplift_targeting_without_a_budget_is_refused(scored, launched, tmp_path):
    home = copy_home(scored, tmp_path / "home")
    with pytest.raises(InputError, match="--target uplift needs --budget N"):
        campaigns.launch(home, "reactivate", LATER, again=True, target="uplift")


def test_an_imported_campaign_is_reported_as_an_observational_difference_not_an_effect(scored):
    result = campaigns.observe(scored, "13")
    assert result["design"].startswith("observational") and "not effects" in result["summary"]
    assert result["recipients"] > 0 and result["others"] > 0
    assert set(result["outcomes"]) == {"retained", "orders", "spend", "margin"}


def test_observing_an_unknown_imported_campaign_names_the_known_ones(scored):
    with pytest.raises(InputError, match="no imported campaign '999' \\(campaigns: 1, 10, 11"):
        campaigns.observe(scored, "999")


def test_a_launch_that_fails_while_writing_leaves_no_record_and_no_log_line(scored, tmp_path, monkeypatch):
    home = copy_home(scored, tmp_path / "home")
    other = CAMPAIGN.replace("name: reactivate", "name: broken")
    (home.home / "campaigns" / "broken.yaml").write_text(other)

    def full_disk(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    with pytest.raises(OSError, match="simulated"):
        campaigns.launch(home, "broken", LAUNCH)
    folder = campaigns.campaigns_dir(home) / "broken"
    assert not folder.exists() or list(folder.iterdir()) == []
    log = campaigns.campaigns_dir(home) / "launches.jsonl"
    assert "broken" not in (log.read_text() if log.exists() else "")
