"""Snakemake adapter (rule t1w_summary): geometry, intensities and foreground volume of a T1w."""

from msqmri.adapter import report_errors
from msqmri.io import save_json
from msqmri.summary import summarize_t1w

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_json(summarize_t1w(snakemake.input.t1w), snakemake.output[0])
