"""Structural preprocessing of each session's T1w: N4, brain extraction, tissue segmentation, registration to
the MNI template, SIENAX-like volumes; the FLAIR registered to the T1w."""

from __future__ import annotations

from typing import Any

from msqmri.workflow import layout
from msqmri.workflow.jobs import Job
from msqmri.workflow.step import Input, Param, Step
from msqmri.workflow.steps.common import SEED, SESSION_IDS


def structural_inputs(job: Job) -> dict[str, Any]:
    """The T1w of a session (with MP2RAGE's INV2 beside a UNIT1) and its lesion mask, if any: in T1w space,
    else in FLAIR space with the FLAIR -> T1w transform."""
    session = job.session
    inputs = {"t1w": str(session.t1w)}
    if session.t1w_inv2 is not None:
        inputs["inv2"] = str(session.t1w_inv2)
    if session.lesion_mask_t1w is not None:
        inputs["lesion"] = str(session.lesion_mask_t1w)
    elif session.lesion_mask_flair is not None and session.flair is not None:
        inputs["lesion"] = str(session.lesion_mask_flair)
        inputs["lesion_transform"] = job.out(layout.FLAIR_TO_T1W["transform"])
    return inputs


STEPS = (
    Step(
        name="structural",
        scope="session",
        call="msqmri.anat.stage:run_structural",
        itk=True,
        interface="Structural",
        doc="N4, brain extraction (template or deepbet), tissue fractions, ICV, MNI registration and SIENAX-like "
        "volumes of a T1w",
        inputs={
            "t1w": Input("raw T1w image"),
            "inv2": Input("MP2RAGE INV2 magnitude beside a UNIT1 t1w, for its head mask", optional=True),
            "lesion": Input("lesion mask in T1w space, or in FLAIR space with lesion_transform", optional=True),
            "lesion_transform": Input(
                "FLAIR -> T1w transform of a FLAIR-space lesion (FlairToT1w.transform)", optional=True
            ),
        },
        outputs=layout.STRUCTURAL,
        params={
            "ids": SESSION_IDS,
            "seed": SEED,
            "backend": Param(
                "brain extraction backend", "template", config="brain_extraction", choices=("template", "deepbet")
            ),
        },
        wiring=structural_inputs,
    ),
    Step(
        name="flair_to_t1w",
        scope="session",
        call="msqmri.anat.stage:run_flair_to_t1w",
        itk=True,
        interface="FlairToT1w",
        doc="Rigid FLAIR -> T1w registration (mutual information) and the FLAIR resampled onto the T1w grid",
        inputs={
            "flair": Input("raw FLAIR image"),
            "t1w": Input("raw T1w image (as in the workflow; its grid is the output grid)"),
        },
        outputs=layout.FLAIR_TO_T1W,
        params={"seed": SEED},
        wiring=lambda job: {"flair": str(job.session.flair), "t1w": str(job.session.t1w)},
    ),
    Step(
        name="brain_volumes_table",
        scope="dataset",
        call="msqmri.cohort.tables:write_brain_volumes_table",
        local=True,
        doc="group/brain_volumes.tsv, one row per subject-session",
        inputs={"volumes": Input("every session's SIENAX-like volumes (Structural.volumes)", many=True)},
        outputs={"table": layout.BRAIN_VOLUMES_TABLE},
        wiring=lambda job: {"volumes": job.every_session(layout.STRUCTURAL["volumes"])},
    ),
)
