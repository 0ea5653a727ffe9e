"""Snakemake adapter (rule subject_report): the self-contained HTML QC report of one subject."""

from msqmri.adapter import report_errors
from msqmri.report import write_subject_report

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    sessions, pairs = snakemake.params.files
    p = snakemake.params
    write_subject_report(snakemake.wildcards.subject, sessions, pairs, p.tables, p.plot, snakemake.output[0])
