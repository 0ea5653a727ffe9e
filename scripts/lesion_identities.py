"""Snakemake adapter (rule lesion_identities): a session's lesions labelled by persistent identity."""

from msqmri.workflow.adapter import report_errors
from msqmri.lesions.stage import lesion_identities

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    lesion_identities(snakemake.input.labels, snakemake.input.tracking, snakemake.params.session_id, snakemake.output[0])
