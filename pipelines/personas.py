"""`tierwise personas fit`: group customers by how they shop, name the groups, register the model.

Reads the feature snapshot at a date (default: the latest), fits `training.personas` starting from the
champion persona model (so ids keep their meaning), and records the run in MLflow: k, silhouette,
the adjusted Rand index against the previous model on today's customers, and the persona profile
table. Every fit is registered as `personas` and becomes champion: personas describe, they do not
predict, so there is no held-out score for a challenger to beat; stability is what is watched.
`tierwise score` then writes each customer's persona into the tier snapshot, and the service answers
it.

The range of k and staff's names come from the home's `data/personas.yaml` (`training.personas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from features.settings import Settings
from pipelines.home_lock import writes_home
from training import registry
from training.personas import PersonaModel, fit_personas, load_config, profile, stability


@dataclass(frozen=True)
class PersonaReport:
    as_of: date
    version: int
    model: PersonaModel
    profile: pd.DataFrame
    stability: float | None


@writes_home
def fit(settings: Settings, as_of: date | None = None, seed: int = 0) -> PersonaReport:
    """Fit personas on the feature snapshot at `as_of`, register them and make them champion."""
    config = load_config(settings)
    snapshots = settings.feature_snapshots
    as_of = snapshots.choose(as_of)
    frame = snapshots.read(as_of)
    registry.configure(settings)
    found = registry.load_personas()
    previous = found[0] if found else None
    model = fit_personas(frame, (config.k_min, config.k_max), previous, seed)
    ids = model.assign(frame)
    table = profile(model, frame, ids)
    agreement = stability(previous, model, frame) if previous is not None else None
    with registry.run(f"personas as of {as_of}", {"tierwise.model": registry.PERSONAS}):
        registry.log_params(
            {"as_of": as_of, "k": len(model.ids), "k_min": config.k_min, "k_max": config.k_max, "seed": seed}
        )
        metrics = {"silhouette": model.silhouette, "fitted_rows": model.fitted_rows}
        if agreement is not None:
            metrics["adjusted_rand_previous"] = agreement
        registry.log_metrics(metrics)
        registry.log_table(table, "personas/profile.json")
        uri = registry.log_personas(model)
        version = registry.register(
            registry.PERSONAS, uri, {"as_of": as_of.isoformat()}, description=_description(model)
        )
        registry.promote(registry.PERSONAS, version)
    table["persona"] = model.renamed(config.names).name_of(table.persona_id.to_numpy())
    return PersonaReport(as_of, version, model.renamed(config.names), table, agreement)


def _description(model: PersonaModel) -> str:
    names = "; ".join(f"{pid}: {model.names[pid]}" for pid in sorted(model.ids))
    return (
        f"K-means personas over {len(model.features)} habit features (k = {len(model.ids)}, silhouette "
        f"{model.silhouette:.3f}). {names}."
    )
