"""The nipype interfaces: a nipype Workflow chaining four msqmri steps on the tiny dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

nipype = pytest.importorskip("nipype")

from nipype import Node, Workflow  # noqa: E402

from msqmri.interfaces import MTR, LesionMask, SessionMetrics, Structural  # noqa: E402

pytestmark = pytest.mark.slow


def test_nipype_workflow_chains_steps(tiny_bids: Path, tmp_path: Path) -> None:
    anat = tiny_bids / "sub-01" / "ses-01" / "anat"
    stem = "sub-01_ses-01"
    structural = Node(Structural(t1w=str(anat / f"{stem}_T1w.nii.gz"), stem=stem), name="structural")
    mtr = Node(MTR(mt_on=str(anat / f"{stem}_mt-on_MTR.nii.gz"), mt_off=str(anat / f"{stem}_mt-off_MTR.nii.gz"),
                   stem=stem), name="mtr")  # fmt: skip
    lesions = Node(LesionMask(stem=stem), name="lesion_mask")
    metrics = Node(SessionMetrics(stem=stem), name="session_metrics")
    workflow = Workflow("msqmri", base_dir=str(tmp_path / "work"))
    workflow.config["execution"].update({"crashdump_dir": str(tmp_path), "remove_unnecessary_outputs": False})
    workflow.connect([
        (structural, mtr, [("preproc", "t1w"), ("brain_mask", "t1w_mask")]),
        (structural, lesions, [("preproc", "t1w"), ("brain_mask", "brain_mask")]),
        (structural, metrics, [("brain_mask", "brain_mask"), ("dseg", "dseg")]),
        (lesions, metrics, [("mask", "lesion_mask")]),
        (mtr, metrics, [("mtr_t1w", "mtr")]),
    ])  # fmt: skip
    graph = workflow.run()
    results = {node.name: node.result.outputs for node in graph.nodes()}
    regional = pd.read_csv(results["session_metrics"].regional, sep="\t")
    mtr_wm = regional[(regional.region == "wm") & (regional.metric == "mtr")]["mean"].item()
    assert mtr_wm == pytest.approx(40.0, rel=0.03)  # the tiny dataset's MT pair is 40 pu
    assert Path(results["structural"].volumes).is_file() and Path(results["mtr"].mtr).is_file()
