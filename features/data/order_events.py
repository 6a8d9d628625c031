"""Order events: one order (with optional lines) sent as it happens, checked by the import's own rules.

An event is a JSON object in the canonical order schema (`features.data.schema`): `order_id`,
`customer_id`, `ordered_at`, `amount` and the optional order fields, or instead of `amount` a list
of `lines` (each with `product_id`, `quantity`, `amount` and the optional line fields). The events of
a request are staged as text rows, as a CSV import stages its file, and checked by the same SQL
(`features.data.validate.typed_select`) and hashed by the same content hash
(`features.data.importer.candidate_orders_sql`): so an event is refused for exactly the reasons a
file row would be, and the nightly extract's copy of an order hashes like the event did.

Each refused event gets one reason and the field it names (`lines[2].quantity`), so that an HTTP
answer can point at it and the event log can keep it in quarantine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from features.data.duck import sql_string
from features.data.importer import candidate_orders_sql
from features.data.validate import Reason, typed_select

ORDER_FIELDS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "amount",
    "discount",
    "coupon_discount",
    "items",
    "store_id",
)
LINE_FIELDS = (
    "product_id",
    "quantity",
    "amount",
    "discount",
    "coupon_discount",
    "department",
    "category",
    "subcategory",
    "brand",
    "is_private_label",
)
#: Order fields a line row repeats; `amount`, `items` and the discounts come from the lines instead.
LINE_ORDER_FIELDS = ("order_id", "customer_id", "ordered_at", "store_id")
STAGED_COLUMNS = ("event", "line", "source_line", *dict.fromkeys(ORDER_FIELDS + LINE_FIELDS))

#: The field each row-level reason is about (on a line row, prefixed with `lines[i].`).
REASON_FIELDS = {
    Reason.MISSING_ORDER_ID: "order_id",
    Reason.MISSING_CUSTOMER_ID: "customer_id",
    Reason.MISSING_TIMESTAMP: "ordered_at",
    Reason.UNPARSEABLE_TIMESTAMP: "ordered_at",
    Reason.FUTURE_TIMESTAMP: "ordered_at",
    Reason.MISSING_AMOUNT: "amount",
    Reason.NON_NUMERIC_AMOUNT: "amount",
    Reason.MISSING_PRODUCT_ID: "product_id",
    Reason.NON_NUMERIC_QUANTITY: "quantity",
    Reason.NON_NUMERIC_DISCOUNT: "discount",
}


@dataclass(frozen=True)
class CheckedEvent:
    """One event after the checks: valid (`reason` None, with its order's identity and content hash)
    or refused, with the reason, the field it is about and a sentence for people."""

    index: int
    body: Mapping[str, object]
    order_id: str | None = None
    customer_id: str | None = None
    ordered_at: datetime | None = None
    content_hash: str | None = None
    reason: str | None = None
    field: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _text(value: object) -> str | None:
    """A JSON value as the text a CSV cell would hold (numbers as written, booleans as true/false)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value)


def _shape_problem(body: object) -> tuple[str, str, str] | None:
    """What is wrong with an event's shape (not an object, unknown or misplaced fields), as
    (reason, field, message); None when the shape is right and the values are for the SQL checks."""
    if not isinstance(body, Mapping):
        return Reason.MALFORMED_EVENT, "", f"an order event is a JSON object, got {type(body).__name__}"
    unknown = sorted(set(body) - set(ORDER_FIELDS) - {"lines"})
    if unknown:
        return Reason.UNKNOWN_FIELD, unknown[0][:64], f"{unknown[0][:64]}: not a field of an order event"
    lines = body.get("lines")
    if lines is None:
        return None
    if not isinstance(lines, list) or not lines:
        return Reason.MALFORMED_EVENT, "lines", "lines: a non-empty list of order lines"
    for i, line in enumerate(lines):
        where = f"lines[{i}]"
        if not isinstance(line, Mapping):
            return Reason.MALFORMED_EVENT, where, f"{where}: an order line is a JSON object"
        unknown = sorted(set(line) - set(LINE_FIELDS))
        if unknown:
            name = f"{where}.{unknown[0][:64]}"
            return Reason.UNKNOWN_FIELD, name, f"{name}: not a field of an order line"
    for name in ("amount", "items", "discount", "coupon_discount"):
        if body.get(name) is not None:
            return (
                Reason.MALFORMED_EVENT,
                name,
                f"{name}: an order with lines takes its {name} from them; send it on each line",
            )
    return None


def staged_rows(events: Sequence[tuple[int, Mapping[str, object]]], with_lines: bool) -> pa.Table:
    """The events as text rows under canonical names: one per line (`with_lines`) or one per order."""
    rows: dict[str, list] = {name: [] for name in STAGED_COLUMNS}
    for index, body in events:
        parts = body["lines"] if with_lines else [{}]
        for number, line in enumerate(parts):  # type: ignore[arg-type]
            values = (
                {**{f: body.get(f) for f in LINE_ORDER_FIELDS}, **line}  # type: ignore[dict-item]
                if with_lines
                else dict(body)
            )
            rows["event"].append(index)
            rows["line"].append(number if with_lines else None)
            rows["source_line"].append(len(rows["event"]))
            for name in STAGED_COLUMNS[3:]:
                rows[name].append(_text(values.get(name)))
    types = {"event": pa.int64(), "line": pa.int64(), "source_line": pa.int64()}
    return pa.table({name: pa.array(values, types.get(name, pa.string())) for name, values in rows.items()})


