"""A short model card per model version: what it learned from, what it predicts, how well, and its limits."""

from __future__ import annotations

from training.backtest_plan import BacktestPlan
from training.level_anchor import LevelChoice
from training.spec import ModelSpec


def model_card(
    spec: ModelSpec,
    plan: BacktestPlan,
    examples: dict[str, int],
    model_metrics: dict[str, float],
    baseline_metrics: dict[str, dict[str, float]],
    top_features: list[str],
    fingerprint: str,
    level: LevelChoice | None = None,
    level_anchor: float | None = None,
) -> str:
    """Markdown for one trained version (`level`: the anchor's test on the test cutoff;
    `level_anchor`: the deployed model's anchor, if it kept one)."""
    lines = [
        f"# Model card: {spec.name}",
        "",
        spec.description,
        "",
        "## Data",
        f"- Trained as of {plan.as_of} (no order at or after it was read); horizon {plan.horizon_days} days.",
        f"- Evaluation recipe: training cutoffs {plan.train[0]} … {plan.train[-1]} ({len(plan.train)}), "
        f"validation on 20% held-out customers, test cutoff {plan.test} (all customers).",
        f"- Deployed model: refit on {len(plan.deploy_train)} weekly cutoffs {plan.deploy_train[0]} … "
        f"{plan.deploy_train[-1]}, early stopping on the held-out customers, calibration on those of the latest cutoffs.",
        f"- Examples: {', '.join(f'{k} {v:,}' for k, v in examples.items())}. Data fingerprint `{fingerprint}`.",
        f"- Label `{spec.label}`: see `training/labels.py`. Feature service `{spec.name}` (Feast).",
        *([_level_line(level, level_anchor)] if level is not None else []),
        "",
        f"## Test cutoff {plan.test}: model and baselines",
        "",
    ]
    names = sorted({k for m in [model_metrics, *baseline_metrics.values()] for k in m})
    lines.append("| score | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    rows = {"**model**": model_metrics, **baseline_metrics}
    for label, values in rows.items():
        cells = [f"{values[n]:.3f}" if n in values else "" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Most influential features",
        ", ".join(top_features),
        "",
        "## Known limits",
        "- Trained on the customers and seasons in the window above; a holiday quarter shifts the level.",
        "- Bootstrap bands are wide when positives are few: compare models only outside them.",
        "- Customers without an order before the cutoff are not scored (cold start is handled by the service).",
    ]
    return "\n".join(lines) + "\n"


def _level_line(level: LevelChoice, deployed_anchor: float | None) -> str:
    moved = (
        f"on the test cutoff the anchor moved the predicted total from {level.raw_ratio:.3f} to "
        f"{level.anchored_ratio:.3f} of actual"
    )
    if deployed_anchor is None:
        return f"- Level anchor not kept: {moved}, no nearer the truth; predictions are used as they are."
    return (
        f"- Level anchor {deployed_anchor:.4f} (label / `spend_90d` on its newest training cutoff): "
        "each scored population's predictions are scaled so their mean is the anchor times its mean "
        f"`spend_90d` (`training/level_anchor.py`). Kept because {moved}; the test figures below are "
        "anchored too."
    )
