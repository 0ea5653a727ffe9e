"""Snakemake adapter (rule dti): tensor fit and FA, MD, AD, RD, V1 and colour FA maps in DWI space."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.dwi.stage import fit  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    fit(
        dict(snakemake.input.items()), dict(snakemake.output.items()), method=snakemake.params.method,
        mask=snakemake.params.mask, threads=snakemake.threads, max_b=snakemake.params.max_b,
    )  # fmt: skip
