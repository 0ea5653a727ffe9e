"""Snakemake adapter (rule dataset_description): BIDS-Derivatives dataset_description.json."""

from msqmri.adapter import report_errors
from msqmri.derivatives import dataset_description
from msqmri.io import save_json

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_json(dataset_description(snakemake.params.bids_dir), snakemake.output[0])
