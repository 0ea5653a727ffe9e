"""Snakemake adapter (rule dwi_preproc): denoising, motion correction with b-vector rotation, b=0 mask."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.dwi.stage import preprocess  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    preprocess(
        dict(snakemake.input.items()), dict(snakemake.output.items()), denoise=snakemake.params.denoise,
        motion_correction=snakemake.params.motion_correction,
    )  # fmt: skip
