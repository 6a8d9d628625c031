"""Batch scoring: every customer gets predictions and a tier, written as an idempotent dated snapshot."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import InputError
from features.model_table import MODELS
from pipelines import build_features
from pipelines.score import score
from serving.schemas import Reason
from tests.conftest import copy_home
from tiering import load_policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scored_home(trained_home, tmp_path_factory):
    settings = copy_home(trained_home[0], tmp_path_factory.mktemp("scored") / "home")
    build_features.build(settings, [date(2017, 11, 5), date(2017, 12, 3)])
    return settings


def test_every_customer_of_the_snapshot_is_scored_and_tiered(scored_home):
    report = score(scored_home, date(2017, 11, 5))
    snapshot = pd.read_parquet(report.path)
    features = pd.read_parquet(scored_home.snapshots_dir / "2017-11-05.parquet")
    assert set(snapshot["customer_id"]) == set(features["customer_id"])
    assert set(snapshot["tier"]) <= {t.name for t in load_policy("lifecycle").tiers}
    assert snapshot["churn_probability"].between(0, 1).all() and (snapshot["expected_value"] >= 0).all()
    assert {"churn_version", "customer_value_version", "growth_potential_version"} <= set(snapshot.columns)


def test_growth_potential_is_given_to_active_customers_only(scored_home):
    """The growth model learned on customers with an order in its horizon; it answers only them."""
    snapshot = pd.read_parquet(score(scored_home, date(2017, 11, 5)).path)
    features = pd.read_parquet(scored_home.snapshots_dir / "2017-11-05.parquet")
    recency = snapshot.customer_id.map(features.set_index("customer_id").days_since_last_order)
    active = recency <= snapshot.horizon_days
    assert snapshot.growth_potential[active].between(0, 1).all()
    assert snapshot.growth_potential[~active].isna().all() and (~active).sum() > 0
    assert not snapshot.risk_flags[~active].str.contains("growth_opportunity").any()


def test_scoring_the_same_date_again_gives_the_same_snapshot(scored_home):
    first = pd.read_parquet(score(scored_home, date(2017, 11, 5)).path)
    second = pd.read_parquet(score(scored_home, date(2017, 11, 5)).path)
    pd.testing.assert_frame_equal(first, second)


def test_a_later_snapshot_knows_each_customers_previous_tier(scored_home):
    score(scored_home, date(2017, 11, 5))
    later = pd.read_parquet(score(scored_home, date(2017, 12, 3)).path)
    assert later["previous_tier"].notna().mean() > 0.9
    assert set(later["change"].str.split(" ").str[0]) <= {
        "new",
        "upgrade",
        "downgrade",
        "kept",
        "held",
        "override",
    }


def test_tier_snapshots_store_their_times_in_microseconds(scored_home):
    """As Spark writes tier snapshots and DuckDB the feature snapshots: one schema for both engines."""
    path = score(scored_home, date(2017, 12, 3)).path
    times = {f.name: f.type for f in pq.read_schema(path) if pa.types.is_timestamp(f.type)}
    assert {"below_since", "expected_next_order_date", "as_of"} <= set(times)
    assert {kind.unit for kind in times.values()} == {"us"}


def test_classic_tiers_are_written_beside_the_predictive_ones(scored_home):
    classic = score(scored_home, date(2017, 11, 5), classic=True)
    assert classic.path.parent.name == "lifecycle-classic"


def test_scoring_a_date_without_features_is_refused(scored_home):
    with pytest.raises(InputError, match="no feature snapshot for 2017-11-12"):
        score(scored_home, date(2017, 11, 12))


def test_report_alerts_and_export_read_the_snapshots(scored_home, tmp_path):
    from pipelines import tier_reports

    score(scored_home, date(2017, 11, 5))
    score(scored_home, date(2017, 12, 3))
    tables = tier_reports.report(scored_home, "lifecycle", date(2017, 12, 3))
    assert tables["summary"]["share"].sum() == pytest.approx(1.0)
    assert "migration" in tables and "flow_rates" in tables
    records = tier_reports.alerts(
        scored_home, "lifecycle", date(2017, 12, 3), output=tmp_path / "alerts.json"
    )
    assert (tmp_path / "alerts.json").exists() and isinstance(records, list)
    result = tier_reports.export(scored_home, "lifecycle", "dormant-winback", tmp_path / "winback.csv")
    assert not set(result.export.treated["customer_id"]) & set(result.export.control["customer_id"])
    assert result.control_path.exists()
    exported = pd.read_csv(tmp_path / "winback.csv")
    assert exported.churn_reasons.str.contains("churn").all()  # the CRM reads why beside the tier


def test_policy_backtest_shows_predictive_and_classic_tiers_with_their_outcomes(scored_home):
    from pipelines import tier_reports

    table = tier_reports.policy_backtest(scored_home, "lifecycle", date(2017, 11, 5), 28)
    assert set(table["mode"]) == {"predictive", "classic"}
    sizes = table.groupby("mode")["customers"].sum()
    assert sizes["predictive"] == sizes["classic"] > 200
    top = table[(table["mode"] == "predictive") & (table["rank"] == 0)].iloc[0]
    rest = table[(table["mode"] == "predictive") & (table["tier"] == "Silver")].iloc[0]
    assert top["next_spend_per_customer"] > rest["next_spend_per_customer"]


def test_a_backtest_tiers_customers_in_chunks_as_in_one_piece(scored_home):
    from pipelines.score import assigned_tiers

    for classic in (False, True):
        whole = assigned_tiers(scored_home, date(2017, 11, 5), "lifecycle", classic)
        chunked = assigned_tiers(scored_home, date(2017, 11, 5), "lifecycle", classic, chunk_customers=100)
        assert len(whole) > 200 and chunked.equals(whole), classic


def test_policy_backtest_without_the_future_in_the_data_is_refused(scored_home):
    from pipelines import tier_reports

    with pytest.raises(InputError, match="needs orders until"):
        tier_reports.policy_backtest(scored_home, "lifecycle", date(2017, 12, 3), 60)


def test_policy_backtest_leaves_the_tier_history_as_it_was(scored_home):
    from pipelines import tier_reports

    tiers = scored_home.tier_snapshots("lifecycle")
    before = {day: tiers.path(day).stat().st_mtime_ns for day in tiers.dates()}
    tier_reports.policy_backtest(scored_home, "lifecycle", date(2017, 11, 5), 28)
    assert {day: tiers.path(day).stat().st_mtime_ns for day in tiers.dates()} == before


def test_policy_backtest_with_champions_trained_after_the_date_is_refused(scored_home):
    from pipelines import tier_reports

    with pytest.raises(InputError, match="after --as-of 2017-09-03"):
        tier_reports.policy_backtest(scored_home, "lifecycle", date(2017, 9, 3), 28)


def test_a_snapshot_keeps_each_models_reasons_as_the_api_answers_them(scored_home):
    """`<model>_reason_details` holds the reasons as `predict` gives them (JSON), and the sentences of
    `<model>_reasons` are theirs; none where the model does not answer."""
    snapshot = pd.read_parquet(score(scored_home, date(2017, 11, 5)).path)
    for model in ("churn", "customer_value", "growth_potential"):
        answered = snapshot[MODELS[model].output].notna()
        details = snapshot[f"{model}_reason_details"]
        assert details.notna().equals(answered)
        parsed = details[answered].map(json.loads)
        assert parsed.map(len).eq(3).all()
        assert all(set(reason) == set(Reason.model_fields) for reasons in parsed for reason in reasons)
        joined = parsed.map(lambda reasons: " | ".join(reason["text"] for reason in reasons))
        assert joined.tolist() == snapshot.loc[answered, f"{model}_reasons"].tolist()
