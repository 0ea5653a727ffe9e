"""Snakemake adapter (rule dataset_description): BIDS-Derivatives dataset_description.json."""

from msqmri.workflow.adapter import report_errors
from msqmri.workflow.derivatives import dataset_description
from msqmri.core.io import save_json

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_json(dataset_description(snakemake.params.bids_dir), snakemake.output[0])
