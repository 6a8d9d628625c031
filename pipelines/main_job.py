"""`tierwise run`: the whole pipeline, each step skipped when its output is already there.

import → (features → train/promote → score → tiers → monitor, as they are built)
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from features.data.store import DataStore
from features.settings import Settings
from pipelines import import_data


def run(settings: Settings, source_dir: Path | None = None, console: Console | None = None) -> None:
    """Run every step of the pipeline against `settings.home`, importing Complete Journey if it is empty."""
    console = console or Console()
    store = DataStore(settings.data_dir)
    if store.has_table("orders"):
        console.print(f"import: orders already in {settings.data_dir}, skipped")
    else:
        with console.status("import: Complete Journey"):
            report = import_data.import_completejourney(settings, source_dir)
        console.print(f"import: {report.reconciliation()}")
