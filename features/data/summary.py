"""What a data home holds: row counts, the period covered, which optional columns carry data, and quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from features.data.duck import connect, table_sql
from features.data.schema import ALL_TABLES
from features.data.store import DataStore


@dataclass(frozen=True)
class TableSummary:
    name: str
    rows: int
    columns_with_data: list[str]
    columns_empty: list[str]


@dataclass(frozen=True)
class DataSummary:
    """A snapshot of the live tables. `first_order`/`last_order` are None when no orders are imported."""

    version: str | None
    tables: dict[str, TableSummary]
    first_order: datetime | None
    last_order: datetime | None
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    imports: list[dict] = field(default_factory=list)

    @property
    def has_orders(self) -> bool:
        return self.tables.get("orders", TableSummary("orders", 0, [], [])).rows > 0


def summarize(store: DataStore) -> DataSummary:
    """Describe the live version of `store` (one consistent version, even while an import runs)."""
    live = store.live_version()
    con = connect()
    tables: dict[str, TableSummary] = {}
    for name, spec in ALL_TABLES.items():
        source = table_sql(live, name)
        counts = ", ".join(f"count({c.name})" for c in spec.columns)
        row = con.execute(f"SELECT count(*), {counts} FROM {source}").fetchall()[0]
        filled = [c.name for c, n in zip(spec.columns, row[1:], strict=True) if n]
        empty = [c.name for c, n in zip(spec.columns, row[1:], strict=True) if not n]
        tables[name] = TableSummary(name, int(row[0]), filled, empty)
    first, last = con.execute(
        f"SELECT min(ordered_at), max(ordered_at) FROM {table_sql(live, 'orders')}"
    ).fetchall()[0]
    reasons = dict(
        con.execute(
            f"SELECT reason, count(*) FROM {table_sql(live, 'quarantine')} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    imports = (
        con.execute(f"SELECT * FROM {table_sql(live, 'imports')} ORDER BY import_id").df().to_dict("records")
    )
    return DataSummary(
        version=live.name if live else None,
        tables=tables,
        first_order=first,
        last_order=last,
        quarantined_by_reason=reasons,
        imports=imports,
    )
