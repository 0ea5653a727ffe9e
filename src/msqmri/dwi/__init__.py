"""Diffusion: gradient tables and DWI preprocessing (:mod:`~msqmri.dwi.preprocessing`), the diffusion tensor
(:mod:`~msqmri.dwi.tensor`); the steps' I/O in :mod:`~msqmri.dwi.stage`."""
