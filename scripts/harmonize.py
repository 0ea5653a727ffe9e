"""Snakemake adapter (rule harmonize): ComBat-harmonised regional metrics and the saved model."""

from msqmri.adapter import report_errors
from msqmri.harmonize import harmonize_files

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    harmonize_files(snakemake.input.regional, snakemake.input.sessions, snakemake.params.covariates,
                    snakemake.output.table, snakemake.output.model)  # fmt: skip
