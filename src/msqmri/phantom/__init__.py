"""Synthetic longitudinal MS cohort with known ground truth (see :mod:`msqmri.phantom.cohort`)."""

from msqmri.phantom.cohort import CohortSpec, generate_cohort

__all__ = ["CohortSpec", "generate_cohort"]
