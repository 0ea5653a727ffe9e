"""Snakemake adapter (rule lesion_mask): the session's lesion mask on the T1w grid."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.metrics import lesion_mask  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    lesion_mask(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.min_size_mm3)
