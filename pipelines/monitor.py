"""`tierwise monitor`: drift and real quality of the champions on a tier snapshot, with alerts.

For the tier snapshot of `as_of` (default: the latest) and each model: its features and predictions
against the reference stored with the champion at training (`monitoring.reference`); for every
earlier snapshot whose horizon has ended, the real quality of what it predicted, beside the
baselines, and a grade; tier shares against the previous snapshot and the training period. It
writes, under the data home:

- `data/reports/monitoring/<model>/<date>.html` (Evidently's drift page) and `.json` (every figure);
- `data/reports/monitoring/tiers/<date>.html`, and `data/reports/monitoring/<date>.html`, the
  overview ML-ops open first (verdicts, grades, quality series, links to the pages);
- `data/alerts/monitoring/<date>.json`, records shaped like the tier alerts;
- runs in the Evidently workspace `data/monitoring/workspace` (`tierwise monitor ui`), and a summary
  logged to each champion's MLflow run.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from features.dated_snapshots import DatedSnapshots
from features.files import write_atomically, write_text_atomically
from features.live_data import open_live_data
from features.model_table import MODEL_NAMES, MODELS, PREDICTION_COLUMNS
from features.settings import Settings
from features.snapshots import capabilities, data_period
from monitoring.drift import DriftResult, column_drift
from monitoring.health import ModelHealth, alerts
from monitoring.page import render_overview
from monitoring.quality import Quality, matured_quality
from monitoring.reference import PREDICTION, ChampionReference, load_reference
from monitoring.thresholds import Thresholds, load_thresholds
from monitoring.workspace import MonitoringWorkspace
from pipelines.home_lock import writes_home
from pipelines.train import labels_on_engine
from tiering import load_policy
from training import registry
from training.models import SPECS

#: Optional thresholds file of a home (see `monitoring.thresholds`).
THRESHOLDS_FILE = "monitoring.yaml"


@dataclass
class MonitorReport:
    as_of: date
    policy: str
    horizon_days: int
    health: dict[str, ModelHealth]
    tier_drift: dict[str, DriftResult]
    alerts: list[dict]
    overview: Path
    alerts_path: Path
    thresholds: Thresholds


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports" / "monitoring"


def workspace_dir(settings: Settings) -> Path:
    return settings.data_dir / "monitoring" / "workspace"


@writes_home
def monitor(
    settings: Settings,
    as_of: date | None = None,
    policy_name: str = "lifecycle",
    thresholds_path: Path | None = None,
    model_names: list[str] | None = None,
    retraining: list[dict] | None = None,
) -> MonitorReport:
    """Monitor the champions on the tier snapshot of `as_of` (default: the latest); see the module.

    Args:
        retraining: What `tierwise run --retrain-on-alert` did after the previous look at this date
            (model, version, promoted, reason): shown in the overview and kept in each model's JSON.
    """
    home_file = settings.home / THRESHOLDS_FILE
    thresholds = load_thresholds(thresholds_path or (home_file if home_file.exists() else None))
    policy = load_policy(policy_name)
    tiers = settings.tier_snapshots(policy.name)
    day = tiers.choose(as_of)
    scored = tiers.read(day)
    features = settings.feature_snapshots
    current = features.read(features.choose(day)).merge(
        scored[["customer_id", *PREDICTION_COLUMNS]], on="customer_id", validate="one_to_one"
    )
    horizon = int(scored["horizon_days"].iloc[0])
    registry.configure(settings)
    outcomes = matured_outcomes(settings, tiers, day, horizon)
    workspace = MonitoringWorkspace(workspace_dir(settings))
    out = reports_dir(settings)
    health: dict[str, ModelHealth] = {}
    drift_by_reference: dict[tuple[int, int], DriftResult] = {}
    test_cutoffs: list[date] = []
    pages: dict[int, Path] = {}  # one drift report shared by several models is drawn once
    # A model answered by its baseline (no champion yet) has no training reference to be watched against.
    watched = model_names or [name for name in MODEL_NAMES if registry.champion(name) is not None]
    for name in watched:
        spec, entry = SPECS[name], MODELS[name]
        reference = load_reference(spec)
        if reference.test_cutoff is not None:
            test_cutoffs.append(reference.test_cutoff)
        # A model is watched on the customers it answers (growth: the active ones, as in its reference).
        answered = current[current[entry.output].notna().to_numpy()]
        key = (
            int(pd.util.hash_pandas_object(reference.sample[reference.features], index=False).sum()),
            len(answered),
        )
        if key not in drift_by_reference:  # the champions usually share one test cutoff's rows
            drift_by_reference[key] = _feature_drift(answered, reference, thresholds, day)
        feature_drift = drift_by_reference[key]
        prediction = column_drift(
            answered[[entry.output]],
            reference.sample[[PREDICTION]].rename(columns={PREDICTION: entry.output}),
            numerical=[entry.output],
            rows=thresholds.stat_rows,
            timestamp=pd.Timestamp(day).to_pydatetime(),
        )
        quality = [
            _quality(spec, reference, frame, when, horizon, thresholds, workspace, settings)
            for when, frame in outcomes.items()
        ]
        result = ModelHealth(
            model=name,
            version=reference.version,
            run_id=reference.run_id,
            as_of=day,
            features=feature_drift,
            prediction=prediction.columns[0] if prediction.columns else None,
            prediction_mean=float(current[entry.output].mean()),
            reference_mean=float(reference.sample[PREDICTION].mean()),
            top_features=reference.importance,
            quality=quality,
        )
        health[name] = result
        retrained = [r for r in retraining or [] if r["model"] == name]
        _save_model(settings, result, thresholds, out, workspace, spec.is_classifier, retrained, pages)
    tier_drift = _tier_drift(tiers, scored, day, test_cutoffs, workspace, out)
    records = [record for result in health.values() for record in alerts(result, thresholds)]
    alerts_path = write_text_atomically(
        json.dumps(records, indent=1, default=str),
        settings.data_dir / "alerts" / "monitoring" / f"{day}.json",
    )
    overview = write_text_atomically(
        render_overview(day, policy.name, health, tier_drift, records, thresholds, retraining or []),
        out / f"{day}.html",
    )
    return MonitorReport(
        day, policy.name, horizon, health, tier_drift, records, overview, alerts_path, thresholds
    )


def matured_outcomes(
    settings: Settings, tiers: DatedSnapshots, as_of: date, horizon: int
) -> dict[date, pd.DataFrame]:
    """For each tier snapshot up to `as_of` whose horizon has ended in the data: its customers'
    predictions, point-in-time features and labels (what happened in the horizon) on one row each
    (the baselines read the features)."""
    con = open_live_data(settings)
    known_until = data_period(con).last_order.date() + timedelta(days=1)
    matured = [d for d in tiers.dates() if d <= as_of and d + timedelta(days=horizon) <= known_until]
    if not matured:
        return {}
    labels = labels_on_engine(settings, con, matured, horizon, known_until, capabilities(con).products)
    result = {}
    for day in matured:
        at = labels[labels["event_timestamp"].dt.date == day].drop(columns="event_timestamp")
        predicted = tiers.read(day, ["customer_id", *PREDICTION_COLUMNS])
        features = settings.feature_snapshots
        frame = (
            features.read(features.choose(day))
            .drop(columns=[c for c in PREDICTION_COLUMNS], errors="ignore")
            .merge(predicted, on="customer_id", validate="one_to_one")
            .merge(at, on="customer_id", validate="one_to_one")
        )
        result[day] = frame
    return result


def _feature_drift(
    current: pd.DataFrame, reference: ChampionReference, thresholds: Thresholds, day: date
) -> DriftResult:
    return column_drift(
        current,
        reference.sample,
        numerical=reference.numerical,
        categorical=reference.categorical,
        rows=thresholds.stat_rows,
        timestamp=pd.Timestamp(day).to_pydatetime(),
    )


def _quality(
    spec,
    reference: ChampionReference,
    frame: pd.DataFrame,
    day: date,
    horizon: int,
    thresholds: Thresholds,
    workspace: MonitoringWorkspace,
    settings: Settings,
) -> Quality:
    """One matured snapshot's quality for one model, also added to the workspace as a quality run."""
    output = MODELS[spec.name].output
    # Judged where it has a label and answered (growth: customers active before the snapshot).
    frame = frame[(frame[spec.label].notna() & frame[output].notna()).to_numpy()]
    baselines = spec.baselines(frame, horizon)
    quality = matured_quality(
        spec,
        day,
        horizon,
        frame[spec.label].to_numpy(dtype=float),
        frame[output].to_numpy(dtype=float),
        baselines,
        reference.test_metrics.get(spec.primary_metric),
        thresholds,
    )
    snapshot = _quality_snapshot(
        spec, frame[[spec.label, output]].rename(columns={output: PREDICTION}), reference, day
    )
    project = workspace.project_id(
        spec.name, spec.task, f"Drift and real quality of the {spec.name} champion."
    )
    workspace.replace_run(project, f"{spec.name}/quality/{day}", snapshot)
    registry.log_run_metrics(
        reference.run_id,
        {
            f"production_{spec.primary_metric}": quality.primary,
            "production_lift_over_best_baseline": quality.lift,
            "production_customers": quality.customers,
        },
        step=_step(day),
    )
    return quality


