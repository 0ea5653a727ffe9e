"""Snakemake adapter (rule check_inputs): validate every input image of one session."""

from msqmri.workflow.adapter import report_errors
from msqmri.inputs.checks import check_session
from msqmri.core.io import save_json

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_json(check_session(snakemake.params.session), snakemake.output[0])
