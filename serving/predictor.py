"""The service's work without HTTP: features → three models → tier, flags and reasons per customer.

`Predictor` holds what the service loads once (champion models, the online-store reader, the latest
tiers) and answers lists of customers; the BentoML service is a thin typed shell around it, and the
in-process benchmark times it directly. Models can be swapped while it serves (`reload`): the new
set is loaded completely before it replaces the old one in one assignment, and a set that fails to
load leaves the old one serving.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from features.catalog import FEATURES_BY_NAME
from features.errors import InputError
from features.feature_store import snapshot_timestamp
from features.model_table import MODELS
from features.online_answers import OnlineAnswers
from features.online_reader import OnlineFeatureReader
from features.settings import Settings
from serving.answers import answer_json, answer_key, next_order_answer, offers_answer, optional_number
from tiering.lookup import HISTORY_COLUMNS, TierLookup
from tiering.risk import flag_lists
from training import champions as champion_models
from training.level_anchor import ANCHOR_FEATURE
from training.next_order import OUTPUTS, NextOrderModel
from training.personas import PersonaModel, champion_personas
from training.reasons import SENSITIVE_VIEWS
from training.reasons import reasons as explain

#: Reasons per model in an answer.
TOP_REASONS = 3


@dataclass(frozen=True)
class Live:
    """One consistent set of what answers are computed from; replaced whole on reload."""

    champions: champion_models.Champions
    reader: OnlineFeatureReader
    lookup: TierLookup
    loaded_at: datetime
    personas: PersonaModel | None = None
    next_order: NextOrderModel | None = None
    next_order_version: int | None = None
    #: The stored answers (`serving.answers`), or None in a home registered before they existed.
    answers: OnlineAnswers | None = None
    #: What this set's answers are computed from (`serving.answers.answer_key`).
    answer_key: str = ""


@dataclass
class ReloadResult:
    changed: bool
    versions: dict[str, int]
    error: str | None = None


@dataclass
class Predictor:
    """Answers for customer ids (online features) and for feature vectors (what-if)."""

    settings: Settings
    policy_name: str = "lifecycle"
    #: Feature views never given as reasons (`ServeConfig.reason_excluded_views`).
    reason_excluded_views: frozenset[str] = SENSITIVE_VIEWS
    live: Live = field(init=False)
    last_reload_error: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._reload_lock = threading.Lock()
        self.live = self._load()

    def _load(self) -> Live:
        from features.feature_store import open_store
        from training import registry

        registry.configure(self.settings)
        lookup = TierLookup.load(self.settings, self.policy_name)
        champions = at_snapshot_level(self.settings, champion_models.load_champions(), lookup)
        personas = champion_personas(self.settings)
        found = registry.load_next_order()
        next_order = found[0] if found else None
        names = sorted(
            {n for b in champions.bundles.values() for n in b.feature_names}
            | {n for f in champions.fallbacks.values() for n in f.feature_names}
            | set(HISTORY_COLUMNS)
            | set(personas.features if personas else [])
            | set(next_order.feature_names if next_order else [])
        )
        store = open_store(self.settings)
        live = Live(
            champions,
            OnlineFeatureReader(store, names),
            lookup,
            datetime.now(UTC),
            personas,
            next_order,
            found[1].version if found else None,
            _online_answers(store),
        )
        tier_snapshot = self.settings.tier_snapshots(lookup.policy.name).path(lookup.as_of)
        return replace(live, answer_key=answer_key(live, self.reason_excluded_views, tier_snapshot))

    def reload(self) -> ReloadResult:
        """Load the current champions and latest tier snapshot; keep serving the old set if that fails."""
        with self._reload_lock:
            before = self.live.champions.versions
            try:
                fresh = self._load()
            except Exception as exc:  # anything: a broken model must never take the service down
                self.last_reload_error = f"{type(exc).__name__}: {exc}"
                return ReloadResult(False, before, self.last_reload_error)
            self.live, self.last_reload_error = fresh, None
            return ReloadResult(fresh.champions.versions != before, fresh.champions.versions)

    def is_stale(self) -> bool:
        """Whether a champion alias moved (or a model answered by its baseline got a champion) or a
        newer tier snapshot exists since the last load."""
        from training import registry

        live = self.live
        for name in live.champions.sources:
            current = registry.champion(name)
            if current is not None and current.version != live.champions.versions.get(name):
                return True
        snapshots = self.settings.tier_snapshots(live.lookup.policy.name).dates()
        return bool(snapshots) and snapshots[-1] != live.lookup.as_of

    def stored_answer(self, customer_id: str) -> bytes | None:
        """The customer's stored answer (`serving.answers`) if it was computed from what is live now."""
        return self.stored_answers([customer_id])[0]

    def stored_answers(self, customer_ids: Sequence[str]) -> list[bytes | None]:
        """`stored_answer` of each customer, in one read."""
        live = self.live
        if live.answers is None:
            return [None] * len(customer_ids)
        return [
            found[1] if found is not None and found[0] == live.answer_key else None
            for found in live.answers.read(customer_ids)
        ]

    def refresh_answers(self, customer_ids: Sequence[str]) -> list[dict]:
        """Compute the customers' answers from their features now and store them (order events)."""
        live = self.live
        answers = self._predict(live, customer_ids, False)
        if live.answers is not None:
            by_day: dict[date, list[tuple[str, bytes]]] = {}
            for answer in answers:
                if answer["status"] == "ok" and answer["features_as_of"] is not None:
                    by_day.setdefault(answer["features_as_of"], []).append(
                        (answer["customer_id"], answer_json(answer))
                    )
            for day, rendered in by_day.items():
                live.answers.write(rendered, live.answer_key, snapshot_timestamp(day))
        return answers

    def predict_ids(self, customer_ids: Sequence[str], new_customers: bool = False) -> list[dict]:
        """One answer per id, in order: `ok`, `cold_start` (only if `new_customers`) or `not_found`."""
        return self._predict(self.live, customer_ids, new_customers)

    def _predict(self, live: Live, customer_ids: Sequence[str], new_customers: bool) -> list[dict]:
        rows = live.reader.read(customer_ids)
        answers: list[dict] = [{} for _ in customer_ids]
        found = np.flatnonzero(rows.found)
        if len(found) == len(customer_ids):
            columns, ids = rows.columns, list(customer_ids)
        elif len(found):
            columns = {name: [values[i] for i in found] for name, values in rows.columns.items()}
            ids = [customer_ids[i] for i in found]
        if len(found):
            scored = self._answer(live, ids, columns, [rows.as_of[i] for i in found], use_snapshot=True)
            for position, answer in zip(found, scored, strict=True):
                answers[position] = answer
        for position in np.flatnonzero(~rows.found):
            customer = str(customer_ids[position])
            answers[position] = (
                self._cold_start(live, customer)
                if new_customers
                else {
                    "customer_id": customer,
                    "status": "not_found",
                    "error": f"customer {customer!r} has no features in the online store",
                }
            )
        return answers

    def score_features(self, vectors: Sequence[tuple[str, Mapping[str, object]]]) -> list[dict]:
        """Answers for feature vectors sent in a request (what-if; customers not in the store yet).

        Raises:
            InputError: an unknown feature name, a value of the wrong type, or a missing history feature
                the tier policy needs — each named.
        """
        live = self.live
        for _, features in vectors:
            _check_vector(features)
        columns = {
            name: [features.get(name) for _, features in vectors] for name in live.reader.feature_names
        }
        ids = [customer for customer, _ in vectors]
        return self._answer(live, ids, columns, [None] * len(ids), use_snapshot=False)

    def _answer(
        self,
        live: Live,
        customer_ids: list[str],
        columns: Mapping[str, list],
        as_of: list[date | None],
        use_snapshot: bool,
    ) -> list[dict]:
        predictions, reasons, intervals = {}, {}, {}
        for name, matrix in champion_models.matrices(live.champions, columns).items():
            bundle = live.champions.bundles[name]
            predicted, contributions = bundle.predict_and_explain(matrix)
            factor = live.champions.level_factor(name)  # the batch's, as `champion_models.predict`
            predicted = champion_models.answered(
                name, predicted * factor, columns["days_since_last_order"], bundle.horizon_days
            )
            predictions[MODELS[name].output] = predicted
            interval = bundle.predict_interval(matrix, factor)
            if interval is not None:
                intervals[MODELS[name].output] = interval
            explained = explain(bundle, matrix, TOP_REASONS, contributions, self.reason_excluded_views)
            # No reasons for a prediction that is not answered (growth of a lapsed customer).
            reasons[name] = [[] if np.isnan(p) else r for p, r in zip(predicted, explained, strict=True)]
        for name, predicted in champion_models.stand_ins(live.champions, columns).items():
            predictions[MODELS[name].output] = predicted
            reasons[name] = [[] for _ in customer_ids]  # a baseline's answer has no per-feature reasons
        churn = predictions["churn_probability"]
        value = predictions["expected_value"]
        growth = predictions["growth_potential"]
        flags = flag_lists(churn, value, growth, live.lookup.value_cut)
        tiers = self._tiers(live, customer_ids, columns, predictions, as_of, use_snapshot)
        personas = _personas(live, customer_ids, columns, use_snapshot)
        offers = [_offers(live.lookup, customer, use_snapshot) for customer in customer_ids]
        next_order = _next_order(live, columns, as_of, len(customer_ids))
        versions, sources = live.champions.versions, live.champions.sources
        return [
            {
                "customer_id": customer,
                "status": "ok",
                "churn_probability": optional_number(churn[i]),
                "expected_value": optional_number(value[i]),
                "expected_value_interval": (
                    [float(intervals["expected_value"][0][i]), float(intervals["expected_value"][1][i])]
                    if "expected_value" in intervals
                    else None
                ),
                "growth_potential": optional_number(growth[i]),
                "horizon_days": live.champions.horizon_days,
                "tier": tiers[i][0],
                "tier_rule": tiers[i][1],
                "tier_source": tiers[i][2],
                **next_order[i],
                "persona": personas[i],
                "offers": offers[i][0],
                "offers_note": offers[i][1],
                "risk_flags": flags[i],
                "reasons": {name: reasons[name][i] for name in reasons},
                "model_versions": versions,
                "model_sources": sources,
                "features_as_of": as_of[i],
            }
            for i, customer in enumerate(customer_ids)
        ]

    def _tiers(
        self,
        live: Live,
        customer_ids: list[str],
        columns: Mapping[str, list],
        predictions: dict[str, np.ndarray],
        as_of: list[date | None],
        use_snapshot: bool,
    ) -> list[tuple[str, str, str]]:
        """(tier, rule, source) per customer: the snapshot's (`snapshot`); the policy's with retention
        from the snapshot tier for customers whose features an order event made newer (`event`); the
        policy's alone for customers outside the snapshot and what-if vectors (`policy`)."""
        lookup = live.lookup
        result: list[tuple[str, str, str] | None] = [None] * len(customer_ids)
        newer: dict[date, list[int]] = {}
        if use_snapshot:
            for i, customer in enumerate(customer_ids):
                known = lookup.tiers.get(customer)
                if known is None:
                    continue
                if as_of[i] is not None and as_of[i] > lookup.as_of:
                    newer.setdefault(as_of[i], []).append(i)  # type: ignore[index]
                else:
                    result[i] = (known[0], known[1], "snapshot")

        def frame(rows: list[int]) -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "customer_id": [customer_ids[i] for i in rows],
                    **{name: [columns[name][i] for i in rows] for name in HISTORY_COLUMNS},
                    **{name: values[rows] for name, values in predictions.items()},
                }
            )

        for day, rows in newer.items():
            retiered = lookup.retier(frame(rows), day)
            for i, tier, reason in zip(rows, retiered.tier, retiered.reason, strict=True):
                result[i] = (tier, reason, "event")
        missing = [i for i, answer in enumerate(result) if answer is None]
        if missing:
            assigned = lookup.assign(frame(missing))
            for i, tier, rule in zip(missing, assigned.tier, assigned.rule, strict=True):
                result[i] = (tier, rule, "policy")
        return result  # type: ignore[return-value]

    def _cold_start(self, live: Live, customer: str) -> dict:
        prior = live.lookup.cold_start
        flags = flag_lists(
            np.array([prior.churn_probability]),
            np.array([prior.expected_value]),
            np.array([prior.growth_potential], dtype=float),
            live.lookup.value_cut,
        )[0]
        return {
            "customer_id": customer,
            "status": "cold_start",
            "churn_probability": prior.churn_probability,
            "expected_value": prior.expected_value,
            "growth_potential": prior.growth_potential,
            "horizon_days": live.champions.horizon_days,
            "tier": prior.tier,
            "tier_rule": prior.rule,
            "tier_source": "cold_start",
            "risk_flags": flags,
            "reasons": {},
            "model_versions": live.champions.versions,
            "model_sources": live.champions.sources,
            "features_as_of": None,
        }


