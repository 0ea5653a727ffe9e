"""Inputs and parameters several topics' steps share."""

from __future__ import annotations

from msqmri.workflow.jobs import Job
from msqmri.workflow.step import Input, Param

SEED = Param("seed of the randomised steps (ANTs sampling)", 1, config="seed")
SESSION_IDS = Param("BIDS ids of the session (table rows)", job=lambda job: job.ids)
PAIR_IDS = Param(
    "BIDS ids of the pair and its interval in days (table rows, annualised rates)", job=lambda job: job.ids
)
T1W = Input("bias-corrected T1w (Structural.preproc)")
T1W_MASK = Input("T1w brain mask (Structural.brain_mask)")
TABLES = Input("the tables to concatenate, one per session, pair or subject", many=True)


def session_files(job: Job) -> list[str]:
    """Every raw input file of the job's session, so that changing one reruns its jobs."""
    return [str(path) for path in job.session.files()]
