"""Lesions and regional metrics: the session's FLAIR normalised to its NAWM, its lesion mask on the T1w grid
(user mask or built-in segmentation), lesion labels, location classes, regional and per-lesion metrics; lesion
activity of every session pair (halfway space, from the subtraction image) and the subtraction image; persistent
lesion identities per subject; their group tables."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from msqmri.core.io import MsqmriError
from msqmri.inputs.bids import Session
from msqmri.workflow import layout
from msqmri.workflow.jobs import Job, session_days
from msqmri.workflow.step import Input, Param, Step
from msqmri.workflow.steps.anat import structural_inputs
from msqmri.workflow.steps.common import PAIR_IDS, SEED, SESSION_IDS, T1W, TABLES

MIN_SIZE = Param("smallest lesion kept (mm^3)", 3.0, config="lesion_min_size_mm3")
#: the structural outputs the lesion steps read
TISSUE = {
    "t1w": T1W,
    "brain_mask": Input("T1w brain mask (Structural.brain_mask)"),
    "probseg_csf": Input("CSF fraction (Structural.probseg_csf)", optional=True),
    "probseg_gm": Input("GM fraction (Structural.probseg_gm)", optional=True),
    "probseg_wm": Input("WM fraction (Structural.probseg_wm)", optional=True),
    "from_template": Input("MNI -> T1w transform (Structural.from_template)", optional=True),
    "flair": Input("normalised FLAIR (FlairNormalization.flair)", optional=True),
}
HALFWAY = {
    "transform": Input("the pair's halfway transform JSON (Halfway.transform)"),
    "grid": Input("the halfway grid (Halfway.image_from)"),
}
FLAIRS = {
    f"{side}_flair": Input(f"{side} session's normalised FLAIR (FlairNormalization.flair)", optional=True)
    for side in ("from", "to")
}


def session_t1w_maps(job: Job) -> dict[str, str]:
    """Patterns of the T1w-space maps the job's session has: FA and MD, MTR, R2*, and the FLAIR registered to
    the T1w."""
    session, maps = job.session, {}
    if session.dwi is not None:
        maps |= {name: layout.DTI_T1W[name] for name in ("fa", "md")}
    if session.mt_on is not None and session.mt_off is not None:
        maps["mtr"] = layout.MTR["mtr_t1w"]
    if session.megre:
        maps["r2star"] = layout.R2STAR["r2star_t1w"]
    if session.flair is not None:
        maps["flair"] = layout.FLAIR_TO_T1W["flair"]
    return maps


def lesion_inputs(job: Job) -> dict[str, str]:
    """What the session's lesion mask is made from: the user's mask (with the FLAIR -> T1w transform for a
    FLAIR-space mask), else the normalised FLAIR, the T1w and the tissue maps, else nothing."""
    inputs = {"t1w": job.out(layout.STRUCTURAL["preproc"]), "brain_mask": job.out(layout.STRUCTURAL["brain_mask"])}
    structural = structural_inputs(job)
    if "lesion" in structural:
        return inputs | {k: v for k, v in structural.items() if k not in ("t1w", "inv2")}
    if job.session.flair is not None:
        inputs["flair"] = job.out(layout.FLAIR_NORM["flair"])
        inputs |= job.outs(
            {key: layout.STRUCTURAL[key] for key in ("probseg_csf", "probseg_gm", "probseg_wm", "from_template")}
        )
    return inputs


def metrics_inputs(job: Job) -> dict[str, str]:
    """The session's T1w, brain mask, tissue maps and template transform, its lesion mask, and whichever
    quantitative maps and normalised FLAIR it has (T1w space)."""
    inputs = {
        "t1w": layout.STRUCTURAL["preproc"],
        **{
            key: layout.STRUCTURAL[key]
            for key in ("brain_mask", "dseg", "probseg_csf", "probseg_gm", "probseg_wm", "from_template")
        },
        "lesion_mask": layout.LESION_MASK["mask"],
        **{key: path for key, path in session_t1w_maps(job).items() if key != "flair"},
    }
    if job.session.flair is not None:  # partial-volume lesion volumes and black holes
        inputs["flair"] = layout.FLAIR_NORM["flair"]
    return job.outs(inputs)


def pair_halfway(job: Job) -> dict[str, str]:
    """The pair's halfway transform and grid (the earlier session's halfway T1w)."""
    return {"transform": job.out(layout.HALFWAY["transform"]), "grid": job.out(layout.HALFWAY["image_from"])}


def activity_inputs(job: Job) -> dict[str, str]:
    """Lesion labels and tables, tissue labels and, when both sessions have them, normalised FLAIRs and MTR maps
    of a pair, with its halfway transform and grid."""
    first, second = job.pair
    keys = {key: layout.SESSION_METRICS[key] for key in ("labels", "lesions")} | {"dseg": layout.STRUCTURAL["dseg"]}
    if first.flair is not None and second.flair is not None:
        keys["flair"] = layout.FLAIR_NORM["flair"]
    if all(s.mt_on is not None and s.mt_off is not None for s in job.pair):
        keys["mtr"] = layout.MTR["mtr_t1w"]
    return {**pair_halfway(job), **job.sides(keys)}


def tracking_inputs(job: Job) -> dict[str, list[str]]:
    """The lesion tables of a subject's sessions and the lesion changes of its consecutive pairs, in time order."""
    sessions = job.subject.sessions
    pairs = [layout.LESION_ACTIVITY["changes"].format(**layout.pair_wildcards(a, b)) for a, b in pairwise(sessions)]
    return {"sessions": job.every_session(layout.SESSION_METRICS["lesions"]), "pairs": [job.run.out(p) for p in pairs]}