def at_snapshot_level(
    settings: Settings, champions: champion_models.Champions, lookup: TierLookup
) -> champion_models.Champions:
    """The champions with the level factors (`training.level_anchor`) the batch scored the tier
    snapshot's date with, so a customer's answer equals their row of the snapshot. A champion the
    snapshot was not scored by (promoted since, or a snapshot from before the anchor) gets the factor
    over that date's feature snapshot: the one scoring the date again would store."""
    factors, stale = {}, []
    for name in champions.anchored:
        stored = lookup.level_factors.get(name)
        if stored is not None and stored[1] == champions.versions[name]:
            factors[name] = stored[0]
        else:
            stale.append(name)
    if stale:
        snapshots = settings.feature_snapshots
        needed = {n for name in stale for n in champions.bundles[name].feature_names} | {ANCHOR_FEATURE}
        features = snapshots.read(snapshots.choose(lookup.as_of), sorted(needed))
        sums = champions.level_sums(features)
        factors |= {name: sums[name].factor(champions.bundles[name].level_anchor) for name in stale}
    return replace(champions, level_factors=factors)


def _online_answers(store) -> OnlineAnswers | None:
    """The store's answers, or None if the home was registered before answers existed (the service
    opens the store read-only: `tierwise features apply` registers the view)."""
    from feast.errors import FeatureViewNotFoundException

    try:
        return OnlineAnswers(store)
    except FeatureViewNotFoundException:
        return None


