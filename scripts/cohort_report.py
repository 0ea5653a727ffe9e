"""Snakemake adapter (rule cohort_report): the cohort's HTML QC report."""

from msqmri.workflow.adapter import report_errors
from msqmri.qc.report import write_cohort_report

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    write_cohort_report(dict(snakemake.input.items()), snakemake.output[0])
