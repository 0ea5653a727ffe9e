"""Paths of the derivative outputs, relative to OUTPUT_DIR (shared by the Snakefile and the CLI).

Session-level patterns use two wildcards so that sessionless subjects work without special
rules: ``{sesdir}`` is ``sub-01/ses-01`` (or ``sub-01``) and ``{stem}`` is ``sub-01_ses-01``
(or ``sub-01``).
"""

from __future__ import annotations

from msqmri.inputs.bids import Dataset, Session, entity_prefix, session_dir, session_pairs

SESDIR_REGEX = r"sub-[a-zA-Z0-9]+(?:/ses-[a-zA-Z0-9]+)?"
STEM_REGEX = r"sub-[a-zA-Z0-9]+(?:_ses-[a-zA-Z0-9]+)?"
#: session-pair patterns: ``{subject}`` is ``sub-01``, ``{pair}`` is ``sub-01_ses-01to02``
SUBJECT_REGEX = r"sub-[a-zA-Z0-9]+"
PAIR_REGEX = r"sub-[a-zA-Z0-9]+_ses-[a-zA-Z0-9]+to[a-zA-Z0-9]+"

DATASET_DESCRIPTION = "dataset_description.json"
INPUT_CHECK = "{sesdir}/{stem}_desc-inputs_qc.json"
T1W_SUMMARY = "{sesdir}/anat/{stem}_desc-t1w_qc.json"
SESSIONS_TABLE = "group/sessions.tsv"
BRAIN_VOLUMES_TABLE = "group/brain_volumes.tsv"

#: structural preprocessing products of a session, by the keys of :func:`msqmri.anat.stage.write`
_ANAT = "{sesdir}/anat/{stem}"
STRUCTURAL = {
    "preproc": f"{_ANAT}_desc-preproc_T1w.nii.gz",
    "brain_mask": f"{_ANAT}_desc-brain_mask.nii.gz",
    "icv_mask": f"{_ANAT}_label-ICV_mask.nii.gz",
    "dseg": f"{_ANAT}_dseg.nii.gz",
    "probseg_csf": f"{_ANAT}_label-CSF_probseg.nii.gz",
    "probseg_gm": f"{_ANAT}_label-GM_probseg.nii.gz",
    "probseg_wm": f"{_ANAT}_label-WM_probseg.nii.gz",
    "to_template": f"{_ANAT}_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.h5",
    "from_template": f"{_ANAT}_from-MNI152NLin2009aSym_to-T1w_mode-image_xfm.h5",
    "volumes": f"{_ANAT}_desc-sienax_volumes.json",
}
#: structural outputs a pair job reads from each session (keys of ``STRUCTURAL``)
SCAN_KEYS = ("preproc", "brain_mask", "icv_mask", "probseg_gm", "probseg_wm")

#: FLAIR rigidly registered to the T1w (sessions with a FLAIR only)
FLAIR_TO_T1W = {
    "transform": f"{_ANAT}_from-FLAIR_to-T1w_mode-image_xfm.mat",
    "flair": f"{_ANAT}_space-T1w_desc-preproc_FLAIR.nii.gz",
}

