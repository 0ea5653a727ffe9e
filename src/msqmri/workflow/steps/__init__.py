"""Every step of the workflow, declared once (:class:`msqmri.workflow.step.Step`), by topic: input checks
(:mod:`~.inputs`), structural preprocessing (:mod:`~.anat`), brain volume change (:mod:`~.atrophy`),
diffusion (:mod:`~.dwi`), MTR and R2* (:mod:`~.qmri`), lesions (:mod:`~.lesions`), cohort tables
(:mod:`~.cohort`) and QC reports (:mod:`~.qc`). Adding a step is adding its declaration to a topic's
``STEPS``: the Snakemake rule, its script and its nipype interface follow."""

from __future__ import annotations

from msqmri.workflow.step import Step
from msqmri.workflow.steps import anat, atrophy, cohort, dwi, inputs, lesions, qc, qmri

#: every step by name (its rule's name), in workflow order
STEPS: dict[str, Step] = {
    step.name: step for topic in (inputs, anat, atrophy, dwi, qmri, lesions, cohort, qc) for step in topic.STEPS
}
