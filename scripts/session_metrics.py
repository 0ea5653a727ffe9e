"""Snakemake adapter (rule session_metrics): lesion labels, regional and per-lesion metrics of a session."""

from msqmri.workflow.adapter import report_errors
from msqmri.lesions.stage import session_metrics

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    session_metrics(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.ids)
