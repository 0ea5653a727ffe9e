"""Lesion activity of a pair by comparing its two lesion maps, the per-lesion MTR change, and counts.

Without a FLAIR in both sessions (user masks only) there is no subtraction image to read activity from
(:mod:`msqmri.lesions.longitudinal`); the two lesion maps are then compared by overlap: lesions that
overlap, directly or through a chain of overlaps, form one cluster (so merging and splitting lesions are
counted once). A cluster is *new* when it has no earlier lesion, *resolved* when it has no later one,
*enlarging* when its volume grew by more than the threshold (50 % by default, the usual MAGNIMS-trial
definition), *shrinking* when it lost as much in the other direction (V_to < V_from / 1.5), else
*stable*.

Voxel-wise MTR change inside lesions (Chen et al., Brain 2008; Brown et al., Brain 2014): the threshold
is set from scan-rescan variability in normal-appearing WM (1.96 robust SD of the NAWM MTR change), and
per lesion the fractions of voxels beyond it (decrease: demyelination; increase: remyelination).
"""

from __future__ import annotations

import numpy as np

from msqmri.lesions.components import robust_stats
from msqmri.lesions.longitudinal import ENLARGING, STATUSES, Change

#: z of the NAWM scan-rescan spread that makes a voxel's MTR change significant
MTR_CHANGE_Z = 1.96


def match(
    labels_from: np.ndarray, labels_to: np.ndarray, voxel_ml: float, enlarging: float = ENLARGING
) -> tuple[list[Change], np.ndarray]:
    """Clusters of overlapping lesions of two label maps on one grid, classified, and their voxels
    (cluster ids)."""
    n_from, n_to = int(labels_from.max(initial=0)), int(labels_to.max(initial=0))
    parent = list(range(n_from + n_to + 1))  # union-find; node 1..n_from earlier, n_from+1.. later

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    both = (labels_from > 0) & (labels_to > 0)
    for a, b in np.unique(np.stack([labels_from[both], labels_to[both]], axis=1), axis=0):
        parent[find(int(a))] = find(n_from + int(b))
    volume_from = np.bincount(labels_from.reshape(-1), minlength=n_from + 1) * voxel_ml
    volume_to = np.bincount(labels_to.reshape(-1), minlength=n_to + 1) * voxel_ml
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for a in range(1, n_from + 1):
        groups.setdefault(find(a), ([], []))[0].append(a)
    for b in range(1, n_to + 1):
        groups.setdefault(find(n_from + b), ([], []))[1].append(b)
    changes = []
    core = np.zeros(labels_from.shape, dtype=np.int32)
    for k, (a_ids, b_ids) in enumerate(sorted(groups.values(), key=lambda g: (g[1] or [0], g[0] or [0])), start=1):
        v_from, v_to = float(volume_from[a_ids].sum()), float(volume_to[b_ids].sum())
        changes.append(Change(k, classify(v_from, v_to, enlarging), tuple(a_ids), tuple(b_ids), v_from, v_to, 0.0))
        core[np.isin(labels_from, a_ids) | np.isin(labels_to, b_ids)] = k
    return changes, core


def classify(volume_from: float, volume_to: float, enlarging: float = ENLARGING) -> str:
    """The status of a cluster of overlapping lesions from its volumes in both sessions."""
    if volume_from == 0:
        return "new"
    if volume_to == 0:
        return "resolved"
    if volume_to > (1 + enlarging) * volume_from:
        return "enlarging"
    if volume_to < volume_from / (1 + enlarging):
        return "shrinking"
    return "stable"


def counts(changes: list[Change]) -> dict[str, float | int]:
    """Cluster counts per status (``n_<status>``) and the volume of the new lesions (ml)."""
    out: dict[str, float | int] = {f"n_{s}": sum(c.status == s for c in changes) for s in STATUSES}
    out["new_volume_ml"] = sum(c.volume_to_ml for c in changes if c.status == "new")
    return out


def mtr_change_threshold(change: np.ndarray, nawm: np.ndarray) -> float | None:
    """|MTR change| (pu) beyond scan-rescan variability: 1.96 robust SD of the change in NAWM."""
    values = change[nawm]
    if values.size < 50:
        return None
    return MTR_CHANGE_Z * robust_stats(values)[1]


def mtr_change_fractions(change: np.ndarray, voxels: np.ndarray, threshold: float) -> tuple[float, float]:
    """Fractions of ``voxels`` whose MTR fell, and rose, by more than ``threshold``."""
    values = change[voxels]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(values < -threshold)), float(np.mean(values > threshold))
