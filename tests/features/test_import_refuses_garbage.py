"""Imports refuse garbage loudly: wrong encodings, ambiguous headers, files whose rows all fail."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.data.store import DataStore
from features.errors import InputError
from features.settings import Settings
from pipelines.import_data import import_file

HEADER = "order_id,customer_id,ordered_at,amount,store\n"


def _home(tmp_path: Path) -> Settings:
    return Settings.resolve(tmp_path / "home")


def test_a_gbk_export_imports_when_its_encoding_is_given(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_bytes(
        (HEADER + "o1,c1,2024-01-02 10:00,12.5,上海店\no2,c2,2024-01-03 11:00,8,北京店\n").encode("gbk")
    )
    settings = _home(tmp_path)
    report = import_file(settings, path, [], encoding="gbk")
    assert report.rows_accepted == 2
    with pytest.raises(
        InputError, match=r"line 2 \(byte \d+\): byte 0x[0-9a-f]{2} is not utf-8; give the file's encoding"
    ):
        import_file(_home(tmp_path / "again"), path, [])


def test_a_stray_latin_1_byte_names_its_line(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_bytes((HEADER + "o1,c1,2024-01-02,1,a\no2,c2,2024-01-03,2,Caf").encode() + b"\xe9\n")
    with pytest.raises(InputError, match=r"line 3 .*byte 0xe9 is not utf-8"):
        import_file(_home(tmp_path), path, [])


def test_a_utf_16_file_is_read_by_its_byte_order_mark(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_bytes((HEADER + "o1,c1,2024-01-02,1,a\n").encode("utf-16"))
    assert import_file(_home(tmp_path), path, []).rows_accepted == 1


def test_two_columns_with_one_name_are_refused_naming_it(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,total,total\no1,c1,2024-01-02,1,2\n")
    with pytest.raises(InputError, match="'total' appear more than once"):
        import_file(_home(tmp_path), path, ["amount=total"])


def test_a_wrong_timestamp_format_is_refused_with_a_sample_and_nothing_is_imported(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "o1,c1,02/01/2024 10:00,1,a\no2,c2,03/01/2024 11:00,2,b\n")
    settings = _home(tmp_path)
    with pytest.raises(
        InputError, match="2 of 2 rows would be quarantined as unparseable_timestamp.*'02/01/2024 10:00'"
    ):
        import_file(settings, path, [], timestamp_format="%Y-%m-%d %H:%M")
    assert DataStore(settings.data_dir).live_version() is None
    assert import_file(settings, path, [], timestamp_format="%d/%m/%Y %H:%M").rows_accepted == 2


def test_more_than_half_the_rows_failing_for_one_reason_is_refused_unless_allowed(tmp_path: Path):
    path = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "customer_id": ["c1", "c2", "c3"],
            "ordered_at": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "amount": ["1", "n/a", "n/a"],
        }
    ).to_csv(path, index=False)
    with pytest.raises(InputError, match="2 of 3 rows would be quarantined as non_numeric_amount"):
        import_file(_home(tmp_path), path, [])
    report = import_file(_home(tmp_path / "allowed"), path, [], max_quarantine_share=1.0)
    assert (report.rows_accepted, report.rows_quarantined) == (1, 2)
