"""Snakemake adapter (rule siena): PBVC by edge displacement, flow map and per-pair JSON."""

from msqmri.workflow.adapter import pair_inputs, report_errors
from msqmri.atrophy.stage import run_siena

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with report_errors(snakemake):
    paths_from, paths_to = pair_inputs(snakemake.input)
    outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
    run_siena(paths_from, paths_to, snakemake.input.transform, outputs, snakemake.params.ids)
