"""The champion models as one set: loaded from the registry, applied to a request or a million-row batch.

The service and `tierwise score` both call `predict` (or `matrices` and the bundles' own
`predict_and_explain`), so an answer over HTTP and a row of the batch snapshot come from the same
arithmetic on the same features. Which column each model's prediction lands in comes from the model
table (`features.model_table`). A model without a champion is answered by its servable baseline
(`training.fallback`), or not at all (null) when no baseline gives its output; `sources` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.errors import InputError
from features.model_table import MODEL_NAMES, MODELS
from training.bundle import ModelBundle
from training.fallback import Fallback
from training.labels import is_active
from training.level_anchor import ANCHOR_FEATURE, LevelSums
from training.models import SPECS

#: Tier snapshot column of each anchored model's level factor (`Champions.level_factors`): the
#: service answers with the factor the batch scored its date with.
LEVEL_FACTOR_COLUMNS = {name: f"{name}_level_factor" for name, spec in SPECS.items() if spec.level_anchor}


@dataclass(frozen=True)
class Champions:
    """What answers each model: its champion bundle (`bundles`, `versions`), else its servable
    baseline (`fallbacks`), else nothing (`unanswered`: trained, no champion, no baseline gives its
    output). `run_ids` holds the run of each champion and of each fallback's version.
    `level_factors` holds, per anchored champion, the level factor of the population it scores
    (`at_level_of`, `training.level_anchor`); a model without one is used as it is."""

    bundles: dict[str, ModelBundle]
    versions: dict[str, int]
    run_ids: dict[str, str]
    fallbacks: dict[str, Fallback] = field(default_factory=dict)
    unanswered: tuple[str, ...] = ()
    level_factors: dict[str, float] = field(default_factory=dict)

    def level_factor(self, name: str) -> float:
        """The factor model `name`'s predictions are multiplied by (1 if it has none)."""
        return self.level_factors.get(name, 1.0)

    @property
    def anchored(self) -> list[str]:
        """The champions with a level anchor."""
        return [name for name, bundle in self.bundles.items() if bundle.level_anchor is not None]

    def level_sums(self, features: pd.DataFrame | Mapping[str, Sequence]) -> dict[str, LevelSums]:
        """Per anchored champion, the exact sums its level factor is computed from over the
        customers of `features` (one part of a population, or all of it)."""
        found = {}
        for name in self.anchored:
            bundle = self.bundles[name]
            raw = bundle.predict_matrix(bundle.matrix(features))
            found[name] = LevelSums.of(raw, features[ANCHOR_FEATURE])
        return found

    def with_level_factors(self, sums: Mapping[str, LevelSums]) -> Champions:
        """These champions with the level factors of a population whose sums are `sums`."""
        factors = {name: total.factor(self.bundles[name].level_anchor) for name, total in sums.items()}
        return replace(self, level_factors=factors)

    def at_level_of(self, features: pd.DataFrame) -> Champions:
        """These champions with the level factors of the population `features` (every customer
        scored at one date): what batch scoring applies, and stores in the tier snapshot."""
        return self.with_level_factors(self.level_sums(features))

    @property
    def horizon_days(self) -> int:
        return next(iter([*self.bundles.values(), *self.fallbacks.values()])).horizon_days

    @property
    def sources(self) -> dict[str, str]:
        """Per model, what answers it: `champion v3`, `baseline: btyd_p_no_order`, or `none`."""
        found = {name: f"champion v{version}" for name, version in self.versions.items()}
        found |= {name: fallback.source for name, fallback in self.fallbacks.items()}
        found |= {name: "none" for name in self.unanswered}
        return {name: found[name] for name in MODEL_NAMES if name in found}