def _quality_snapshot(spec, current: pd.DataFrame, reference: ChampionReference, day: date):
    """Evidently's classification or regression preset: matured predictions against the reference's."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    if spec.is_classifier:
        task = {"classification": [BinaryClassification(target=spec.label, prediction_probas=PREDICTION)]}
        preset = ClassificationPreset()
    else:
        task = {"regression": [Regression(target=spec.label, prediction=PREDICTION)]}
        preset = RegressionPreset()
    definition = DataDefinition(numerical_columns=[spec.label, PREDICTION], **task)

    def dataset(frame: pd.DataFrame):
        data = frame[[spec.label, PREDICTION]].astype("float64").reset_index(drop=True)
        if spec.is_classifier:
            data[spec.label] = data[spec.label].astype(int)
        return Dataset.from_pandas(data, data_definition=definition)

    with warnings.catch_warnings():  # sklearn warns of metrics undefined on tiny groups Evidently draws
        warnings.simplefilter("ignore")
        return Report([preset]).run(
            dataset(current), dataset(reference.sample), timestamp=pd.Timestamp(day).to_pydatetime()
        )


def _save_model(
    settings: Settings,
    result: ModelHealth,
    thresholds: Thresholds,
    out: Path,
    workspace: MonitoringWorkspace,
    classifier: bool,
    retrained: list[dict],
    pages: dict[int, Path],
) -> None:
    """The model's Evidently page and JSON, its workspace run and its MLflow summary."""
    folder = out / result.model
    folder.mkdir(parents=True, exist_ok=True)
    summary = {**result.summary(thresholds), "retraining": retrained}
    if result.features.snapshot is not None:
        page, drawn = folder / f"{result.as_of}.html", pages.get(id(result.features.snapshot))
        if drawn is None:
            _save_html(result.features.snapshot, page)
            pages[id(result.features.snapshot)] = page
        else:
            write_text_atomically(drawn.read_text(), page)
        summary["evidently"] = result.features.snapshot.dict()
    write_text_atomically(json.dumps(summary, indent=1, default=str), folder / f"{result.as_of}.json")
    if result.features.snapshot is not None:
        project = workspace.project_id(
            result.model,
            "classification" if classifier else "regression",
            f"Drift and real quality of the {result.model} champion.",
        )
        workspace.replace_run(project, f"{result.model}/drift/{result.as_of}", result.features.snapshot)
    registry.log_run_metrics(
        result.run_id,
        {
            "monitor_drifted_share": result.features.share,
            "monitor_prediction_mean_shift": result.mean_shift,
            "monitor_alerts": len(summary["alerts"]),
        },
        step=_step(result.as_of),
    )
    registry.set_run_tags(
        result.run_id,
        {
            "monitor_as_of": result.as_of,
            "monitor_grade": result.grade,
            "monitor_alerts": len(summary["alerts"]),
        },
    )


