"""The scheduling recipes in deploy/: the Airflow DAG, loaded and run by a real Airflow, and the
systemd units.

Airflow never enters Tierwise's environment (their dependencies conflict, and it is large): a module
fixture builds a virtualenv with uv (uv's cache makes a rerun take seconds), and `airflow_dag_probe.py`
runs there, against a stand-in `tierwise` that records its arguments and exits as told.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from pipelines.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "deploy" / "airflow" / "tierwise_dag.py"
SERVICE = ROOT / "deploy" / "systemd" / "tierwise-run.service"
TIMER = ROOT / "deploy" / "systemd" / "tierwise-run.timer"
README = ROOT / "deploy" / "README.md"
PROBE = Path(__file__).with_name("airflow_dag_probe.py")

#: The Airflow the DAG is written for. Packages uploaded after RESOLVED_AS_OF are ignored, so the
#: rest of the install resolves the same way on every run (Airflow's constraint files are on GitHub).
AIRFLOW = "apache-airflow==3.3.2"
RESOLVED_AS_OF = "2026-12-01T00:00:00Z"

DAILY_ORDER = [
    "import_orders",
    "build_features",
    "materialize_features",
    "score",
    "tiers_report",
    "tiers_alerts",
    "monitor",
    "retrain_due",
    "train",
]
COMMAND_TASKS = [task for task in DAILY_ORDER if task != "retrain_due"]

#: Stands in for `tierwise`: appends its arguments to $FAKE_TIERWISE_CALLS and exits with the code
#: FAKE_EXITS gives one of its words, e.g. FAKE_EXITS="monitor=5 alerts=5"; otherwise 0.
FAKE_TIERWISE = """#!/bin/sh
echo "tierwise $*" >> "$FAKE_TIERWISE_CALLS"
for rule in $FAKE_EXITS; do
    case " $* " in *" ${rule%=*} "*) exit "${rule#*=}" ;; esac
