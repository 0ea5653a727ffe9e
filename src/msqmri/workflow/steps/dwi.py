"""Diffusion: DWI preprocessing (merging b=0 series stored apart, denoising, motion correction with b-vector
rotation, b=0 brain mask), b=0 -> T1w registration, tensor fit (FA, MD, AD, RD, V1, colour FA) and the maps in
T1w space."""

from __future__ import annotations

from typing import Any

from msqmri.core.io import MsqmriError
from msqmri.workflow import layout
from msqmri.workflow.jobs import Job
from msqmri.workflow.step import Input, Param, Step
from msqmri.workflow.steps.common import SEED, T1W, T1W_MASK


def dwi_inputs(job: Job) -> dict[str, Any]:
    """The DWI series of a session, its gradient tables and the b=0 series stored apart that join it."""
    series = job.session.dwi
    if series is None:
        raise MsqmriError(f"{job.label} has no DWI series")
    inputs: dict[str, Any] = {"dwi": str(series.image), "bval": str(series.bval), "bvec": str(series.bvec)}
    if series.b0_series:
        inputs["b0_series"] = [str(path) for path in series.b0_series]
    return inputs


def dti_inputs(job: Job) -> dict[str, str]:
    """The preprocessed DWI series and the brain mask the fit uses (config dwi_mask)."""
    inputs = job.outs({key: layout.DWI_PREPROC[key] for key in ("dwi", "bval", "bvec", "mask")})
    if job.config["dwi_mask"] == "t1w":
        inputs["t1w_mask"] = job.out(layout.STRUCTURAL["brain_mask"])
        inputs["transform"] = job.out(layout.DWI_TO_T1W["transform"])
    return inputs


STEPS = (
    Step(
        name="dwi_preproc",
        scope="session",
        call="msqmri.dwi.stage:preprocess",
        itk=True,
        interface="DWIPreproc",
        doc="b=0 series stored apart merged, optional MP-PCA denoising (Veraart et al. 2016), motion correction to "
        "the mean b=0 with b-vector rotation (Leemans & Jones 2009), mean b=0 and its brain mask",
        inputs={
            "dwi": Input("raw 4D DWI series"),
            "bval": Input("its b-values (.bval)"),
            "bvec": Input("its b-vectors (.bvec, FSL convention)"),
            "b0_series": Input("b=0 series stored apart, same phase encoding", optional=True, many=True),
        },
        outputs=layout.DWI_PREPROC,
        params={
            "denoise": Param(
                "denoising before motion correction", "none", config="dwi_denoise", choices=("none", "mppca")
            ),
            "motion_correction": Param(
                "rigid motion correction with b-vector rotation", True, config="dwi_motion_correction"
            ),
        },
        wiring=dwi_inputs,
    ),
    Step(
        name="dwi_to_t1w",
        scope="session",
        call="msqmri.dwi.stage:register_b0_to_t1w",
        itk=True,
        interface="DWIToT1w",
        doc="Brain-masked mean b=0 -> T1w registration by Mattes mutual information",
        inputs={
            "b0": Input("mean b=0 (DWIPreproc.b0)"),
            "mask": Input("its brain mask (DWIPreproc.mask)"),
            "t1w": T1W,
            "t1w_mask": T1W_MASK,
        },
        outputs=layout.DWI_TO_T1W,
        params={
            "kind": Param("b=0 -> T1w transform", "rigid", config="dwi_to_t1w", choices=("rigid", "affine")),
            "seed": SEED,
        },
        wiring=lambda job: {
            **job.outs({key: layout.DWI_PREPROC[key] for key in ("b0", "mask")}),
            "t1w": job.out(layout.STRUCTURAL["preproc"]),
            "t1w_mask": job.out(layout.STRUCTURAL["brain_mask"]),
        },
    ),
    Step(
        name="dti",
        scope="session",
        call="msqmri.dwi.stage:fit",
        itk=True,
        threads=2,
        group="tensor",
        interface="DTIFit",
        doc="Diffusion tensor fit (Basser et al. 1994; WLS, NLLS or RESTORE with dipy) on the shells up to "
        "max_b, and FA, MD, AD, RD, V1 and colour FA in DWI space",
        inputs={
            "dwi": Input("preprocessed DWI series (DWIPreproc.dwi)"),
            "bval": Input("DWIPreproc.bval"),
            "bvec": Input("DWIPreproc.bvec (rotated by the motion correction)"),
            "mask": Input("b=0 brain mask (DWIPreproc.mask)"),
            "t1w_mask": Input("T1w brain mask (Structural.brain_mask; with mask_source='t1w')", optional=True),
            "transform": Input("b=0 -> T1w transform (DWIToT1w.transform; with mask_source='t1w')", optional=True),
        },
        outputs=layout.DTI,
        params={
            "method": Param("tensor fit", "WLS", config="dti_fit", choices=("WLS", "NLLS", "RESTORE")),
            "mask_source": Param(
                "fit in the b=0 mask or the T1w mask brought across", "b0", config="dwi_mask", choices=("b0", "t1w")
            ),
            "max_b": Param("fit on b=0 and the shells up to this b-value (s/mm^2)", 1500.0, config="dti_max_b"),
            "threads": Param("threads of the fit", 1),
        },
        wiring=dti_inputs,
    ),
    Step(
        name="dti_to_t1w",
        scope="session",
        call="msqmri.dwi.stage:to_t1w",
        itk=True,
        threads=1,
        group="tensor",
        interface="DTIToT1w",
        doc="FA, MD, AD and RD resampled onto the T1w grid through the b=0 -> T1w transform",
        inputs={
            **{name: Input(f"{name.upper()} in DWI space (DTIFit.{name})") for name in layout.DTI_SCALARS},
            "transform": Input("b=0 -> T1w transform (DWIToT1w.transform)"),
            "t1w": T1W,
        },
        outputs=layout.DTI_T1W,
        wiring=lambda job: {
            **job.outs({name: layout.DTI[name] for name in layout.DTI_SCALARS}),
            "transform": job.out(layout.DWI_TO_T1W["transform"]),
            "t1w": job.out(layout.STRUCTURAL["preproc"]),
        },
    ),
)
