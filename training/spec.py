"""What differs between the three models in training, as one typed object each (see churn.py,
customer_value.py, growth_potential.py). Everything else — data, fitting, tuning, evaluation,
registry — is shared.

A spec adds the training choices (objective, baselines, constraints, parameters) to the model's row of
the model table (`features.model_table`), which holds its name, task, label and primary metric: the
name is the model's one name everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.model_table import ModelEntry

SearchSpace = Callable[[Any], dict[str, Any]]  # optuna.Trial -> LightGBM parameters
Baselines = Callable[[pd.DataFrame, int], dict[str, Any]]  # (test rows, horizon days) -> name -> score


#: The service explains every answer with TreeSHAP, whose cost per row grows with the number of
#: leaves times the square of tree depth (~0.1-0.25 us per leaf here). Unbounded models reached 17
#: levels (1.2 ms per explained row, 24x their prediction) or 3,700 leaves (0.9 ms). Deepest tree:
MAX_DEPTH = 6
#: Most leaves a model may have over all its trees: boosting stops at `MAX_LEAVES // num_leaves`
#: rounds. With `MAX_DEPTH` and a learning rate of at least 0.05 this cost no backtest accuracy on
#: Complete Journey (README, "Results") and keeps each model's reasons under ~0.15 ms per row.
MAX_LEAVES = 1_000


def tree_search_space(trial: Any) -> dict[str, Any]:
    """The LightGBM parameters worth tuning on tens of thousands of rows."""
    max_depth = trial.suggest_int("max_depth", 3, MAX_DEPTH)
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.2, log=True),
        "max_depth": max_depth,
        "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


BASE_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "max_depth": MAX_DEPTH,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "n_estimators": 1000,
    "verbose": -1,
    "force_col_wise": True,
    "n_jobs": 2,
}


@dataclass(frozen=True)
class ModelSpec:
    """One model family.

    Attributes:
        model: Its row of the model table: name, task, label, output field, primary metric.
        objective: LightGBM objective.
        description: One line for the model card and the API docs.
        baselines: Classic scores to beat on the same test rows (higher = more of the label).
        monotone: Features whose effect must be monotone (+1 rising, -1 falling), as domain knowledge
            (e.g. churn never falls with recency); enforced by LightGBM's monotone constraints.
        params: LightGBM parameters before tuning.
        active_only: The model speaks only for customers with an order in the last horizon (its label
            is null for the others; see `training.labels.is_active`): their prediction is
            left empty rather than extrapolated to customers it never learned from.
        calibrate_on_latest: A classifier's Platt scaling reads only the held-out customers of the
            latest cutoffs (`training.fit.latest_rows`), for a label whose rate drifts one way
            through the data (churn); otherwise those of every stacked cutoff.
        level_anchor: A value model keeps the label-to-`spend_90d` ratio of its newest training
            cutoff, and each scored population's predictions are scaled to it
            (`training.level_anchor`), for a population whose purchase rate decays.
    """

    model: ModelEntry
    objective: str
    description: str
    baselines: Baselines
    monotone: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=lambda: dict(BASE_PARAMS))
    search_space: SearchSpace = tree_search_space
    active_only: bool = False
    calibrate_on_latest: bool = False
    level_anchor: bool = False

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def label(self) -> str:
        return self.model.label

    @property
    def primary_metric(self) -> str:
        return self.model.primary_metric

    @property
    def is_classifier(self) -> bool:
        return self.model.task == "classification"
