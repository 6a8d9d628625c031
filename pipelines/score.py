"""`tierwise score`: every customer's predictions and tier at a date, as a dated snapshot.

Features come from the snapshot file Feast's offline store serves for that date, predictions from
the champions (`training.champions.predict`, the service's own arithmetic: a model without a
champion is answered by its baseline there too, and `<model>_source` says which), tiers from the
policy core (`tiering`), with retention against the previous snapshot and manual overrides, and beside them
each customer's next-order answers (`training.next_order`), persona (`training.personas`) and
offers (`training.offers`). The snapshot
`data/tiers/<policy>/<date>.parquet` is written atomically and rewritten identically when the same
date is scored again.

`tier_rows` computes the rows of any set of customers, given what they need from all customers
(`Population`, and the value model's level factor over everyone, `training.level_anchor`, which the
snapshot keeps in `customer_value_level_factor` for the service); here it runs once over everyone,
on Spark once per partition (`pipelines.spark_scoring`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.dated_snapshots import DatedSnapshots
from features.errors import InputError
from features.files import export_parquet, write_frame_atomically
from features.model_table import MODELS, PREDICTION_COLUMNS
from features.settings import Settings
from pipelines.home_lock import writes_home
from tiering import Policy, apply_overrides, apply_retention, assign_tiers, load_overrides, load_policy
from tiering.risk import risk_flags
from training import champions as champion_models
from training import offers, registry
from training.next_order import OUTPUTS, NextOrderModel, expected_dates
from training.personas import PersonaModel, champion_personas

#: The columns of the previous snapshot that retention reads.
RETENTION_COLUMNS = ["customer_id", "tier", "below_since", "change"]
HISTORY_COLUMNS = ["days_since_last_order", "tenure_days", "orders_365d", "spend_365d", "spend_trend_90d"]


@dataclass(frozen=True)
class ScoreReport:
    as_of: date
    policy: str
    path: Path
    customers: int
    tier_counts: dict[str, int]
    model_versions: dict[str, int]
    model_sources: dict[str, str]
    #: Answers stored for the service (`serving.answers`), or why none were.
    answers: int = 0
    answers_note: str | None = None


def previous_snapshot(snapshots: DatedSnapshots, as_of: date, columns: list[str]) -> pd.DataFrame | None:
    """The latest tier snapshot strictly before `as_of` (only `columns`, those it has), or None."""
    previous = snapshots.previous(as_of)
    return None if previous is None else snapshots.read(previous, columns)


@writes_home
def score(
    settings: Settings,
    as_of: date | None = None,
    policy_name: str = "lifecycle",
    classic: bool = False,
    overrides: Path | None = None,
    output: Path | None = None,
    chunk_customers: int | None = None,
) -> ScoreReport:
    """Score and tier every customer of the feature snapshot at `as_of` (default: the latest) and write
    the dated tier snapshot (and `output`, if given). With `settings.engine == "spark"` Spark computes
    it partition by partition (`pipelines.spark_scoring`); on DuckDB a snapshot of more than
    `chunk_customers` (default `pipelines.chunked_scoring.CHUNK_CUSTOMERS`) is scored a chunk at a
    time, the same rows in bounded memory. Scoring the latest snapshot with the served policy also
    stores every customer's answer for the service (`publish_answers`)."""
    from pipelines import chunked_scoring

    chunk_customers = chunk_customers or chunked_scoring.CHUNK_CUSTOMERS
    if settings.engine == "spark":
        from pipelines import spark_scoring

        report = spark_scoring.score(settings, as_of, policy_name, classic, overrides, output)
    elif _customers(settings, as_of) > chunk_customers:
        as_of = settings.feature_snapshots.choose(as_of)
        run = scoring_run(settings, as_of, load_policy(policy_name), classic, overrides)
        report = chunked_scoring.score(settings, as_of, run, output, chunk_customers)
    else:
        as_of, snapshot, champions = tier_snapshot(settings, as_of, policy_name, classic, overrides)
        path = write_frame_atomically(
            snapshot, settings.tier_snapshots(load_policy(policy_name).name, classic).path(as_of)
        )
        if output is not None:
            export_parquet(path, output)  # what the snapshot holds, as every engine exports it
        counts = snapshot["tier"].value_counts().to_dict()
        report = ScoreReport(
            as_of,
            snapshot["policy"].iloc[0],
            path,
            len(snapshot),
            counts,
            champions.versions,
            champions.sources,
        )
    answers, note = publish_answers(settings, load_policy(policy_name), classic, report.as_of)
    return replace(report, answers=answers, answers_note=note)


