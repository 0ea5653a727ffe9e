"""Snakemake adapter (rule lesion_activity): new, enlarging, shrinking, resolved, stable lesions of a pair."""

from msqmri.workflow.adapter import report_errors
from msqmri.lesions.stage import lesion_activity

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    lesion_activity(
        dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.ids,
        enlarging=snakemake.params.enlarging, min_size_mm3=snakemake.params.min_size_mm3,
    )  # fmt: skip
