"""Hyper-parameter search with Optuna: seeded TPE, pruning of hopeless trials, one nested MLflow run per
trial written by Optuna's own MLflow callback (parameters, value, state), to which each trial adds its
number of trees.

Tuning sees only the training and validation cutoffs; the test cutoff is scored once, afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

from training import evaluate
from training.fit import TrainingData, fit_bundle
from training.spec import ModelSpec


def tune(
    spec: ModelSpec,
    train: TrainingData,
    valid: TrainingData,
    horizon_days: int,
    trials: int,
    seed: int = 7,
    on_trial: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Search `spec.search_space` for `trials` trials; returns the best parameters (empty for 0 trials).
    `on_trial(done, trials)` hears of each finished trial."""
    from optuna_integration import LightGBMPruningCallback

    from training import registry

    if trials <= 0:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=50),
        study_name=f"{spec.name}-tuning",
    )
    metric = "auc" if spec.is_classifier else None
    tracking = registry.tuning_callback(f"valid_{spec.primary_metric}", f"{spec.name} trial")
    with warnings.catch_warnings():  # Optuna marks the decorator experimental; it is what we want
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        in_trial_run = tracking.track_in_mlflow()

    @in_trial_run
    def objective(trial: optuna.Trial) -> float:
        params = spec.search_space(trial)
        # Pruning needs a per-round metric in the study's direction: AUC for classifiers. The
        # Tweedie deviance falls as the objective rises, so regression trials rely on early stopping.
        pruning = [LightGBMPruningCallback(trial, metric, valid_name="valid_0")] if metric else []
        bundle, trees = fit_bundle(spec, train, valid, horizon_days, params, callbacks=pruning)
        registry.log_metrics({"trees": trees})
        return evaluate.score(spec, valid.y, bundle.predict(valid.frame))[spec.primary_metric]

    progress = [] if on_trial is None else [lambda study, trial: on_trial(len(study.trials), trials)]
    study.optimize(objective, n_trials=trials, callbacks=[tracking, *progress])
    registry.log_params({f"best_{k}": v for k, v in study.best_params.items()})
    registry.log_metrics({f"tuning_best_valid_{spec.primary_metric}": study.best_value})
    return dict(study.best_params)
