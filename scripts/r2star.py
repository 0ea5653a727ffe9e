"""Snakemake adapter (rule r2star): R2*, T2*, S0 and fit residual maps from the echoes; R2* in T1w space."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.qmri.stage import r2star  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    inputs = {key: snakemake.input[key] for key in ("t1w", "t1w_mask")}
    r2star(
        inputs, list(snakemake.input.echoes), dict(snakemake.output.items()), method=snakemake.params.method,
        floor_snr=snakemake.params.floor_snr, seed=snakemake.params.seed, threads=snakemake.threads,
    )  # fmt: skip