def _personas(
    live: Live, customer_ids: list[str], columns: Mapping[str, list], use_snapshot: bool
) -> list[dict | None]:
    """Each customer's persona: the snapshot's for customers in it (as the batch wrote it), else the
    persona model on the answer's features; None before personas are fitted."""
    known = live.lookup.personas if use_snapshot else {}
    result: list[dict | None] = [None] * len(customer_ids)
    missing = []
    for i, customer in enumerate(customer_ids):
        found = known.get(customer)
        if found is not None:
            result[i] = {"id": found[0], "name": found[1]}
        else:
            missing.append(i)
    if missing and live.personas is not None:
        frame = pd.DataFrame({name: [columns[name][i] for i in missing] for name in live.personas.features})
        ids = live.personas.assign(frame)
        for i, pid in zip(missing, ids, strict=True):
            result[i] = {"id": int(pid), "name": live.personas.names[int(pid)]}
    return result


def _next_order(live: Live, columns: Mapping[str, list], as_of: list[date | None], rows: int) -> list[dict]:
    """P(order within 7 and 30 days) and the expected next-order date per answer (empty before a
    next-order model is trained)."""
    if live.next_order is None:
        return [{} for _ in range(rows)]
    frame = pd.DataFrame({name: columns[name] for name in live.next_order.feature_names})
    answers = live.next_order.predict(frame)
    return [
        next_order_answer(float(p7), float(p30), float(days), as_of[i])
        for i, (p7, p30, days) in enumerate(answers[list(OUTPUTS)].itertuples(index=False))
    ]