def assigned_tiers(
    settings: Settings,
    as_of: date,
    policy_name: str,
    classic: bool = False,
    chunk_customers: int | None = None,
) -> pd.DataFrame:
    """`customer_id` and `tier` of every customer as `score` tiers them at `as_of`, on the same engine
    and path (Spark, chunks of `chunk_customers`, or one partition), without offers and written
    nowhere a reader looks: the tier history stays as it was (a policy backtest's tiers)."""
    from pipelines import chunked_scoring

    chunk_customers = chunk_customers or chunked_scoring.CHUNK_CUSTOMERS
    as_of = settings.feature_snapshots.choose(as_of)
    columns = ["customer_id", "tier"]
    if settings.engine == "spark":
        from pipelines import spark_scoring

        settings.spark_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="tiers-", dir=settings.spark_dir) as scratch:
            path = Path(scratch) / "tiers.parquet"
            spark_scoring.score(settings, as_of, policy_name, classic, with_offers=False, destination=path)
            return pd.read_parquet(path, columns=columns)
    if _customers(settings, as_of) > chunk_customers:
        run = scoring_run(settings, as_of, load_policy(policy_name), classic, None)
        chunks = chunked_scoring.tiered_chunks(settings, as_of, run, chunk_customers)
        return pd.concat([rows[columns] for rows in chunks], ignore_index=True)
    return tier_snapshot(settings, as_of, policy_name, classic, with_offers=False)[1][columns]


def _customers(settings: Settings, as_of: date | None) -> int:
    """Customers in the feature snapshot at `as_of` (default: the latest), from its footer."""
    snapshots = settings.feature_snapshots
    return pq.read_metadata(snapshots.path(snapshots.choose(as_of))).num_rows


def publish_answers(settings: Settings, policy: Policy, classic: bool, as_of: date) -> tuple[int, str | None]:
    """Store every customer's answer at `as_of` for the service (`serving.answers.publish`), when the
    service answers from this snapshot: the served policy (`TIERWISE_POLICY`), not classic, the
    latest feature snapshot, and the online store holding it. Returns how many were stored, or 0
    and why none were."""
    from features import feature_store
    from features.feature_repo import ANSWER_VIEW
    from serving import answers
    from serving.config import ServeConfig
    from serving.predictor import Predictor

    served = ServeConfig.from_env()
    if classic or policy.name != served.policy:
        return 0, f"answers not stored: the service answers with the {served.policy} policy"
    if as_of != settings.feature_snapshots.dates()[-1]:
        return 0, "answers not stored: the service answers from the latest snapshot"
    if not (settings.feature_repo_dir / "registry.db").exists():
        return 0, "answers not stored: no online store yet (`tierwise features materialize`)"
    store = feature_store.open_store(settings)
    if ANSWER_VIEW not in {view.name for view in store.list_feature_views()}:
        feature_store.apply(settings)  # a home registered before answers existed gets the view (idempotent)
    try:
        predictor = Predictor(settings, policy.name, served.reason_excluded_views)
        return answers.publish(settings, predictor, as_of).answers, None
    except InputError as exc:
        return 0, f"answers not stored: {exc}"


def tier_snapshot(
    settings: Settings,
    as_of: date | None = None,
    policy_name: str = "lifecycle",
    classic: bool = False,
    overrides: Path | None = None,
    with_offers: bool = True,
) -> tuple[date, pd.DataFrame, champion_models.Champions]:
    """The tier snapshot `score` writes, computed without writing anything: its date, the snapshot
    and what answered each model (`Champions`: versions and sources). Retention reads the tier
    history before `as_of`; `with_offers=False` leaves the offers out (a tier backtest needs only
    tiers). Always in this process (DuckDB and pandas): `tier_rows` over one partition holding every
    customer."""
    features_at = settings.feature_snapshots
    as_of = features_at.choose(as_of)
    policy = load_policy(policy_name)
    tiers = settings.tier_snapshots(policy.name, classic)
    # The Parquet reads run in Arrow's threads while MLflow starts and loads the models (mostly Python).
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = pool.submit(features_at.read, as_of)
        reading_previous = pool.submit(previous_snapshot, tiers, as_of, RETENTION_COLUMNS)
        run = scoring_run(settings, as_of, policy, classic, overrides)
        features, previous = reading.result(), reading_previous.result()
    run = with_champions(run, run.models.champions.at_level_of(features))
    snapshot = tier_rows(run, features, previous)
    if with_offers:
        snapshot = with_offer_columns(snapshot, offer_columns(settings, snapshot, policy, as_of))
    return as_of, snapshot, run.models.champions


