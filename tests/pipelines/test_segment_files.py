"""Campaign lists as files for the CRM: the treated list where asked, the control list beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.errors import InputError
from pipelines.tier_reports import write_segment_lists
from tests.tiering.test_segments import LIFECYCLE, snapshot
from tiering.reports import export_segment


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_export_writes_the_treated_list_and_the_control_list_next_to_it(tmp_path: Path, suffix: str):
    path = tmp_path / "crm" / f"winback{suffix}"
    export = export_segment(snapshot(), LIFECYCLE, "dormant-winback", control_share=0.2)
    written = write_segment_lists(export, path)
    assert written.treated_path == path
    assert written.control_path == tmp_path / "crm" / f"winback.control{suffix}"
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    for frame, file in ((export.treated, path), (export.control, written.control_path)):
        pd.testing.assert_frame_equal(read(file), frame)
    assert set(export.treated.tier) == {"Dormant", "Churned"} and len(export.control) > 0


def test_an_export_to_another_file_kind_is_refused_naming_the_kinds(tmp_path: Path):
    export = export_segment(snapshot(n=50), LIFECYCLE, "new-welcome")
    with pytest.raises(InputError, match="use CSV \\(.csv\\) or Parquet \\(.parquet\\)"):
        write_segment_lists(export, tmp_path / "out.xlsx")
    assert not list(tmp_path.iterdir())
