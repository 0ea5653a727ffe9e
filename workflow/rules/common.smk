# Shared state and helpers: the discovered BIDS dataset, output paths and input functions.

import os
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from msqmri.workflow import layout
from msqmri.inputs.bids import Dataset, discover, session_pairs
from msqmri.core.io import MsqmriError

# Without bids_dir/output_dir the workflow still parses (for --lint, --list-rules); requesting
# any target then fails with MISSING_CONFIG.
MISSING_CONFIG = (
    "msqmri: error: set bids_dir and output_dir, e.g. "
    "snakemake --cores 1 --config bids_dir=path/to/bids output_dir=path/to/derivatives"
)
CONFIGURED = bool(config["bids_dir"] and config["output_dir"])
OUTPUT_DIR = os.path.normpath(config["output_dir"]) if CONFIGURED else ""
LABELS = config["participant_label"]
try:
    DATASET = (
        discover(config["bids_dir"], [LABELS] if isinstance(LABELS, str) else LABELS, config.get("inputs") or {})
        if CONFIGURED
        else Dataset(Path("."), ())
    )
except MsqmriError as exc:
    raise WorkflowError(f"msqmri: error: {exc}") from None
for unusable in DATASET.unusable:
    logger.warning(f"msqmri: warning: {unusable}")
for warning in DATASET.warnings:
    logger.warning(f"msqmri: warning: {warning}")

SESSIONS = {tuple(layout.session_wildcards(s).values()): s for s in DATASET.sessions()}
PAIRS = {
    tuple(layout.pair_wildcards(a, b).values()): (a, b)
    for subject in DATASET.subjects
    for a, b in session_pairs(subject.sessions)
}
PBVC_METHODS = tuple(config["pbvc_methods"])
with open(os.path.join(workflow.basedir, "workflow", "resources.yaml")) as measured_file:
    MEASURED = yaml.safe_load(measured_file)["rules"]


wildcard_constraints:
    sesdir=layout.SESDIR_REGEX,
    stem=layout.STEM_REGEX,
    subject=layout.SUBJECT_REGEX,
    pair=layout.PAIR_REGEX,


def out(pattern):
    """A path under OUTPUT_DIR."""
    return os.path.join(OUTPUT_DIR, pattern)


def session_log(rule_name, suffix="log"):
    """The log (or, with ``suffix="benchmark.tsv"``, the time and memory record) of one session's job of a rule."""
    return out(f"logs/{rule_name}/{{sesdir}}/{{stem}}.{suffix}")


def measured(rule_name):
    """A rule's cluster resources as measured on a 1 mm session or pair (workflow/resources.yaml, written
    by benchmarks/resources.py); a retry (``--retries``) asks for ``attempt`` times as much memory and time,
    so a job killed for either is resubmitted with room."""
    need = MEASURED[rule_name]
    return {
        "mem_mb": lambda wildcards, attempt: need["mem_mb"] * attempt,
        "runtime": lambda wildcards, attempt: need["runtime"] * attempt,
    }


def stage_outputs(stage):
    """Every output of a stage ("participant" or "group")."""
    if not CONFIGURED:
        raise WorkflowError(MISSING_CONFIG)
    return [out(path) for path in layout.stage_targets(stage, DATASET, PBVC_METHODS)]


def all_sessions(pattern):
    """``pattern`` filled in for every usable session."""
    return [out(path) for session in DATASET.sessions() for path in layout.session_paths(session, (pattern,))]


def all_subjects(pattern):
    """``pattern`` filled in for every subject (``{subject}``)."""
    return [out(pattern.format(subject=subject.participant_id)) for subject in DATASET.subjects]


def session_for(wildcards):
    """The :class:`msqmri.inputs.bids.Session` a job's wildcards refer to."""
    key = (wildcards.sesdir, wildcards.stem)
    if key not in SESSIONS:
        raise WorkflowError(f"msqmri: no usable session {wildcards.sesdir} in {config['bids_dir']}")
    return SESSIONS[key]


def session_label(wildcards):
    """``sub-01 ses-01`` for error messages."""
    return session_for(wildcards).label


def session_files(wildcards):
    """Every raw input file of a session, so that changing one reruns its jobs."""
    return [str(path) for path in session_for(wildcards).files()]


def session_t1w(wildcards):
    return str(session_for(wildcards).t1w)


