"""Shared primitives, each in one place: validated NIfTI I/O and atomic writes (:mod:`~msqmri.core.io`), ANTs
registration and resampling helpers (:mod:`~msqmri.core.registration`), morphology (:mod:`~msqmri.core.morphology`)
and intensity levels (:mod:`~msqmri.core.intensity`)."""