@dataclass(frozen=True)
class ScoringModels:
    """Every model scoring reads, loaded once per run (on Spark: on the driver, then shipped to the
    workers), so every customer of a snapshot is scored by the same versions.

    Attributes:
        champions: The three champions (predictions, intervals, reasons).
        next_order: The champion next-order model, or None before one was trained.
        personas: The champion persona model with staff's names, or None before the first fit.
        excluded_views: Feature views never given as reasons (`TIERWISE_REASONS_EXCLUDE`).
    """

    champions: champion_models.Champions
    next_order: NextOrderModel | None
    personas: PersonaModel | None
    excluded_views: frozenset[str]


@dataclass(frozen=True)
class ScoringRun:
    """What scoring a customer reads besides their own rows: the date, the policy and mode, the
    models, the overrides in force and the tier changes order events made since the previous snapshot.

    Attributes:
        overrides: `tiering.load_overrides` of the home's (or the given) overrides file, or None.
        order_changes: Customer id to the order event that moved them (`_order_changes`).
    """

    as_of: date
    policy: Policy
    classic: bool
    models: ScoringModels
    overrides: pd.DataFrame | None
    order_changes: dict[str, dict]


@dataclass(frozen=True)
class Population:
    """What tiering one customer reads from all customers, when a partition holds only some of them:
    the share cuts' band floors over the customers reaching the value tiers (`tiering.share_floors`;
    None when the policy cuts by `min_value`) and the high-value cut of the risk flags
    (`tiering.risk.high_value_cut`). RFMP scores, percentile ranks among all customers, come per
    customer beside the partition's rows."""

    floors: np.ndarray | None
    value_cut: float


def scoring_run(
    settings: Settings, as_of: date, policy: Policy, classic: bool, overrides: Path | None = None
) -> ScoringRun:
    """Load what a scoring run at `as_of` reads besides the customers (models from the home's
    registry, which this configures)."""
    from serving.config import ServeConfig

    registry.configure(settings)
    found = registry.load_next_order()
    models = ScoringModels(
        champion_models.load_champions(),
        None if found is None else found[0],
        champion_personas(settings),
        ServeConfig.from_env().reason_excluded_views,
    )
    overrides_path = overrides or _default_overrides(settings)
    return ScoringRun(
        as_of,
        policy,
        classic,
        models,
        None if overrides_path is None else load_overrides(overrides_path),
        _order_changes(settings, settings.tier_snapshots(policy.name, classic), as_of),
    )


def with_champions(run: ScoringRun, champions: champion_models.Champions) -> ScoringRun:
    """`run` scoring with `champions` (the same, with the level factors of the scored population:
    `Champions.at_level_of`, on Spark `Champions.with_level_factors`)."""
    return replace(run, models=replace(run.models, champions=champions))


def predictions(
    models: ScoringModels,
    features: pd.DataFrame,
    explain: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
    intervals: bool = True,
) -> pd.DataFrame:
    """The champions' predictions (with intervals, unless `intervals` is False) for each row of
    `features`, and the history columns tiering reads beside them; `explain` as in
    `training.champions.predict`."""
    scored = champion_models.predict(models.champions, features, explain, intervals)
    scored[HISTORY_COLUMNS] = features[HISTORY_COLUMNS]
    return scored


