"""Snakemake adapter (rule structural): N4, brain extraction, segmentation, MNI registration, volumes."""

from msqmri.workflow.adapter import report_errors, set_itk_threads

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
set_itk_threads(snakemake)

from msqmri.anat.stage import run  # noqa: E402  (after the thread setting, which ITK reads at import)

with report_errors(snakemake):
    outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
    run(
        snakemake.input.t1w, snakemake.input.get("lesion"), outputs, snakemake.params.ids,
        seed=snakemake.params.seed, backend=snakemake.params.backend,
        lesion_transform=snakemake.input.get("lesion_transform"), inv2_path=snakemake.input.get("inv2"),
    )  # fmt: skip
