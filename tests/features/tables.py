"""Reading canonical tables in tests, the same way the library does."""

from __future__ import annotations

import pandas as pd

from features.data.duck import connect, table_sql
from features.data.store import DataStore
from features.settings import Settings


def read_table(settings: Settings, table: str) -> pd.DataFrame:
    store = DataStore(settings.data_dir)
    return connect().execute(f"SELECT * FROM {table_sql(store.live_version(), table)}").df()


def scalar(settings: Settings, sql_with_table: str, table: str) -> object:
    """Run `sql_with_table`, where `{t}` stands for the live table."""
    store = DataStore(settings.data_dir)
    sql = sql_with_table.format(t=table_sql(store.live_version(), table))
    return connect().execute(sql).fetchall()[0][0]
