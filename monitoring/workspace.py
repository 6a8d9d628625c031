"""The local Evidently workspace: one project per model (and one for tiers), browsable over time.

`tierwise monitor ui` serves it with Evidently's own UI. Every monitoring run adds its Evidently
snapshots as runs of the model's project, stamped with the snapshot date; running again for the
same date replaces them (a small index, `tierwise-runs.json`, remembers which run is which), so
reruns are idempotent and the dashboard's time series have one point per date.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from features.files import write_text_atomically

PROJECT_PREFIX = "tierwise "
INDEX_FILE = "tierwise-runs.json"


def _panels(kind: str) -> list[Any]:
    """Dashboard panels of a new project: drift share for all, the matured quality for models."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    panels = [
        line_plot_panel(
            "Share of drifted columns",
            [
                PanelMetric(
                    legend="drifted share",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
            description="Evidently's drift tests per column, against the champion's training reference.",
        )
    ]
    if kind == "classification":
        panels.append(
            line_plot_panel(
                "ROC AUC once outcomes are known",
                [PanelMetric(legend="ROC AUC", metric="RocAuc")],
                description="Predictions of each past snapshot against what happened in its horizon.",
            )
        )
    elif kind == "regression":
        panels.append(
            line_plot_panel(
                "Mean absolute error once outcomes are known",
                [PanelMetric(legend="MAE", metric="MAE", metric_labels={"value_type": "mean"})],
                description="Predictions of each past snapshot against what happened in its horizon.",
            )
        )
    return panels


class MonitoringWorkspace:
    """An Evidently workspace folder with Tierwise's projects."""

    def __init__(self, path: Path):
        from evidently.ui.workspace import Workspace

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._workspace = Workspace.create(str(path))
        self._index_path = path / INDEX_FILE
        self._index: dict[str, str] = (
            json.loads(self._index_path.read_text()) if self._index_path.exists() else {}
        )

    def project_id(self, name: str, kind: str, description: str) -> str:
        """The id of project `tierwise <name>`, created with its dashboard on first use."""
        title = PROJECT_PREFIX + name
        found = self._workspace.search_project(title)
        if found:
            return str(found[0].id)
        project = self._workspace.create_project(title, description=description)
        for panel in _panels(kind):
            project.dashboard.add_panel(panel)
        return str(project.id)

    def replace_run(self, project_id: str, key: str, snapshot: Any) -> str:
        """Add `snapshot` as a run of the project, removing the run stored earlier under `key`."""
        previous = self._index.get(key)
        if previous is not None:
            # Already gone (a workspace cleaned by hand): nothing to replace.
            with contextlib.suppress(Exception):
                self._workspace.delete_run(project_id, previous)
        run_id = str(self._workspace.add_run(project_id, snapshot, include_data=False).id)
        self._index[key] = run_id
        write_text_atomically(json.dumps(self._index, indent=1, sort_keys=True), self._index_path)
        return run_id

    def runs(self, project_id: str) -> list[str]:
        return [str(run) for run in self._workspace.list_runs(project_id)]
