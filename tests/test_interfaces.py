"""The nipype interfaces: one per image-processing rule, with the rule's outputs; a nipype Workflow chaining
msqmri steps on the tiny dataset."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nipype import Node, Workflow
from nipype.interfaces.base import SimpleInterface

from msqmri import interfaces
from msqmri.interfaces import MTR, DTIFit, DWIPreproc, Halfway, LesionMask, SessionMetrics, Structural
from msqmri.workflow import layout
from msqmri.workflow.steps import STEPS

#: every Snakemake rule that processes a session's or a session pair's images (``scripts/<rule>.py``)
IMAGE_RULES = {
    "structural",
    "flair_to_t1w",
    "mtr",
    "r2star",
    "flair_normalization",
    "lesion_mask",
    "session_metrics",
    "lesion_identities",
    "dwi_preproc",
    "dwi_to_t1w",
    "dti",
    "dti_to_t1w",
    "halfway",
    "siena",
    "jacobian",
    "lesion_activity",
    "flair_subtraction",
    "lesion_tracking",
    "enhancing_lesions",
}
PAIR_IDS = {"participant_id": "sub-01", "session_from": "ses-01", "session_to": "ses-02"}


def test_every_image_rule_has_an_interface(tmp_path: Path) -> None:
    """Each public interface instantiates, has the outputs of its rule's layout table (named as the workflow
    names them, in the node's directory) and mirrors a step of the workflow; together they cover every rule."""
    classes = [
        cls
        for name, cls in vars(interfaces).items()
        if not name.startswith("_")
        and isinstance(cls, type)
        and issubclass(cls, SimpleInterface)
        and cls.__module__ == interfaces.__name__
    ]
    assert {cls.rule for cls in classes} == IMAGE_RULES and len(classes) == len(IMAGE_RULES)
    for cls in classes:
        assert STEPS[cls.rule].outputs == cls.outputs_layout, cls.rule
        assert set(cls.output_spec().copyable_trait_names()) == set(cls.outputs_layout), cls.__name__
        traits = cls.input_spec().copyable_trait_names()
        if "session_from" in traits:  # a session pair's step
            interface, wildcards = cls(**PAIR_IDS), {"subject": ".", "pair": "sub-01_ses-01to02"}
        elif "participant_id" in traits:  # a subject's step
            interface, wildcards = cls(participant_id="sub-01"), {"subject": "sub-01"}
        else:
            interface, wildcards = cls(stem="sub-01_ses-01"), {"sesdir": ".", "stem": "sub-01_ses-01"}
        expected = {key: os.path.normpath(tmp_path / p.format(**wildcards)) for key, p in cls.outputs_layout.items()}
        assert interface._paths(str(tmp_path)) == expected, cls.__name__

    scans = {f"{side}_{key}" for side in ("from", "to") for key in layout.SCAN_KEYS}
    assert scans <= set(Halfway.input_spec().copyable_trait_names())


@pytest.mark.slow
def test_nipype_workflow_chains_steps(tiny_bids: Path, tmp_path: Path) -> None:
    anat = tiny_bids / "sub-01" / "ses-01" / "anat"
    stem = "sub-01_ses-01"
    structural = Node(Structural(t1w=str(anat / f"{stem}_T1w.nii.gz"), stem=stem), name="structural")
    mtr = Node(
        MTR(mt_on=str(anat / f"{stem}_mt-on_MTR.nii.gz"), mt_off=str(anat / f"{stem}_mt-off_MTR.nii.gz"), stem=stem),
        name="mtr",
    )
    lesions = Node(LesionMask(stem=stem), name="lesion_mask")
    metrics = Node(SessionMetrics(stem=stem), name="session_metrics")
    dwi = tiny_bids / "sub-01" / "ses-01" / "dwi" / f"{stem}_dwi"
    dwi_preproc = Node(
        DWIPreproc(dwi=f"{dwi}.nii.gz", bval=f"{dwi}.bval", bvec=f"{dwi}.bvec", stem=stem), name="dwi_preproc"
    )
    dti = Node(DTIFit(stem=stem), name="dti")
    workflow = Workflow("msqmri", base_dir=str(tmp_path / "work"))
    workflow.config["execution"].update({"crashdump_dir": str(tmp_path), "remove_unnecessary_outputs": False})
    workflow.connect(
        [
            (structural, mtr, [("preproc", "t1w"), ("brain_mask", "t1w_mask")]),
            (structural, lesions, [("preproc", "t1w"), ("brain_mask", "brain_mask")]),
            (structural, metrics, [("preproc", "t1w"), ("brain_mask", "brain_mask"), ("dseg", "dseg")]),
            (lesions, metrics, [("mask", "lesion_mask")]),
            (mtr, metrics, [("mtr_t1w", "mtr")]),
            (dwi_preproc, dti, [("dwi", "dwi"), ("bval", "bval"), ("bvec", "bvec"), ("mask", "mask")]),
        ]
    )
    graph = workflow.run()
    results = {node.name: node.result.outputs for node in graph.nodes()}
    regional = pd.read_csv(results["session_metrics"].regional, sep="\t")
    mtr_wm = regional[(regional.region == "wm") & (regional.metric == "mtr")]["mean"].item()
    assert mtr_wm == pytest.approx(40.0, rel=0.03)  # the tiny dataset's MT pair is 40 pu
    assert Path(results["structural"].volumes).is_file() and Path(results["mtr"].mtr).is_file()
    assert Path(results["dti"].fa).name == f"{stem}_model-tensor_param-fa_dwimap.nii.gz"
    fa = np.asarray(nib.load(results["dti"].fa).dataobj)
    assert fa.max() > 0 and fa.min() >= 0 and fa.max() <= 1
