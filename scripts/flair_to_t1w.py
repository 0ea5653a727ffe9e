"""Snakemake adapter (rule flair_to_t1w): rigid FLAIR -> T1w registration and the resampled FLAIR."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.core.registration import register_to_t1w  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    register_to_t1w(
        snakemake.input.flair, snakemake.input.t1w, snakemake.output.transform, snakemake.output.flair,
        seed=snakemake.params.seed,
    )  # fmt: skip
