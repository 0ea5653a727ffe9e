"""Snakemake adapter (rule lesion_tracking): a subject's lesions with persistent identities, and its counts."""

from msqmri.workflow.adapter import report_errors
from msqmri.lesions.stage import lesion_tracking

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    lesion_tracking(
        list(zip(snakemake.params.session_ids, snakemake.input.sessions)), list(snakemake.input.pairs),
        dict(snakemake.output.items()), snakemake.wildcards.subject, snakemake.params.days,
    )  # fmt: skip