#: the FLAIR in T1w space after N4, divided by its local NAWM level (sessions with a FLAIR only)
FLAIR_NORM = {
    "flair": f"{_ANAT}_space-T1w_desc-normalized_FLAIR.nii.gz",
    "json": f"{_ANAT}_space-T1w_desc-normalized_FLAIR.json",
}
#: the session's lesion mask on the T1w grid (user mask, built-in FLAIR segmentation or empty)
LESION_MASK = {"mask": f"{_ANAT}_label-lesion_mask.nii.gz", "mask_json": f"{_ANAT}_label-lesion_mask.json"}
#: lesion labels (26-connected components) and the session's regional and per-lesion metrics
SESSION_METRICS = {
    "labels": f"{_ANAT}_desc-lesions_dseg.nii.gz",
    "regional": f"{_ANAT}_desc-regional_metrics.tsv",
    "lesions": f"{_ANAT}_desc-lesions_metrics.tsv",
}
#: the session's lesions labelled by their persistent identity (the subject's lesion tracking)
LESION_IDS = f"{_ANAT}_desc-lesionids_dseg.nii.gz"
#: contrast-enhancing lesions of a session with a post-contrast T1w (``ce-<agent>``): the post-contrast T1w on
#: the T1w grid (and its transform), the enhancement map (NAWM units), the CEL labels, their table and a summary
CEL = {
    "post": f"{_ANAT}_space-T1w_desc-postcontrast_T1w.nii.gz",
    "transform": f"{_ANAT}_from-T1wce_to-T1w_mode-image_xfm.mat",
    "enhancement": f"{_ANAT}_space-T1w_desc-enhancement_T1w.nii.gz",
    "labels": f"{_ANAT}_label-CEL_dseg.nii.gz",
    "table": f"{_ANAT}_desc-cel_metrics.tsv",
    "summary": f"{_ANAT}_desc-cel_summary.json",
}
ENHANCING_LESIONS_TABLE = "group/enhancing_lesions.tsv"
REGIONAL_METRICS_TABLE = "group/regional_metrics.tsv"
LESIONS_TABLE = "group/lesions.tsv"
LESION_COUNTS_TABLE = "group/lesion_counts.tsv"

SESSION_OUTPUTS = (
    INPUT_CHECK,
    T1W_SUMMARY,
    *STRUCTURAL.values(),
    *LESION_MASK.values(),
    *SESSION_METRICS.values(),
    LESION_IDS,
)

#: diffusion products of a session (sessions with a DWI series only); every map has a JSON sidecar
_DWI = "{sesdir}/dwi/{stem}"
DWI_PREPROC = {
    "dwi": f"{_DWI}_space-dwi_desc-preproc_dwi.nii.gz",
    "bval": f"{_DWI}_space-dwi_desc-preproc_dwi.bval",
    "bvec": f"{_DWI}_space-dwi_desc-preproc_dwi.bvec",
    "sidecar": f"{_DWI}_space-dwi_desc-preproc_dwi.json",
    "b0": f"{_DWI}_space-dwi_desc-b0_dwiref.nii.gz",
    "mask": f"{_DWI}_space-dwi_desc-brain_mask.nii.gz",
    "motion": f"{_DWI}_desc-motion_timeseries.tsv",
}
DWI_TO_T1W = {"transform": f"{_DWI}_from-dwi_to-T1w_mode-image_xfm.mat"}
#: tensor maps in native DWI space (scalars, principal eigenvector, colour FA) and in T1w space (scalars)
DTI_PARAMS = ("fa", "md", "ad", "rd", "v1", "colorfa")
DTI_SCALARS = ("fa", "md", "ad", "rd")
DTI = {
    **{p: f"{_DWI}_model-tensor_param-{p}_dwimap.nii.gz" for p in DTI_PARAMS},
    **{f"{p}_json": f"{_DWI}_model-tensor_param-{p}_dwimap.json" for p in DTI_PARAMS},
}
DTI_T1W = {
    **{p: f"{_DWI}_space-T1w_model-tensor_param-{p}_dwimap.nii.gz" for p in DTI_SCALARS},
    **{f"{p}_json": f"{_DWI}_space-T1w_model-tensor_param-{p}_dwimap.json" for p in DTI_SCALARS},
}
DWI_OUTPUTS = (*DWI_PREPROC.values(), *DWI_TO_T1W.values(), *DTI.values(), *DTI_T1W.values())


def _quantitative(maps: dict[str, str], in_t1w: tuple[str, ...], source: str) -> dict[str, str]:
    """Native maps (``maps``: key -> suffix, with an optional desc entity) with sidecars, the ``in_t1w``
    ones also in T1w space, and the transform of the acquisition to the T1w."""
    paths: dict[str, str] = {}
    for key, suffix in maps.items():
        paths |= {key: f"{_ANAT}_{suffix}.nii.gz", f"{key}_json": f"{_ANAT}_{suffix}.json"}
    for key in in_t1w:
        paths |= {
            f"{key}_t1w": f"{_ANAT}_space-T1w_{maps[key]}.nii.gz",
            f"{key}_t1w_json": f"{_ANAT}_space-T1w_{maps[key]}.json",
        }
    return paths | {"transform": f"{_ANAT}_from-{source}_to-T1w_mode-image_xfm.mat"}


