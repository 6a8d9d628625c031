"""Labels computed by Spark equal DuckDB's: the same query, translated (`training.labels`)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from features.live_data import open_live_data, open_live_data_on_spark
from training.labels import compute_labels, compute_labels_on_spark

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]

CUTOFFS = [date(2017, 4, 2), date(2017, 7, 2)]


@pytest.mark.parametrize("with_categories", [True, False])
def test_spark_computes_the_same_labels_as_duckdb(cj_slice_home, with_categories):
    args = (CUTOFFS, 92, date(2017, 10, 2), with_categories)
    want = compute_labels(open_live_data(cj_slice_home), *args)
    got = compute_labels_on_spark(open_live_data_on_spark(cj_slice_home), *args)
    assert list(got.columns) == list(want.columns)
    assert got.dtypes.to_dict() == want.dtypes.to_dict()
    assert got[["customer_id", "event_timestamp", "churn"]].equals(
        want[["customer_id", "event_timestamp", "churn"]]
    )
    assert np.array_equal(got["growth"], want["growth"], equal_nan=True)
    assert want["growth"].notna().any() and want["growth"].isna().any()
    for column in ("value", "days_to_next_order", "spend_prev"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-9, atol=0, err_msg=column)
