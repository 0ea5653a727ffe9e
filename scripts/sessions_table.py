"""Snakemake adapter (rule sessions_table): group/sessions.tsv, one row per subject-session."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.tables import sessions_table_from_reports

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    table = sessions_table_from_reports(
        snakemake.input.checks, snakemake.input.summaries, snakemake.params.demographics
    )
    save_tsv(table, snakemake.output[0])
