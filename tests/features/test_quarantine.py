"""Bad rows are quarantined with one reason and their original content; counts always reconcile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features.settings import Settings
from pipelines.import_data import import_file
from tests.features.tables import read_table

HEADER = "customer_id,order_id,ordered_at,amount,product_id,quantity"
GOOD = [
    "c1,o1,2024-03-01 10:00:00,4.50,p1,1",
    "c1,o1,2024-03-01 10:00:00,2.00,p2,2",
    "c2,o2,2024-03-02 11:00:00,9.99,p1,1",
]
BAD_LINES = {
    "missing_order_id": "c3,,2024-03-02 11:00:00,1.00,p1,1",
    "missing_customer_id": ",o3,2024-03-02 11:00:00,1.00,p1,1",
    "missing_timestamp": "c3,o4,,1.00,p1,1",
    "unparseable_timestamp": "c3,o5,yesterday at noon,1.00,p1,1",
    "future_timestamp": "c3,o6,2999-01-01 00:00:00,1.00,p1,1",
    "missing_amount": "c3,o7,2024-03-02 11:00:00,,p1,1",
    "non_numeric_amount": "c3,o8,2024-03-02 11:00:00,12 EUR,p1,1",
    "missing_product_id": "c3,o9,2024-03-02 11:00:00,1.00,,1",
    "non_numeric_quantity": "c3,o10,2024-03-02 11:00:00,1.00,p1,two",
}


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "lines.csv", GOOD + list(BAD_LINES.values()))


def test_each_bad_row_is_quarantined_with_its_reason(home: Settings, bad_file: Path):
    report = import_file(home, bad_file, [])
    assert report.quarantined_by_reason == {reason: 1 for reason in BAD_LINES}
    quarantine = read_table(home, "quarantine").set_index("reason")
    for reason, line in BAD_LINES.items():
        raw = json.loads(quarantine.loc[reason, "raw"])
        assert ",".join(raw[f"src_{c}"] or "" for c in HEADER.split(",")) == line


def test_quarantined_rows_point_to_their_file_line(home: Settings, bad_file: Path):
    import_file(home, bad_file, [])
    quarantine = read_table(home, "quarantine").set_index("reason")
    lines = bad_file.read_text().splitlines()
    for reason, row in BAD_LINES.items():
        assert lines[quarantine.loc[reason, "source_line"] - 1] == row


def test_read_equals_accepted_plus_quarantined(home: Settings, bad_file: Path):
    report = import_file(home, bad_file, [])
    assert report.rows_read == len(GOOD) + len(BAD_LINES)
    assert report.rows_accepted == len(GOOD)
    assert report.rows_read == report.rows_accepted + report.rows_quarantined
    log = read_table(home, "imports").iloc[0]
    assert (log.rows_read, log.rows_accepted, log.rows_quarantined) == (12, 3, 9)


def test_malformed_csv_line_is_quarantined_with_its_line_number(home: Settings, tmp_path: Path):
    rows = GOOD + ["c4,o11,2024-03-02 11:00:00,1.00,p1,1,surplus"] + ["c5,o12,2024-03-02 12:00:00,bad,p1,1"]
    path = write_csv(tmp_path / "lines.csv", rows)
    report = import_file(home, path, [])
    assert report.quarantined_by_reason == {"malformed_row": 1, "non_numeric_amount": 1}
    quarantine = read_table(home, "quarantine").set_index("reason")
    assert quarantine.loc["malformed_row", "source_line"] == 5
    assert "surplus" in quarantine.loc["malformed_row", "raw"]
    assert quarantine.loc["non_numeric_amount", "source_line"] == 6


def test_lines_of_one_order_with_different_customers_quarantine_the_whole_order(home: Settings, tmp_path):
    rows = GOOD + ["c7,o20,2024-03-05 10:00:00,1.00,p1,1", "c8,o20,2024-03-05 10:00:00,2.00,p2,1"]
    report = import_file(home, write_csv(tmp_path / "lines.csv", rows), [])
    assert report.quarantined_by_reason == {"conflicting_duplicate_order": 2}
    assert "o20" not in set(read_table(home, "orders")["order_id"])


def test_orders_only_exact_duplicates_are_one_order_and_conflicts_are_quarantined(home: Settings, tmp_path):
    header = "customer_id,order_id,ordered_at,amount"
    rows = [
        "c1,o1,2024-03-01 10:00:00,4.50",
        "c1,o1,2024-03-01 10:00:00,4.50",
        "c2,o2,2024-03-01 10:00:00,5.00",
        "c2,o2,2024-03-01 10:00:00,7.00",
    ]
    report = import_file(home, write_csv(tmp_path / "orders.csv", rows, header), [])
    assert report.orders_added == 1
    assert report.rows_accepted == 2
    assert report.quarantined_by_reason == {"conflicting_duplicate_order": 2}


def test_an_order_changed_since_the_last_import_is_quarantined_not_overwritten(home: Settings, tmp_path):
    header = "customer_id,order_id,ordered_at,amount"
    import_file(home, write_csv(tmp_path / "day1.csv", ["c1,o1,2024-03-01 10:00:00,4.50"], header), [])
    changed = write_csv(
        tmp_path / "day2.csv", ["c1,o1,2024-03-01 10:00:00,9.00", "c1,o2,2024-03-02 10:00:00,3.00"], header
    )
    report = import_file(home, changed, [])
    assert report.quarantined_by_reason == {"conflicts_with_existing_order": 1}
    assert report.orders_added == 1
    assert read_table(home, "orders").set_index("order_id").loc["o1", "amount"] == 4.50


def test_returns_and_zero_value_lines_are_kept_and_flagged(home: Settings, tmp_path: Path):
    rows = GOOD + ["c1,o3,2024-03-04 10:00:00,-4.50,p1,-1", "c1,o3,2024-03-04 10:00:00,0,p9,1"]
    report = import_file(home, write_csv(tmp_path / "lines.csv", rows), [])
    assert report.rows_quarantined == 0
    lines = read_table(home, "order_lines").set_index("product_id")
    assert lines.loc["p9", "is_zero_value"]
    assert lines[lines["order_id"] == "o3"]["is_return"].sum() == 1


def test_reimporting_a_bad_file_does_not_duplicate_its_quarantine(home: Settings, bad_file: Path):
    import_file(home, bad_file, [])
    import_file(home, bad_file, [])
    assert len(read_table(home, "quarantine")) == len(BAD_LINES)
    assert len(read_table(home, "orders")) == 2
