"""`tierwise score` on Spark: the rows of `pipelines.score`, computed partition by partition.

Each customer's row comes from `pipelines.score.tier_rows`, the function the DuckDB path calls on one
partition holding everyone; here `mapInPandas` calls it on each partition of customers. The run
(champions, next-order and persona models, overrides, order changes) is loaded once on the driver and
broadcast, so every partition scores with the same versions. What a row reads from all customers,
Spark computes exactly (`features.spark_ranks`: distinct values in buckets, counts below each bucket
summed on the driver), never per partition:

- RFMP: each component's average rank among all customers, then `tiering.percentile_of_ranks` and
  `tiering.rfmp_score`, the arithmetic pandas does;
- share cuts: the band floors (`tiering.share_floors`) from exact order statistics of the scores of
  the customers reaching the value tiers;
- the risk flags' high-value cut: pandas' quantile from its two order statistics
  (`tiering.risk.linear_quantile`);
- the value model's level factor (`training.level_anchor`), first, from exact sums of each
  partition's raw predictions and recent spend (whole numbers) added up on the driver.

Offers (`training.offers`, a DuckDB job on order lines) are computed after the Spark part by the
existing DuckDB code on the driver's machine, from three columns of every customer (customer, tier,
persona), and joined in by Spark; `with_offers=False` leaves them out. The snapshot is one file renamed
into place (`features.spark_files`), rows in customer order like the DuckDB path's; timestamps are
written in microseconds, as the DuckDB path writes them (`features.files.write_frame_atomically`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from features.dated_snapshots import DatedSnapshots
from features.files import export_parquet
from features.settings import Settings
from features.spark_files import write_file_per_key
from features.spark_ranks import average_ranks, distinct_values, smallest
from pipelines.home_lock import writes_home
from pipelines.score import (
    OFFER_COLUMNS,
    RETENTION_COLUMNS,
    Population,
    ScoreReport,
    ScoringRun,
    offer_columns,
    predictions,
    scoring_run,
    tier_rows,
    with_champions,
)
from tiering import load_policy, percentile_of_ranks, policy_scores, rfmp_score, share_floors
from tiering.assign import raw_rfmp_components, reaches_value_tiers
from tiering.risk import HIGH_VALUE_SHARE, linear_quantile
from training.level_anchor import LevelSums

#: Customers per partition when the caller does not choose (at least one partition per core).
CUSTOMERS_PER_PARTITION = 100_000
#: Customers scored on the driver first, to learn the rows' column types.
SAMPLE_ROWS = 20
#: Prefix of the previous snapshot's columns beside the features.
PREVIOUS = "previous__"
#: Column of the RFMP score ranked among all customers.
SCORE = "tierwise_score"
#: Column naming the snapshot's date while it is written (dropped from the file).
AS_OF = "tierwise_as_of"
RFMP = ("recency", "frequency", "monetary", "potential")
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


@writes_home
def score(
    settings: Settings,
    as_of: date | None = None,
    policy_name: str = "lifecycle",
    classic: bool = False,
    overrides: Path | None = None,
    output: Path | None = None,
    partitions: int | None = None,
    with_offers: bool = True,
    destination: Path | None = None,
) -> ScoreReport:
    """`pipelines.score.score` on Spark: the same snapshot file, written by Spark.

    Args:
        destination: Where the snapshot goes instead of the tier history (a backtest's tiers).
        partitions: Partitions of customers (default: one per `CUSTOMERS_PER_PARTITION`, at least
            Spark's default parallelism); also the buckets of each exact rank and the partitions of
            the job's shuffles (`spark.sql.shuffle.partitions` while it runs).
    """
    from features.spark_session import spark_session

    features_at = settings.feature_snapshots
    as_of = features_at.choose(as_of)
    policy = load_policy(policy_name)
    tiers = settings.tier_snapshots(policy.name, classic)
    run = scoring_run(settings, as_of, policy, classic, overrides)
    spark = spark_session(settings)
    features = spark.read.parquet(str(features_at.path(as_of)))
    customers = features.count()
    parts = partitions or max(spark.sparkContext.defaultParallelism, -(-customers // CUSTOMERS_PER_PARTITION))
    restore = spark.conf.get(SHUFFLE_PARTITIONS)
    spark.conf.set(SHUFFLE_PARTITIONS, str(parts))  # the ranks' and joins' shuffles too
    shipped = spark.sparkContext.broadcast(run)
    if run.models.champions.anchored:
        run = with_champions(run, run.models.champions.with_level_factors(_level_sums(features, shipped)))
        shipped.unpersist()
        shipped = spark.sparkContext.broadcast(run)
    inputs = _population_inputs(features.repartition(parts, "customer_id"), shipped, run).persist()
    cached = [inputs]
    try:
        scores = _rfmp_scores(inputs, run, parts).persist() if run.policy.scoring == "rfmp" else None
        if scores is not None:
            cached.append(scores)
        population = _population(inputs, scores, run, parts, customers)
        joined = _with_previous(features, tiers, as_of)
        if scores is not None:
            joined = joined.join(scores.select("customer_id", SCORE), "customer_id", "left")
        rows = _rows(joined.repartition(parts, "customer_id"), shipped, run, population, features.columns)
        cached.append(rows.persist())
        if with_offers:
            rows = _with_offers(settings, rows, run, as_of)
        path = destination or tiers.path(as_of)
        path.parent.mkdir(parents=True, exist_ok=True)
        keyed = rows.withColumn(AS_OF, F.lit(as_of.isoformat()))
        write_file_per_key(keyed, AS_OF, {as_of.isoformat(): path}, path.parent, ["customer_id"])
        counts = {tier: int(n) for tier, n in cached[-1].groupBy("tier").count().collect()}
    finally:
        for frame in cached:
            frame.unpersist()
        shipped.unpersist()
        spark.conf.set(SHUFFLE_PARTITIONS, restore)
    if output is not None:
        export_parquet(path, output)
    label = policy.name + (" (classic)" if classic else "")
    champions = run.models.champions
    return ScoreReport(
        as_of, label, path, sum(counts.values()), counts, champions.versions, champions.sources
    )


def _level_sums(features: DataFrame, shipped) -> dict[str, LevelSums]:
    """Per anchored champion, the exact sums of its level factor over all customers: each
    partition's (`Champions.level_sums`, whole numbers) added up on the driver, so the factor is the
    one the DuckDB path computes over everyone at once."""

    def sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        champions = shipped.value.models.champions
        for batch in batches:
            found = champions.level_sums(batch.reset_index(drop=True))
            yield pd.DataFrame(
                {
                    "model": list(found),
                    "prediction": [str(s.prediction) for s in found.values()],
                    "spend": [str(s.spend) for s in found.values()],
                    "finite": [s.finite for s in found.values()],
                }
            )

    schema = "model string, prediction string, spend string, finite boolean"
    totals = {name: LevelSums() for name in shipped.value.models.champions.anchored}
    for name, prediction, spend, finite in features.mapInPandas(sums, schema).collect():
        totals[name] = totals[name] + LevelSums(int(prediction), int(spend), finite)
    return totals


def _population_inputs(features: DataFrame, shipped, run: ScoringRun) -> DataFrame:
    """Per customer, what the population-wide quantities are computed from: whether they reach the
    value tiers, their predicted value, and the raw RFMP components (RFMP) or the score (value)."""
    rfmp = run.policy.scoring == "rfmp"

    def inputs(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        run = shipped.value
        for batch in batches:
            scored = predictions(run.models, batch.reset_index(drop=True), intervals=False)
            out = pd.DataFrame(
                {
                    "customer_id": scored.customer_id.to_numpy(),
                    "active": reaches_value_tiers(scored, run.policy, run.classic),
                    "expected_value": scored.expected_value.to_numpy(dtype=float),
                }
            )
            if rfmp:
                raw = raw_rfmp_components(scored, run.classic)
                for name in RFMP:
                    out[name] = raw[name].to_numpy(dtype=float)
            else:
                out[SCORE] = policy_scores(scored, run.policy, run.classic).to_numpy(dtype=float)
            yield out

    numbers = RFMP if rfmp else (SCORE,)
    schema = "customer_id string, active boolean, expected_value double, " + ", ".join(
        f"{name} double" for name in numbers
    )
    return features.mapInPandas(inputs, schema)


def _population(
    inputs: DataFrame, scores: DataFrame | None, run: ScoringRun, parts: int, customers: int
) -> Population:
    """The population's band floors (over `scores`, the RFMP scores ranked among all customers, or
    the value scores of `inputs`) and high-value cut, both exact."""
    values = distinct_values(inputs, "expected_value", parts)
    value_cut = (
        linear_quantile(values.count, 1 - HIGH_VALUE_SHARE, lambda at: smallest(values, at))
        if customers
        else np.inf
    )
    floors = None
    if run.policy.cut_by_share:
        active = distinct_values((inputs if scores is None else scores).where("active"), SCORE, parts)
        floors = share_floors(run.policy, active.count, lambda at: smallest(active, at))
    return Population(floors, value_cut)


def _rfmp_scores(inputs: DataFrame, run: ScoringRun, parts: int) -> DataFrame:
    """customer_id, active and the RFMP score from each component's exact average rank."""
    ranked, counts = inputs.select("customer_id", "active"), {}
    for name in RFMP:
        values = distinct_values(inputs, name, parts)
        counts[name] = values.count
        ranks = inputs.select("customer_id", F.col(name).alias("value")).join(
            average_ranks(values), "value", "left"
        )
        ranked = ranked.join(ranks.select("customer_id", F.col("rank").alias(name)), "customer_id")
    policy = run.policy

    def weighted(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            components = pd.DataFrame({name: percentile_of_ranks(batch[name], counts[name]) for name in RFMP})
            yield pd.DataFrame(
                {
                    "customer_id": batch.customer_id.to_numpy(),
                    "active": batch.active.to_numpy(),
                    SCORE: rfmp_score(components, policy).to_numpy(dtype=float),
                }
            )

    return ranked.mapInPandas(weighted, f"customer_id string, active boolean, {SCORE} double")


def _with_previous(features: DataFrame, tiers: DatedSnapshots, as_of: date) -> DataFrame:
    """`features` with the previous tier snapshot's retention columns beside each customer's row,
    whichever engine wrote it."""
    previous = tiers.previous(as_of)
    if previous is None:
        return features
    frame = _read_retention(features.sparkSession, tiers.path(previous))
    frame = frame.select(
        *[F.col(c).alias(c if c == "customer_id" else PREVIOUS + c) for c in frame.columns],
        F.lit(True).alias(PREVIOUS + "present"),
    )
    return features.join(frame, "customer_id", "left")


def _read_retention(spark: SparkSession, path: Path) -> DataFrame:
    """The retention columns (`RETENTION_COLUMNS`) the tier snapshot at `path` has.

    Both engines write times in microseconds. Snapshots the DuckDB path wrote before it did hold
    nanoseconds, which Spark refuses to read (in any column of the file): of such a file only the
    retention columns are read, by pyarrow on the driver, their times cut to microseconds (dates:
    nothing is lost), and handed to Spark.
    """
    schema = pq.read_schema(path)
    columns = [column for column in RETENTION_COLUMNS if column in schema.names]
    if not any(pa.types.is_timestamp(field.type) and field.type.unit == "ns" for field in schema):
        return spark.read.parquet(str(path)).select(*columns)
    table = pq.read_table(path, columns=columns)
    micros = [
        pa.field(f.name, pa.timestamp("us", f.type.tz)) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return spark.createDataFrame(table.cast(pa.schema(micros)))


def _rows(
    joined: DataFrame, shipped, run: ScoringRun, population: Population, feature_columns: list[str]
) -> DataFrame:
    """The snapshot rows (`tier_rows`) of each partition of `joined`."""

    def rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        run = shipped.value
        for batch in batches:
            yield _tier_batch(run, batch, population, feature_columns)

    sample = _tier_batch(run, joined.limit(SAMPLE_ROWS).toPandas(), population, feature_columns)
    return joined.mapInPandas(rows, _spark_schema(sample))


def _tier_batch(
    run: ScoringRun, batch: pd.DataFrame, population: Population, feature_columns: list[str]
) -> pd.DataFrame:
    batch = batch.reset_index(drop=True)
    previous = None
    if PREVIOUS + "present" in batch:
        had = batch[PREVIOUS + "present"].eq(True).to_numpy()
        columns = [c for c in batch.columns if c.startswith(PREVIOUS) and c != PREVIOUS + "present"]
        previous = batch.loc[had, ["customer_id", *columns]].rename(
            columns={c: c.removeprefix(PREVIOUS) for c in columns}
        )
    scores = batch[SCORE].to_numpy(dtype=float) if SCORE in batch else None
    return _in_microseconds(tier_rows(run, batch[feature_columns], previous, scores, population))


def _in_microseconds(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with times cut to whole microseconds, what Spark stores (the expected next-order date
    is `as_of` plus fractional days)."""
    for column in rows.columns:
        if pd.api.types.is_datetime64_any_dtype(rows[column]):
            rows[column] = rows[column].dt.floor("us")
    return rows


def _spark_schema(sample: pd.DataFrame):
    """The Spark schema of rows like `sample`; a text column no sampled row fills is text."""
    schema = pa.Schema.from_pandas(sample, preserve_index=False)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in schema]
    return from_arrow_schema(pa.schema(fields))


def _with_offers(settings: Settings, rows: DataFrame, run: ScoringRun, as_of: date) -> DataFrame:
    """`rows` with the offer columns before the risk flags, computed by the DuckDB offers job."""
    peers = rows.select("customer_id", "tier", "persona").toPandas()
    offered = offer_columns(settings, peers, run.policy, as_of)
    schema = "customer_id string, " + ", ".join(f"{c} string" for c in OFFER_COLUMNS)
    frame = rows.sparkSession.createDataFrame(
        offered[["customer_id", *OFFER_COLUMNS]].astype(object).where(offered.notna(), None), schema
    )
    at = rows.columns.index("risk_flags")
    order = [*rows.columns[:at], *OFFER_COLUMNS, *rows.columns[at:]]
    return rows.join(frame, "customer_id", "left").select(*order)
