"""Snakemake adapter (rule dwi_to_t1w): mean b=0 -> T1w registration."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.diffusion import register_b0_to_t1w  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    register_b0_to_t1w(
        dict(snakemake.input.items()), snakemake.output.transform, kind=snakemake.params.kind,
        seed=snakemake.params.seed,
    )  # fmt: skip
