"""Drift of features, predictions and tiers with Evidently 0.7: one report, read back as plain numbers.

Evidently picks a test per column by its type and sample size (normed Wasserstein distance for
numbers and Jensen-Shannon distance for text above 1,000 rows, with a 0.1 threshold; K-S and
chi-squared tests below) and records, per column, the distance (`ValueDrift`) and a verdict (its
test). `column_drift` runs that report on seeded samples of both sides and returns the verdicts as
a `DriftResult`; the Evidently snapshot itself is kept for its HTML page and the workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

SEED = 20240101


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    score: float
    method: str
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    """Per-column drift between a current and a reference frame.

    Attributes:
        columns: Each compared column's distance, method, threshold and verdict, worst first.
        current_rows, reference_rows: Rows each side had before sampling.
        snapshot: The Evidently snapshot (HTML page, JSON, workspace run).
    """

    columns: list[ColumnDrift]
    current_rows: int
    reference_rows: int
    snapshot: Any = field(repr=False, default=None)

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted) / len(self.columns) if self.columns else 0.0

    def worst(self, count: int = 5) -> list[ColumnDrift]:
        return self.columns[:count]

    def summary(self) -> dict[str, Any]:
        return {
            "drifted_share": self.share,
            "drifted": self.drifted,
            "current_rows": self.current_rows,
            "reference_rows": self.reference_rows,
            "columns": [c.__dict__ for c in self.columns],
        }


def sample(frame: pd.DataFrame, rows: int, seed: int = SEED) -> pd.DataFrame:
    """At most `rows` rows of `frame`, drawn with a fixed seed (the same frame gives the same sample)."""
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)


def column_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str] = (),
    rows: int = 50_000,
    timestamp: datetime | None = None,
) -> DriftResult:
    """Compare `numerical` and `categorical` columns of two frames with Evidently's drift preset.

    Both sides are sampled to at most `rows` rows (seeded). Columns missing from either side, or
    empty on either side, are left out: orders-only data has no product features, and a feature
    that is null everywhere has no distribution to compare.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in numerical if _comparable(c, current, reference)]
    texts = [c for c in categorical if _comparable(c, current, reference)]
    columns = [*numeric, *texts]
    if not columns:
        return DriftResult([], len(current), len(reference))
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=texts)

    def dataset(frame: pd.DataFrame) -> Any:
        data = sample(frame, rows)[columns].reset_index(drop=True)  # sample first: no copy of every row
        data[numeric] = data[numeric].astype("float64")
        data[texts] = data[texts].astype("object")
        return Dataset.from_pandas(data, data_definition=definition)

    report = Report([DataDriftPreset(columns=columns)], include_tests=True)
    snapshot = report.run(dataset(current), dataset(reference), timestamp=timestamp)
    return DriftResult(_verdicts(snapshot.dict()), len(current), len(reference), snapshot)


def _comparable(column: str, current: pd.DataFrame, reference: pd.DataFrame) -> bool:
    return (
        column in current
        and column in reference
        and current[column].notna().any()
        and reference[column].notna().any()
    )


def _verdicts(result: dict[str, Any]) -> list[ColumnDrift]:
    """Each column's `ValueDrift` distance and the verdict of its test, worst (most over its threshold) first."""
    drift_metrics = {
        m["id"]: m for m in result["metrics"] if m["config"].get("type", "").endswith(":ValueDrift")
    }
    failed = {
        t["metric_config"]["metric_id"]: t["status"] == "FAIL"
        for t in result.get("tests", [])
        if t["metric_config"]["metric_id"] in drift_metrics
    }
    columns = [
        ColumnDrift(
            column=m["config"]["column"],
            score=float(m["value"]),
            method=str(m["config"].get("method")),
            threshold=float(m["config"].get("threshold") or 0.0),
            drifted=failed.get(metric_id, False),
        )
        for metric_id, m in drift_metrics.items()
    ]
    return sorted(columns, key=lambda c: (not c.drifted, -_excess(c)))


def _excess(column: ColumnDrift) -> float:
    """How far past its threshold a column is (for p-value tests a smaller value is worse)."""
    if "p_value" in column.method:
        return column.threshold - column.score
    return column.score - column.threshold
