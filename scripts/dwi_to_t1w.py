"""Snakemake adapter (rule dwi_to_t1w): mean b=0 -> T1w registration."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.dwi.stage import register_b0_to_t1w  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    register_b0_to_t1w(
        dict(snakemake.input.items()), snakemake.output.transform, kind=snakemake.params.kind,
        seed=snakemake.params.seed,
    )  # fmt: skip