def has_contrast(session: Session) -> bool:
    """Whether the session has a post-contrast T1w."""
    return session.t1w_ce is not None


def enhancing_inputs(job: Job) -> dict[str, str]:
    """A post-contrast session's T1w images, tissue maps, template transform and T2 lesion labels."""
    if job.session.t1w_ce is None:
        raise MsqmriError(f"{job.label} has no post-contrast T1w")
    keys = ("brain_mask", "probseg_wm", "probseg_csf", "from_template")
    return {
        "t1w_ce": str(job.session.t1w_ce),
        "t1w": job.out(layout.STRUCTURAL["preproc"]),
        **job.outs({key: layout.STRUCTURAL[key] for key in keys}),
        "labels": job.out(layout.SESSION_METRICS["labels"]),
    }


def _concatenation(name: str, table: str, pattern: str, scope: str, what: str) -> Step:
    """A group table that concatenates one table per session, pair or subject."""
    every = {"session": Job.every_session, "pair": Job.every_pair, "subject": Job.every_subject}[scope]
    return Step(
        name=name,
        scope="dataset",
        call="msqmri.cohort.tables:write_concatenated",
        local=True,
        doc=f"{table}: {what}",
        inputs={"tables": TABLES},
        outputs={"table": table},
        wiring=lambda job: {"tables": every(job, pattern)},
    )


def _tracking_params() -> dict[str, Param]:
    return {
        "participant_id": Param("the subject, e.g. sub-01", job=lambda job: job.subject.participant_id),
        "session_ids": Param(
            "its sessions, in time order", job=lambda job: [s.session_id for s in job.subject.sessions]
        ),
        "days": Param("each session's day (chronic black holes)", job=lambda job: session_days(job.subject.sessions)),
    }


def _identity_wiring(job: Job) -> dict[str, Any]:
    tracking = layout.LESION_TRACKING["lesions"].format(subject=job.session.participant_id)
    return {"labels": job.out(layout.SESSION_METRICS["labels"]), "tracking": job.run.out(tracking)}


