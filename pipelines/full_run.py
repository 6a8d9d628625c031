"""`tierwise run`: the whole pipeline, each step skipped or refreshed as its inputs require.

import → features (snapshots at the training cutoffs and today, Feast apply, online store)
→ train (all three models, a few Optuna trials, when a model has no champion yet)
→ next_order (trained when it never was, or with `retrain_every` when due; promoted only if it beats
  BG/NBD) → personas (fitted when there are none, or with `retrain_every` when theirs are that old)
→ score (every customer at the latest snapshot, lifecycle tiers and personas) → tier report, alerts and HTML report
→ monitor (drift and real quality of the champions, `pipelines/monitor.py`)
→ with `retrain_on_alert`: retrain each model a drift or quality alert names, on the newest data; the
  challenger becomes champion only if it beats the champion and the best baseline on the newest
  matured cutoff (`training.promotion`); if one did, score and monitor again. The outcome of each
  retrain is in its MLflow run (tags `promoted`, `promotion_reason`) and in the monitoring report.

`run` reports alerts but exits 0 when every step worked: `tierwise monitor` is the command a
scheduler branches on (exit 5 on an alert).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

from rich.console import Console

from features.data.store import DataStore
from features.model_table import MODEL_NAMES
from features.settings import Settings
from pipelines import build_features, import_data, monitor, next_order, personas, score, tier_reports, train
from pipelines.cli.app import people_table
from pipelines.home_lock import writes_home
from training.registry import VersionInfo

#: Cutoffs for backtests and training: every 2 weeks over the data, as the training job will read.
CUTOFF_STEP = timedelta(days=14)
#: Optuna trials per model when `run` trains models that have no champion yet.
RUN_TRIALS = 5


#: Alert rules that call for a retrain (the others ask to investigate the data first).
RETRAIN_RULES = ("feature_drift", "prediction_drift", "quality_drop", "below_baseline")


@writes_home
def run(
    settings: Settings,
    source_dir: Path | None = None,
    console: Console | None = None,
    retrain_on_alert: bool = False,
    retrain_every: timedelta | None = None,
) -> monitor.MonitorReport:
    """Run every step of the pipeline against `settings.home`, importing Complete Journey if it is empty.

    Models without a champion are trained; with `retrain_every`, so is each model whose champion was
    trained on data older than that before today's data (the cadence the shops retrain on)."""
    console = console or Console()
    store = DataStore(settings.data_dir)
    if store.has_table("orders"):
        console.print(f"import: orders already in {settings.data_dir}, skipped")
    else:
        with console.status("import: Complete Journey"):
            report = import_data.import_completejourney(settings, source_dir)
        console.print(f"import: {report.reconciliation()}")

    cutoffs = feature_cutoffs(settings)
    missing = [d for d in cutoffs if d not in set(settings.feature_snapshots.dates())]
    if missing:
        with console.status(f"features: building {len(missing)} snapshot(s)"):
            build_features.build(settings, missing)
    console.print(
        f"features: {len(cutoffs)} snapshots from {cutoffs[0]} to {cutoffs[-1]} ({len(missing)} new)"
    )
    with console.status("features: feast apply and materialize"):
        day, count = build_features.apply_and_materialize(settings)
    console.print(f"features: online store ({settings.online_store}) holds {count:,} customers as of {day}")

    untrained = models_without_champion(settings, retrain_every, cutoffs[-1])
    for name in sorted(set(MODEL_NAMES) - set(untrained) - set(models_with_champion(settings))):
        console.print(
            f"train: {name} has no champion (its versions lost to their baseline, which answers for it); "
            "not retrained until due (`--retrain-every`) or `tierwise train`"
        )
    due = {} if retrain_every is None else models_due(settings, retrain_every, cutoffs[-1])
    for name, trained_as_of in due.items():
        console.print(
            f"train: {name} champion trained on data as of {trained_as_of}, due (every {retrain_every.days}d)"
        )
    if untrained or due:
        # Each group keeps its recipe: a due champion is retrained on the horizon and steps it was trained on.
        groups = {Recipe(train.DEFAULT_HORIZON_DAYS, train.DEFAULT_STEP_DAYS): untrained} if untrained else {}
        for recipe, names in champion_recipes(settings, list(due)).items():
            groups.setdefault(recipe, []).extend(names)
        for recipe, names in groups.items():
            for result in _train(settings, names, recipe, console, "train"):
                metric = next(iter(result.test_metrics.items()))
                console.print(
                    f"train: {result.name} v{result.version} ({metric[0]} {metric[1]:.3f}), {result.reason}"
                )
    else:
        console.print(
            "train: every model has a champion, skipped (`--retrain-every 14d` or `tierwise train` retrains)"
        )

    if next_order_due(settings, retrain_every, cutoffs[-1]):
        with console.status("train: next_order"):
            trained = next_order.train_next_order(settings)
        console.print(
            f"train: next_order v{trained.version} (auc_30d {trained.test_metrics['auc_30d']:.3f}), {trained.reason}"
        )
    if personas_due(settings, retrain_every, cutoffs[-1]):
        with console.status("personas: fitting"):
            fitted = personas.fit(settings, cutoffs[-1])
        console.print(
            f"personas: v{fitted.version}, {len(fitted.model.ids)} personas as of {fitted.as_of} "
            f"(silhouette {fitted.model.silhouette:.3f}): " + "; ".join(fitted.profile.persona)
        )

    with console.status("score: champions and lifecycle tiers"):
        scored = score.score(settings)
    shares = ", ".join(f"{tier} {count / scored.customers:.1%}" for tier, count in scored.tier_counts.items())
    console.print(f"score: {scored.customers:,} customers as of {scored.as_of} → {scored.path} ({shares})")
    summary = tier_reports.report(settings, "lifecycle", scored.as_of)["summary"]
    console.print(people_table(summary[["customers", "share", "predicted_arpu", "mean_churn_probability"]]))
    alerts = tier_reports.alerts(settings, "lifecycle", scored.as_of)
    console.print(f"alerts: {len(alerts)} fired" + "".join(f"\n  - {a['message']}" for a in alerts))

    with console.status("monitor: drift and real quality"):
        report = monitor.monitor(settings, scored.as_of)
    _print_monitoring(console, report)
    if retrain_on_alert:
        outcomes = retrain_alerted(settings, report, console)
        if outcomes:
            if any(o["promoted"] for o in outcomes):
                with console.status("score: with the new champions"):
                    scored = score.score(settings, scored.as_of)
            with console.status("monitor: after retraining"):
                report = monitor.monitor(settings, scored.as_of, retraining=outcomes)
            _print_monitoring(console, report)
    page = tier_reports.html_report(settings, "lifecycle", scored.as_of)
    console.print(f"report: {page}", markup=False, highlight=False, soft_wrap=True)
    return report


