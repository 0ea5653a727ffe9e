"""Snakemake adapter (rule halfway): skull-constrained registration of a session pair, halfway images."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.workflow.adapter import pair_inputs  # noqa: E402  (after the thread setting, which ITK reads at import)
from msqmri.atrophy.stage import run_halfway  # noqa: E402

with report_errors(snakemake):
    paths_from, paths_to = pair_inputs(snakemake.input)
    outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
    run_halfway(paths_from, paths_to, outputs, seed=snakemake.params.seed)
