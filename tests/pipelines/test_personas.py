"""`tierwise personas fit`: personas on a real snapshot, registered in MLflow, written by `score`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from features.errors import InputError
from pipelines import personas
from pipelines.score import score
from tests.conftest import SERVE_AS_OF, copy_home
from training import registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(served_home, tmp_path_factory):
    """A copy of the served home (personas fitted there once) with a second fit on the same snapshot."""
    settings = copy_home(served_home, tmp_path_factory.mktemp("personas") / "home")
    return settings, personas.fit(settings, SERVE_AS_OF)


def test_a_fit_registers_the_personas_as_champion_with_their_silhouette(fitted):
    settings, report = fitted
    registry.configure(settings)
    champion = registry.champion(registry.PERSONAS)
    assert champion.version == report.version == 2
    assert registry.run_metrics(champion.run_id)["silhouette"] == pytest.approx(report.model.silhouette)
    assert report.profile.customers.sum() == len(settings.feature_snapshots.read(SERVE_AS_OF))


def test_refitting_the_same_snapshot_keeps_every_persona_and_its_name(fitted, served_home):
    settings, report = fitted
    registry.configure(served_home)
    first, _ = registry.load_personas(1)
    assert report.stability == pytest.approx(1.0)
    assert report.model.names == first.names


def test_score_writes_every_customers_persona_as_the_model_assigns_it(fitted):
    settings, report = fitted
    snapshot = settings.tier_snapshots("lifecycle").read(SERVE_AS_OF)
    features = settings.feature_snapshots.read(SERVE_AS_OF)
    expected = dict(zip(features.customer_id, report.model.assign(features), strict=True))
    assert snapshot.persona_id.tolist() == [expected[c] for c in snapshot.customer_id]
    assert set(snapshot.persona) == set(report.model.names.values())


def test_a_persona_renamed_in_the_homes_settings_is_written_and_listed_by_its_new_name(fitted, tmp_path):
    settings = copy_home(fitted[0], tmp_path / "home")
    pid = fitted[1].model.ids[0]
    (settings.data_dir / "personas.yaml").write_text(f'names: {{{pid}: "Weekday evening families"}}\n')
    score(settings, SERVE_AS_OF)
    snapshot = settings.tier_snapshots("lifecycle").read(SERVE_AS_OF)
    assert set(snapshot.loc[snapshot.persona_id == pid, "persona"]) == {"Weekday evening families"}
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines",
            "--home",
            str(settings.home),
            "personas",
            "list",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(listed.stdout)["personas"]
    assert {r["persona_id"]: r["persona"] for r in rows}[pid] == "Weekday evening families"


def test_a_bad_persona_setting_is_refused_naming_the_field(fitted, tmp_path):
    settings = copy_home(fitted[0], tmp_path / "home")
    (settings.data_dir / "personas.yaml").write_text("k_min: 1\n")
    with pytest.raises(
        InputError, match=r"personas.yaml: invalid persona settings: k_min: .*greater than or equal to 2"
    ):
        personas.fit(settings, SERVE_AS_OF)
