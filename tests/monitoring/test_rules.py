"""The grade rule and the thresholds file, without data."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import InputError
from monitoring.quality import grade
from monitoring.thresholds import Thresholds, load_thresholds

DEFAULTS = Thresholds()


@pytest.mark.parametrize(
    ("lift", "drop", "expected"),
    [
        (0.05, None, "Excellent"),
        (0.03, 0.0, "Excellent"),
        (0.02, None, "Good"),
        (0.0, None, "Fair"),
        (-0.009, None, "Fair"),
        (-0.02, None, "Poor"),
        (0.05, 0.08, "Fair"),  # a drop since training caps the grade
        (-0.05, 0.08, "Poor"),
        (float("nan"), None, "Too few labels"),
    ],
)
def test_the_grade_follows_the_lift_over_the_best_baseline(lift: float, drop: float | None, expected: str):
    assert grade(lift, drop, DEFAULTS) == expected


def test_a_thresholds_file_overrides_named_fields(tmp_path: Path):
    path = tmp_path / "monitoring.yaml"
    path.write_text("drifted_share: 0.5\nmin_labelled: 50\n")
    loaded = load_thresholds(path)
    assert (
        loaded.drifted_share == 0.5
        and loaded.min_labelled == 50
        and loaded.top_features == DEFAULTS.top_features
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drifted_share: 2\n", "drifted_share: Input should be less than or equal to 1"),
        ("drift_share: 0.2\n", "drift_share: Extra inputs are not permitted"),
        ("- 1\n", "expected a mapping"),
    ],
)
def test_a_bad_thresholds_file_is_refused_naming_the_field(tmp_path: Path, text: str, message: str):
    path = tmp_path / "monitoring.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_thresholds(path)
