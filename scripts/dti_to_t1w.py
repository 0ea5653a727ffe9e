"""Snakemake adapter (rule dti_to_t1w): tensor maps resampled to T1w space."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.dwi.stage import to_t1w  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    to_t1w(dict(snakemake.input.items()), dict(snakemake.output.items()))
