"""Scoring pipeline outputs against the phantom's ground truth (shared by tests and benchmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from msqmri import lesion_activity, lesions

#: the statuses whose detection is scored (the MAGNIMS activity markers)
ACTIVE = ("new", "enlarging")


def activity_detection(status: np.ndarray, true_labels: np.ndarray, volumes: pd.DataFrame, session_from: str,
                       session_to: str) -> tuple[int, int, int]:  # fmt: skip
    """New and enlarging lesions of a pair found with their status, those missed, and the false new or
    enlarging components of the status map (:func:`msqmri.lesion_activity.status_map`).

    ``true_labels`` are the phantom's lesion ids of the later session on the status map's grid;
    ``volumes`` the true lesion volumes, one row per lesion id and one column per session id.
    """
    found = missed = 0
    active_truth = np.zeros(status.shape, dtype=bool)
    for lesion_id, row in volumes.iterrows():
        expected = lesion_activity.classify(row[session_from], row[session_to])
        voxels = true_labels == lesion_id
        if expected in ACTIVE and voxels.any():
            active_truth |= voxels
            hit = bool(np.any(status[voxels] == 1 + lesion_activity.STATUSES.index(expected)))
            found, missed = found + hit, missed + (not hit)
    codes = [1 + lesion_activity.STATUSES.index(s) for s in ACTIVE]
    active, n_active = lesions.label_lesions(np.isin(status, codes))
    false_positive = sum(not active_truth[active == k].any() for k in range(1, n_active + 1))
    return found, missed, false_positive