done
exit 0
"""


#: Seconds a probe may take. A whole run takes about 10; one that waits for a task's retry (minutes
#: away) fails here rather than holding the test session.
PROBE_TIMEOUT = 180


def run(command: list, timeout: float | None = None, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(map(str, command))} did not finish in {timeout} s (waiting for a retry?)")
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result


@dataclass
class Airflow:
    """An environment with Airflow, its metadata database, and a home the stand-in `tierwise` gets."""

    python: Path
    env: dict[str, str]
    home: Path
    scratch: Path

    def probe(self, *arguments: str, fake_exits: str = "") -> dict:
        out = self.scratch / "probe.json"
        run(
            [self.python, PROBE, arguments[0], DAG_FILE, *arguments[1:], out],
            env={**self.env, "FAKE_EXITS": fake_exits},
            cwd=self.scratch,
            timeout=PROBE_TIMEOUT,
        )
        return json.loads(out.read_text())

    def run_day(self, run_after: str, fake_exits: str = "") -> dict:
        """One whole DAG run (`dag.test`) scheduled for `run_after`."""
        return self.probe("run", run_after, fake_exits=fake_exits)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    scratch = tmp_path_factory.mktemp("airflow")
    uv = Path(sys.executable).parent / "uv"
    venv = scratch / "venv"
    run([uv, "venv", "--quiet", "--python", sys.executable, venv], cwd=scratch)
    python = venv / "bin" / "python"
    run(
        [uv, "pip", "install", "--quiet", "--python", python, "--exclude-newer", RESOLVED_AS_OF, AIRFLOW],
        cwd=scratch,
    )
    bin_dir = scratch / "bin"
    bin_dir.mkdir()
    (bin_dir / "tierwise").write_text(FAKE_TIERWISE)
    (bin_dir / "tierwise").chmod(0o755)
    home = scratch / "home"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(scratch),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AIRFLOW_HOME": str(scratch / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_VAR_TIERWISE_HOME": str(home),  # the Variable `tierwise_home`
        "FAKE_TIERWISE_CALLS": str(scratch / "calls.txt"),
    }
    run([venv / "bin" / "airflow", "db", "migrate"], env=env, cwd=scratch)
    return Airflow(python=python, env=env, home=home, scratch=scratch)


@pytest.fixture(scope="module")
def dag(airflow: Airflow) -> dict:
    """The DAG as Airflow loads it, its rendered commands and what each exit code does to each task."""
    return airflow.probe("describe")


@pytest.fixture(scope="module")
def alert_day(airflow: Airflow) -> dict:
    """A run on a Tuesday when `tiers alerts` and `monitor` both find something (exit 5)."""
    (airflow.home / "inbox").mkdir(parents=True, exist_ok=True)
    (airflow.home / "inbox" / "orders.csv").write_text("order_id,customer_id\n")
    return airflow.run_day("2026-12-01T03:00:00+00:00", fake_exits="alerts=5 monitor=5")


@pytest.fixture(scope="module")
def quiet_day(airflow: Airflow) -> dict:
    """A run on a Wednesday without new orders or alerts."""
    return airflow.run_day("2026-12-02T03:00:00+00:00")


def tierwise_calls(home: Path | str, day: str) -> dict[str, str]:
    return {
        "import_orders": f"tierwise --home {home} data import {home}/inbox/orders.csv",
        "build_features": f"tierwise --home {home} features build --as-of {day}",
        "materialize_features": f"tierwise --home {home} features materialize",
        "score": f"tierwise --home {home} score --as-of {day}",
        "tiers_report": f"tierwise --home {home} tiers report --as-of {day}",
        "tiers_alerts": f"tierwise --home {home} tiers alerts --as-of {day}",
        "monitor": f"tierwise --home {home} monitor --as-of {day}",
        "train": f"tierwise --home {home} train --model all",
    }


# The DAG, as Airflow loads it


@pytest.mark.slow
def test_airflow_loads_the_dag_without_import_errors_or_warnings(dag: dict):
    assert dag["import_errors"] == {}
    assert dag["warnings"] == {}
    assert dag["dags"] == ["tierwise_daily"]
    assert dag["airflow_version"] == AIRFLOW.split("==")[1]


@pytest.mark.slow
def test_the_tasks_follow_the_daily_order_one_after_another(dag: dict):
    assert dag["order"] == DAILY_ORDER
    chain = {task: [before] for before, task in pairwise(DAILY_ORDER)}
    assert {task: spec["upstream"] for task, spec in dag["tasks"].items()} == {"import_orders": [], **chain}
    assert dag["serialized_upstream"] == {"import_orders": [], **chain}  # as the scheduler sees it


@pytest.mark.slow
def test_the_dag_runs_daily_and_never_two_runs_at_once(dag: dict):
    assert dag["schedule"] == "0 3 * * *"
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False


@pytest.mark.slow
def test_every_task_calls_tierwise_with_the_home_and_the_runs_date(dag: dict):
    assert all(
        'tierwise --home "$TIERWISE_HOME" ' in dag["tasks"][task]["bash_command"] for task in COMMAND_TASKS
    )
    rendered = dag["rendered_for"]
    expected = tierwise_calls(rendered["home"], rendered["run_after"][:10])
    assert dag["calls"] == {task: [call] for task, call in expected.items()}


@pytest.mark.slow
def test_the_dag_knows_tierwise_exit_codes(dag: dict):
    assert dag["exit_codes"] == {code.name: code.value for code in ExitCode}


# Exit codes: what each does to a task


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (ExitCode.OK, "ok"),
        (ExitCode.FAILED, "fails, retried"),
        (ExitCode.USAGE, "fails at once"),
        (ExitCode.BAD_INPUT, "fails at once"),
        (ExitCode.BUSY, "fails, retried"),
    ],
)
def test_an_exit_code_does_the_same_to_every_task(dag: dict, code: ExitCode, outcome: str):
    assert {task: dag["outcomes"][task][str(code.value)] for task in COMMAND_TASKS} == dict.fromkeys(
        COMMAND_TASKS, outcome
    )


@pytest.mark.slow
def test_an_alert_skips_tiers_alerts_is_returned_by_monitor_and_fails_other_commands(dag: dict):
    alert = str(ExitCode.ALERT.value)
    outcomes = {task: dag["outcomes"][task][alert] for task in COMMAND_TASKS}
    assert outcomes == {
        **dict.fromkeys(COMMAND_TASKS, "fails, retried"),
        "tiers_alerts": "skipped",
        "monitor": "alert",
    }


@pytest.mark.slow
def test_a_retried_task_waits_5_minutes_then_twice_as_long_up_to_an_hour(dag: dict):
    settings = {
        (
            spec["retries"],
            spec["retry_delay_seconds"],
            spec["retry_exponential_backoff"],
            spec["max_retry_delay_seconds"],
        )
        for spec in dag["tasks"].values()
    }
    assert settings == {(4, 300.0, 2.0, 3600.0)}


@pytest.mark.slow
def test_the_imported_orders_file_moves_out_of_the_inbox(dag: dict):
    assert dag["imported_orders_files"] == ["orders-2026-12-01.csv"]


@pytest.mark.slow
def test_without_an_orders_file_nothing_is_imported(dag: dict):
    assert dag["import_without_orders_file"] == {"outcome": "ok", "calls": []}


@pytest.mark.slow
def test_retrain_is_due_after_a_monitoring_alert_or_every_other_sunday(dag: dict):
    assert dag["retrain_due"] == {
        "after a monitoring alert": ["train"],
        "retrain days without an alert": ["2026-12-06", "2026-12-20"],
    }


# Whole runs (`dag.test`): trigger rules, the branch and the Variable as the scheduler applies them


@pytest.mark.slow
def test_a_quiet_day_runs_the_commands_in_order_and_does_not_retrain(airflow: Airflow, quiet_day: dict):
    calls = tierwise_calls(airflow.home, "2026-12-02")
    assert quiet_day["calls"] == [
        calls[task] for task in COMMAND_TASKS if task not in ("import_orders", "train")
    ]
    assert quiet_day["state"] == "success"
    assert quiet_day["tasks"]["train"]["state"] == "skipped"


@pytest.mark.slow
def test_alerts_do_not_fail_the_run(alert_day: dict):
    assert alert_day["state"] == "success"
    assert alert_day["tasks"]["tiers_alerts"]["state"] == "skipped"
    assert alert_day["tasks"]["monitor"]["state"] == "success"


@pytest.mark.slow
def test_a_monitoring_alert_retrains_every_model(airflow: Airflow, alert_day: dict):
    assert alert_day["tasks"]["train"]["state"] == "success"
    assert alert_day["calls"][-1] == tierwise_calls(airflow.home, "2026-12-01")["train"]


@pytest.mark.slow
def test_bad_input_fails_the_run_at_the_first_try(airflow: Airflow):
    day = airflow.run_day("2026-12-03T03:00:00+00:00", fake_exits=f"score={ExitCode.BAD_INPUT.value}")
    assert day["state"] == "failed"
    assert day["tasks"]["score"] == {"state": "failed", "tries": 1}
    assert {day["tasks"][task]["state"] for task in DAILY_ORDER[DAILY_ORDER.index("score") + 1 :]} == {
        "upstream_failed"
    }


# systemd and cron


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_the_service_runs_the_whole_pipeline_once_with_retrain_on_alert():
    service = unit(SERVICE)["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].endswith(
        "/tierwise --home /srv/tierwise run --retrain-on-alert --retrain-every 14d"
    )


def test_the_service_counts_an_alert_as_success():
    assert str(ExitCode.ALERT.value) in unit(SERVICE)["Service"]["SuccessExitStatus"].split()


def test_the_service_restarts_only_when_the_home_is_busy():
    service = unit(SERVICE)["Service"]
    assert service["Restart"] == "on-failure"
    never = {ExitCode.FAILED, ExitCode.USAGE, ExitCode.BAD_INPUT}
    assert set(service["RestartPreventExitStatus"].split()) == {str(code.value) for code in never}
    assert service["RestartSec"] == "10min"
    assert int(unit(SERVICE)["Unit"]["StartLimitBurst"]) > 1


def test_the_timer_starts_the_service_every_day_and_catches_up_after_downtime():
    timer = unit(TIMER)
    assert timer["Timer"]["OnCalendar"] == "*-*-* 03:00:00"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == SERVICE.name
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert not unit(SERVICE).has_section("Install")  # the timer starts it, not the boot


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path):
    """`systemd-analyze verify` with a stand-in for the tierwise binary, absent from this machine."""
    service = SERVICE.read_text().replace("/opt/tierwise/.venv/bin/tierwise", shutil.which("true"))
    (tmp_path / SERVICE.name).write_text(service)
    shutil.copy(TIMER, tmp_path / TIMER.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", tmp_path / SERVICE.name, tmp_path / TIMER.name],
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_cron_line_runs_the_same_command_as_the_service():
    command = unit(SERVICE)["Service"]["ExecStart"]
    cron_lines = [line for line in README.read_text().splitlines() if re.match(r"^0 3 \* \* \* ", line)]
    assert len(cron_lines) == 1
    assert f" {command} " in cron_lines[0]
