"""Structural preprocessing of a T1w: N4 bias correction, brain extraction, tissue segmentation, the skull and
intracranial estimate, the MNI template and its registration, MP2RAGE background removal; the step's I/O in
:mod:`~msqmri.anat.stage`."""
