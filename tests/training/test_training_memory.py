"""Training sets assembled in bounded memory, and the seeded sample of customers for data at scale.

The examples read one cutoff at a time from the snapshots must be the examples Feast's
point-in-time join gives, bit for bit, and split into the same parts; the sample must keep the same
customers at every cutoff, in every run and in SQL as in Python.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features import feature_store
from features.settings import TRAIN_SAMPLE_ENV, TRAIN_SAMPLE_SEED_ENV, Settings, parse_share
from pipelines import build_features
from pipelines.train import labels_on_engine
from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON, copy_home
from training.backtest_plan import plan
from training.labels import CustomerSample, compute_labels, labelled
from training.models import SPECS
from training.run import REFIT_PARTS, TEST_PARTS, part_cutoffs, split_examples

STEP_DAYS = 28


@pytest.fixture(scope="module")
def snapshot_home(cj_slice_home: Settings, tmp_path_factory) -> tuple[Settings, object]:
    """The slice with feature snapshots at the cutoffs of a run as of `TRAIN_AS_OF`, registered in Feast."""
    from features.live_data import open_live_data
    from features.snapshots import data_period

    settings = copy_home(cj_slice_home, tmp_path_factory.mktemp("memory") / "home")
    first = data_period(open_live_data(settings)).first_order.date()
    the_plan = plan(first, TRAIN_AS_OF, TRAIN_HORIZON, STEP_DAYS)
    build_features.build(settings, the_plan.all_cutoffs)
    feature_store.apply(settings)
    return settings, the_plan


@pytest.fixture(scope="module")
def labels(snapshot_home) -> pd.DataFrame:
    from features.live_data import open_live_data

    settings, the_plan = snapshot_home
    con = open_live_data(settings)
    return labels_on_engine(settings, con, the_plan.all_cutoffs, TRAIN_HORIZON, TRAIN_AS_OF, True)


@pytest.mark.parametrize("name", ["churn", "customer_value", "growth_potential"])
def test_examples_read_per_cutoff_are_feasts_point_in_time_join_bit_for_bit(snapshot_home, labels, name):
    settings, the_plan = snapshot_home
    rows = labelled(labels, SPECS[name].label)
    feast = feature_store.training_frame(settings, rows, name)
    pieces = list(feature_store.training_frames(settings, rows, name))
    assert len(pieces) == len(the_plan.all_cutoffs)
    assert all(piece["event_timestamp"].nunique() == 1 for piece in pieces)
    # Same columns, dtypes, order and values: NaN where Feast has NaN, None where it has None.
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), feast, check_exact=True)


@pytest.mark.parametrize("name", ["churn", "growth_potential"])
def test_parts_split_from_pieces_equal_the_parts_of_the_whole_frame(snapshot_home, labels, name):
    settings, the_plan = snapshot_home
    rows = labelled(labels, SPECS[name].label)
    whole = split_examples(SPECS[name], [feature_store.training_frame(settings, rows, name)], the_plan)
    pieces = split_examples(SPECS[name], feature_store.training_frames(settings, rows, name), the_plan)
    assert whole.keys() == pieces.keys()
    for chosen in (TEST_PARTS, REFIT_PARTS):  # as a run reads them: the refit's parts after the test
        frames = feature_store.training_frames(settings, rows, name, part_cutoffs(the_plan, chosen))
        pieces |= {
            f"{part} read apart": v
            for part, v in split_examples(SPECS[name], frames, the_plan, chosen).items()
        }
    for part in list(whole):
        whole[f"{part} read apart"] = whole[part]
    for part in whole:
        pd.testing.assert_frame_equal(pieces[part].frame, whole[part].frame, check_exact=True)
        assert pieces[part].feature_names == whole[part].feature_names
        assert pieces[part].string_features == whole[part].string_features


def test_a_customer_missing_from_the_snapshot_of_its_date_gets_empty_features(snapshot_home):
    settings, the_plan = snapshot_home
    day = pd.Timestamp(the_plan.test, tz="UTC")
    known = pd.read_parquet(settings.feature_snapshots.path(the_plan.test), columns=["customer_id"])
    rows = pd.DataFrame(
        {"customer_id": [known["customer_id"].iloc[0], "no-such-customer"], "event_timestamp": day}
    )
    (frame,) = feature_store.training_frames(settings, rows, "churn")
    assert list(frame["customer_id"]) == list(rows["customer_id"])
    assert frame.loc[0, "days_since_last_order"] >= 0
    assert frame.drop(columns=["customer_id", "event_timestamp"]).iloc[1].isna().all()


def test_the_sample_is_seeded_stable_and_about_its_share():
    ids = [str(i) for i in range(20_000)]
    first = CustomerSample(0.25, seed=7).contains(ids)
    assert np.array_equal(first, CustomerSample(0.25, seed=7).contains(ids))
    assert np.array_equal(first[::-1], CustomerSample(0.25, seed=7).contains(ids[::-1]))  # per customer
    assert abs(first.mean() - 0.25) < 0.01  # binomial standard error 0.003
    other = CustomerSample(0.25, seed=8).contains(ids)
    assert not np.array_equal(first, other)
    assert abs((first & other).mean() - 0.25**2) < 0.01  # another seed draws independently
    # A larger share keeps every customer of a smaller one with the same seed (it only adds).
    assert not (first & ~CustomerSample(0.5, seed=7).contains(ids)).any()


def test_labels_keep_the_same_sampled_customers_at_every_cutoff_and_all_at_kept_cutoffs(snapshot_home):
    from features.live_data import open_live_data

    settings, the_plan = snapshot_home
    con = open_live_data(settings)
    cutoffs = the_plan.all_cutoffs
    args = (con, cutoffs, TRAIN_HORIZON, TRAIN_AS_OF, False)
    full = compute_labels(*args)
    sample = CustomerSample(0.4, seed=3, keep_all=(the_plan.test,))
    sampled = compute_labels(*args, sample)
    test_day = full["event_timestamp"].dt.date == the_plan.test
    inside = sample.contains(full["customer_id"].tolist())
    # SQL and Python agree on who is in; the kept cutoff has everyone; rows and labels are unchanged.
    want = full[test_day.to_numpy() | inside].reset_index(drop=True)
    pd.testing.assert_frame_equal(sampled, want, check_exact=True)
    assert 0.25 < inside[~test_day.to_numpy()].mean() < 0.55
    again = compute_labels(*args, sample)
    pd.testing.assert_frame_equal(sampled, again, check_exact=True)


def test_the_sample_is_read_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(TRAIN_SAMPLE_ENV, "10%")
    monkeypatch.setenv(TRAIN_SAMPLE_SEED_ENV, "5")
    settings = Settings.resolve(tmp_path)
    assert (settings.train_sample, settings.train_sample_seed) == (0.1, 5)
    monkeypatch.delenv(TRAIN_SAMPLE_ENV)
    assert Settings.resolve(tmp_path).train_sample is None
    assert parse_share("0.25", TRAIN_SAMPLE_ENV) == 0.25
    assert parse_share("1", TRAIN_SAMPLE_ENV) is None  # everyone: no sample
    for bad in ("0", "1.5", "-10%", "tenth"):
        with pytest.raises(ValueError, match=TRAIN_SAMPLE_ENV):
            parse_share(bad, TRAIN_SAMPLE_ENV)


@pytest.mark.slow
def test_a_sampled_run_learns_from_a_share_of_customers(snapshot_home):
    import mlflow

    from pipelines.train import train
    from training import registry

    settings, _ = snapshot_home
    runs = {}
    # 70%: with half, the slice's test cutoff keeps too few churners (19) for the run's minimum (20).
    for share, test_on_all in ((None, False), (0.7, False), (0.7, True)):
        chosen = dataclasses.replace(settings, train_sample=share, train_sample_seed=1)
        (result,) = train(
            chosen,
            ["churn"],
            TRAIN_AS_OF,
            TRAIN_HORIZON,
            0,
            STEP_DAYS,
            register=False,
            test_on_all=test_on_all,
        )
        registry.configure(chosen)
        run = mlflow.search_runs(order_by=["start_time DESC"], max_results=1, output_format="list")[0]
        runs[share, test_on_all] = run.data.params, result.test_predictions
    (full, full_test), (sampled, sampled_test), (judged, judged_test) = runs.values()
    assert (full["train_sample"], sampled["train_sample"], sampled["train_sample_seed"]) == (
        "1.0",
        "0.7",
        "1",
    )
    for part in ("examples_train", "examples_valid", "examples_test"):
        assert 0.55 < int(sampled[part]) / int(full[part]) < 0.85, part
    # The test rows are the sample's customers, the same customers as at the training cutoffs.
    sample = CustomerSample(0.7, seed=1)
    assert sample.contains(sampled_test["customer_id"].tolist()).all()
    # Tested on every customer: the full run's rows, the sampled run's model.
    assert judged["examples_test"] == full["examples_test"]
    assert list(judged_test["customer_id"]) == list(full_test["customer_id"])
    assert judged["examples_train"] == sampled["examples_train"]


def test_the_logged_datasets_digest_is_the_one_mlflow_computes(snapshot_home, labels):
    from mlflow.data.digest_utils import compute_pandas_digest

    from training.registry import pandas_digest

    settings, _ = snapshot_home
    frame = feature_store.training_frame(settings, labelled(labels, "growth"), "growth_potential")
    assert frame["income_band"].isna().any()  # a text column with missing values is not text to MLflow
    for rows in (frame, frame.head(50), frame.iloc[:0]):
        assert pandas_digest(rows) == compute_pandas_digest(rows)


def test_a_cutoff_kept_whole_for_the_test_is_sampled_where_models_learn_from_it(snapshot_home):
    from features.live_data import open_live_data

    settings, the_plan = snapshot_home
    assert the_plan.test in the_plan.deploy_train  # the deployed refit learns from the test cutoff
    sample = CustomerSample(0.7, seed=1, keep_all=(the_plan.test,))
    con = open_live_data(settings)
    rows = compute_labels(con, the_plan.all_cutoffs, TRAIN_HORIZON, TRAIN_AS_OF, False, sample)
    frames = feature_store.training_frames(settings, rows, "churn")
    parts = split_examples(SPECS["churn"], frames, the_plan, sample=sample)
    everyone = rows[rows["event_timestamp"].dt.date == the_plan.test]["customer_id"]
    assert list(parts["test"].frame["customer_id"]) == list(everyone)
    for part in ("train", "valid", "refit", "refit_valid"):
        assert sample.contains(parts[part].frame["customer_id"].tolist()).all(), part


def test_a_snapshot_without_a_feature_of_the_service_is_refused_with_the_command_that_rebuilds_it(
    snapshot_home, tmp_path
):
    from features.errors import InputError

    settings, the_plan = snapshot_home
    copied = copy_home(settings, tmp_path / "home")
    path = copied.feature_snapshots.path(the_plan.test)
    pd.read_parquet(path).drop(columns="orders_90d").to_parquet(path)
    rows = pd.DataFrame({"customer_id": ["1"], "event_timestamp": pd.Timestamp(the_plan.test, tz="UTC")})
    with pytest.raises(InputError, match=f"no column orders_90d.*features build --cutoffs {the_plan.test}"):
        list(feature_store.training_frames(copied, rows, "churn"))