STEPS = (
    Step(
        name="flair_normalization",
        scope="session",
        call="msqmri.lesions.stage:flair_normalization",
        itk=True,
        group="lesion_metrics",
        interface="FlairNormalization",
        doc="The FLAIR after N4, divided by its local normal-appearing WM level",
        inputs={
            "flair": Input("FLAIR registered to the T1w (FlairToT1w.flair)"),
            "brain_mask": Input("T1w brain mask (Structural.brain_mask)"),
            "probseg_wm": Input("WM fraction (Structural.probseg_wm)"),
        },
        outputs=layout.FLAIR_NORM,
        wiring=lambda job: {
            "flair": job.out(layout.FLAIR_TO_T1W["flair"]),
            **job.outs({key: layout.STRUCTURAL[key] for key in ("brain_mask", "probseg_wm")}),
        },
    ),
    Step(
        name="lesion_mask",
        scope="session",
        call="msqmri.lesions.stage:lesion_mask",
        itk=True,
        threads=1,
        group="lesion_metrics",
        interface="LesionMask",
        doc="The session's lesion mask: the user's, else the built-in FLAIR + T1w segmentation (the tissue inputs "
        "and the FLAIR), else empty",
        inputs={
            **TISSUE,
            "lesion": Input("user lesion mask in T1w space (or FLAIR space with lesion_transform)", optional=True),
            "lesion_transform": Input("FLAIR -> T1w transform of a FLAIR-space lesion mask", optional=True),
        },
        outputs=layout.LESION_MASK,
        params={"min_size_mm3": MIN_SIZE},
        wiring=lesion_inputs,
    ),
    Step(
        name="session_metrics",
        scope="session",
        call="msqmri.lesions.stage:session_metrics",
        threads=1,
        group="lesion_metrics",
        interface="SessionMetrics",
        doc="Lesion labels, regional and per-lesion metrics, location classes and black holes of a session",
        inputs={
            **TISSUE,
            "dseg": Input("tissue labels (Structural.dseg)"),
            "lesion_mask": Input("lesion mask on the T1w grid (LesionMask.mask)"),
            **{name: Input(f"{name.upper()} in T1w space", optional=True) for name in ("fa", "md", "mtr", "r2star")},
        },
        outputs=layout.SESSION_METRICS,
        params={"ids": SESSION_IDS},
        wiring=metrics_inputs,
    ),
    Step(
        name="lesion_activity",
        scope="pair",
        call="msqmri.lesions.stage:lesion_activity",
        threads=1,
        interface="LesionActivity",
        doc="New, enlarging, shrinking, resolved and stable lesions of a pair in its halfway space (from the "
        "subtraction image and the baseline lesion map with both FLAIRs, else by comparing the lesion maps), "
        "per-lesion MTR change and chronic black holes",
        inputs={
            **HALFWAY,
            **FLAIRS,
            **{
                f"{side}_{key}": Input(f"{side} session's {what}", optional=optional)
                for side in ("from", "to")
                for key, what, optional in (
                    ("labels", "lesion labels (SessionMetrics.labels)", False),
                    ("lesions", "lesion table (SessionMetrics.lesions; black holes)", True),
                    ("dseg", "tissue labels (Structural.dseg)", False),
                    ("mtr", "MTR in T1w space (MTR.mtr_t1w; with both)", True),
                )
            },
        },
        outputs=layout.LESION_ACTIVITY,
        params={
            "ids": PAIR_IDS,
            "enlarging": Param(
                "volume increase of an enlarging lesion (0.5 = +50 %)", 0.5, config="lesion_enlarging_fraction"
            ),
            "min_size_mm3": MIN_SIZE,
        },
        wiring=activity_inputs,
    ),
    Step(
        name="flair_subtraction",
        scope="pair",
        call="msqmri.lesions.stage:flair_subtraction",
        threads=1,
        interface="FlairSubtraction",
        doc="Later minus earlier FLAIR in halfway space, both normalised to their local NAWM (the MAGNIMS "
        "subtraction image)",
        inputs={**HALFWAY, **{key: Input(spec.desc) for key, spec in FLAIRS.items()}},
        outputs={"subtraction": layout.FLAIR_SUBTRACTION},
        wiring=lambda job: {**pair_halfway(job), **job.sides({"flair": layout.FLAIR_NORM["flair"]})},
    ),
    Step(
        name="lesion_tracking",
        scope="subject",
        call="msqmri.lesions.stage:lesion_tracking",
        local=True,
        interface="LesionTracking",
        doc="A subject's lesions with persistent identities across its sessions, and its per-session lesion "
        "counts by location",
        inputs={
            "sessions": Input("each session's lesion table, in order", many=True),
            "pairs": Input("each consecutive pair's changes (LesionActivity.changes)", optional=True, many=True),
        },
        outputs=layout.LESION_TRACKING,
        params=_tracking_params(),
        wiring=tracking_inputs,
    ),
    Step(
        name="lesion_identities",
        scope="session",
        call="msqmri.lesions.stage:lesion_identities",
        local=True,
        interface="LesionIdentities",
        doc="A session's lesions labelled by persistent identity",
        inputs={
            "labels": Input("the session's lesion labels (SessionMetrics.labels)"),
            "tracking": Input("the subject's tracked lesions (LesionTracking.lesions)"),
        },
        outputs={"labels": layout.LESION_IDS},
        params={"ids": SESSION_IDS},
        wiring=_identity_wiring,
    ),
    _concatenation(
        "regional_metrics_table",
        layout.REGIONAL_METRICS_TABLE,
        layout.SESSION_METRICS["regional"],
        "session",
        "regional metrics of every session",
    ),
    _concatenation(
        "lesions_table",
        layout.LESIONS_TABLE,
        layout.LESION_TRACKING["lesions"],
        "subject",
        "every subject's tracked lesions",
    ),
    Step(
        name="lesion_counts_table",
        scope="dataset",
        call="msqmri.cohort.tables:write_lesion_counts",
        local=True,
        doc="group/lesion_counts.tsv: every subject's lesion counts per session, with its CELs",
        inputs={
            "counts": Input("every subject's lesion counts (LesionTracking.counts)", many=True),
            "cel": Input(
                "every post-contrast session's CEL summary (EnhancingLesions.summary)", optional=True, many=True
            ),
        },
        outputs={"table": layout.LESION_COUNTS_TABLE},
        wiring=lambda job: {
            "counts": job.every_subject(layout.LESION_TRACKING["counts"]),
            "cel": job.every_session(layout.CEL["summary"], where=has_contrast),
        },
    ),
    Step(
        name="enhancing_lesions",
        scope="session",
        call="msqmri.lesions.stage:enhancing_lesions",
        itk=True,
        threads=1,
        interface="EnhancingLesions",
        doc="Contrast-enhancing lesions of a session: the post-contrast T1w registered to the T1w, the enhancement "
        "map (post minus pre in NAWM units), the CEL labels, table and summary",
        inputs={
            "t1w_ce": Input("raw post-contrast T1w (ce-<agent>)"),
            "t1w": T1W,
            "brain_mask": Input("T1w brain mask (Structural.brain_mask)"),
            "probseg_wm": Input("WM fraction (Structural.probseg_wm)"),
            "probseg_csf": Input("CSF fraction (Structural.probseg_csf)"),
            "labels": Input("the session's T2 lesion labels (SessionMetrics.labels)"),
            "from_template": Input("MNI -> T1w transform (Structural.from_template)"),
        },
        outputs=layout.CEL,
        params={
            "ids": SESSION_IDS,
            "min_size_mm3": Param("smallest CEL kept (mm^3)", 10.0, config="cel_min_size_mm3"),
            "seed": SEED,
        },
        wiring=enhancing_inputs,
    ),
    Step(
        name="enhancing_lesions_table",
        scope="dataset",
        call="msqmri.cohort.tables:write_enhancing_lesions",
        local=True,
        doc="group/enhancing_lesions.tsv: one row per CEL per session, with its T2 lesion's persistent identity",
        inputs={
            "tables": Input(
                "every post-contrast session's CEL table (EnhancingLesions.table)", many=True, optional=True
            ),
            "lesions": Input("group/lesions.tsv"),
        },
        outputs={"table": layout.ENHANCING_LESIONS_TABLE},
        wiring=lambda job: {
            "tables": job.every_session(layout.CEL["table"], where=has_contrast),
            "lesions": job.run.out(layout.LESIONS_TABLE),
        },
    ),
    Step(
        name="lesion_activity_table",
        scope="dataset",
        call="msqmri.cohort.tables:write_lesion_activity_table",
        local=True,
        doc="group/lesion_activity.tsv, one row per session pair",
        inputs={"counts": Input("every pair's lesion activity counts (LesionActivity.counts)", many=True)},
        outputs={"table": layout.LESION_ACTIVITY_TABLE},
        wiring=lambda job: {"counts": job.every_pair(layout.LESION_ACTIVITY["counts"])},
    ),
    _concatenation(
        "lesion_changes_table",
        layout.LESION_CHANGES_TABLE,
        layout.LESION_ACTIVITY["changes"],
        "pair",
        "every pair's per-lesion changes",
    ),
)
