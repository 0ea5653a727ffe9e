"""Snakemake adapter (rule pbvc_table): group/pbvc.tsv, one row per subject, session pair and method."""

from msqmri.adapter import report_errors
from msqmri.io import save_tsv
from msqmri.tables import pbvc_table

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_tsv(pbvc_table(snakemake.input), snakemake.output[0])
