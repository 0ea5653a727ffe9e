"""Snakemake adapter (rule dwi_preproc): denoising, motion correction with b-vector rotation, b=0 mask."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.diffusion import preprocess  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    preprocess(
        dict(snakemake.input.items()), dict(snakemake.output.items()), denoise=snakemake.params.denoise,
        motion_correction=snakemake.params.motion_correction,
    )  # fmt: skip
