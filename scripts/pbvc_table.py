"""Snakemake adapter (rule pbvc_table): group/pbvc.tsv, one row per subject, session pair and method."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.tables import pbvc_table

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_tsv(pbvc_table(snakemake.input), snakemake.output[0])
