"""An import on Spark writes the tables an import on DuckDB writes, and each engine recognises the other's orders.

The same files are imported into two empty homes, one per engine, and every canonical table is
compared row by row (the import's own id and time aside): exact for texts and counts, floats
within 1e-9 relative.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.data.duck import connect
from features.data.event_log import EventLog
from features.data.order_events import check_events
from features.data.schema import ALL_TABLES
from features.data.store import DataStore
from features.settings import Settings
from pipelines.import_data import fold_events, import_completejourney, import_file
from tests.conftest import CJ_SLICE
from tests.features.tables import read_table
from tests.features.test_quarantine import BAD_LINES, GOOD, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]

#: Differ between any two imports: which import, and when.
PER_IMPORT = {"import_id", "started_at"}
#: A second file: an order again as it was, one changed, one whose rows disagree on the customer,
#: a line sent twice and a new order.
SECOND = [
    "c2,o2,2024-03-02 11:00:00,9.99,p1,1",
    "c1,o1,2024-03-01 10:00:00,9.00,p1,1",
    "c7,o40,2024-03-03 09:00:00,3.00,p1,1",
    "c8,o40,2024-03-03 09:00:00,3.00,p2,1",
    "c9,o50,2024-03-04 10:00:00,5.00,p1,1",
    "c9,o50,2024-03-04 10:00:00,5.00,p1,1",
    "c9,o51,2024-03-05 10:00:00,1.00,p3,2",
]


def homes(tmp_path: Path) -> tuple[Settings, Settings]:
    duck = Settings.resolve(tmp_path / "duck")
    return duck, dataclasses.replace(Settings.resolve(tmp_path / "spark"), engine="spark")


def sorted_rows(settings: Settings, table: str) -> pd.DataFrame:
    frame = read_table(settings, table).drop(columns=[c for c in PER_IMPORT], errors="ignore")
    key = [c for c in ALL_TABLES[table].key if c in frame.columns] or list(frame.columns[:3])
    return frame.sort_values(key).reset_index(drop=True)


def assert_same_tables(duck: Settings, spark: Settings) -> None:
    for table in ALL_TABLES:
        left, right = sorted_rows(duck, table), sorted_rows(spark, table)
        assert right.columns.tolist() == left.columns.tolist(), table
        assert [str(t) for t in right.dtypes] == [str(t) for t in left.dtypes], table
        assert len(right) == len(left), table
        for column in left.columns:
            a, b = left[column], right[column]
            if pd.api.types.is_float_dtype(a):
                close = ((a - b).abs() <= 1e-9 * a.abs()) | (a.isna() & b.isna())
                assert close.all(), (table, column)
            else:
                assert (
                    b.astype(object).where(b.notna(), None).tolist()
                    == a.astype(object).where(a.notna(), None).tolist()
                ), (table, column)


def test_the_complete_journey_slice_imports_alike_on_both_engines(tmp_path: Path):
    duck, spark = homes(tmp_path)
    reports = [import_completejourney(home, CJ_SLICE) for home in (duck, spark)]
    assert reports[1].reconciliation() == reports[0].reconciliation()
    assert_same_tables(duck, spark)
    for home, writer in ((duck, "DuckDB"), (spark, "parquet-mr")):
        lines = next((DataStore(home.data_dir).live_version() / "order_lines").rglob("*.parquet"))
        assert writer in pq.read_metadata(lines).created_by


def test_spark_writes_each_month_ordered_by_customer_as_duckdb_does(tmp_path: Path):
    _, spark = homes(tmp_path)
    import_completejourney(spark, CJ_SLICE)
    for table in ("orders", "order_lines"):
        files = sorted((DataStore(spark.data_dir).live_version() / table).rglob("*.parquet"))
        assert len(files) > 1 and all(f.name.startswith("part-") for f in files)
        for file in files:
            assert pd.read_parquet(file, columns=["customer_id"]).customer_id.is_monotonic_increasing, file


def test_bad_rows_are_quarantined_alike_on_both_engines(tmp_path: Path):
    duck, spark = homes(tmp_path)
    first = write_csv(tmp_path / "first.csv", GOOD + list(BAD_LINES.values()))
    second = write_csv(tmp_path / "second.csv", SECOND)
    for path in (first, second):
        reports = [import_file(home, path, []) for home in (duck, spark)]
        assert reports[1].quarantined_by_reason == reports[0].quarantined_by_reason
        assert reports[1].reconciliation() == reports[0].reconciliation()
    quarantined = read_table(spark, "quarantine").set_index("reason")
    assert json.loads(quarantined.loc["conflicts_with_existing_order", "raw"])["src_order_id"] == "o1"
    assert len(quarantined.loc["conflicting_duplicate_order"]) == 2
    assert_same_tables(duck, spark)


def test_an_import_on_spark_adds_nothing_duckdb_imported_and_back(tmp_path: Path):
    duck, _ = homes(tmp_path)
    import_completejourney(duck, CJ_SLICE)
    again = import_completejourney(dataclasses.replace(duck, engine="spark"), CJ_SLICE)
    assert again.orders_added == 0 and again.orders_already_present > 0
    assert import_completejourney(duck, CJ_SLICE).orders_added == 0


def test_order_events_fold_into_the_same_tables_on_both_engines(tmp_path: Path):
    bodies = [
        {"order_id": "web-1", "customer_id": "c-new", "ordered_at": "2018-01-03 18:05:00", "amount": 12.5},
        {
            "order_id": "web-2",
            "customer_id": "c-new",
            "ordered_at": "2018-01-04 09:30:00",
            "lines": [
                {"product_id": "p-event", "quantity": 2, "amount": 5.0, "department": "EVENT AISLE"},
                {"product_id": "p-other", "quantity": 1, "amount": 2.0},
            ],
        },
    ]
    now = datetime(2018, 1, 5, tzinfo=UTC)
    for home in homes(tmp_path):
        import_completejourney(home, CJ_SLICE)
        log = EventLog(home.events_path)
        log.append(check_events(connect(), bodies, now=now, timezone="UTC"), source="test", now=now)
        log.close()
        reports = fold_events(home)
        assert sorted(r.orders_added for r in reports) == [1, 1]
    assert_same_tables(*homes(tmp_path))
