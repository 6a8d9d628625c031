"""The one table of Tierwise's models: every other place that names a model reads it from here.

A model's `name` is its name everywhere: the Feast feature service, the MLflow registered model, the
`--model` choice of the command line and the `<name>_version` column of a tier snapshot. Its
`output` is the field the API answers and the snapshot column that holds the prediction, `label`
the column of `training.labels.compute_labels` it learns, and `wording` how staff read it in
reasons and reports. It sits in the bottom layer (`features/`) because the Feast repository already
needs the names; training adds what differs per model (objective, baselines) in `training/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelEntry:
    """One model as the rest of the system sees it.

    Attributes:
        name: The model's one name (feature service, registered model, CLI choice).
        task: "classification" (a calibrated probability) or "regression".
        label: Label column it learns (see `training.labels`).
        output: API field and tier-snapshot column of its prediction.
        wording: What it predicts, as staff say it ("the churn probability").
        primary_metric: What tuning maximises and promotion compares (higher is better).
    """

    name: str
    task: Literal["classification", "regression"]
    label: str
    output: str
    wording: str
    primary_metric: str

    @property
    def version_column(self) -> str:
        """The tier-snapshot column holding the registry version that predicted `output`."""
        return f"{self.name}_version"


MODEL_TABLE: tuple[ModelEntry, ...] = (
    ModelEntry("churn", "classification", "churn", "churn_probability", "churn probability", "roc_auc"),
    ModelEntry(
        "customer_value", "regression", "value", "expected_value", "expected spend", "normalized_gini"
    ),
    ModelEntry(
        "growth_potential", "classification", "growth", "growth_potential", "growth potential", "roc_auc"
    ),
)

#: Models by name, in the order `tierwise train --model all` trains them.
MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in MODEL_TABLE}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
#: Prediction columns of a tier snapshot (and fields of an API answer), in table order.
PREDICTION_COLUMNS: tuple[str, ...] = tuple(entry.output for entry in MODEL_TABLE)
