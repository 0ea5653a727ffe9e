"""White-matter lesions: segmentation from FLAIR and T1w, location classes and black holes, activity
between sessions from the subtraction image, persistent identities across a subject's sessions.

One module per algorithm (:mod:`~msqmri.lesions.components`, :mod:`~msqmri.lesions.normalization`,
:mod:`~msqmri.lesions.segmentation`, :mod:`~msqmri.lesions.location`, :mod:`~msqmri.lesions.longitudinal`,
:mod:`~msqmri.lesions.activity`, :mod:`~msqmri.lesions.tracking`), pure functions over arrays; the
workflow's steps, with their file I/O, are in :mod:`~msqmri.lesions.stage`.
"""
