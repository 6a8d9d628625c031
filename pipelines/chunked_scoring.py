"""`tierwise score` on DuckDB a chunk of customers at a time, so that memory follows the chunk, not
the number of customers (one partition holding a million customers peaks near 5 GB).

Each chunk's rows come from `pipelines.score.tier_rows`, the function that scores one partition
holding everyone, given what a row reads from all customers, as Spark's partitions are
(`pipelines.spark_scoring`). That comes first, from passes over every chunk without reasons:

- the anchored value model's level factor, from exact sums (`Champions.level_sums`, whole numbers)
  added up over the chunks;
- RFMP scores: each component's percentile rank among all customers (`tiering.policy_scores` over
  the components of everyone);
- the share cuts' band floors and the risk flags' high-value cut (`pipelines.score.Population`), from
  every customer's score and predicted value, sorted once.

So a snapshot scored in chunks equals one scored in one partition (a test compares them). The rows
are staged a chunk at a time; offers (one DuckDB job over every customer's id, tier and persona) are
then joined in while the staged chunks are written into the snapshot, which is renamed into place.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.files import export_parquet, write_atomically
from features.settings import Settings
from pipelines.score import (
    OFFER_COLUMNS,
    RETENTION_COLUMNS,
    Population,
    ScoreReport,
    ScoringRun,
    offer_columns,
    predictions,
    previous_snapshot,
    tier_rows,
    with_champions,
    with_offer_columns,
)
from tiering import rfmp_score, share_floors
from tiering.assign import percentile, policy_scores, raw_rfmp_components, reaches_value_tiers
from tiering.risk import high_value_cut
from training.level_anchor import LevelSums

#: Customers scored at a time: a million customers in two chunks peaked at 4.1 GB, offers included
#: (`benchmarks/bench_scale.py --steps score`).
CHUNK_CUSTOMERS = 500_000


def score(
    settings: Settings,
    as_of: date,
    run: ScoringRun,
    output: Path | None = None,
    chunk_customers: int = CHUNK_CUSTOMERS,
) -> ScoreReport:
    """Score the feature snapshot at `as_of` with `run` (`pipelines.score.scoring_run`) chunk by
    chunk and write the tier snapshot (and `output`, if given)."""
    tiers = settings.tier_snapshots(run.policy.name, run.classic)
    path = tiers.path(as_of)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as staging:
        staged, peers, start = [], [], 0
        for number, rows in enumerate(tiered_chunks(settings, as_of, run, chunk_customers)):
            start += len(rows)
            counts.update(rows.tier.value_counts().to_dict())
            peers.append(rows[["customer_id", "tier", "persona"]])
            staged.append(Path(staging) / f"{number}.parquet")
            rows.to_parquet(staged[-1], index=False)
            del rows
        offered = offer_columns(settings, pd.concat(peers, ignore_index=True), run.policy, as_of)
        del peers
        write_atomically(path, lambda partial: _write_with_offers(staged, offered, partial))
    if output is not None:
        export_parquet(path, output)
    champions = run.models.champions
    label = run.policy.name + (" (classic)" if run.classic else "")
    return ScoreReport(as_of, label, path, start, dict(counts), champions.versions, champions.sources)


def tiered_chunks(
    settings: Settings, as_of: date, run: ScoringRun, chunk_customers: int = CHUNK_CUSTOMERS
) -> Iterator[pd.DataFrame]:
    """The tier rows (`tier_rows`, without offers) of every customer of the feature snapshot at
    `as_of`, a chunk at a time, after the passes over all of them that the rows depend on."""
    source = pq.ParquetFile(settings.feature_snapshots.path(as_of))
    tiers = settings.tier_snapshots(run.policy.name, run.classic)

    def chunks() -> Iterator[pd.DataFrame]:
        for batch in source.iter_batches(batch_size=chunk_customers):
            yield pa.Table.from_batches([batch]).to_pandas()

    if run.models.champions.anchored:
        totals = {name: LevelSums() for name in run.models.champions.anchored}
        for chunk in chunks():
            for name, sums in run.models.champions.level_sums(chunk).items():
                totals[name] = totals[name] + sums
        run = with_champions(run, run.models.champions.with_level_factors(totals))
    scores, population = _population(run, chunks())
    previous = previous_snapshot(tiers, as_of, RETENTION_COLUMNS)
    start = 0
    for chunk in chunks():
        mine = None if previous is None else previous[previous.customer_id.isin(chunk.customer_id)]
        part = None if scores is None else scores[start : start + len(chunk)]
        start += len(chunk)
        yield tier_rows(run, chunk, mine, part, population)


def _population(run: ScoringRun, chunks: Iterator[pd.DataFrame]) -> tuple[np.ndarray | None, Population]:
    """Every customer's RFMP score (None for a policy scoring by value: a row's own value), and the
    band floors and high-value cut over all customers, from their predictions (classic: their
    history) chunk by chunk."""
    policy, classic, rfmp = run.policy, run.classic, run.policy.scoring == "rfmp"
    active, values, parts = [], [], []
    for chunk in chunks:
        scored = predictions(run.models, chunk, intervals=False)
        active.append(reaches_value_tiers(scored, policy, classic))
        values.append(scored.expected_value.to_numpy(dtype=float))
        parts.append(
            raw_rfmp_components(scored, classic)
            if rfmp
            else policy_scores(scored, policy, classic).to_frame("score")
        )
    everyone = pd.concat(parts, ignore_index=True)
    scores = rfmp_score(everyone.apply(percentile), policy) if rfmp else None
    value_cut = high_value_cut(pd.Series(np.concatenate(values)))
    floors = None
    if policy.cut_by_share:
        by_score = scores if rfmp else everyone["score"]
        ordered = np.sort(by_score.to_numpy(dtype=float)[np.concatenate(active)])
        floors = share_floors(policy, len(ordered), lambda positions: ordered[positions])
    return None if scores is None else scores.to_numpy(dtype=float), Population(floors, value_cut)


def _write_with_offers(staged: list[Path], offered: pd.DataFrame, partial: Path) -> None:
    """The staged chunks with their offer columns, into one Parquet file, times in microseconds (as
    `features.files.write_frame_atomically` writes them). A text column no chunk fills stays null, as
    pandas writes it in one piece; one some chunks fill is text in all.

    Chunks stay Arrow tables: through pandas each chunk's text (every customer's reasons as JSON)
    was held three times over, which set the scoring job's peak (8.38 GB at a million customers,
    against 5.46 GB while scoring). The pandas metadata, which gives the read-back frame its
    types, is that of the first rows with their offers, as pandas would write them."""
    writer, start = None, 0
    try:
        for path in staged:
            table = pq.read_table(path)
            joined = _with_offer_arrays(table, offered.iloc[start : start + table.num_rows])
            start += table.num_rows
            if writer is None:
                head = with_offer_columns(table.slice(0, 1).to_pandas(), offered.iloc[:1])
                metadata = pa.Table.from_pandas(head, preserve_index=False).schema.metadata
                schema = _unified(joined.schema.with_metadata(metadata), staged)
                writer = pq.ParquetWriter(
                    partial, schema, coerce_timestamps="us", allow_truncated_timestamps=True
                )
            writer.write_table(joined.cast(schema))
            del table, joined
    finally:
        if writer is not None:
            writer.close()


def _with_offer_arrays(table: pa.Table, offered: pd.DataFrame) -> pa.Table:
    """`pipelines.score.with_offer_columns` on an Arrow table: the offer columns before the risk flags."""
    if table.column("customer_id").to_pylist() != offered.customer_id.tolist():
        raise ValueError("offers: not the snapshot's customers in its order")
    offers = pa.Table.from_pandas(offered[OFFER_COLUMNS], preserve_index=False)
    at = table.schema.get_field_index("risk_flags")
    for i, name in enumerate(OFFER_COLUMNS):
        table = table.add_column(at + i, offers.schema.field(name), offers.column(name))
    return table


def _unified(first: pa.Schema, staged: list[Path]) -> pa.Schema:
    """The schema of all chunks, given the first chunk's with its offer columns (`first`) and the
    staged chunks' without them: a column null in some chunks takes the type of those filling it."""
    offers = [first.field(name) for name in OFFER_COLUMNS]
    schemas = [first]
    for path in staged:
        fields = list(pq.read_schema(path).remove_metadata())
        at = [field.name for field in fields].index("risk_flags")
        schemas.append(pa.schema([*fields[:at], *offers, *fields[at:]]))
    return pa.unify_schemas(schemas, promote_options="permissive").with_metadata(first.metadata)
