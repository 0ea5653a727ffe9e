"""Synthetic longitudinal MS cohort with known ground truth (see :mod:`msqmri.phantom.cohort`)."""

from msqmri.phantom.cohort import CohortSpec, generate_cohort

#: the cohort ``msqmri demo`` runs on: 2 subjects x 2 sessions at 2 mm (DWI 2.5 mm), its anatomy on a 2 mm grid
#: (fast to build; volume truth to about 0.03 %, against 0.01 % on the default 1-1.5 mm grid), every modality with
#: a post-contrast T1w, and a clinical history (a treatment started after the baseline scan, relapses, EDSS)
DEMO = CohortSpec(
    n_subjects=2,
    n_sessions=2,
    resolution=2.0,
    truth_step=2.0,
    dwi_voxel=2.5,
    modalities=("T1w", "FLAIR", "MTR", "MEGRE", "dwi", "T1w_ce"),
    clinical=True,
)

__all__ = ["DEMO", "CohortSpec", "generate_cohort"]
