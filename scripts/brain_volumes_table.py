"""Snakemake adapter (rule brain_volumes_table): group/brain_volumes.tsv, one row per subject-session."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.tables import brain_volumes_table

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_tsv(brain_volumes_table(snakemake.input), snakemake.output[0])
