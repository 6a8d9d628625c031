"""What differs between the three models, as one typed object each (see churn.py, customer_value.py,
growth_potential.py). Everything else — data, fitting, tuning, evaluation, registry — is shared.

The spec's `name` is the model's one name everywhere: the Feast feature service, the MLflow
registered model, the API field, the report and the CLI choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

SearchSpace = Callable[[Any], dict[str, Any]]  # optuna.Trial -> LightGBM parameters
Baselines = Callable[..., dict[str, Any]]  # (test rows, orders, cutoff, horizon days) -> name -> score


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
        name: The model's name everywhere (feature service, registered model, API field).
        task: "classification" (a calibrated probability) or "regression".
        label: Column of `training.labels.compute_labels` it learns.
        objective: LightGBM objective.
        primary_metric: What tuning maximises and promotion compares (higher is better).
        description: One line for the model card and the API docs.
        baselines: Classic scores to beat on the same test rows (higher = more of the label).
        monotone: Features whose effect must be monotone (+1 rising, -1 falling), as domain knowledge
            (e.g. churn never falls with recency); enforced by LightGBM's monotone constraints.
        params: LightGBM parameters before tuning.
    """

    name: str
    task: Literal["classification", "regression"]
    label: str
    objective: str
    primary_metric: str
    description: str
    baselines: Baselines
    monotone: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=lambda: dict(BASE_PARAMS))
    search_space: SearchSpace = tree_search_space

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"
