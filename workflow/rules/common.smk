# Shared state and helpers: the discovered BIDS dataset, output paths and input functions.

import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from msqmri import layout
from msqmri.bids import Dataset, discover
from msqmri.io import MsqmriError

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
        discover(config["bids_dir"], [LABELS] if isinstance(LABELS, str) else LABELS)
        if CONFIGURED
        else Dataset(Path("."), ())
    )
except MsqmriError as exc:
    raise WorkflowError(f"msqmri: error: {exc}") from None
for unusable in DATASET.unusable:
    logger.warning(f"msqmri: warning: {unusable}")

SESSIONS = {tuple(layout.session_wildcards(s).values()): s for s in DATASET.sessions()}


wildcard_constraints:
    sesdir=layout.SESDIR_REGEX,
    stem=layout.STEM_REGEX,


def out(pattern):
    """A path under OUTPUT_DIR."""
    return os.path.join(OUTPUT_DIR, pattern)


def session_log(rule_name):
    """The log of one session's job of a rule."""
    return out(f"logs/{rule_name}/{{sesdir}}/{{stem}}.log")


def stage_outputs(stage):
    """Every output of a stage ("participant" or "group")."""
    if not CONFIGURED:
        raise WorkflowError(MISSING_CONFIG)
    return [out(path) for path in layout.stage_targets(stage, DATASET)]


def all_sessions(pattern):
    """``pattern`` filled in for every usable session."""
    return [out(path) for session in DATASET.sessions() for path in layout.session_paths(session, (pattern,))]


def session_for(wildcards):
    """The :class:`msqmri.bids.Session` a job's wildcards refer to."""
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
    """The T1w of a session and its lesion mask, if any: in T1w space, else in FLAIR space with
    the FLAIR -> T1w transform."""
    session = session_for(wildcards)
    inputs = {"t1w": str(session.t1w)}
    if session.lesion_mask_t1w is not None:
        inputs["lesion"] = str(session.lesion_mask_t1w)
    elif session.lesion_mask_flair is not None and session.flair is not None:
        inputs["lesion"] = str(session.lesion_mask_flair)
        inputs["lesion_transform"] = out(layout.FLAIR_TO_T1W["transform"].format(**wildcards))
    return inputs


def session_ids(session):
    """BIDS participant and session ids of a session, for table rows."""
    return {"participant_id": session.participant_id, "session_id": session.session_id}
