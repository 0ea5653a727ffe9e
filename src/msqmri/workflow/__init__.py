"""The Python side of the Snakemake workflow: output paths (:mod:`~msqmri.workflow.layout`), running a step from a
rule (:mod:`~msqmri.workflow.adapter`) and the derivative dataset's description
(:mod:`~msqmri.workflow.derivatives`)."""
