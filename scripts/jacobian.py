"""Snakemake adapter (rule jacobian): PBVC by SyN Jacobian integration on the halfway images."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.atrophy.pbvc import run_jacobian  # noqa: E402  (after the thread setting, which ITK reads at import)

with report_errors(snakemake):
    halfway = {key: snakemake.input[key] for key in snakemake.input.keys()}
    outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
    run_jacobian(halfway, outputs, snakemake.params.ids, seed=snakemake.params.seed)
