"""Reading a shop's order file (CSV or Parquet) into DuckDB, under canonical names, without losing a row.

CSV is read with every column as text: a type guessed from the first rows would turn a bad value
further down into a crash, whereas text lets validation refuse just that row with a reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from features.data.duck import sql_identifier, sql_string
from features.data.mapping import ColumnMapping, parse_map_options, resolve_mapping
from features.errors import InputError

CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".gz"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class StagedSource:
    """A source registered in DuckDB as view `view`: `source_line`, canonical fields, original columns.

    Attributes:
        view: View name; one row per source row, in file order.
        label: What to call the source in messages and the import log.
        sha256: Content hash, so a re-import of the same file is recognised.
        fields: Canonical fields the view provides.
        original_columns: The file's own columns, kept for the quarantine's `raw` JSON.
        has_lines: Rows are order lines (else orders).
    """

    view: str
    label: str
    is_csv: bool
    sha256: str
    fields: frozenset[str]
    original_columns: tuple[str, ...]
    has_lines: bool


def file_sha256(*paths: Path) -> str:
    """Content hash of one or more files, streamed (constant memory)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_csv(path: Path) -> bool:
    suffixes = {s.lower() for s in path.suffixes}
    if suffixes & PARQUET_SUFFIXES:
        return False
    if suffixes & CSV_SUFFIXES:
        return True
    raise InputError(f"{path}: unsupported file type; use CSV (.csv, .csv.gz) or Parquet (.parquet)")


def _scan_sql(path: Path) -> str:
    """A scan with `source_line`: the file line for CSV (header = line 1, before malformed-line
    correction, see `features.data.importer`), the 1-based row for Parquet."""
    if _is_csv(path):
        return (
            f"(SELECT *, ordinality + 1 AS source_line FROM read_csv({sql_string(str(path))}, "
            "all_varchar = true, header = true, store_rejects = true) WITH ORDINALITY)"
        )
    return (
        f"(SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS source_line "
        f"FROM read_parquet({sql_string(str(path))}, file_row_number = true))"
    )


def stage_order_file(
    con: duckdb.DuckDBPyConnection, path: Path, map_options: list[str], view: str = "staged"
) -> StagedSource:
    """Register a shop's order or order-line file as a staged view with canonical column names.

    Raises:
        InputError: the file is missing, unreadable (with DuckDB's line number), or the mapping does
            not fit its columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    explicit = parse_map_options(map_options)
    scan = _scan_sql(path)
    try:
        header = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
        header.remove("source_line")
        header = [c for c in header if c != "ordinality"]
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read the file: {exc}") from exc
    mapping: ColumnMapping = resolve_mapping(explicit, header, path)
    renamed = ", ".join(f"{sql_identifier(col)} AS {field}" for field, col in mapping.columns.items())
    originals = ", ".join(f"{sql_identifier(c)} AS {sql_identifier('src_' + c)}" for c in header)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT source_line, {renamed}, {originals} FROM {scan}"
    )
    return StagedSource(
        view=view,
        label=str(path.resolve()),
        is_csv=_is_csv(path),
        sha256=file_sha256(path),
        fields=frozenset(mapping.columns),
        original_columns=tuple(f"src_{c}" for c in header),
        has_lines=mapping.has_lines,
    )
