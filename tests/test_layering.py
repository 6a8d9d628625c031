"""The folders are the architecture: imports point one way, features → training → tiering →
serving / monitoring → pipelines. Parsed from the source, so a violating import fails here even in
a module no other test imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "training", "tiering", "serving", "monitoring", "pipelines")
#: What each package must never import.
FORBIDDEN = {
    "features": {"training", "tiering", "serving", "monitoring", "pipelines"},
    "training": {"tiering", "serving", "monitoring", "pipelines"},
    "tiering": {"serving", "monitoring", "pipelines"},
    "serving": {"pipelines", "monitoring"},
    "monitoring": {"pipelines", "serving"},
    "pipelines": set(),
}
#: The one module that talks to MLflow, and the three that may touch Feast's private internals (its online layout).
MLFLOW_MODULE = "training/registry.py"
FEAST_ADAPTERS = ("features/online_reader.py", "features/online_writer.py", "features/online_answers.py")
FEAST_PRIVATE_NAMES = ("_get_provider", "_get_db_path", "compute_table_id", "_mmh3")


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module name `path` imports, at any depth (imports inside functions count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_no_package_above_it(package: str):
    wrong = [
        f"{relative(path)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in sorted(imported(path))
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_registry_imports_mlflow():
    wrong = [
        relative(path)
        for path in modules()
        if relative(path) != MLFLOW_MODULE and any(n.split(".")[0] == "mlflow" for n in imported(path))
    ]
    assert not wrong, f"import mlflow only in {MLFLOW_MODULE}: {wrong}"


def test_feast_internals_appear_only_in_the_online_adapters():
    wrong = [
        f"{relative(path)}: {name}"
        for path in [*modules(), *(ROOT / "benchmarks").rglob("*.py")]
        for name in FEAST_PRIVATE_NAMES
        if relative(path) not in FEAST_ADAPTERS and name in path.read_text()
    ]
    assert not wrong, f"Feast internals belong in {' and '.join(FEAST_ADAPTERS)} only: {wrong}"


def test_the_rules_see_the_imports_they_guard(tmp_path: Path):
    """The parser finds imports inside functions: a rule that cannot see them cannot fail."""
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    import mlflow.lightgbm\n    from serving.service import Tierwise\n")
    assert imported(module) == {"mlflow.lightgbm", "serving.service"}


def test_tests_import_no_private_names():
    wrong = [
        f"{relative(path)}: {alias.name} from {node.module}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not wrong, "\n".join(wrong)