def tier_rows(
    run: ScoringRun,
    features: pd.DataFrame,
    previous: pd.DataFrame | None,
    scores: np.ndarray | None = None,
    population: Population | None = None,
) -> pd.DataFrame:
    """The tier snapshot's rows (all but the offers) of the customers in `features`: predictions,
    tier after retention, order events and overrides, reasons, next-order answers, persona, risk
    flags. Row by row, given what comes from all customers.

    Args:
        run: The run (`scoring_run`), its champions at the level of the whole population
            (`Champions.at_level_of`; otherwise anchored models answer unscaled).
        features: Feature snapshot rows, one per customer.
        previous: The previous tier snapshot's `RETENTION_COLUMNS` (rows of other customers are ignored),
            or None.
        scores: Policy scores per row of `features` ranked among all customers (RFMP); default:
            `tiering.policy_scores` over `features`.
        population: Band floors and high-value cut over all customers; default: over `features`.
            Without both, `features` must hold every customer (the DuckDB path).
    """
    policy, as_of = run.policy, run.as_of
    reasons = _Reasons(run.models, features)
    scored = predictions(run.models, features, reasons.explain)
    floors = None if population is None else population.floors
    assigned = assign_tiers(scored, policy, classic=run.classic, scores=scores, floors=floors)
    kept = apply_retention(assigned, previous, as_of, policy=policy)
    kept = _name_order_changes(kept, run.order_changes)
    if run.overrides is not None:
        kept = apply_overrides(kept, run.overrides, as_of, policy=policy)
    intervals = [
        c
        for c in scored.columns
        if c.endswith(("_low", "_high")) and c.rsplit("_", 1)[0] in PREDICTION_COLUMNS
    ]
    snapshot = _beside(scored[["customer_id", *PREDICTION_COLUMNS, *intervals]], kept)
    snapshot = _beside(snapshot, reasons.frame(scored))
    snapshot = _beside(snapshot, _next_order(run.models.next_order, features, as_of))
    snapshot = _beside(snapshot, _personas(run.models.personas, features))
    snapshot["risk_flags"] = risk_flags(snapshot, None if population is None else population.value_cut)
    snapshot["as_of"] = pd.Timestamp(as_of, tz="UTC")
    snapshot["horizon_days"] = run.models.champions.horizon_days
    snapshot["policy"] = policy.name + (" (classic)" if run.classic else "")
    for name, version in run.models.champions.versions.items():
        snapshot[MODELS[name].version_column] = version
    for name, source in run.models.champions.sources.items():
        snapshot[f"{name}_source"] = source
    for name, column in champion_models.LEVEL_FACTOR_COLUMNS.items():
        snapshot[column] = run.models.champions.level_factor(name)
    return snapshot


#: The snapshot's offer columns (`training.offers.joined`), before the risk flags.
OFFER_COLUMNS = ["offers", "offer_reasons"]


def with_offer_columns(snapshot: pd.DataFrame, offered: pd.DataFrame) -> pd.DataFrame:
    """`snapshot` with the offer columns of `offered` (customer_id and `OFFER_COLUMNS`, the same
    customers in the same order) in their place, before the risk flags."""
    if not np.array_equal(snapshot.customer_id.to_numpy(), offered.customer_id.to_numpy()):
        raise ValueError("offers: not the snapshot's customers in its order")
    at = snapshot.columns.get_loc("risk_flags")
    return pd.concat(
        [
            snapshot.iloc[:, :at].reset_index(drop=True),
            offered[OFFER_COLUMNS].reset_index(drop=True),
            snapshot.iloc[:, at:].reset_index(drop=True),
        ],
        axis=1,
    )


def _order_changes(settings: Settings, tiers: DatedSnapshots, as_of: date) -> dict[str, dict]:
    """Tier changes order events made since the previous snapshot, by customer: the service moved
    the customer when the order came (`serving.events`)."""
    if not settings.events_path.exists():
        return {}
    from features.data.event_log import EventLog

    earlier = [day for day in tiers.dates() if day < as_of]
    log = EventLog(settings.events_path)
    try:
        return log.tier_changes_by_orders(earlier[-1] if earlier else None, as_of)
    finally:
        log.close()


def _name_order_changes(kept: pd.DataFrame, changes: dict[str, dict]) -> pd.DataFrame:
    """Name the order event in the reason of a tier change it made ("order web-1 on 2017-12-05 moved
    Dormant → Silver at once: ..."), so the batch keeps the change with what caused it."""
    if not changes:
        return kept
    kept = kept.copy()
    for position in np.flatnonzero(kept.customer_id.isin(list(changes)) & kept.change.ne("kept")):
        found = changes[kept.customer_id.iat[position]]
        day = found["ordered_at"][:10]
        prefix = f"order {found['order_id']} on {day} moved {found['from_tier'] or 'none'} → {found['to_tier']} at once: "
        kept.iat[position, kept.columns.get_loc("reason")] = prefix + kept.reason.iat[position]
    return kept