def structural_inputs(wildcards):
    """The T1w of a session (with MP2RAGE's INV2 beside a UNIT1) and its lesion mask, if any: in T1w
    space, else in FLAIR space with the FLAIR -> T1w transform."""
    session = session_for(wildcards)
    inputs = {"t1w": str(session.t1w)}
    if session.t1w_inv2 is not None:
        inputs["inv2"] = str(session.t1w_inv2)
    if session.lesion_mask_t1w is not None:
        inputs["lesion"] = str(session.lesion_mask_t1w)
    elif session.lesion_mask_flair is not None and session.flair is not None:
        inputs["lesion"] = str(session.lesion_mask_flair)
        inputs["lesion_transform"] = out(layout.FLAIR_TO_T1W["transform"].format(**wildcards))
    return inputs


def session_ids(session):
    """BIDS participant and session ids of a session, for table rows."""
    return {"participant_id": session.participant_id, "session_id": session.session_id}


def pair_for(wildcards):
    """The two sessions (earlier, later) a pair job's wildcards refer to."""
    key = (wildcards.subject, wildcards.pair)
    if key not in PAIRS:
        raise WorkflowError(f"msqmri: no session pair {wildcards.pair} in {config['bids_dir']}")
    return PAIRS[key]


def pair_log(rule_name, suffix="log"):
    """The log (or time and memory record) of one session pair's job of a rule."""
    return out(f"logs/{rule_name}/{{subject}}/{{pair}}.{suffix}")


def pair_structural(wildcards):
    """Structural outputs of both sessions of a pair, as named inputs ``from_<key>`` / ``to_<key>``."""
    inputs = {}
    for side, session in zip(("from", "to"), pair_for(wildcards)):
        paths = layout.session_wildcards(session)
        inputs.update({f"{side}_{key}": out(layout.STRUCTURAL[key].format(**paths)) for key in layout.SCAN_KEYS})
    return inputs


def pair_ids(wildcards):
    """Table ids of a pair and its interval in days (None without acq_time)."""
    first, second = pair_for(wildcards)
    interval = None
    if first.acq_time is not None and second.acq_time is not None:
        interval = (second.acq_time - first.acq_time).total_seconds() / 86400.0
    return {
        "participant_id": first.participant_id,
        "session_from": first.session_id,
        "session_to": second.session_id,
        "interval_days": interval,
    }


def pair_label(wildcards):
    """``sub-01 ses-01 -> ses-02`` for error messages."""
    first, second = pair_for(wildcards)
    return f"{first.label} -> {second.session_id}"


def all_pairs(pattern):
    """``pattern`` filled in for every session pair."""
    return [out(pattern.format(**layout.pair_wildcards(a, b))) for a, b in PAIRS.values()]


def dwi_inputs(wildcards):
    """The DWI series of a session, its gradient tables and the b=0 series stored apart that join it."""
    series = session_for(wildcards).dwi
    if series is None:
        raise WorkflowError(f"msqmri: {session_label(wildcards)} has no DWI series")
    inputs = {"dwi": str(series.image), "bval": str(series.bval), "bvec": str(series.bvec)}
    if series.b0_series:
        inputs["b0_series"] = [str(path) for path in series.b0_series]
    return inputs


def dti_inputs(wildcards):
    """The preprocessed DWI series and the brain mask the fit uses (config dwi_mask)."""
    inputs = {key: out(layout.DWI_PREPROC[key]) for key in ("dwi", "bval", "bvec", "mask")}
    if config["dwi_mask"] == "t1w":
        inputs["t1w_mask"] = out(layout.STRUCTURAL["brain_mask"])
        inputs["transform"] = out(layout.DWI_TO_T1W["transform"])
    return inputs


def mt_inputs(wildcards):
    """The MT-on/off pair of a session and the T1w it is registered to."""
    session = session_for(wildcards)
    if session.mt_on is None or session.mt_off is None:
        raise WorkflowError(f"msqmri: {session_label(wildcards)} has no MT-on/off pair")
    return {"mt_on": str(session.mt_on), "mt_off": str(session.mt_off), **t1w_reference(wildcards)}


def echo_images(wildcards):
    """The MEGRE echo images of a session, in echo order."""
    echoes = session_for(wildcards).megre
    if not echoes:
        raise WorkflowError(f"msqmri: {session_label(wildcards)} has no MEGRE echoes")
    return [str(echo.image) for echo in echoes]


def echo_sidecars(wildcards):
    """The JSON sidecars (EchoTime) of a session's echoes, so that editing one reruns the fit."""
    return [str(echo.sidecar) for echo in session_for(wildcards).megre if echo.sidecar is not None]


