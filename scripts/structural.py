"""Snakemake adapter (rule structural): N4, brain extraction, segmentation, MNI registration, volumes."""

import os

from msqmri.adapter import report_errors

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
# ANTs/ITK threads from the config (1: the same numbers on every run), set before ants is imported
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])

from msqmri.structural import run  # noqa: E402  (after the thread setting, which ITK reads at import)

with report_errors(snakemake):
    outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
    run(
        snakemake.input.t1w, snakemake.input.get("lesion"), outputs, snakemake.params.ids,
        seed=snakemake.params.seed, backend=snakemake.params.backend,
        lesion_transform=snakemake.input.get("lesion_transform"),
    )  # fmt: skip
