"""`tierwise campaigns uplift NAME`: learn whom a measured campaign changed most, judge it, register it.

Reads a launch whose window has ended (its members and groups), each member's features at the launch
date (the feature snapshot) and whether they ordered in the window (`retained`: the decision a
retention or win-back campaign makes, and the binary outcome the Qini coefficient and AUUC of
scikit-uplift are defined on); fits the two-model uplift
learner on 70% of the members and compares, on the other 30%, its Qini coefficient with targeting by
churn risk and at random (`training.uplift`). The run, the figures and the model go to MLflow as the
registered model `uplift-<campaign>`; it becomes champion when its Qini interval lies above both
alternatives' point values. `tierwise campaigns launch --target uplift --budget N` then picks the
audience's N customers with the largest predicted uplift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.errors import InputError
from features.settings import Settings
from pipelines import build_features, campaigns
from pipelines.home_lock import writes_home
from training import registry
from training.uplift import Targeting, fit, holdout_mask, targeting

METHODS = ("uplift_model", "churn_risk", "random")
UPLIFT_OUTCOME = "retained"


@dataclass(frozen=True)
class UpliftReport:
    campaign: str
    as_of: date
    outcome: str
    version: int
    promoted: bool
    fitted_on: int
    held_out: int
    targeting: dict[str, Targeting]


def model_name(campaign: str) -> str:
    return f"uplift-{campaign}"


@writes_home
def train_uplift(settings: Settings, name: str, as_of: date | None = None, seed: int = 0) -> UpliftReport:
    """Fit, judge and register the uplift model of campaign `name`'s launch (default: the latest)."""
    ended = campaigns.ended_launch(settings, name, as_of)  # refuses before the window has ended
    day, outcomes = ended.as_of, ended.outcomes
    features = build_features.features_at(settings, day)
    frame = outcomes.merge(features, on="customer_id", how="left", suffixes=("", "_feature"))
    outcome = frame[UPLIFT_OUTCOME].to_numpy(dtype=int)
    treated = (frame.group == "treatment").to_numpy()
    held_out = holdout_mask(frame.customer_id, seed)
    learn = ~held_out
    if (
        min(
            treated[learn].sum(), (~treated[learn]).sum(), treated[held_out].sum(), (~treated[held_out]).sum()
        )
        < 20
    ):
        raise InputError(f"campaign {name}: too few customers per group to learn uplift (at least 20 each)")
    for part, inside in (("learning", learn), ("held-out", held_out)):
        for arm, in_arm in (("treated", treated), ("control", ~treated)):
            if len(np.unique(outcome[inside & in_arm])) < 2:
                raise InputError(
                    f"campaign {name}: every {part} {arm} customer has the same outcome ({UPLIFT_OUTCOME} = "
                    f"{outcome[inside & in_arm][0]}): there is no difference to learn uplift from"
                )
    model = fit(frame[learn], outcome[learn], treated[learn], binary=True, seed=seed)
    rng = np.random.default_rng(seed)
    scores = {
        "uplift_model": model.predict(frame[held_out]),
        "churn_risk": frame.churn_probability.to_numpy(dtype=float)[held_out],
        "random": rng.random(int(held_out.sum())),
    }
    judged = {
        method: targeting(outcome[held_out], scores[method], treated[held_out], seed) for method in METHODS
    }
    best_other = max(judged["churn_risk"].qini, judged["random"].qini)
    promoted = judged["uplift_model"].low > best_other
    registry.configure(settings)
    with registry.run(f"uplift {name} as of {day}", {"tierwise.model": model_name(name)}):
        registry.log_params(
            {
                "campaign": name,
                "as_of": day,
                "outcome": UPLIFT_OUTCOME,
                "fitted_on": int(learn.sum()),
                "held_out": int(held_out.sum()),
            }
        )
        for method, result in judged.items():
            registry.log_metrics(
                {
                    f"qini_{method}": result.qini,
                    f"qini_{method}_low": result.low,
                    f"qini_{method}_high": result.high,
                }
            )
        uri = registry.log_uplift(model)
        tags = {"campaign": name, "as_of": day.isoformat(), "outcome": UPLIFT_OUTCOME}
        version = registry.register(
            model_name(name), uri, tags, description=_description(name, UPLIFT_OUTCOME, judged)
        )
        if promoted:
            registry.promote(model_name(name), version)
        registry.set_tags({"registered_version": version, "promoted": promoted})
    return UpliftReport(
        name, day, UPLIFT_OUTCOME, version, promoted, int(learn.sum()), int(held_out.sum()), judged
    )


def uplift_scores(settings: Settings, campaign: str, audience: pd.DataFrame, day: date) -> np.ndarray:
    """Predicted uplift of each audience member at `day`, from campaign's champion uplift model."""
    registry.configure(settings)
    model, _ = registry.load_uplift(model_name(campaign))
    joined = audience[["customer_id"]].merge(
        build_features.features_at(settings, day), on="customer_id", how="left"
    )
    return model.predict(joined)


def _description(name: str, outcome: str, judged: dict[str, Targeting]) -> str:
    figures = "; ".join(f"{m}: Qini {t.qini:.4g} ({t.low:.4g} to {t.high:.4g})" for m, t in judged.items())
    return (
        f"Uplift of campaign {name} on {outcome}: treated minus control prediction (two LightGBM models). "
        f"Held-out customers: {figures}."
    )