#: magnetization transfer ratio (sessions with an MT-on/off pair), on the MT-off grid and in T1w space
MTR = _quantitative({"mtr": "MTRmap"}, ("mtr",), "MToff")
#: R2* and companions on the MEGRE grid (R2* also in T1w space)
R2STAR = _quantitative(
    {"r2star": "R2starmap", "t2star": "T2starmap", "s0": "S0map", "nrmse": "desc-R2starfit_nrmse"}, ("r2star",), "MEGRE"
)

#: percentage brain volume change of a session pair, in the pair's halfway space
_PAIR = "{subject}/anat/{pair}"
HALFWAY = {
    "transform": f"{_PAIR}_desc-halfway_xfm.json",
    "image_from": f"{_PAIR}_space-halfway_desc-from_T1w.nii.gz",
    "image_to": f"{_PAIR}_space-halfway_desc-to_T1w.nii.gz",
    "brain_from": f"{_PAIR}_space-halfway_label-brain_desc-from_probseg.nii.gz",
    "brain_to": f"{_PAIR}_space-halfway_label-brain_desc-to_probseg.nii.gz",
}
PBVC = {
    "siena": {"pbvc": f"{_PAIR}_desc-siena_pbvc.json", "flow": f"{_PAIR}_space-halfway_desc-siena_flow.nii.gz"},
    "jacobian": {
        "pbvc": f"{_PAIR}_desc-jacobian_pbvc.json",
        "jacobian": f"{_PAIR}_space-halfway_desc-jacobian_jacdet.nii.gz",
    },
}
PBVC_TABLE = "group/pbvc.tsv"
#: lesion activity of a session pair (halfway space): counts, per-lesion changes, status map, FLAIR subtraction
LESION_ACTIVITY = {
    "counts": f"{_PAIR}_desc-lesions_activity.json",
    "changes": f"{_PAIR}_desc-lesions_changes.tsv",
    "status": f"{_PAIR}_space-halfway_desc-lesionactivity_dseg.nii.gz",
}
FLAIR_SUBTRACTION = f"{_PAIR}_space-halfway_desc-subtraction_FLAIR.nii.gz"
LESION_ACTIVITY_TABLE = "group/lesion_activity.tsv"
#: a subject's lesions with persistent identities across its sessions, and its per-session lesion counts
LESION_TRACKING = {
    "lesions": "{subject}/{subject}_desc-lesions_tracking.tsv",
    "counts": "{subject}/{subject}_desc-lesions_counts.tsv",
}
LESION_CHANGES_TABLE = "group/lesion_changes.tsv"
PBVC_METHODS = tuple(PBVC)

#: cohort tables of monitoring and multi-centre checks, harmonised regional metrics and the ComBat model
PROTOCOL_TABLE = "group/protocol_compliance.tsv"
MONITORING_TABLE = "group/monitoring_flags.tsv"
HARMONIZED_TABLE = "group/regional_metrics_harmonized.tsv"
HARMONIZATION_MODEL = "group/regional_metrics_combat_model.json"
#: treatment response scores per subject and treatment year, and the baseline prognostic profile per subject
TREATMENT_RESPONSE_TABLE = "group/treatment_response.tsv"
PROGNOSIS_TABLE = "group/prognosis.tsv"
#: QC: each subject's longitudinal plot and self-contained HTML report, and the cohort report
LONGITUDINAL_PLOT = "{subject}/figures/{subject}_desc-longitudinal_plot.png"
SUBJECT_REPORT = "{subject}.html"
COHORT_REPORT = "group/cohort_report.html"


