"""QC report building blocks: the browser check itself, outlier flags and the cohort summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import check_report_renders, render_in_chromium

from msqmri.qc.plots import mosaic
from msqmri.qc.report import cohort_report, figure, modified_z, outliers, page


def test_browser_check_catches_script_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(page("broken", ["<script>console.error('boom'); undefinedFunction();</script>"]))
    _, console = render_in_chromium(bad, tmp_path)
    assert any("boom" in line for line in console) and any("undefinedFunction" in line for line in console)
    broken_image = tmp_path / "image.html"
    broken_image.write_text(page("image", ['<img src="data:image/png;base64,AAAA">']))
    with pytest.raises(AssertionError, match="0 of 1 images"):
        check_report_renders(broken_image, tmp_path)


def _tables(n: int = 12) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ids = [f"sub-{k:02d}" for k in range(n)]
    sessions = pd.DataFrame(
        {
            "participant_id": ids,
            "session_id": "ses-01",
            "acq_time": "2021-01-01",
            "site": ["A", "B"] * (n // 2),
            "age": 40.0,
            "sex": "F",
        }
    )
    volumes = pd.DataFrame(
        {
            "participant_id": ids,
            "session_id": "ses-01",
            "normalized_brain_volume_ml": rng.normal(1500, 20, n),
            "lesion_volume_ml": rng.normal(5, 1, n),
        }
    )
    volumes.loc[3, "normalized_brain_volume_ml"] = 1200.0  # far below the cohort
    regional = pd.DataFrame(
        {
            "participant_id": ids,
            "session_id": "ses-01",
            "region": "nawm",
            "metric": "mtr",
            "mean": rng.normal(42, 0.5, n),
        }
    )
    flags = pd.DataFrame(
        {
            "participant_id": ["sub-05"],
            "session_from": ["ses-01"],
            "session_to": ["ses-02"],
            "flags": ["new/enlarging T2 lesions"],
        }
    )
    compliance = pd.DataFrame(
        {"participant_id": ids, "session_id": "ses-01", "modality": "T1w", "status": ["pass"] * (n - 1) + ["fail"]}
    )
    empty_pairs = pd.DataFrame(columns=["participant_id", "session_from", "session_to", "pbvc_per_year"])
    return {
        "sessions": sessions,
        "volumes": volumes,
        "pbvc": empty_pairs,
        "regional": regional,
        "lesions": pd.DataFrame(),
        "counts": pd.DataFrame(),
        "activity": pd.DataFrame(),
        "flags": flags,
        "compliance": compliance,
    }


def test_outliers_use_the_modified_z_score() -> None:
    values = pd.Series([10.0, 11, 9, 10, 10.5, 9.5, 30])
    z = modified_z(values)
    assert z.iloc[-1] > 3.5 and (abs(z.iloc[:-1]) < 3.5).all()
    assert (modified_z(pd.Series([1.0] * 6)) == 0).all()  # no spread: nothing is an outlier
    found = outliers(_tables())
    assert found[["participant_id", "measure"]].values.tolist() == [["sub-03", "normalised brain volume"]]


def test_cohort_report_lists_every_subject_with_its_flags(tmp_path: Path) -> None:
    tables = _tables()
    brain = np.zeros((12, 12, 12), bool)
    brain[3:9, 3:9, 3:9] = True
    png = mosaic(np.random.default_rng(1).random((12, 12, 12)), brain, contours=[(brain, "cyan")])
    report = tmp_path / "cohort.html"
    report.write_text(cohort_report(tables, [figure(png, "a figure")]))
    text = report.read_text()
    for k in range(12):
        assert f'<a href="../sub-{k:02d}.html">sub-{k:02d}</a>' in text
    rows = {row.split("</a>")[0].split(">")[-1]: row for row in text.split("<tr>")[1:] if "</a>" in row}
    assert (
        "normalised brain volume" in rows["sub-03"] and "new/enlarging" in rows["sub-05"] and "fail" in rows["sub-11"]
    )
    assert '<td class="flag">' in rows["sub-03"] and '<td class="flag">' not in rows["sub-01"]
    check_report_renders(report, tmp_path)