def load_champions(names: list[str] | None = None) -> Champions:
    """Load what answers each model from the configured MLflow registry (see `training.registry`).

    Raises:
        InputError: a model was never trained.
    """
    from training import registry

    bundles, versions, run_ids, fallbacks, unanswered = {}, {}, {}, {}, []
    for name in names or MODEL_NAMES:
        if registry.champion(name) is not None:
            bundle, info = registry.load_bundle(name)
            bundles[name], versions[name], run_ids[name] = bundle, info.version, info.run_id
        elif (found := registry.load_fallback(name)) is not None:
            fallbacks[name], run_ids[name] = found[0], found[1].run_id
        elif registry.versions(name):
            unanswered.append(name)
        else:
            raise InputError(f"{name} has no champion yet: run `tierwise train --model {name}`")
    if not bundles and not fallbacks:
        raise InputError(f"no model has a champion or a baseline to answer for it: {', '.join(unanswered)}")
    return Champions(bundles, versions, run_ids, fallbacks, tuple(unanswered))


def predict(
    champions: Champions,
    features: pd.DataFrame,
    explain: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
    intervals: bool = True,
) -> pd.DataFrame:
    """Predictions for every row of `features` (catalog feature columns; `customer_id` kept if present),
    with `<output>_low` / `<output>_high` for a model that has an 80% interval (the expected value),
    unless `intervals` is False (a pass that needs only the predictions skips the quantile models).
    An anchored model's predictions and interval are multiplied by `champions.level_factor` (set for
    the scored population by `Champions.at_level_of`).
    Growth potential is NaN for customers without an order in the horizon (`answered`).

    With `explain`, each champion predicts from its per-feature contributions, one LightGBM pass as
    in the service (`ModelBundle.predict_and_explain`), and `explain(name, matrix, contributions)`
    gets them before the next model runs: a scoring run turns them into reasons without a second
    pass, and without holding three models' contributions at once."""
    out = pd.DataFrame(index=features.index)
    if "customer_id" in features:
        out["customer_id"] = features["customer_id"]
    for name, matrix in matrices(champions, features).items():
        bundle = champions.bundles[name]
        output = MODELS[name].output
        if explain is None:
            predicted = bundle.predict_matrix(matrix)
        else:
            predicted, contributions = bundle.predict_and_explain(matrix)
            explain(name, matrix, contributions)
            del contributions
        factor = champions.level_factor(name)
        predicted = predicted * factor  # exact when 1
        out[output] = answered(name, predicted, features["days_since_last_order"], bundle.horizon_days)
        interval = bundle.predict_interval(matrix, factor) if intervals else None
        if interval is not None:
            out[f"{output}_low"], out[f"{output}_high"] = interval
    for name, values in stand_ins(champions, features).items():
        out[MODELS[name].output] = values
        if intervals and not SPECS[name].is_classifier:  # a value model's interval: no baseline gives one
            out[f"{MODELS[name].output}_low"] = out[f"{MODELS[name].output}_high"] = np.nan
    return out


def stand_ins(champions: Champions, features: pd.DataFrame | Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    """The answers of the models without a champion: their baseline's (`Fallback.predict`), NaN
    where no baseline answers or the model does not speak for the customer (`answered`)."""
    days = features["days_since_last_order"]
    result = {
        name: answered(name, fallback.predict(features), days, fallback.horizon_days)
        for name, fallback in champions.fallbacks.items()
    }
    return result | {name: np.full(len(days), np.nan) for name in champions.unanswered}


def answered(
    name: str, predicted: np.ndarray, days_since_last_order: Sequence[float | None], horizon_days: int
) -> np.ndarray:
    """`predicted`, NaN where model `name` does not speak for the customer: an `active_only` model
    (growth potential) answers only customers with an order in the last `horizon_days` days, the
    customers its label exists for (`training.labels.is_active`)."""
    if not SPECS[name].active_only:
        return predicted
    days = pd.to_numeric(pd.Series(days_since_last_order), errors="coerce").to_numpy(dtype=float)
    return np.where(is_active(days, horizon_days), predicted, np.nan)


def matrices(champions: Champions, features: pd.DataFrame | Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    """Each champion's input matrix; the champions usually share one input layout, built once."""
    by_layout: dict[tuple, np.ndarray] = {}
    for bundle in champions.bundles.values():
        if bundle.layout not in by_layout:
            by_layout[bundle.layout] = bundle.matrix(features)
    return {name: by_layout[bundle.layout] for name, bundle in champions.bundles.items()}