def session_wildcards(session: Session) -> dict[str, str]:
    """The ``sesdir``/``stem`` wildcard values of a session."""
    return {
        "sesdir": session_dir(session.subject, session.session),
        "stem": entity_prefix(session.subject, session.session),
    }


def session_paths(session: Session, patterns: tuple[str, ...] = SESSION_OUTPUTS) -> list[str]:
    """``patterns`` filled in for one session."""
    wildcards = session_wildcards(session)
    return [pattern.format(**wildcards) for pattern in patterns]


def pair_wildcards(first: Session, second: Session) -> dict[str, str]:
    """The ``subject``/``pair`` wildcard values of a session pair of one subject."""
    return {
        "subject": f"sub-{first.subject}",
        "pair": f"{entity_prefix(first.subject, first.session)}to{second.session}",
    }


def pair_paths(dataset: Dataset, methods: tuple[str, ...] = PBVC_METHODS) -> list[str]:
    """PBVC and lesion-activity outputs of every session pair (consecutive and baseline -> later) of
    every subject (the FLAIR subtraction when both sessions have a FLAIR)."""
    patterns = [*HALFWAY.values(), *(p for m in methods for p in PBVC[m].values()), *LESION_ACTIVITY.values()]
    paths = []
    for subject in dataset.subjects:
        for first, second in session_pairs(subject.sessions):
            both_flair = first.flair is not None and second.flair is not None
            for pattern in [*patterns, FLAIR_SUBTRACTION] if both_flair else patterns:
                paths.append(pattern.format(**pair_wildcards(first, second)))
    return paths


def participant_targets(dataset: Dataset, methods: tuple[str, ...] = PBVC_METHODS) -> list[str]:
    """Every output of the participant stage."""
    paths = [DATASET_DESCRIPTION]
    for session in dataset.sessions():
        paths.extend(session_paths(session))
        if session.flair is not None:
            paths.extend(session_paths(session, (*FLAIR_TO_T1W.values(), *FLAIR_NORM.values())))
        if session.dwi is not None:
            paths.extend(session_paths(session, DWI_OUTPUTS))
        if session.mt_on is not None and session.mt_off is not None:
            paths.extend(session_paths(session, tuple(MTR.values())))
        if session.megre:
            paths.extend(session_paths(session, tuple(R2STAR.values())))
        if session.t1w_ce is not None:
            paths.extend(session_paths(session, tuple(CEL.values())))
    subjects = [
        pattern.format(subject=s.participant_id) for s in dataset.subjects for pattern in LESION_TRACKING.values()
    ]
    return paths + pair_paths(dataset, methods) + subjects


GROUP_TARGETS = (
    DATASET_DESCRIPTION,
    SESSIONS_TABLE,
    BRAIN_VOLUMES_TABLE,
    PBVC_TABLE,
    REGIONAL_METRICS_TABLE,
    LESIONS_TABLE,
    LESION_COUNTS_TABLE,
    LESION_ACTIVITY_TABLE,
    LESION_CHANGES_TABLE,
    PROTOCOL_TABLE,
    MONITORING_TABLE,
    HARMONIZED_TABLE,
    HARMONIZATION_MODEL,
    ENHANCING_LESIONS_TABLE,
    TREATMENT_RESPONSE_TABLE,
    PROGNOSIS_TABLE,
    COHORT_REPORT,
)
SUBJECT_GROUP_OUTPUTS = (LONGITUDINAL_PLOT, SUBJECT_REPORT)


def stage_targets(stage: str, dataset: Dataset, methods: tuple[str, ...] = PBVC_METHODS) -> list[str]:
    """Outputs of ``stage`` ("participant" or "group"; the group stage builds on participant outputs)."""
    if stage == "participant":
        return participant_targets(dataset, methods)
    if stage == "group":
        subjects = [
            pattern.format(subject=s.participant_id) for s in dataset.subjects for pattern in SUBJECT_GROUP_OUTPUTS
        ]
        return [*GROUP_TARGETS, *subjects]
    raise ValueError(f"unknown stage {stage!r}")
