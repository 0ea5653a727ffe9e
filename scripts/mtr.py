"""Snakemake adapter (rule mtr): MT-on -> MT-off registration and the MTR map, native and in T1w space."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.qmri.stage import mtr  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    mtr(dict(snakemake.input.items()), dict(snakemake.output.items()), seed=snakemake.params.seed)
