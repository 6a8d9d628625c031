"""The daily Tierwise pipeline as an Airflow DAG: one task per `tierwise` command, in the order an
operator would type them.

    import_orders → build_features → materialize_features → score → tiers_report → tiers_alerts
    → monitor → retrain_due → train (only when due)

Tested with apache-airflow 3.3.2 (Task SDK, `airflow.sdk`; BashOperator from the standard provider) by
`tests/pipelines/test_schedule_recipes.py`. Airflow lives in its own environment, not in Tierwise's:
`tierwise` must be on the PATH of the workers (e.g. a link to the project's `.venv/bin/tierwise`).

Where: the data home is the Airflow Variable `tierwise_home`, else the environment variable
`TIERWISE_HOME` where the DAG is parsed, else /srv/tierwise. Every command gets it as `--home`.
New orders: a shop drops its extract at `<home>/inbox/orders.csv`; `import_orders` imports it and moves
it to `<home>/inbox/imported/`. No file, nothing to import: the task succeeds and says so.

Why each step's exit code (pipelines/exit_codes.py) becomes the task state it does:

- 0 OK: success.
- 4 BUSY, another process writes the same home (a manual `tierwise train`, the systemd timer): the try
  fails and Airflow retries it up to 4 times, 5 to 10 minutes later, then twice as long each time, up
  to an hour. 1 FAILED (a bug or the environment) is retried the same way, since a full disk or an
  unreachable Redis can recover.
- 3 BAD_INPUT (the data or an option cannot be used) and 2 USAGE fail the task at once, without
  retries: the same input gives the same answer, and a person has to look at it.
- 5 ALERT means the job ran and found something; it never fails the task. `tiers alerts` is then
  skipped, a pink square in the grid that says "read the alert records in the log", and `monitor`
  still runs after it. `monitor` succeeds and returns "alert", which `retrain_due` reads.

Why train last: whether to retrain depends on today's monitoring, and monitoring needs today's scores.
`retrain_due` sends the run to `train --model all` when `monitor` alerted or every 14 days (every other
Sunday), otherwise skips it. `train` promotes a model only if it beats its champion and the baselines,
so a retrain never makes tiers worse; a new champion scores from the next run on. (`tierwise run
--retrain-on-alert` also scores again the same day; a DAG keeps one task per command instead.)

Runs of this DAG never overlap (`max_active_runs=1`): they would write the same home. Every command
works on the run's date (`dag_run.run_after`), so clearing an old run recomputes that day's
snapshots; `materialize_features` always loads the latest snapshot into the online store.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

# The exit codes of `tierwise` (pipelines/exit_codes.py; Tierwise is not installed next to Airflow).
OK, FAILED, USAGE, BAD_INPUT, BUSY, ALERT = 0, 1, 2, 3, 4, 5

#: The data home, rendered when a task runs: the Variable, else TIERWISE_HOME where the DAG is parsed.
HOME = "{{ var.value.get('tierwise_home', " + repr(os.environ.get("TIERWISE_HOME", "/srv/tierwise")) + ") }}"
#: The run's date: scheduled, manual and backfill runs all have one.
RUN_DAY = "{{ dag_run.run_after | ds }}"
RETRAIN_EVERY = timedelta(days=14)
RETRAIN_FROM = date(2026, 1, 4)  # a Sunday: retrain every other Sunday


def tierwise(arguments: str) -> str:
    """The shell command running `tierwise` on the home."""
    return f'tierwise --home "$TIERWISE_HOME" {arguments}'


class TierwiseCommand(BashOperator):
    """A BashOperator for `tierwise` commands, whose exit code decides the task's state as the module
    says. `on_alert` is "skip" or "report" for the commands that exit 5 on an alert; elsewhere 5 is
    unexpected and fails the task."""

    def __init__(self, *, on_alert: str | None = None, **kwargs) -> None:
        assert on_alert in (None, "skip", "report"), on_alert
        super().__init__(
            env={"TIERWISE_HOME": HOME},
            append_env=True,  # keep the worker's PATH, where `tierwise` is
            **kwargs,
        )
        self.on_alert = on_alert

    def execute(self, context):
        command = ["bash", "-c", self.bash_command]
        result = self.subprocess_hook.run_command(command, env=self.get_env(context), cwd=self.cwd)
        code = result.exit_code
        if code == OK:
            return "ok"
        if code == ALERT and self.on_alert == "report":
            self.log.warning("tierwise: an alert fired (exit 5); the records are above")
            return "alert"
        if code == ALERT and self.on_alert == "skip":
            raise AirflowSkipException("tierwise: an alert fired (exit 5); the records are in the log")
        if code in (BAD_INPUT, USAGE):
            raise AirflowFailException(f"tierwise exited {code}: the input or the command needs a person")
        if code == BUSY:
            raise AirflowException("tierwise exited 4: another process writes this home; retried later")
        raise AirflowException(f"tierwise exited {code}")


IMPORT_ORDERS = f"""\
inbox="$TIERWISE_HOME/inbox"
if [ ! -f "$inbox/orders.csv" ]; then echo "no $inbox/orders.csv: nothing to import"; exit 0; fi
{tierwise('data import "$inbox/orders.csv"')} || exit $?
mkdir -p "$inbox/imported" && mv "$inbox/orders.csv" "$inbox/imported/orders-{RUN_DAY}.csv"
"""


with DAG(
    dag_id="tierwise_daily",
    description="Import, features, score, tier reports and alerts, monitoring; retrain when due.",
    schedule="0 3 * * *",  # daily at 03:00 UTC, after the shops' nightly extracts
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["tierwise"],
    default_args={
        "retries": 4,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
    },
) as dag:
    import_orders = TierwiseCommand(task_id="import_orders", bash_command=IMPORT_ORDERS)
    build_features = TierwiseCommand(
        task_id="build_features", bash_command=tierwise(f"features build --as-of {RUN_DAY}")
    )
    materialize_features = TierwiseCommand(
        task_id="materialize_features", bash_command=tierwise("features materialize")
    )
    score = TierwiseCommand(task_id="score", bash_command=tierwise(f"score --as-of {RUN_DAY}"))
    tiers_report = TierwiseCommand(
        task_id="tiers_report", bash_command=tierwise(f"tiers report --as-of {RUN_DAY}")
    )
    tiers_alerts = TierwiseCommand(
        task_id="tiers_alerts", bash_command=tierwise(f"tiers alerts --as-of {RUN_DAY}"), on_alert="skip"
    )
    monitor = TierwiseCommand(
        task_id="monitor",
        bash_command=tierwise(f"monitor --as-of {RUN_DAY}"),
        on_alert="report",
        trigger_rule=TriggerRule.NONE_FAILED,  # runs after a tier alert (a skipped tiers_alerts) too
    )

    @task.branch
    def retrain_due(ti=None, dag_run=None) -> str | None:
        """`train` when monitor alerted or on the 14-day cadence; otherwise nothing (train is skipped)."""
        if ti.xcom_pull(task_ids="monitor") == "alert":
            return "train"
        if (dag_run.run_after.date() - RETRAIN_FROM) % RETRAIN_EVERY == timedelta(0):
            return "train"
        return None

    train = TierwiseCommand(task_id="train", bash_command=tierwise("train --model all"))

    (
        import_orders
        >> build_features
        >> materialize_features
        >> score
        >> tiers_report
        >> tiers_alerts
        >> monitor
        >> retrain_due()
        >> train
    )
