"""Snakemake adapter (rule protocol_compliance): group/protocol_compliance.tsv from the structural sidecars."""

from msqmri.workflow.adapter import report_errors
from msqmri.core.io import save_tsv
from msqmri.cohort.protocol import compliance_from_files

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    save_tsv(compliance_from_files(snakemake.params.acquisitions), snakemake.output[0])
