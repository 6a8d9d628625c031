"""Scoring predictions against what happened: the metric set of each task, and the charts ML-ops reads.

Classifiers: ROC-AUC, PR-AUC, Brier, calibration error, with a gain chart and a calibration plot.
Regression (value): normalized Gini, Spearman, decile MAPE, top-decile capture, MAE, with a gain
chart and a decile chart. Every model also gets a feature-importance chart from LightGBM's
per-prediction contributions (mean |SHAP|).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from training import metrics  # noqa: E402
from training.spec import ModelSpec  # noqa: E402


def score(spec: ModelSpec, y_true: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """The task's metrics (higher is better for the primary metric)."""
    if spec.is_classifier:
        return metrics.classification_metrics(y_true, prediction)
    return metrics.regression_metrics(y_true, prediction)


def rank_score(spec: ModelSpec, y_true: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Metrics of a baseline. Classifier baselines are rankings (days, quintile sums), not probabilities:
    only ranking metrics apply. Value baselines are amounts, so every regression metric applies."""
    if not spec.is_classifier:
        return metrics.regression_metrics(y_true, baseline)
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y_true, baseline)),
        "pr_auc": float(average_precision_score(y_true, baseline)),
    }


def gain_chart(y_true: np.ndarray, scores: dict[str, np.ndarray], title: str) -> Figure:
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for name, values in scores.items():
        curve = metrics.gain_curve(y_true, values)
        axis.plot(curve.iloc[:, 0], curve.iloc[:, 1], label=name)
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="random")
    axis.set(xlabel="share of customers (highest score first)", ylabel="share captured", title=title)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def calibration_chart(y_true: np.ndarray, p: np.ndarray, title: str) -> Figure:
    table = metrics.calibration_table(y_true, p)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    top = float(max(table["mean_predicted"].max(), table["observed_rate"].max()))
    axis.plot([0, top], [0, top], linestyle=":", color="grey", label="perfect")
    axis.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    axis.legend()
    figure.tight_layout()
    return figure


def decile_chart(y_true: np.ndarray, prediction: np.ndarray, title: str) -> Figure:
    table = metrics.decile_table(y_true, prediction)
    figure, axis = plt.subplots(figsize=(6, 4))
    x = np.arange(len(table))
    axis.bar(x - 0.2, table["mean_predicted"], width=0.4, label="predicted")
    axis.bar(x + 0.2, table["mean_actual"], width=0.4, label="actual")
    axis.set(xlabel="decile of prediction", ylabel="mean per customer", title=title)
    axis.set_xticks(x, [str(int(d)) for d in table["decile"]])
    axis.legend()
    figure.tight_layout()
    return figure


def importance(feature_names: list[str], contributions: np.ndarray) -> pd.DataFrame:
    """Mean |contribution| per feature, largest first (contributions' last column is the bias)."""
    values = np.abs(contributions[:, : len(feature_names)]).mean(axis=0)
    return pd.DataFrame({"feature": feature_names, "mean_abs_contribution": values}).sort_values(
        "mean_abs_contribution", ascending=False, ignore_index=True
    )


def importance_chart(table: pd.DataFrame, title: str, top: int = 20) -> Figure:
    head = table.head(top).iloc[::-1]
    figure, axis = plt.subplots(figsize=(6, 0.3 * len(head) + 1))
    axis.barh(head["feature"], head["mean_abs_contribution"])
    axis.set(xlabel="mean |contribution| to the raw score", title=title)
    figure.tight_layout()
    return figure
