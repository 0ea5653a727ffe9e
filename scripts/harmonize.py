"""Snakemake adapter (rule harmonize): ComBat-harmonised regional metrics and the saved model."""

from msqmri.workflow.adapter import report_errors
from msqmri.cohort.harmonize import harmonize_files

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    harmonize_files(snakemake.input.regional, snakemake.input.sessions, snakemake.params.covariates,
                    snakemake.output.table, snakemake.output.model)  # fmt: skip
