"""Snakemake adapter (rule flair_subtraction): intensity-normalised FLAIR subtraction of a session pair."""

from msqmri.workflow.adapter import report_errors
from msqmri.lesions.stage import flair_subtraction

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    flair_subtraction(dict(snakemake.input.items()), snakemake.output[0])
