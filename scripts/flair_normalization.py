"""Snakemake adapter (rule flair_normalization): the FLAIR after N4, divided by its local NAWM level."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.lesions.stage import flair_normalization  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    flair_normalization(dict(snakemake.input.items()), dict(snakemake.output.items()))
