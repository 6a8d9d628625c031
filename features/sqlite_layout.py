"""The SQLite layout of a bulk-loaded online store: Feast's tables, clustered on their primary key.

Feast's SQLite store (`SqliteOnlineStore.update`) makes each view a table with one row per customer
and feature, `PRIMARY KEY(entity_key, feature_name)`, and an index `{table}_ek` on `entity_key`.
Every row is then three B-tree entries: the table by rowid, the primary key's own index, and the
`_ek` index, which repeats the primary key's leading column. The bulk load
(`features.online_writer.fill_sqlite`) writes the same columns into tables declared `WITHOUT ROWID`:
the rows are stored in the primary key's B-tree itself, one entry per row, which takes half the file
and about half the insert time. Every query Feast and Tierwise make still finds its rows by the
primary key (`SEARCH ... USING PRIMARY KEY (entity_key=?)`: Feast's `online_read`, its
`ON CONFLICT(entity_key, feature_name)` upserts, `features.online_reader`, `features.online_answers`).

The name `{table}_ek` is kept, by an index that holds no rows (`WHERE 0`): Feast's `update`, run by
every `tierwise features apply` on the live file, creates that index `IF NOT EXISTS`, so an empty
index of that name keeps apply from rebuilding the redundant one over every row of the loaded store.
A partial index whose condition is never true is never maintained and never chosen by the planner.

Only the feature views' tables are clustered. The answers table (`features.online_answers`) keeps
Feast's rowid layout: its rows hold a 3 KB answer each, and SQLite stores such large rows better
in a rowid table (its advice: `WITHOUT ROWID` for rows under about a twentieth of a page). Measured
on 20,000 answers of 3.2 KB: a read by key took 34 µs in the rowid table and 79 µs clustered, and
that read is `predict`'s whole work for a stored answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: How a table declared clustered ends: SQLite keeps the declaration in `sqlite_master` as written.
_CLUSTERED = re.compile(r"\)\s*WITHOUT\s+ROWID\s*$", re.IGNORECASE)


def clustered_schema(
    objects: list[tuple[str, str, str, str]], clustered: Collection[str]
) -> tuple[list[str], list[str]]:
    """The statements creating the bulk-loaded layout from the live store's schema.

    Args:
        objects: `(type, name, tbl_name, sql)` of the live store's `sqlite_master` (tables and
            indexes made by Feast's `apply`, or by an earlier bulk load; SQLite's own automatic
            indexes left out).
        clustered: The tables to cluster (the feature views'); the others are made as they were.

    Returns:
        The tables, those of `clustered` `WITHOUT ROWID`, and the indexes (to create once the rows
        are in): Feast's `{table}_ek` of a clustered table as an empty index of the same name, any
        other index as it was.
    """
    tables = [
        f"{sql.rstrip()} WITHOUT ROWID" if name in clustered and not _CLUSTERED.search(sql) else sql
        for kind, name, _, sql in objects
        if kind == "table"
    ]
    indexes = [
        placeholder_index(table) if table in clustered and name == f"{table}_ek" else sql
        for kind, name, table, sql in objects
        if kind == "index"
    ]
    return tables, indexes


def placeholder_index(table: str) -> str:
    """An index named as Feast's `{table}_ek` that holds no rows (see the module docstring)."""
    return f"CREATE INDEX {quoted(table + '_ek')} ON {quoted(table)} (entity_key) WHERE 0"


def quoted(identifier: str) -> str:
    """A SQLite identifier in double quotes, as Feast quotes its table names."""
    return '"' + identifier.replace('"', '""') + '"'
