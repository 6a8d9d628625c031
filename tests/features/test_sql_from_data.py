"""No SQL from data: headers, values, options and paths reach DuckDB as text, never as SQL.

The attack of the security review: a CSV header that closes the quoted identifier and selects a
local file into the quarantine's `raw` column. Each test is written so it failed before the quoting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from features.data.store import DataStore
from features.errors import InputError
from features.settings import Settings
from pipelines.import_data import import_file

SECRET = "the content of a file nobody imported"


def _write(tmp_path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path = tmp_path / "orders.csv"
    frame = pd.DataFrame(rows, columns=header)
    frame.to_csv(path, index=False)
    return path


def _quarantine(settings: Settings) -> pd.DataFrame:
    return pd.read_parquet(DataStore(settings.data_dir).live_version() / "quarantine")


def test_a_header_that_closes_its_quotes_is_an_ordinary_column(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    evil = f"x\" := (SELECT content FROM read_text('{secret}')))) AS raw --"
    path = _write(
        tmp_path,
        ["order_id", "customer_id", "ordered_at", "amount", evil],
        [["o1", "c1", "2024-01-02T10:00:00", "12.5", "v1"], ["o2", "c2", "2024-01-03T10:00:00", "", "v2"]],
    )
    settings = Settings.resolve(tmp_path / "home")
    report = import_file(settings, path, [])
    assert report.rows_accepted == 1 and report.rows_quarantined == 1
    raw = json.loads(_quarantine(settings).raw.iloc[0])
    assert SECRET not in json.dumps(raw)
    assert raw[f"src_{evil}"] == "v2"


def test_values_with_quotes_comments_and_semicolons_are_imported_as_text(tmp_path: Path):
    customer = "o'brien\"; DROP TABLE orders; --"
    path = _write(
        tmp_path, ["order_id", "customer_id", "ordered_at", "amount"], [["o1", customer, "2024-01-02", "3"]]
    )
    settings = Settings.resolve(tmp_path / "home")
    import_file(settings, path, [])
    orders = pd.read_parquet(DataStore(settings.data_dir).live_version() / "orders")
    assert orders.customer_id.tolist() == [customer]


def test_a_home_whose_path_has_a_quote_works(tmp_path: Path):
    path = _write(
        tmp_path, ["order_id", "customer_id", "ordered_at", "amount"], [["o1", "c1", "2024-01-02", "3"]]
    )
    settings = Settings.resolve(tmp_path / "o'brien's home")
    assert import_file(settings, path, []).rows_accepted == 1


def test_a_timestamp_format_with_a_quote_is_a_format_not_sql(tmp_path: Path):
    path = _write(
        tmp_path, ["order_id", "customer_id", "ordered_at", "amount"], [["o1", "c1", "02/01/2024 10:00", "3"]]
    )
    settings = Settings.resolve(tmp_path / "home")
    with pytest.raises(InputError, match="1 of 1 rows would be quarantined as unparseable_timestamp"):
        import_file(settings, path, [], timestamp_format="%d/%m/%Y %H:%M')--")


def test_an_unknown_time_zone_is_refused_by_name(tmp_path: Path):
    path = _write(
        tmp_path, ["order_id", "customer_id", "ordered_at", "amount"], [["o1", "c1", "2024-01-02 10:00", "3"]]
    )
    settings = Settings.resolve(tmp_path / "home")
    with pytest.raises(InputError, match="--timezone .Mars/Olympus'; DROP.: unknown time zone"):
        import_file(settings, path, [], timezone="Mars/Olympus'; DROP")
