"""Snakemake adapter (rule longitudinal_plot): one subject's longitudinal plot from the group tables."""

from msqmri.workflow.adapter import report_errors
from msqmri.qc.report import write_longitudinal_plot

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    write_longitudinal_plot(snakemake.wildcards.subject, dict(snakemake.input.items()), snakemake.output[0])
