"""The synthetic generator: deterministic, canonical, internally consistent and heterogeneous enough to learn from."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.data.duck import connect, table_sql
from features.data.schema import ALL_TABLES, ORDER_LINES, ORDERS
from features.data.store import DataStore
from features.data.synth import BLOCK_CUSTOMERS, SYNTH_TABLES, generate
from features.errors import InputError

CUSTOMERS = 1_500
SEED = 11
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def query(store: DataStore, sql: str, version: Path | None = None) -> list[tuple]:
    """Run `sql`, where `{orders}`, `{order_lines}`, ... stand for the tables of `version` (default: live)."""
    version = version or store.live_version()
    tables = {name: table_sql(version, name) for name in ALL_TABLES}
    return connect().execute(sql.format(**tables)).fetchall()


def frame(store: DataStore, table: str, order_by: str) -> pd.DataFrame:
    sql = f"SELECT * FROM {table_sql(store.live_version(), table)} ORDER BY {order_by}"
    return connect().execute(sql).df()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> DataStore:
    """1,500 customers written in three chunks. Read-only."""
    store = DataStore(tmp_path_factory.mktemp("synth"))
    generate(store, CUSTOMERS, SEED, chunk_customers=500, now=NOW)
    return store


def test_the_same_seed_gives_the_same_tables_whatever_the_chunk_size(synth: DataStore, tmp_path: Path):
    other = DataStore(tmp_path)
    generate(other, CUSTOMERS, SEED, chunk_customers=10_000, now=NOW)
    assert len(list((synth.live_version() / "orders" / "month=2024-06").glob("*.parquet"))) == 3
    assert len(list((other.live_version() / "orders" / "month=2024-06").glob("*.parquet"))) == 1
    keys = {
        "orders": "order_id",
        "order_lines": "order_id, line_number",
        "customers": "customer_id",
        "products": "product_id",
        "campaigns": "campaign_id",
        "campaign_recipients": "campaign_id, customer_id",
        "coupon_redemptions": "customer_id, coupon_id, campaign_id, redeemed_at",
    }
    for table, order_by in keys.items():
        pd.testing.assert_frame_equal(frame(synth, table, order_by), frame(other, table, order_by), obj=table)


def test_a_different_seed_gives_different_orders(synth: DataStore, tmp_path: Path):
    other = DataStore(tmp_path)
    generate(other, CUSTOMERS, SEED + 1, now=NOW)
    mine, theirs = (frame(s, "orders", "order_id") for s in (synth, other))
    assert not mine[["order_id", "ordered_at", "amount"]].equals(theirs[["order_id", "ordered_at", "amount"]])
    assert not set(mine["content_hash"]) & set(theirs["content_hash"])


def test_every_table_has_the_canonical_columns_and_types(synth: DataStore):
    for spec in (*SYNTH_TABLES, ALL_TABLES["imports"]):
        described = query(synth, f"DESCRIBE SELECT * FROM {{{spec.name}}}")
        assert [(name, sql_type) for name, sql_type, *_ in described] == [
            (c.name, c.sql_type.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")) for c in spec.columns
        ], spec.name
        assert query(synth, f"SELECT count(*) FROM {{{spec.name}}}")[0][0] > 0, spec.name


def test_timestamps_are_utc_microseconds_and_month_is_only_the_folder(synth: DataStore):
    for table in (ORDERS, ORDER_LINES):
        files = sorted((synth.live_version() / table.name).glob("month=*/part-synth-*.parquet"))
        assert len(files) == 12 * 3
        schema = pq.read_schema(files[0])
        assert "month" not in schema.names
        assert str(schema.field("ordered_at").type) == "timestamp[us, tz=UTC]"
    for table in ("campaigns", "coupon_redemptions", "imports"):
        (file,) = (synth.live_version() / table).glob("*.parquet")
        assert all(
            str(f.type) == "timestamp[us, tz=UTC]" for f in pq.read_schema(file) if "timestamp" in str(f.type)
        )


def test_orders_agree_with_their_lines(synth: DataStore):
    mismatches = query(
        synth,
        """SELECT count(*) FROM {orders} o JOIN (
               SELECT order_id, sum(amount) amount, sum(discount) discount, sum(coupon_discount) coupon,
                      sum(quantity) items, count(*) lines, min(line_number) first, max(line_number) last,
                      count(DISTINCT line_number) numbers, any_value(customer_id) customer_id,
                      min(ordered_at) t0, max(ordered_at) t1
               FROM {order_lines} GROUP BY order_id) l USING (order_id)
           WHERE abs(o.amount - l.amount) > 1e-6 OR abs(o.discount - l.discount) > 1e-6
              OR abs(o.coupon_discount - l.coupon) > 1e-6 OR abs(o.items - l.items) > 1e-6
              OR o.lines != l.lines OR l.first != 1 OR l.last != l.lines OR l.numbers != l.lines
              OR o.customer_id != l.customer_id OR o.ordered_at != l.t0 OR l.t0 != l.t1""",
    )
    assert mismatches == [(0,)]
    counts = query(
        synth, "SELECT (SELECT count(*) FROM {orders}), (SELECT count(DISTINCT order_id) FROM {order_lines})"
    )
    assert counts[0][0] == counts[0][1]


def test_flags_signs_and_discounts_are_consistent(synth: DataStore):
    (line,) = query(
        synth,
        """SELECT count(*) FILTER (WHERE is_return != (amount < 0 OR quantity < 0)),
                  count(*) FILTER (WHERE is_zero_value != (amount = 0 OR quantity = 0)),
                  count(*) FILTER (WHERE discount < coupon_discount - 1e-9 OR coupon_discount < 0),
                  avg(is_return::INT), avg(is_zero_value::INT), avg((coupon_discount > 0)::INT)
           FROM {order_lines}""",
    )
    assert line[:3] == (0, 0, 0)
    assert 0 < line[3] < 0.01 and 0.001 < line[4] < 0.02 and line[5] > 0
    (order,) = query(
        synth,
        """SELECT count(*) FILTER (WHERE is_return != (amount < 0) OR is_zero_value != (amount = 0)),
                  count(DISTINCT content_hash) = count(*), min(length(content_hash)),
                  count(DISTINCT import_id), any_value(import_id)
           FROM {orders}""",
    )
    assert order == (0, True, 32, 1, f"synth-{SEED}-{CUSTOMERS}")


def test_the_month_folder_is_the_month_of_the_order(synth: DataStore):
    for table in ("orders", "order_lines"):
        wrong = query(synth, f"SELECT count(*) FROM {{{table}}} WHERE month != strftime(ordered_at, '%Y-%m')")
        assert wrong == [(0,)], table


def test_keys_are_unique(synth: DataStore):
    for spec in SYNTH_TABLES:
        keys = ", ".join(spec.key)
        duplicates = query(
            synth,
            f"SELECT count(*) FROM (SELECT {keys} FROM {{{spec.name}}} GROUP BY ALL HAVING count(*) > 1)",
        )
        assert duplicates == [(0,)], spec.name


def test_nothing_falls_outside_the_period(tmp_path: Path):
    store = DataStore(tmp_path)
    start, days = date(2023, 11, 20), 60
    generate(store, 600, 3, start=start, days=days)
    first = datetime(2023, 11, 20, tzinfo=UTC)
    end = first + timedelta(days=days)
    (bounds,) = query(
        store,
        """SELECT (SELECT min(ordered_at) FROM {order_lines}), (SELECT max(ordered_at) FROM {order_lines}),
                  (SELECT min(start_date) FROM {campaigns}), (SELECT max(end_date) FROM {campaigns}),
                  (SELECT min(redeemed_at) FROM {coupon_redemptions}),
                  (SELECT max(redeemed_at) FROM {coupon_redemptions}),
                  (SELECT count(*) FROM {orders} WHERE epoch_us(ordered_at) % 1000000 != 0)""",
    )
    assert first <= bounds[0] and bounds[1] < end
    assert first <= bounds[2] and bounds[3] < end
    assert first <= bounds[4] and bounds[5] < end
    assert bounds[6] == 0, "order times are whole seconds"
    months = query(store, "SELECT DISTINCT month FROM {orders} ORDER BY month")
    assert months == [("2023-11",), ("2023-12",), ("2024-01",)]


def test_customers_are_heterogeneous(synth: DataStore):
    three_quarters = datetime(2024, 10, 1, tzinfo=UTC)
    (stats,) = query(
        synth,
        f"""WITH c AS (SELECT customer_id, count(*) AS n, min(ordered_at) AS first, max(ordered_at) AS last
                       FROM {{orders}} GROUP BY customer_id)
            SELECT stddev_pop(n) / avg(n), max(n) / median(n),
                   count(*) FILTER (WHERE first < '{three_quarters}' AND last < '{three_quarters}')
                       / count(*) FILTER (WHERE first < '{three_quarters}'),
                   count(*) FILTER (WHERE first >= '{three_quarters}') / count(*),
                   count(*)
            FROM c""",
    )
    cv, top_vs_median, churned, new_late, customers = stats
    assert customers == CUSTOMERS, "every customer has at least one order"
    assert cv > 1
    assert top_vs_median > 5
    assert 0.05 < churned < 0.35
    assert 0.05 < new_late < 0.35


def test_seasonality_shows_in_days_and_hours(synth: DataStore):
    by_hour = dict(query(synth, "SELECT hour(ordered_at), count(*) FROM {orders} GROUP BY 1"))
    assert by_hour[3] * 10 < by_hour[10] and by_hour[3] * 10 < by_hour[19]
    by_weekday = dict(query(synth, "SELECT isodow(ordered_at), count(*) FROM {orders} GROUP BY 1"))
    assert by_weekday[7] > by_weekday[3] * 1.15  # Sunday over Wednesday
    (december,) = query(
        synth,
        """SELECT count(*) FILTER (WHERE month = '2024-12') / count(*) FILTER (WHERE month = '2024-11')
           FROM {orders}""",
    )
    assert december[0] > 1.05


def test_households_products_and_stores_look_like_a_shop(synth: DataStore):
    (customers,) = query(
        synth,
        """SELECT count(*), avg((age_band IS NOT NULL)::INT), count(DISTINCT income_band),
                  count(DISTINCT household_comp) FROM {customers}""",
    )
    assert customers[0] == CUSTOMERS and 0.25 < customers[1] < 0.45
    assert customers[2] >= 10 and customers[3] == 4
    (products,) = query(
        synth,
        "SELECT count(*), count(DISTINCT department), avg(is_private_label::INT), count(DISTINCT brand) FROM {products}",
    )
    assert (
        products[0] >= 5_000 and 15 <= products[1] <= 30 and 0.15 < products[2] < 0.25 and products[3] > 100
    )
    (orders,) = query(
        synth,
        """SELECT count(DISTINCT store_id), median(amount), avg(lines),
                  avg(home) FROM (SELECT *, (store_id = mode(store_id) OVER (PARTITION BY customer_id))::INT AS home
                                  FROM {orders})""",
    )
    assert 12 <= orders[0] <= 60
    assert 25 < orders[1] < 45, "median basket value"
    assert 5 < orders[2] < 13, "lines per basket"
    assert orders[3] > 0.85, "customers mostly use one store"


def test_coupon_redemptions_match_campaigns_recipients_and_orders(synth: DataStore):
    (checks,) = query(
        synth,
        """WITH r AS (SELECT * FROM {coupon_redemptions}),
                coupon_days AS (SELECT DISTINCT customer_id, date_trunc('day', ordered_at) AS day
                                FROM {orders} WHERE coupon_discount > 0)
           SELECT (SELECT count(*) FROM r),
                  (SELECT count(*) FROM r JOIN {campaigns} c USING (campaign_id)
                   WHERE r.redeemed_at < c.start_date OR r.redeemed_at > c.end_date),
                  (SELECT count(*) FROM r ANTI JOIN {campaign_recipients} USING (campaign_id, customer_id)),
                  (SELECT count(*) FROM r ANTI JOIN coupon_days d
                   ON d.customer_id = r.customer_id AND d.day = r.redeemed_at),
                  (SELECT count(*) FROM coupon_days d ANTI JOIN r
                   ON d.customer_id = r.customer_id AND d.day = r.redeemed_at),
                  (SELECT count(DISTINCT customer_id) FROM {campaign_recipients})""",
    )
    redemptions, outside_campaign, not_recipient, without_order, order_without_row, recipients = checks
    assert redemptions > 50
    assert (outside_campaign, not_recipient, without_order, order_without_row) == (0, 0, 0, 0)
    assert 0.2 * CUSTOMERS < recipients < CUSTOMERS


def test_the_imports_row_reconciles(synth: DataStore):
    (row,) = query(
        synth,
        """SELECT i.*, (SELECT count(*) FROM {order_lines}) AS lines, (SELECT count(*) FROM {orders}) AS orders
           FROM {imports} i""",
    )
    import_id, source, _sha, started_at, read, accepted, quarantined, added, present, lines, orders = row
    assert (import_id, source) == (f"synth-{SEED}-{CUSTOMERS}", f"synth:customers={CUSTOMERS},seed={SEED}")
    assert started_at == NOW
    assert read == accepted == lines and quarantined == 0
    assert added == orders and present == 0


def test_generating_again_replaces_the_data_and_keeps_the_previous_version_intact(tmp_path: Path):
    store = DataStore(tmp_path)
    first = generate(store, 600, 1, now=NOW)
    previous = store.live_version()
    later = NOW + timedelta(days=1)
    generate(store, 600, 2, now=later)
    assert query(store, "SELECT DISTINCT import_id FROM {orders}") == [("synth-2-600",)]
    assert query(store, "SELECT import_id, started_at FROM {imports} ORDER BY 1") == [
        ("synth-1-600", NOW),
        ("synth-2-600", later),
    ]
    generate(store, 600, 2, now=later + timedelta(days=1))
    assert query(store, "SELECT count(*), max(started_at) FROM {imports}") == [(2, later + timedelta(days=1))]
    assert store.live_version() != previous
    before_last = sorted(store.versions_dir.iterdir())[0]
    assert query(store, "SELECT started_at FROM {imports} WHERE import_id = 'synth-2-600'", before_last) == [
        (later,)
    ], "the hard-linked log file of the previous version was not written through"
    assert first.orders > 0


def test_report_and_progress(tmp_path: Path):
    calls: list[tuple[int, int]] = []
    report = generate(
        DataStore(tmp_path), 1_200, 5, chunk_customers=BLOCK_CUSTOMERS, on_chunk=lambda *a: calls.append(a)
    )
    assert calls == [(500, 1_200), (1_000, 1_200), (1_200, 1_200)]
    counts = query(
        DataStore(tmp_path),
        "SELECT (SELECT count(*) FROM {orders}), (SELECT count(*) FROM {order_lines}), (SELECT count(*) FROM {products})",
    )
    assert (report.customers, report.orders, report.order_lines, report.products) == (1_200, *counts[0])
    assert report.seconds > 0


@pytest.mark.parametrize(("argument", "value"), [("customers", 0), ("seed", -1), ("days", 0)])
def test_bad_arguments_are_refused(tmp_path: Path, argument: str, value: int):
    arguments = {"customers": 100, "seed": 1, "days": 30} | {argument: value}
    with pytest.raises(InputError, match=argument):
        generate(DataStore(tmp_path), arguments["customers"], arguments["seed"], days=arguments["days"])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> DataStore:
    """2,000 customers of one acquisition cohort whose order rate halves every 60 days. Read-only."""
    store = DataStore(tmp_path_factory.mktemp("cohort"))
    generate(store, 2_000, SEED, start=date(2024, 1, 1), half_life_days=60, now=NOW)
    return store


def test_a_cohort_joins_in_its_first_weeks(cohort: DataStore):
    ((latest_first, customers),) = query(
        cohort,
        "SELECT max(first), count(*) FROM (SELECT min(ordered_at) AS first FROM {orders} GROUP BY customer_id)",
    )
    assert customers == 2_000
    assert latest_first < datetime(2024, 2, 5, tzinfo=UTC)


def test_a_cohorts_order_rate_halves_every_half_life(cohort: DataStore):
    ((early, late),) = query(
        cohort,
        """SELECT count(*) FILTER (ordered_at >= '2024-02-05' AND ordered_at < '2024-04-05'),
                  count(*) FILTER (ordered_at >= '2024-04-05' AND ordered_at < '2024-06-04')
           FROM {orders}""",
    )
    assert 0.35 < late / early < 0.6  # a half, less those who dropped out; a steady shop grows instead


def test_a_half_life_must_be_positive(tmp_path: Path):
    with pytest.raises(InputError, match="half_life_days"):
        generate(DataStore(tmp_path), 600, 1, half_life_days=0)
