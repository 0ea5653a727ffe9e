"""Snakemake adapter (rules regional_metrics_table, lesions_table): per-session TSVs stacked into a group table."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.tables import concatenate

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_tsv(concatenate(snakemake.input), snakemake.output[0])