def check_events(
    con: duckdb.DuckDBPyConnection, bodies: Sequence[object], *, now: datetime, timezone: str
) -> list[CheckedEvent]:
    """Every event checked, in order: its shape, then the import's row checks. An order sent twice in
    one request is checked once when both copies are identical; copies that differ refuse each other."""
    return check_requests(con, [bodies], now=now, timezone=timezone)[0]


def check_requests(
    con: duckdb.DuckDBPyConnection, requests: Sequence[Sequence[object]], *, now: datetime, timezone: str
) -> list[list[CheckedEvent]]:
    """`check_events` for several requests at once, with the same answers: each request's shapes and
    copies are its own, and the import's row checks run over all their events together (a query per
    shape of event, not per request). Requests that share an order id are checked in separate passes,
    since the import's SQL merges the rows of an order id."""
    checked: dict[int, CheckedEvent] = {}
    copies: dict[int, int] = {}
    offsets = []
    passes: list[tuple[set[str], dict[bool, list[tuple[int, Mapping[str, object]]]]]] = []
    flat: list[object] = []
    for bodies in requests:
        offsets.append(len(flat))
        first_copy: dict[str, int] = {}
        events: list[tuple[int, Mapping[str, object]]] = []
        for index, body in enumerate(bodies, start=len(flat)):
            problem = _shape_problem(body)
            if problem:
                shown = body if isinstance(body, Mapping) else {"value": body}
                checked[index] = CheckedEvent(
                    index, shown, reason=problem[0], field=problem[1], message=problem[2]
                )
                continue
            key = _text(body.get("order_id"))  # type: ignore[union-attr]
            if key is not None and key in first_copy:
                copies[index] = first_copy[key]
                continue
            if key is not None:
                first_copy[key] = index
            events.append((index, body))  # type: ignore[arg-type]
        flat.extend(bodies)
        target = next((p for p in passes if p[0].isdisjoint(first_copy)), None)
        if target is None:
            target = (set(), {False: [], True: []})
            passes.append(target)
        target[0].update(first_copy)
        for index, body in events:
            target[1]["lines" in body].append((index, body))
    now_sql = f"{sql_string(now.astimezone(UTC).isoformat())}::TIMESTAMPTZ"
    for _, groups in passes:
        for with_lines, events in groups.items():
            if events:
                checked.update(_checked_rows(con, events, with_lines, now_sql, timezone))
    for index, first in copies.items():
        if flat[index] == flat[first]:
            checked[index] = replace(checked[first], index=index)
        else:
            order_id = checked[first].body.get("order_id")
            for i in (first, index):
                checked[i] = CheckedEvent(
                    i,
                    flat[i],  # type: ignore[arg-type]
                    reason=Reason.CONFLICTING_DUPLICATE_ORDER,
                    field="order_id",
                    message=f"order_id: {order_id!r} is sent twice in this request with different content",
                )
    return [
        [replace(checked[offset + i], index=i) for i in range(len(bodies))]
        for offset, bodies in zip(offsets, requests, strict=True)
    ]


def type_event_rows(
    con: duckdb.DuckDBPyConnection,
    events: Sequence[tuple[int, Mapping[str, object]]],
    with_lines: bool,
    now_sql: str,
    timezone: str,
) -> None:
    """The events' rows (`staged_rows`) checked and typed by the import's SQL into the temporary
    table `event_typed`: `typed_select`'s columns plus each row's `event` and `line`."""
    con.register("event_rows", staged_rows(events, with_lines))
    fields = {name: "VARCHAR" for name in STAGED_COLUMNS[3:]}
    typed = typed_select("event_rows", fields, has_lines=with_lines, now_sql=now_sql, timezone=timezone)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE event_typed AS "
        f"SELECT t.*, r.event, r.line FROM ({typed}) t JOIN event_rows r USING (source_line)"
    )
    con.unregister("event_rows")


def _checked_rows(
    con: duckdb.DuckDBPyConnection,
    events: list[tuple[int, Mapping[str, object]]],
    with_lines: bool,
    now_sql: str,
    timezone: str,
) -> dict[int, CheckedEvent]:
    type_event_rows(con, events, with_lines, now_sql, timezone)
    refused = con.execute(
        "SELECT event, arg_min(reason, source_line), arg_min(line, source_line) "
        "FROM event_typed WHERE reason IS NOT NULL GROUP BY event"
    ).fetchall()
    bodies = dict(events)
    result = {}
    for index, reason, line in refused:
        field = REASON_FIELDS.get(Reason(reason), "")
        if line is not None and field in LINE_FIELDS:  # a line's own field is named with its line
            field = f"lines[{line}].{field}"
        result[index] = CheckedEvent(
            index, bodies[index], reason=reason, field=field, message=f"{field}: {reason.replace('_', ' ')}"
        )
    valid = con.execute(
        f"""SELECT t.event, c.order_id, c.customer_id, c.ordered_at, c.content_hash
        FROM ({candidate_orders_sql(with_lines, "event_typed")}) c
        JOIN (SELECT DISTINCT event, order_id FROM event_typed) t USING (order_id)
        WHERE t.event NOT IN (SELECT event FROM event_typed WHERE reason IS NOT NULL)"""
    ).fetchall()
    for index, order_id, customer_id, ordered_at, content_hash in valid:
        result[index] = CheckedEvent(index, bodies[index], order_id, customer_id, ordered_at, content_hash)
    return result
