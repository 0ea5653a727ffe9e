"""Snakemake adapter (rule lesion_mask): the session's lesion mask on the T1w grid."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.lesions.stage import lesion_mask  # noqa: E402  (after the thread setting)

with report_errors(snakemake):
    lesion_mask(dict(snakemake.input.items()), dict(snakemake.output.items()), snakemake.params.min_size_mm3)