def _tier_drift(
    tiers: DatedSnapshots,
    scored: pd.DataFrame,
    day: date,
    test_cutoffs: list[date],
    workspace: MonitoringWorkspace,
    out: Path,
) -> dict[str, DriftResult]:
    """Tier shares against the previous snapshot and against the snapshot of the training period (the
    latest one on or before the champions' test cutoff)."""
    compared: dict[str, DriftResult] = {}
    previous = tiers.previous(day)
    if previous is not None:
        compared[f"previous snapshot ({previous})"] = column_drift(
            scored[["tier"]], tiers.read(previous, ["tier"]), numerical=[], categorical=["tier"]
        )
    if test_cutoffs:
        training_day = tiers.previous(max(test_cutoffs) + timedelta(days=1))
        if training_day is not None and training_day != previous and training_day != day:
            compared[f"training period ({training_day})"] = column_drift(
                scored[["tier"]], tiers.read(training_day, ["tier"]), numerical=[], categorical=["tier"]
            )
    folder = out / "tiers"
    folder.mkdir(parents=True, exist_ok=True)
    project = workspace.project_id("tiers", "tiers", "Tier shares against earlier snapshots.")
    for label, result in compared.items():
        if result.snapshot is not None:
            kind = "previous" if label.startswith("previous") else "training"
            _save_html(result.snapshot, folder / f"{day}-{kind}.html")
            workspace.replace_run(project, f"tiers/{kind}/{day}", result.snapshot)
    return compared


def _save_html(snapshot, path: Path) -> None:
    """Evidently's page, written atomically (Evidently writes only to a path given as a string)."""
    write_atomically(path, lambda partial: snapshot.save_html(str(partial)))


def _step(day: date) -> int:
    """An MLflow step that orders dates: 2018-01-02 → 20180102."""
    return day.year * 10_000 + day.month * 100 + day.day