def t1w_reference(wildcards):
    """The bias-corrected T1w and its brain mask, which maps in T1w space are registered and masked to."""
    return {key: out(layout.STRUCTURAL[name].format(**wildcards)) for key, name in
            (("t1w", "preproc"), ("t1w_mask", "brain_mask"))}  # fmt: skip


# -- lesions (workflow/rules/lesions.smk) ---------------------------------------------------------


def lesion_inputs(wildcards):
    """What the session's lesion mask is made from: the user's mask (with the FLAIR -> T1w transform
    for a FLAIR-space mask), else the normalised FLAIR, the T1w and the tissue maps, else nothing."""
    session = session_for(wildcards)
    inputs = {key: out(layout.STRUCTURAL[name].format(**wildcards)) for key, name in
              (("t1w", "preproc"), ("brain_mask", "brain_mask"))}  # fmt: skip
    structural = structural_inputs(wildcards)
    if "lesion" in structural:
        return inputs | {k: v for k, v in structural.items() if k != "t1w"}
    if session.flair is not None:
        inputs["flair"] = out(layout.FLAIR_NORM["flair"].format(**wildcards))
        for key in ("probseg_csf", "probseg_gm", "probseg_wm", "from_template"):
            inputs[key] = out(layout.STRUCTURAL[key].format(**wildcards))
    return inputs


def metrics_inputs(wildcards):
    """The session's T1w, brain mask, tissue maps and template transform, its lesion mask, and whichever
    quantitative maps and normalised FLAIR it has (T1w space)."""
    session = session_for(wildcards)
    inputs = {
        "t1w": layout.STRUCTURAL["preproc"],
        **{key: layout.STRUCTURAL[key] for key in ("brain_mask", "dseg", "probseg_csf", "probseg_gm", "probseg_wm",
                                                    "from_template")},
        "lesion_mask": layout.LESION_MASK["mask"],
        **{key: path for key, path in session_t1w_maps(session).items() if key != "flair"},
    }  # fmt: skip
    if session.flair is not None:  # partial-volume lesion volumes and black holes
        inputs["flair"] = layout.FLAIR_NORM["flair"]
    return {key: out(path.format(**wildcards)) for key, path in inputs.items()}


def both_have_flair(wildcards):
    return all(s.flair is not None for s in pair_for(wildcards))


def activity_inputs(wildcards):
    """Lesion labels and tables, tissue labels and, when both sessions have them, normalised FLAIRs and MTR
    maps of a pair, with its halfway transform and grid."""
    keys = {key: layout.SESSION_METRICS[key] for key in ("labels", "lesions")} | {"dseg": layout.STRUCTURAL["dseg"]}
    if both_have_flair(wildcards):
        keys["flair"] = layout.FLAIR_NORM["flair"]
    if all(s.mt_on is not None and s.mt_off is not None for s in pair_for(wildcards)):
        keys["mtr"] = layout.MTR["mtr_t1w"]
    return {**pair_halfway(wildcards), **pair_session_outputs(wildcards, keys)}


def subject_sessions(wildcards):
    """The lesion tables of a subject's sessions, in time order."""
    return [out(layout.SESSION_METRICS["lesions"].format(**layout.session_wildcards(s)))
            for s in subject_for(wildcards).sessions]  # fmt: skip


def subject_consecutive_changes(wildcards):
    """The lesion changes of a subject's consecutive session pairs, in time order."""
    sessions = subject_for(wildcards).sessions
    return [out(layout.LESION_ACTIVITY["changes"].format(**layout.pair_wildcards(a, b)))
            for a, b in zip(sessions, sessions[1:])]  # fmt: skip


def session_days(wildcards):
    """Each session's day since the subject's first session (None without acq_time)."""
    sessions = subject_for(wildcards).sessions
    first = sessions[0].acq_time
    return [None if s.acq_time is None or first is None else (s.acq_time - first).total_seconds() / 86400.0
            for s in sessions]  # fmt: skip


def subject_of_session(wildcards):
    """The lesion tracking table of the subject a session belongs to."""
    session = session_for(wildcards)
    return out(layout.LESION_TRACKING["lesions"].format(subject=session.participant_id))


