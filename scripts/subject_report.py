"""Snakemake adapter (rule subject_report): the self-contained HTML QC report of one subject."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.qc.report import write_subject_report  # noqa: E402 - ITK reads its thread setting at import

with report_errors(snakemake):
    sessions, pairs = snakemake.params.files
    p = snakemake.params
    write_subject_report(snakemake.wildcards.subject, sessions, pairs, p.tables, p.plot, snakemake.output[0])
