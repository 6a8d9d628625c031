"""Scoring on DuckDB a chunk of customers at a time: the tier snapshot of one partition holding
everyone, to the last bit, on the Complete Journey slice with trained champions (the value model
anchored), the next-order model and personas; two dates, so the second is retained against the first.
"""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.settings import Settings
from pipelines import build_features
from pipelines.score import predictions, score, scoring_run
from tests.conftest import SERVE_AS_OF, copy_home
from tiering import load_policy

pytestmark = pytest.mark.slow

EARLIER = date(2017, 11, 5)
#: The slice's 250 customers in five chunks.
CHUNK = 60


@pytest.fixture(scope="module")
def features_home(served_home, tmp_path_factory) -> Settings:
    """The served home with features of both dates and no tier history yet."""
    settings = copy_home(served_home, tmp_path_factory.mktemp("chunked_scoring") / "home")
    build_features.build(settings, [EARLIER])
    shutil.rmtree(settings.data_dir / "tiers")
    return settings


@pytest.mark.parametrize("classic", [False, True], ids=["predictive", "classic"])
@pytest.mark.parametrize("policy", ["lifecycle", "rfmp"])
def test_scoring_in_chunks_writes_the_snapshot_one_partition_writes(features_home, tmp_path, policy, classic):
    whole = copy_home(features_home, tmp_path / "whole")
    chunked = copy_home(features_home, tmp_path / "chunked")
    for day in (EARLIER, SERVE_AS_OF):
        want = score(whole, day, policy, classic)
        got = score(chunked, day, policy, classic, chunk_customers=CHUNK)
        assert (got.customers, got.tier_counts, got.policy, got.model_versions) == (
            want.customers,
            want.tier_counts,
            want.policy,
            want.model_versions,
        )
        assert pq.read_schema(got.path).remove_metadata() == pq.read_schema(want.path).remove_metadata()
        pd.testing.assert_frame_equal(pd.read_parquet(got.path), pd.read_parquet(want.path), check_exact=True)
    later = pd.read_parquet(chunked.tier_snapshots(policy, classic).path(SERVE_AS_OF))
    assert later.previous_tier.notna().mean() > 0.9  # retained against the first date
    assert later.offers.notna().any() and later.persona.notna().all()
    assert (later.customer_value_level_factor != 1.0).all()  # the factor is over all chunks
    assert sorted(p.name for p in chunked.tier_snapshots_dir(policy, classic).iterdir()) == [
        f"{day}.parquet" for day in (EARLIER, SERVE_AS_OF)
    ]  # no staged chunks left behind


def test_scoring_in_chunks_exports_the_same_csv(features_home, tmp_path):
    whole = copy_home(features_home, tmp_path / "whole")
    chunked = copy_home(features_home, tmp_path / "chunked")
    score(whole, SERVE_AS_OF, output=tmp_path / "whole.csv")
    score(chunked, SERVE_AS_OF, output=tmp_path / "chunked.csv", chunk_customers=CHUNK)
    assert (tmp_path / "chunked.csv").read_text() == (tmp_path / "whole.csv").read_text()


def test_the_population_pass_predicts_the_same_without_intervals(features_home):
    run = scoring_run(features_home, SERVE_AS_OF, load_policy("lifecycle"), False)
    features = features_home.feature_snapshots.read(SERVE_AS_OF)
    full = predictions(run.models, features)
    bare = predictions(run.models, features, intervals=False)
    assert {"expected_value_low", "expected_value_high"} <= set(full.columns)
    assert not [c for c in bare.columns if c.endswith(("_low", "_high"))]
    pd.testing.assert_frame_equal(bare, full[bare.columns], check_exact=True)
