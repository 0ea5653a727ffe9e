"""Snakemake adapter (rule sessions_table): group/sessions.tsv, one row per subject-session."""

from msqmri.adapter import report_errors
from msqmri.io import save_tsv
from msqmri.tables import sessions_table_from_reports

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    table = sessions_table_from_reports(
        snakemake.input.checks, snakemake.input.summaries, snakemake.params.demographics
    )
    save_tsv(table, snakemake.output[0])
