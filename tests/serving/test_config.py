"""The service's settings read from the environment: defaults, and a clear error for a bad value."""

from __future__ import annotations

import pytest

from features.errors import InputError
from serving.config import ServeConfig


def test_household_attributes_are_excluded_from_reasons_by_default():
    assert ServeConfig.from_env().reason_excluded_views == frozenset({"household"})


@pytest.mark.parametrize(
    ("setting", "views"), [("none", frozenset()), ("household, habits", frozenset({"household", "habits"}))]
)
def test_the_views_kept_out_of_reasons_are_a_setting(monkeypatch, setting, views):
    monkeypatch.setenv("TIERWISE_REASONS_EXCLUDE", setting)
    assert ServeConfig.from_env().reason_excluded_views == views


def test_an_unknown_view_to_exclude_is_refused_naming_the_known_ones(monkeypatch):
    monkeypatch.setenv("TIERWISE_REASONS_EXCLUDE", "househod")
    with pytest.raises(InputError, match="househod.*views: rfm"):
        ServeConfig.from_env()


def test_the_settings_survive_the_trip_to_the_service_process(monkeypatch):
    monkeypatch.setenv("TIERWISE_ALLOWED_HOSTS", "tierwise.internal")
    monkeypatch.setenv("TIERWISE_REASONS_EXCLUDE", "none")
    monkeypatch.setenv("TIERWISE_TRACING", "on")
    config = ServeConfig.from_env()
    for name, value in config.environment().items():
        monkeypatch.setenv(name, value)
    assert ServeConfig.from_env() == config


@pytest.mark.parametrize("variable", ["TIERWISE_MAX_BATCH", "TIERWISE_MAX_BODY_BYTES"])
def test_a_limit_that_is_not_a_positive_number_is_refused(monkeypatch, variable):
    monkeypatch.setenv(variable, "lots")
    with pytest.raises(InputError, match=variable):
        ServeConfig.from_env()


def test_tracing_is_off_unless_switched_on(monkeypatch):
    assert not ServeConfig.from_env().tracing
    monkeypatch.setenv("TIERWISE_TRACING", "on")
    assert ServeConfig.from_env().tracing


def test_a_tracing_switch_that_is_neither_on_nor_off_is_refused(monkeypatch):
    monkeypatch.setenv("TIERWISE_TRACING", "sometimes")
    with pytest.raises(InputError, match="TIERWISE_TRACING='sometimes': expected on or off"):
        ServeConfig.from_env()
