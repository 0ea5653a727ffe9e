"""Snakemake adapter (rule t1w_summary): geometry, intensities and foreground volume of a T1w."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_json
from msqmri.qc.summary import summarize_t1w

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_json(summarize_t1w(snakemake.input.t1w), snakemake.output[0])