def _offers(lookup: TierLookup, customer: str, use_snapshot: bool) -> tuple[list[dict] | None, str | None]:
    """A customer's offers from the batch snapshot, or None and why there are none."""
    return offers_answer(
        lookup.has_offers, lookup.offers.get(customer) if use_snapshot else None, lookup.as_of
    )


def _finite(value: float) -> bool:
    """Whether a JSON number is a finite float (a 400-digit integer is not: it overflows)."""
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False


def _check_vector(features: Mapping[str, object]) -> None:
    unknown = sorted(set(features) - set(FEATURES_BY_NAME))
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputError(f"features: unknown feature(s) {shown}{more}; see `tierwise features list`")
    missing = [name for name in HISTORY_COLUMNS if features.get(name) is None]
    if missing:
        raise InputError(f"features: {', '.join(missing)} required (the tier policy reads them)")
    for name, value in features.items():
        if value is None:
            continue
        numeric = FEATURES_BY_NAME[name].dtype != "string"
        if numeric and (isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value)):
            raise InputError(f"features.{name}: expected a finite number, got {str(value)[:40]!r}")
        if not numeric and not isinstance(value, str):
            raise InputError(f"features.{name}: expected text, got {value!r}")
        if numeric and name in HISTORY_COLUMNS and value < 0:
            raise InputError(f"features.{name}: must not be negative, got {value!r}")
