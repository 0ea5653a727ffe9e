"""Snakemake adapter (rule jacobian): PBVC by SyN Jacobian integration on the halfway images."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.atrophy.stage import run_jacobian  # noqa: E402  (after the thread setting, which ITK reads at import)

with report_errors(snakemake):
    halfway = {key: snakemake.input[key] for key in snakemake.input.keys()}
    outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
    run_jacobian(halfway, outputs, snakemake.params.ids, seed=snakemake.params.seed)