def session_t1w_maps(session):
    """Patterns of the T1w-space maps a session has: FA and MD, MTR, R2*, and the FLAIR registered to the T1w."""
    maps = {}
    if session.dwi is not None:
        maps |= {name: layout.DTI_T1W[name] for name in ("fa", "md")}
    if session.mt_on is not None and session.mt_off is not None:
        maps["mtr"] = layout.MTR["mtr_t1w"]
    if session.megre:
        maps["r2star"] = layout.R2STAR["r2star_t1w"]
    if session.flair is not None:
        maps["flair"] = layout.FLAIR_TO_T1W["flair"]
    return maps


def pair_halfway(wildcards):
    """The pair's halfway transform and grid (the earlier session's halfway T1w)."""
    return {"transform": out(layout.HALFWAY["transform"]), "grid": out(layout.HALFWAY["image_from"])}


def pair_session_outputs(wildcards, keys):
    """Session outputs (``keys``: name -> pattern) of both sessions of a pair, as ``from_<name>`` / ``to_<name>``."""
    inputs = {}
    for side, session in zip(("from", "to"), pair_for(wildcards)):
        paths = layout.session_wildcards(session)
        inputs.update({f"{side}_{name}": out(pattern.format(**paths)) for name, pattern in keys.items()})
    return inputs


GROUP_TABLES = {
    "sessions": layout.SESSIONS_TABLE, "volumes": layout.BRAIN_VOLUMES_TABLE, "pbvc": layout.PBVC_TABLE,
    "regional": layout.REGIONAL_METRICS_TABLE, "lesions": layout.LESIONS_TABLE, "counts": layout.LESION_COUNTS_TABLE,
    "activity": layout.LESION_ACTIVITY_TABLE, "flags": layout.MONITORING_TABLE, "compliance": layout.PROTOCOL_TABLE,
}  # fmt: skip


def group_tables():
    """The group tables the reports read, by name (see msqmri.qc.report.TABLE_NAMES)."""
    return {name: out(path) for name, path in GROUP_TABLES.items()}


def protocol_acquisitions():
    """The structural acquisitions (T1w, FLAIR) of every session with their JSON sidecars (None when absent)."""
    records = []
    for session in DATASET.sessions():
        for modality, image in (("T1w", session.t1w), ("FLAIR", session.flair)):
            if image is not None:
                sidecar = session.sidecar(image)
                records.append({**session_ids(session), "modality": modality, "image": str(image),
                                "sidecar": str(sidecar) if sidecar is not None else None})  # fmt: skip
    return records


def subject_for(wildcards):
    """The :class:`msqmri.inputs.bids.Subject` a per-subject job's wildcards refer to."""
    for subject in DATASET.subjects:
        if subject.participant_id == wildcards.subject:
            return subject
    raise WorkflowError(f"msqmri: no usable subject {wildcards.subject} in {config['bids_dir']}")


def subject_report_files(wildcards):
    """(sessions, pairs) of a subject's report: the label and the files (T1w space, or the pair's halfway
    space) of each session and session pair, by key."""
    subject = subject_for(wildcards)
    sessions, pairs = [], []
    for session in subject.sessions:
        files = {"t1w": layout.STRUCTURAL["preproc"], "brain_mask": layout.STRUCTURAL["brain_mask"],
                 "dseg": layout.STRUCTURAL["dseg"], "lesions": layout.LESION_IDS,
                 "from_template": layout.STRUCTURAL["from_template"], **session_t1w_maps(session)}  # fmt: skip
        paths = layout.session_wildcards(session)
        sessions.append((session.label, {key: out(p.format(**paths)) for key, p in files.items()}))
    for first, second in session_pairs(subject.sessions):
        files = {key: layout.HALFWAY[key] for key in ("image_from", "image_to", "brain_from", "brain_to")}
        files["status"] = layout.LESION_ACTIVITY["status"]
        if "siena" in PBVC_METHODS:
            files["flow"] = layout.PBVC["siena"]["flow"]
        if first.flair is not None and second.flair is not None:
            files["subtraction"] = layout.FLAIR_SUBTRACTION
        paths = layout.pair_wildcards(first, second)
        pairs.append((f"{first.label} -> {second.session_id}", {key: out(p.format(**paths)) for key, p in files.items()}))
    return sessions, pairs


def subject_report_inputs(wildcards):
    """Every file a subject's report reads: its images, the group tables and its longitudinal plot."""
    sessions, pairs = subject_report_files(wildcards)
    images = [path for _, files in [*sessions, *pairs] for path in files.values()]
    return images + list(group_tables().values()) + [out(layout.LONGITUDINAL_PLOT)]
