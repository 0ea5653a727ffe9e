"""Quantitative maps: magnetization transfer ratio (MT-on/off pair) and R2* (multi-echo GRE), each on its
acquisition grid and in T1w space."""

from __future__ import annotations

from typing import Any

from msqmri.core.io import MsqmriError
from msqmri.workflow import layout
from msqmri.workflow.jobs import Job
from msqmri.workflow.step import Input, Param, Step
from msqmri.workflow.steps.common import SEED, T1W, T1W_MASK


def t1w_reference(job: Job) -> dict[str, str]:
    """The bias-corrected T1w and its brain mask, which maps in T1w space are registered and masked to."""
    return {"t1w": job.out(layout.STRUCTURAL["preproc"]), "t1w_mask": job.out(layout.STRUCTURAL["brain_mask"])}


def mt_inputs(job: Job) -> dict[str, str]:
    """The MT-on/off pair of a session and the T1w it is registered to."""
    session = job.session
    if session.mt_on is None or session.mt_off is None:
        raise MsqmriError(f"{job.label} has no MT-on/off pair")
    return {"mt_on": str(session.mt_on), "mt_off": str(session.mt_off), **t1w_reference(job)}


def echo_inputs(job: Job) -> dict[str, Any]:
    """The MEGRE echo images of a session in echo order, their JSON sidecars (EchoTime: editing one reruns the
    fit) and the T1w."""
    echoes = job.session.megre
    if not echoes:
        raise MsqmriError(f"{job.label} has no MEGRE echoes")
    sidecars = [str(echo.sidecar) for echo in echoes if echo.sidecar is not None]
    return {**t1w_reference(job), "echoes": [str(echo.image) for echo in echoes], "sidecars": sidecars}


STEPS = (
    Step(
        name="mtr",
        scope="session",
        call="msqmri.qmri.stage:mtr",
        itk=True,
        interface="MTR",
        doc="Magnetization transfer ratio on the MT-off grid and in T1w space",
        inputs={"mt_on": Input("MT-on image"), "mt_off": Input("MT-off image"), "t1w": T1W, "t1w_mask": T1W_MASK},
        outputs=layout.MTR,
        params={"seed": SEED},
        wiring=mt_inputs,
    ),
    Step(
        name="r2star",
        scope="session",
        call="msqmri.qmri.stage:r2star",
        itk=True,
        threads=2,
        interface="R2star",
        doc="R2*, T2*, S0 and fit residual on the MEGRE grid, R2* in T1w space",
        inputs={
            "t1w": T1W,
            "t1w_mask": T1W_MASK,
            "echoes": Input("MEGRE echoes in echo order (JSON sidecars beside them)", many=True),
            "sidecars": Input("the echoes' JSON sidecars", optional=True, many=True),
        },
        outputs=layout.R2STAR,
        params={
            "method": Param("R2* fit", "wls", config="r2star_fit", choices=("wls", "arlo", "nlls")),
            "floor_snr": Param("noise-floor multiple below which echoes are dropped", 2.0, config="r2star_noise_floor"),
            "seed": SEED,
            "threads": Param("threads of the fit", 1),
        },
        wiring=echo_inputs,
    ),
)