class _Reasons:
    """Each model's top reasons per customer, with the same exclusions (`TIERWISE_REASONS_EXCLUDE`),
    in two columns: the sentences the API gives, " | "-joined (`<model>_reasons`, so staff and a CRM
    read the why beside the tier), and the reasons exactly as the API answers them, as JSON
    (`<model>_reason_details`, so the service's stored answers are rendered from the snapshot,
    `serving.answers.publish`); none where the model does not answer (growth of a lapsed customer).

    Made from the contributions each champion predicted from (`explain`, called by `predictions`),
    so scoring runs one LightGBM pass per model, as the service does. Only the two text columns are
    kept between models."""

    def __init__(self, models: ScoringModels, features: pd.DataFrame) -> None:
        self.models = models
        self.customers = features["customer_id"].to_numpy()
        self.texts: dict[str, tuple[pd.arrays.StringArray, pd.arrays.StringArray]] = {}

    def explain(self, name: str, matrix: np.ndarray, contributions: np.ndarray) -> None:
        from serving.predictor import TOP_REASONS
        from training.reasons import reason_details

        bundle = self.models.champions.bundles[name]
        sentences, details = reason_details(
            bundle, matrix, TOP_REASONS, contributions, self.models.excluded_views
        )
        self.texts[name] = (pd.array(sentences, dtype="string"), pd.array(details, dtype="string"))

    def frame(self, scored: pd.DataFrame) -> pd.DataFrame:
        from serving.answers import REASON_DETAIL_COLUMNS

        frame = pd.DataFrame({"customer_id": self.customers})
        for name in self.models.champions.sources:  # a model answered by its baseline has no reasons
            for column in (REASON_COLUMNS[name], REASON_DETAIL_COLUMNS[name]):
                frame[column] = pd.array([None] * len(frame), dtype="string")
        for name, (sentences, details) in self.texts.items():
            answered = scored[MODELS[name].output].notna().to_numpy()
            frame[REASON_COLUMNS[name]] = pd.Series(sentences).where(answered, None).array
            frame[REASON_DETAIL_COLUMNS[name]] = pd.Series(details).where(answered, None).array
        return frame


#: Snapshot columns of each model's reasons.
REASON_COLUMNS = {name: f"{name}_reasons" for name in MODELS}

#: Snapshot columns of the next-order model (`pipelines.next_order`); null before it is trained.
NEXT_ORDER_COLUMNS = [*OUTPUTS, "expected_next_order_date"]


def _next_order(model: NextOrderModel | None, features: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Each customer's P(order within 7 and 30 days) and expected next-order date from the champion
    next-order model (null columns before one was trained)."""
    frame = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    if model is None:
        for column in OUTPUTS:
            frame[column] = pd.Series(np.nan, index=frame.index, dtype="float64")
        frame["expected_next_order_date"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
        return frame
    answers = model.predict(features).reset_index(drop=True)
    frame[list(OUTPUTS)] = answers[list(OUTPUTS)].to_numpy()
    frame["expected_next_order_date"] = expected_dates(
        pd.Timestamp(as_of, tz="UTC"), frame.expected_next_order_days
    )
    return frame


def _personas(model: PersonaModel | None, features: pd.DataFrame) -> pd.DataFrame:
    """Each customer's persona id and name from the champion persona model (`tierwise personas fit`);
    null columns before personas were first fitted."""
    frame = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    if model is None:
        frame["persona_id"] = pd.array([None] * len(frame), dtype="Int64")
        frame["persona"] = pd.array([None] * len(frame), dtype="string")
        return frame
    ids = model.assign(features)
    frame["persona_id"] = pd.array(ids, dtype="Int64")
    frame["persona"] = pd.array(model.name_of(ids), dtype="string")
    return frame


def offer_columns(settings: Settings, snapshot: pd.DataFrame, policy: Policy, as_of: date) -> pd.DataFrame:
    """Each customer's top offers and their reasons (`training.offers`) as text columns; null columns
    for data without products."""
    from features.live_data import open_live_data

    peers = snapshot[["customer_id", "tier", "persona"]].assign(
        tier_above=snapshot.tier.map(policy.tier_above)
    )
    con = open_live_data(settings)
    try:
        offers.prepare(con, as_of)
        texts = offers.offer_texts(con, peers)
    except offers.NoProducts:
        texts = offers.joined(
            pd.DataFrame(columns=["customer_id", "rank", "item", "reason"]), snapshot.customer_id
        )
    finally:
        con.close()
    return pd.concat([snapshot[["customer_id"]].reset_index(drop=True), texts], axis=1)


def _beside(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """`left.merge(right, on="customer_id", validate="one_to_one")`, without hashing a million ids
    when both hold the same customers in the same order (as the tiering steps return them)."""
    shared = set(left.columns) & set(right.columns)
    if shared != {"customer_id"} or not np.array_equal(
        left.customer_id.to_numpy(), right.customer_id.to_numpy()
    ):
        return left.merge(right, on="customer_id", validate="one_to_one")
    return pd.concat(
        [left.reset_index(drop=True), right.drop(columns="customer_id").reset_index(drop=True)], axis=1
    )


def _default_overrides(settings: Settings) -> Path | None:
    path = settings.data_dir / "overrides.csv"
    return path if path.exists() else None
