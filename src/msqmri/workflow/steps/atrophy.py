"""Percentage brain volume change between sessions: skull-constrained halfway registration, the SIENA-like
edge method and Jacobian integration, then group/pbvc.tsv."""

from __future__ import annotations

from msqmri.workflow import layout
from msqmri.workflow.step import Input, Step
from msqmri.workflow.steps.common import PAIR_IDS, SEED

#: what a pair step reads of each session's structural outputs (layout.SCAN_KEYS), as from_<key> / to_<key>
_SCAN_DOCS = {
    "preproc": "bias-corrected T1w (Structural.preproc)",
    "brain_mask": "brain mask (Structural.brain_mask)",
    "icv_mask": "ICV mask (Structural.icv_mask)",
    "probseg_gm": "GM fraction (Structural.probseg_gm)",
    "probseg_wm": "WM fraction (Structural.probseg_wm)",
}
SCANS = {
    f"{side}_{key}": Input(f"{'earlier' if side == 'from' else 'later'} session's {_SCAN_DOCS[key]}")
    for side in ("from", "to")
    for key in layout.SCAN_KEYS
}
SCAN_PATTERNS = {key: layout.STRUCTURAL[key] for key in layout.SCAN_KEYS}
TRANSFORM = Input("the pair's halfway transform JSON (Halfway.transform)")
_HALFWAY_IMAGES = ("image_from", "image_to", "brain_from", "brain_to")

STEPS = (
    Step(
        name="halfway",
        scope="pair",
        call="msqmri.atrophy.stage:run_halfway",
        itk=True,
        interface="Halfway",
        doc="Skull-constrained two-way registration of a session pair and both T1w and brain maps resampled once "
        "into the halfway space (SIENA's registration, Smith et al. 2002)",
        inputs=SCANS,
        outputs=layout.HALFWAY,
        params={"seed": SEED},
        wiring=lambda job: job.sides(SCAN_PATTERNS),
    ),
    Step(
        name="siena",
        scope="pair",
        call="msqmri.atrophy.stage:run_siena",
        threads=1,
        interface="Siena",
        doc="Percentage brain volume change by edge displacement (SIENA-like, Smith et al. 2002) and the flow map",
        inputs={**SCANS, "transform": TRANSFORM},
        outputs=layout.PBVC["siena"],
        params={"ids": PAIR_IDS},
        wiring=lambda job: {**job.sides(SCAN_PATTERNS), "transform": job.out(layout.HALFWAY["transform"])},
    ),
    Step(
        name="jacobian",
        scope="pair",
        call="msqmri.atrophy.stage:run_jacobian",
        itk=True,
        interface="Jacobian",
        doc="Percentage brain volume change by Jacobian integration of a symmetric SyN registration of the "
        "halfway images (Boyes et al. 2006; Avants et al. 2008)",
        inputs={
            "image_from": Input("earlier T1w in halfway space (Halfway.image_from)"),
            "image_to": Input("later T1w in halfway space (Halfway.image_to)"),
            "brain_from": Input("earlier brain fraction in halfway space (Halfway.brain_from)"),
            "brain_to": Input("later brain fraction in halfway space (Halfway.brain_to)"),
            "transform": TRANSFORM,
        },
        outputs=layout.PBVC["jacobian"],
        params={"ids": PAIR_IDS, "seed": SEED},
        wiring=lambda job: job.outs({key: layout.HALFWAY[key] for key in (*_HALFWAY_IMAGES, "transform")}),
    ),
    Step(
        name="pbvc_table",
        scope="dataset",
        call="msqmri.cohort.tables:write_pbvc_table",
        local=True,
        doc="group/pbvc.tsv, one row per session pair and method",
        inputs={"pbvc": Input("every pair's PBVC JSON of every method (Siena.pbvc, Jacobian.pbvc)", many=True)},
        outputs={"table": layout.PBVC_TABLE},
        wiring=lambda job: {
            "pbvc": [path for method in job.run.pbvc_methods for path in job.every_pair(layout.PBVC[method]["pbvc"])]
        },
    ),
)