def retrain_alerted(
    settings: Settings, report: monitor.MonitorReport, console: Console, trials: int = RUN_TRIALS
) -> list[dict]:
    """Retrain each model named by a retrain-worthy alert on the newest data, with its champion's
    recipe (horizon and days between training cutoffs: a retrain answers "would the same model do
    better on newer data?"); the promotion rule decides."""
    alerted = sorted({a["model"] for a in report.alerts if a["rule"] in RETRAIN_RULES})
    if not alerted:
        console.print("retrain: no alert calls for it")
        return []
    results = []
    for recipe, names in champion_recipes(settings, alerted).items():
        results += _train(settings, names, recipe, console, "retrain", trials)
    outcomes = []
    for result in results:
        rules = sorted({a["rule"] for a in report.alerts if a["model"] == result.name})
        outcomes.append(
            {
                "model": result.name,
                "version": result.version,
                "promoted": result.promoted,
                "reason": result.reason,
                "alerts": rules,
                "as_of": report.as_of.isoformat(),
            }
        )
        verdict = "promoted to champion" if result.promoted else "kept the champion"
        console.print(f"retrain: {result.name} v{result.version} {verdict}: {result.reason}")
    return outcomes


class Recipe(NamedTuple):
    """How a model is trained, besides its data: the days its labels look ahead and the days between
    its training cutoffs. A retrain repeats its champion's (it answers "would the same model do
    better on newer data?")."""

    horizon_days: int
    step_days: int


