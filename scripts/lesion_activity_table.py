"""Snakemake adapter (rule lesion_activity_table): group/lesion_activity.tsv, one row per subject and session pair."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.tables import lesion_activity_table

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_tsv(lesion_activity_table(snakemake.input), snakemake.output[0])
