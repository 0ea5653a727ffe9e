# The run: the discovered BIDS dataset, the settings and the output paths every rule uses.

import os
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from msqmri.core.io import MsqmriError
from msqmri.inputs.bids import Dataset, discover
from msqmri.workflow import layout
from msqmri.workflow.jobs import Run

# Without bids_dir/output_dir the workflow still parses (for --lint, --list-rules); requesting
# any target then fails with MISSING_CONFIG.
MISSING_CONFIG = (
    "msqmri: error: set bids_dir and output_dir, e.g. "
    "snakemake --cores 1 --config bids_dir=path/to/bids output_dir=path/to/derivatives"
)
CONFIGURED = bool(config["bids_dir"] and config["output_dir"])
LABELS = config["participant_label"]
try:
    DATASET = (
        discover(
            config["bids_dir"],
            [LABELS] if isinstance(LABELS, str) else LABELS,
            config.get("inputs") or {},
            config["rebaseline_months"],
        )
        if CONFIGURED
        else Dataset(Path("."), ())
    )
except MsqmriError as exc:
    raise WorkflowError(f"msqmri: error: {exc}") from None
for unusable in DATASET.unusable:
    logger.warning(f"msqmri: warning: {unusable}")
for warning in DATASET.warnings:
    logger.warning(f"msqmri: warning: {warning}")

RUN = Run(DATASET, config, os.path.normpath(config["output_dir"]) if CONFIGURED else "")
with open(os.path.join(workflow.basedir, "workflow", "resources.yaml")) as measured_file:
    MEASURED = yaml.safe_load(measured_file)["rules"]


wildcard_constraints:
    sesdir=layout.SESDIR_REGEX,
    stem=layout.STEM_REGEX,
    subject=layout.SUBJECT_REGEX,
    pair=layout.PAIR_REGEX,


def stage_outputs(stage):
    """Every output of a stage ("participant" or "group")."""
    if not CONFIGURED:
        raise WorkflowError(MISSING_CONFIG)
    return [RUN.out(path) for path in layout.stage_targets(stage, DATASET, RUN.pbvc_methods)]