def champion_recipes(settings: Settings, names: list[str]) -> dict[Recipe, list[str]]:
    """`names` grouped by their champion's recipe (its `horizon_days` and `step_days` tags; the
    defaults for a champion registered before the tag, or none)."""
    from training import registry

    registry.configure(settings)
    groups: dict[Recipe, list[str]] = {}
    for name in names:
        tags = info.tags if (info := registry.champion(name)) else {}
        recipe = Recipe(
            int(tags.get("horizon_days", train.DEFAULT_HORIZON_DAYS)),
            int(tags.get("step_days", train.DEFAULT_STEP_DAYS)),
        )
        groups.setdefault(recipe, []).append(name)
    return groups


def _train(
    settings: Settings,
    names: list[str],
    recipe: Recipe,
    console: Console,
    label: str,
    trials: int = RUN_TRIALS,
) -> list:
    """`train.train` of `names` with `recipe`, its steps shown in a status line."""
    with console.status(f"{label}: {', '.join(names)} ({trials} trials each)") as status:
        return train.train(
            settings,
            names,
            horizon_days=recipe.horizon_days,
            trials=trials,
            step_days=recipe.step_days,
            on_step=lambda text: status.update(f"{label}: {text}"),
        )


def _print_monitoring(console: Console, report: monitor.MonitorReport) -> None:
    grades = ", ".join(f"{name} {health.grade}" for name, health in report.health.items())
    console.print(f"monitor: {grades}; {len(report.alerts)} alert(s)", markup=False, highlight=False)
    for record in report.alerts:
        console.print(f"  - [{record['severity']}] {record['message']}", markup=False, highlight=False)
    console.print(f"monitor: {report.overview}", markup=False, highlight=False, soft_wrap=True)


def models_without_champion(settings: Settings, every: timedelta | None, today: date) -> list[str]:
    """Models to train for want of a champion: never trained, or (with `every`) their newest version
    was trained on data `every` or more before `today`. A model whose version lost to its baseline is
    answered by that baseline and not retrained on every run (which would register a version a day)."""
    from training import registry

    registry.configure(settings)
    wanted = []
    for name in MODEL_NAMES:
        if registry.champion(name) is None:
            found = registry.versions(name)  # newest first
            if not found or _stale(found[0], every, today) is not None:
                wanted.append(name)
    return wanted


def models_with_champion(settings: Settings) -> list[str]:
    from training import registry

    registry.configure(settings)
    return [name for name in MODEL_NAMES if registry.champion(name) is not None]


def models_due(settings: Settings, every: timedelta, today: date) -> dict[str, date]:
    """Models whose champion was trained on data as of `every` or more before `today`, with that date."""
    from training import registry

    registry.configure(settings)
    trained = {name: _stale(registry.champion(name), every, today) for name in MODEL_NAMES}
    return {name: day for name, day in trained.items() if day is not None}


def next_order_due(settings: Settings, every: timedelta | None, today: date) -> bool:
    """Whether the next-order model needs training: never trained (registered), or (with `every`) its
    latest version was trained on data older than `every` before `today`."""
    from training import registry

    registry.configure(settings)
    found = registry.versions(registry.NEXT_ORDER)  # newest first
    return not found or _stale(found[0], every, today) is not None


def personas_due(settings: Settings, every: timedelta | None, today: date) -> bool:
    """Whether personas need a fit: none yet, or (with `every`) the champion's was fitted on a snapshot
    older than `every` before `today`."""
    from training import registry

    registry.configure(settings)
    current = registry.champion(registry.PERSONAS)
    return current is None or _stale(current, every, today) is not None


def _stale(version: VersionInfo | None, every: timedelta | None, today: date) -> date | None:
    """The data date (tag `as_of`) a registered version was trained on, when it lies `every` or more
    before `today`; None otherwise (no version, no cadence, no tag)."""
    if version is None or every is None or "as_of" not in version.tags:
        return None
    trained = date.fromisoformat(version.tags["as_of"])
    return trained if today - trained >= every else None


def feature_cutoffs(settings: Settings) -> list[date]:
    """Every 2 weeks back from the day after the last order, starting 8 weeks after the first order."""
    period = build_features.period(settings)
    today = period.last_order.date() + timedelta(days=1)
    earliest = period.first_order.date() + timedelta(weeks=8)
    dates, current = [], today
    while current >= earliest:
        dates.append(current)
        current -= CUTOFF_STEP
    return sorted(dates)
