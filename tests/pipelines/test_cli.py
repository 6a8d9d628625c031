"""The `tierwise` command as a scheduler and a person use it: help, exit codes, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from features.catalog import FEATURES
from features.data.schema_doc import schema_markdown
from features.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def tierwise(*args: str, home: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pipelines"] + (["--home", str(home)] if home else []) + list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_every_command_has_help():
    commands = [
        [],
        ["data"],
        ["features"],
        ["models"],
        ["tiers"],
        ["monitor"],
        ["monitor", "ui"],
        ["run"],
        ["train"],
        ["backtest"],
        ["score"],
    ]
    commands += [["data", c] for c in ("import", "push", "synth", "info", "schema")]
    commands += [["features", c] for c in ("build", "apply", "materialize", "list", "profile")]
    commands += [["models", c] for c in ("list", "promote", "rollback")]
    commands += [["tiers", c] for c in ("report", "alerts", "export", "backtest")]
    commands += [["personas", c] for c in ("fit", "list")]
    for command in commands:
        result = tierwise(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_bad_input_exits_with_the_data_error_code_and_names_the_column(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,order_id,amount\nc1,o1,3.0\n")
    result = tierwise("data", "import", str(path), home=tmp_path / "home")
    assert result.returncode == 3
    assert "ordered_at" in result.stderr and "orders.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error(tmp_path: Path):
    assert tierwise("data", "import", "x.csv", "--no-such-option").returncode == 2


def test_import_prints_the_reconciliation_and_info_shows_it(cj_slice_dir: Path, tmp_path: Path):
    home = tmp_path / "home"
    result = tierwise("data", "import", "completejourney", "--source-dir", str(cj_slice_dir), home=home)
    assert result.returncode == 0, result.stderr
    assert "read 153,717 = accepted 153,717 + quarantined 0" in result.stdout
    info = tierwise("data", "info", home=home)
    assert info.returncode == 0
    assert "15,979" in info.stdout and "no quarantined rows" in info.stdout
    as_json = json.loads(tierwise("data", "info", "--format", "json", home=home).stdout)
    assert as_json["tables"]["orders"]["rows"] == 15_979 and as_json["quarantined_by_reason"] == {}


def test_home_comes_from_the_environment_when_not_given(tmp_path: Path):
    import os

    env = dict(os.environ, TIERWISE_HOME=str(tmp_path / "elsewhere"))
    result = subprocess.run(
        [sys.executable, "-m", "pipelines", "data", "info"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert str(Settings.resolve(tmp_path / "elsewhere").data_dir) in result.stdout


def test_docs_schema_is_generated_from_the_code():
    assert (REPO / "docs" / "schema.md").read_text() == schema_markdown()


@pytest.mark.slow
def test_score_is_quiet_on_success(served_home, tmp_path):
    import shutil

    from tests.conftest import SERVE_AS_OF

    home = tmp_path / "home"
    shutil.copytree(served_home.home, home, symlinks=True)
    result = tierwise("score", "--as-of", SERVE_AS_OF.isoformat(), home=home)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.slow
def test_promoting_an_unknown_version_is_one_line_and_exit_3(trained_home):
    settings, _ = trained_home
    result = tierwise("models", "promote", "churn", "99", home=settings.home)
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error: churn has no version 99; versions: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_piped_list_is_csv_with_nothing_cut(tmp_path):
    import csv
    import io

    result = tierwise("features", "list", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(FEATURES) and rows[0]["feature"] == "days_since_last_order"
    assert all(row["description"] and not row["description"].endswith("…") for row in rows)


def test_listing_models_of_a_missing_home_creates_nothing(tmp_path):
    import json

    home = tmp_path / "no-such-home"
    result = tierwise("models", "list", "--format", "json", home=home)
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert not home.exists()


def test_help_and_errors_print_colon_syntax_as_written(tmp_path):
    shown = tierwise("features", "build", "--help").stdout
    assert "FIRST:LAST:STEP" in shown and "🔚" not in shown
    error = tierwise("features", "build", "--cutoffs", "2017-01-01:x", home=tmp_path / "home")
    assert error.returncode == 3 and "expected FIRST:LAST:STEP" in error.stderr and "🔚" not in error.stderr


def test_global_options_are_accepted_after_the_subcommand(tmp_path):
    import json

    home = tmp_path / "no-such-home"
    result = tierwise("models", "list", "--format", "json", "--home", str(home), "-v")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [] and not home.exists()
    assert tierwise("models", "list", f"--home={home}", "--format", "json").returncode == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["score", "--home", "/h", "--as-of", "x"], ["--home", "/h", "score", "--as-of", "x"]),
        (["-v", "tiers", "report", "--home=/h"], ["-v", "--home=/h", "tiers", "report"]),
        (["data", "import", "f.csv", "--", "--home"], ["data", "import", "f.csv", "--", "--home"]),
    ],
)
def test_global_options_are_moved_in_front_of_the_subcommands(args, expected):
    from pipelines.cli import global_options_first

    assert global_options_first(args) == expected


def test_the_cli_reference_is_generated_from_the_code(tmp_path):
    """`docs/cli.md` is Typer's own rendering of every command; regenerate it after changing one:
    `.venv/bin/typer pipelines.cli utils docs --name tierwise --output docs/cli.md`."""
    generated = tmp_path / "cli.md"
    typer = Path(sys.executable).parent / "typer"
    done = subprocess.run(
        [str(typer), "pipelines.cli", "utils", "docs", "--name", "tierwise", "--output", str(generated)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert (REPO / "docs" / "cli.md").read_text() == generated.read_text()


def test_feature_commands_leave_nothing_on_stderr_when_they_succeed(cj_slice_home, tmp_path):
    from tests.conftest import copy_home

    home = copy_home(cj_slice_home, tmp_path / "home").home
    built = tierwise("features", "build", "--cutoffs", "2017-08-06:2017-09-03:2w", home=home)
    assert built.returncode == 0 and built.stderr == "" and "3 snapshot(s)" in built.stdout
    loaded = tierwise("features", "materialize", home=home)
    assert loaded.returncode == 0 and loaded.stderr == ""


def test_train_is_quiet_on_success(cj_slice_home, tmp_path):
    from tests.conftest import copy_home

    home = copy_home(cj_slice_home, tmp_path / "home").home
    result = tierwise("train", "--model", "churn", "--as-of", "2017-10-01", "--horizon", "28", home=home)
    assert result.returncode == 0 and result.stderr == ""


def test_push_reads_events_from_a_pipe_and_names_the_line_of_a_refused_one(
    served_home, cj_slice_dir, tmp_path
):
    import pandas as pd

    from tests.conftest import copy_home

    home = copy_home(served_home, tmp_path / "home").home
    customer = str(pd.read_parquet(cj_slice_dir / "transactions.parquet").household_id.iloc[0])
    good = {"order_id": "web-1", "customer_id": customer, "ordered_at": "2017-12-05 18:05:00", "amount": 25.0}
    text = json.dumps(good) + "\n\n" + json.dumps({**good, "order_id": "web-2", "amount": "lots"}) + "\n"
    command = [
        sys.executable,
        "-m",
        "pipelines",
        "--home",
        str(home),
        "data",
        "push",
        "-",
        "--format",
        "json",
    ]
    result = subprocess.run(command, input=text, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().startswith("error: line 3: amount: non numeric amount")
    assert len(result.stderr.strip().splitlines()) == 1
    answer = json.loads(result.stdout)
    assert [(r["status"], r["line"]) for r in answer["results"]] == [("accepted", 1), ("refused", 3)]
    again = subprocess.run(command, input=json.dumps(good), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["present"] == 1


@pytest.mark.slow
def test_a_backtest_answers_scripts_in_json(trained_home):
    import json

    settings, _ = trained_home
    result = tierwise(
        "backtest",
        "--as-of",
        "2017-10-01",
        "--horizon",
        "28",
        "--model",
        "churn",
        "--format",
        "json",
        home=settings.home,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    scorers = {row["scorer"] for row in rows}
    assert "model" in scorers and "baseline btyd_p_no_order" in scorers
    auc = next(r for r in rows if r["scorer"] == "model" and r["metric"] == "roc_auc")
    assert auc["model"] == "churn" and 0 < auc["value"] < 1 and auc["customers"] > 0


@pytest.mark.slow
def test_a_piped_backtest_is_csv(trained_home):
    import csv
    import io

    settings, _ = trained_home
    result = tierwise(
        "backtest", "--as-of", "2017-10-01", "--horizon", "28", "--model", "churn", home=settings.home
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["metric"] for row in rows if row["scorer"] == "model"} >= {"roc_auc", "ece"}
