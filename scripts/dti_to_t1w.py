"""Snakemake adapter (rule dti_to_t1w): tensor maps resampled to T1w space."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.diffusion import to_t1w  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    to_t1w(dict(snakemake.input.items()), dict(snakemake.output.items()))
