"""Snakemake adapter (rule monitoring_flags): group/monitoring_flags.tsv, MAGNIMS flags per session pair."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.monitoring import flags_from_files

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    i = snakemake.input
    save_tsv(flags_from_files(i.pbvc, i.activity, i.sessions, i.compliance), snakemake.output[0])
