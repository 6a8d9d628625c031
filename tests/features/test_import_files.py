"""Importing a shop's own CSV or Parquet export, with its own column names."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features.errors import InputError
from features.settings import Settings
from pipelines.import_data import import_file
from tests.features.tables import read_table, scalar

SHOP_MAP = [
    "customer_id=Kundennummer",
    "order_id=Bon",
    "ordered_at=Zeitpunkt",
    "amount=Umsatz",
    "product_id=Artikel",
    "quantity=Menge",
    "discount=Rabatt",
    "department=Abteilung",
]


def shop_lines(cj_slice_dir: Path, limit_households: int = 40) -> pd.DataFrame:
    """Real Complete Journey lines, renamed as a German shop would export them."""
    return (
        duckdb.connect()
        .execute(
            f"""SELECT t.household_id AS Kundennummer, t.basket_id AS Bon,
                   strftime(t.transaction_timestamp, '%Y-%m-%d %H:%M:%S') AS Zeitpunkt,
                   t.sales_value AS Umsatz, t.product_id AS Artikel, t.quantity AS Menge,
                   t.retail_disc AS Rabatt, p.department AS Abteilung
            FROM read_parquet('{cj_slice_dir}/transactions.parquet') t
            LEFT JOIN read_parquet('{cj_slice_dir}/products.parquet') p USING (product_id)
            WHERE t.household_id IN (SELECT DISTINCT household_id
                FROM read_parquet('{cj_slice_dir}/transactions.parquet') ORDER BY 1 LIMIT {limit_households})"""
        )
        .df()
    )


@pytest.fixture
def lines_frame(cj_slice_dir: Path) -> pd.DataFrame:
    return shop_lines(cj_slice_dir)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_mapped_order_lines_import_like_the_source(home: Settings, lines_frame, tmp_path, suffix):
    path = tmp_path / f"export{suffix}"
    lines_frame.to_csv(path, index=False) if suffix == ".csv" else lines_frame.to_parquet(path)
    report = import_file(home, path, SHOP_MAP)
    assert report.rows_read == len(lines_frame) == report.rows_accepted
    assert report.orders_added == lines_frame["Bon"].nunique()
    orders = read_table(home, "orders")
    assert orders["amount"].sum() == pytest.approx(lines_frame["Umsatz"].sum())
    assert set(orders["customer_id"]) == {str(c) for c in lines_frame["Kundennummer"].unique()}


def test_product_attributes_from_the_file_fill_the_products_table(home: Settings, lines_frame, tmp_path):
    path = tmp_path / "export.csv"
    lines_frame.to_csv(path, index=False)
    import_file(home, path, SHOP_MAP)
    products = read_table(home, "products")
    assert len(products) == lines_frame["Artikel"].nunique()
    assert products["department"].notna().mean() > 0.9


def test_orders_only_file_imports_without_lines(home: Settings, lines_frame, tmp_path):
    orders = lines_frame.groupby("Bon", as_index=False).agg(
        customer=("Kundennummer", "first"), placed=("Zeitpunkt", "first"), total=("Umsatz", "sum")
    )
    path = tmp_path / "orders.csv"
    orders.to_csv(path, index=False)
    report = import_file(
        home, path, ["customer_id=customer", "order_id=Bon", "ordered_at=placed", "amount=total"]
    )
    assert report.orders_added == len(orders)
    assert scalar(home, "SELECT count(*) FROM {t}", "orders") == len(orders)
    assert scalar(home, "SELECT count(*) FROM {t}", "order_lines") == 0
    assert scalar(home, "SELECT count(lines) FROM {t}", "orders") == 0


def test_columns_named_like_the_fields_need_no_mapping(home: Settings, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,ordered_at,amount\nc1,o1,2024-03-01 10:00:00,12.5\n")
    assert import_file(home, path, []).orders_added == 1


def test_timestamps_in_a_local_zone_are_stored_in_utc(home: Settings, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,ordered_at,amount\nc1,o1,01/03/2024 10:00,12.5\n")
    import_file(home, path, [], timezone="Europe/Berlin", timestamp_format="%d/%m/%Y %H:%M")
    stamp = read_table(home, "orders")["ordered_at"].iloc[0]
    assert stamp == pd.Timestamp("2024-03-01 09:00:00", tz="UTC")


def test_a_newer_extract_adds_only_the_new_orders(home: Settings, lines_frame, tmp_path):
    cutoff = lines_frame["Zeitpunkt"].quantile(0.5, interpolation="nearest")
    first, full = tmp_path / "first.csv", tmp_path / "full.csv"
    lines_frame[lines_frame["Zeitpunkt"] < cutoff].to_csv(first, index=False)
    lines_frame.to_csv(full, index=False)
    first_report = import_file(home, first, SHOP_MAP)
    second_report = import_file(home, full, SHOP_MAP)
    assert first_report.orders_added + second_report.orders_added == lines_frame["Bon"].nunique()
    assert second_report.orders_already_present == first_report.orders_added
    assert scalar(home, "SELECT count(*) FROM {t}", "order_lines") == len(lines_frame)


def test_missing_required_column_names_the_field_and_file(home: Settings, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,amount\nc1,o1,3.0\n")
    with pytest.raises(InputError, match=r"orders\.csv.*ordered_at"):
        import_file(home, path, [])


def test_mapping_to_a_column_the_file_lacks_names_the_column(home: Settings, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,ordered_at,amount\nc1,o1,2024-01-01,3.0\n")
    with pytest.raises(InputError, match=r"'Betrag'.*not in the file"):
        import_file(home, path, ["amount=Betrag"])


def test_unknown_mapping_field_is_refused_by_name(home: Settings, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,ordered_at,amount\nc1,o1,2024-01-01,3.0\n")
    with pytest.raises(InputError, match="unknown field 'revenue'"):
        import_file(home, path, ["revenue=amount"])


def test_unsupported_file_type_is_refused(home: Settings, tmp_path):
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="unsupported file type"):
        import_file(home, path, [])
