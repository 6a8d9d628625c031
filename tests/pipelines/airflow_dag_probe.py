"""Loads the Airflow DAG as Airflow does and writes, as JSON, what `test_schedule_recipes.py` checks.

Runs with the Python of an environment that has Airflow, never Tierwise's own, with a stand-in
`tierwise` first on the PATH (it records its arguments and exits as FAKE_EXITS says):

    python airflow_dag_probe.py describe DAG_FILE OUT_JSON
        the DAG's tasks, order and retry settings, each task's rendered `tierwise` call, and what each
        exit code (0 to 5) of `tierwise` does to each task
    python airflow_dag_probe.py run DAG_FILE RUN_AFTER OUT_JSON
        one whole run (`dag.test`, against the metadata database of AIRFLOW_HOME): its state, each
        task's state and tries, and the `tierwise` calls in order
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.serialization.serialized_objects import DagSerialization

DAG_ID = "tierwise_daily"
EXIT_CODE_NAMES = ("OK", "FAILED", "USAGE", "BAD_INPUT", "BUSY", "ALERT")


def load(dag_file: str):
    bag = DagBag(dag_folder=dag_file)
    return bag, bag.dags.get(DAG_ID)


def calls() -> list[str]:
    path = Path(os.environ["FAKE_TIERWISE_CALLS"])
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def outcome(task, context: dict) -> str:
    """What the task does: its return value, "skipped", "fails, retried" or "fails at once"."""
    try:
        return task.execute(context)
    except AirflowSkipException:
        return "skipped"
    except AirflowFailException:  # Airflow never retries it
        return "fails at once"
    except AirflowException:
        return "fails, retried"


def exit_code_outcomes(dag, run_after: datetime, home: Path) -> tuple[dict, dict]:
    """Each `tierwise` task rendered for a run on `run_after`: its call, and its outcome per exit code."""
    context = {
        "dag_run": SimpleNamespace(run_after=run_after),
        "var": {"value": {"tierwise_home": str(home)}},
    }
    called, outcomes = {}, {}
    for task in dag.tasks:
        if not hasattr(task, "bash_command"):
            continue
        task.render_template_fields(context)
        outcomes[task.task_id] = {}
        for code in range(len(EXIT_CODE_NAMES)):
            (home / "inbox").mkdir(parents=True, exist_ok=True)
            (home / "inbox" / "orders.csv").write_text("order_id\n")
            os.environ["FAKE_EXITS"] = f"--home={code}"
            outcomes[task.task_id][code] = outcome(task, context)
            called[task.task_id] = calls()
    return called, outcomes


def retrain_decisions(dag) -> dict:
    """What `retrain_due` chooses after a monitor alert and without one, on each day of December 2026."""
    decide = dag.get_task("retrain_due").python_callable

    def choice(monitor: str, day: date):
        ti = SimpleNamespace(xcom_pull=lambda task_ids: monitor if task_ids == "monitor" else None)
        return decide(ti=ti, dag_run=SimpleNamespace(run_after=datetime(day.year, day.month, day.day, 3)))

    december = [date(2026, 12, d) for d in range(1, 32)]
    return {
        "after a monitoring alert": sorted({str(choice("alert", day)) for day in december}),
        "retrain days without an alert": [
            day.isoformat() for day in december if choice("ok", day) == "train"
        ],
    }


def describe(dag_file: str) -> dict:
    bag, dag = load(dag_file)
    if bag.import_errors or dag is None:
        return {"import_errors": bag.import_errors, "dags": sorted(bag.dags)}
    tasks = {
        task.task_id: {
            "operator": type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            "bash_command": getattr(task, "bash_command", None),
            "trigger_rule": str(task.trigger_rule.value),
            "retries": task.retries,
            "retry_delay_seconds": task.retry_delay.total_seconds(),
            "retry_exponential_backoff": task.retry_exponential_backoff,
            "max_retry_delay_seconds": task.max_retry_delay.total_seconds() if task.max_retry_delay else None,
        }
        for task in dag.tasks
    }
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    dag_module = sys.modules[type(dag.get_task("score")).__module__]
    run_after = datetime.fromisoformat("2026-12-01T03:00:00+00:00")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        called, outcomes = exit_code_outcomes(dag, run_after, home)
        imported = sorted(p.name for p in (home / "inbox" / "imported").iterdir())
        (home / "inbox" / "orders.csv").unlink()
        without_file = outcome(dag.get_task("import_orders"), {})
        called_without_file = calls()
    return {
        "import_errors": {},
        "warnings": bag.captured_warnings,
        "airflow_version": __import__("airflow").__version__,
        "dags": sorted(bag.dags),
        "schedule": dag.timetable.expression,
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "exit_codes": {name: getattr(dag_module, name) for name in EXIT_CODE_NAMES},
        "order": [task.task_id for task in dag.topological_sort()],
        "tasks": tasks,
        "serialized_upstream": {tid: sorted(t.upstream_task_ids) for tid, t in serialized.task_dict.items()},
        "rendered_for": {"run_after": run_after.isoformat(), "home": str(home)},
        "calls": called,
        "outcomes": outcomes,
        "imported_orders_files": imported,
        "import_without_orders_file": {"outcome": without_file, "calls": called_without_file},
        "retrain_due": retrain_decisions(dag),
    }


def run(dag_file: str, run_after: str) -> dict:
    _, dag = load(dag_file)
    dag_run = dag.test(run_after=datetime.fromisoformat(run_after))
    return {
        "state": str(dag_run.state),
        "tasks": {
            ti.task_id: {"state": str(ti.state), "tries": ti.try_number}
            for ti in dag_run.get_task_instances()
        },
        "calls": calls(),
    }


if __name__ == "__main__":
    mode, dag_file, *arguments, out = sys.argv[1:]
    result = describe(dag_file) if mode == "describe" else run(dag_file, *arguments)
    Path(out).write_text(json.dumps(result, indent=2, default=str))
