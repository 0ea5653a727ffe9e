"""Snakemake adapter (rule mtr): MT-on -> MT-off registration and the MTR map, native and in T1w space."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.quantitative import mtr  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    mtr(dict(snakemake.input.items()), dict(snakemake.output.items()), seed=snakemake.params.seed)
