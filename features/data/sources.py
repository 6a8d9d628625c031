"""Reading a shop's order file (CSV or Parquet) into DuckDB, under canonical names, without losing a row.

CSV is read with every column as text: a type guessed from the first rows would turn a bad value
further down into a crash, whereas text lets validation refuse just that row with a reason.
"""

from __future__ import annotations

import contextlib
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


CHUNK_BYTES = 1 << 20
BOMS = {b"\xef\xbb\xbf": "utf-8-sig", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


def readable_text(path: Path, encoding: str, scratch: Path | None) -> Path:
    """A CSV file DuckDB can read as UTF-8: `path` itself when it is UTF-8, else a UTF-8 copy in
    `scratch` decoded from `encoding` (or from UTF-16 when the file starts with its byte-order mark).

    Raises:
        InputError: a byte the encoding cannot decode, named with its line and value, or an unknown
            encoding.
    """
    import codecs

    with path.open("rb") as raw:
        head = raw.read(4)
    encoding = next((name for bom, name in BOMS.items() if head.startswith(bom)), encoding)
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise InputError(
            f"--encoding {encoding!r}: unknown encoding (e.g. utf-8, gb18030, gbk, latin-1, utf-16)"
        ) from None
    plain_utf8 = codecs.lookup(encoding).name == "utf-8"
    if not plain_utf8 and scratch is None:
        raise InputError(f"{path}: a {encoding} file needs a scratch folder to be converted")
    target = path if plain_utf8 else Path(scratch) / f"{path.stem}.utf-8.csv"
    lines, offset = 1, 0
    copy = contextlib.nullcontext() if plain_utf8 else target.open("w", encoding="utf-8", newline="")
    with path.open("rb") as raw, copy as out:
        while chunk := raw.read(CHUNK_BYTES):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n")
                raise InputError(
                    f"{path}: line {line} (byte {offset + exc.start:,}): byte 0x{chunk[exc.start]:02x} is not "
                    f"{encoding}; give the file's encoding with --encoding (e.g. gb18030, latin-1)"
                ) from None
            if out is not None:  # a UTF-8 file is only checked; any other is converted
                out.write(text)
            lines += chunk.count(b"\n")
            offset += len(chunk)
        tail = decoder.decode(b"", final=True)
        if out is not None:
            out.write(tail)
    return target


def _check_header(path: Path) -> None:
    """Refuse a CSV whose header names one column twice (which of them would be the amount?)."""
    import csv

    with path.open(encoding="utf-8", newline="") as text:
        header = next(csv.reader(text), [])
    seen, twice = set(), []
    for name in header:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        raise InputError(
            f"{path}: column name(s) {', '.join(map(repr, twice))} appear more than once; "
            "rename them so each column has one meaning"
        )


def stage_order_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    map_options: list[str],
    view: str = "staged",
    encoding: str = "utf-8",
    scratch: Path | None = None,
) -> StagedSource:
    """Register a shop's order or order-line file as a staged view with canonical column names.

    A CSV is checked (or converted) to UTF-8 first (`readable_text`) and its header for duplicate
    names; the file's own SHA-256 stays its identity, so a re-import is recognised whatever its encoding.

    Raises:
        InputError: the file is missing, not in its encoding, names a column twice, unreadable (with
            DuckDB's line number), or the mapping does not fit its columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    explicit = parse_map_options(map_options)
    readable = path
    if _is_csv(path) and not path.name.lower().endswith(".gz"):
        readable = readable_text(path, encoding, scratch)
        _check_header(readable)
    scan = _scan_sql(readable)
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
