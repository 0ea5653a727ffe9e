"""White-matter lesions of one session on the T1w grid: a built-in FLAIR hyperintensity segmentation,
connected components and per-lesion measures.

Segmentation (when no lesion mask is given): FLAIR hyperintense outliers against the normal-appearing
white matter inside a WM prior, in the spirit of lesion-growth and outlier methods (Schmidt et al.
2012, LST; Garcia-Lorenzo et al. 2013 review). The FLAIR is compared with robust (median, MAD)
statistics of WM and of cortical GM; a voxel is a candidate when it is brighter than both by the
configured numbers of robust SDs; the lesion boundary is then set half-way from the NAWM median to
the lesions' intensity (75th percentile of the candidates; the 50 % partial-volume level), and every connected region above
it inside the WM prior that holds a candidate is kept. Components under the minimum size are dropped.

Lesions are the 26-connected components of the mask (the convention of lesion counting in MS trials).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: 26-connectivity
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
#: default smallest lesion, mm^3 (3 voxels at 1 mm)
MIN_SIZE_MM3 = 3.0
#: robust SDs above the NAWM and above cortical GM that make a FLAIR voxel a lesion candidate
K_WM, K_GM = 4.0, 2.0
_MAD_TO_SD = 1.4826
#: the lesions' own FLAIR level: this percentile of the candidates (their median is lowered by partial volume)
LESION_LEVEL_PERCENTILE = 75.0


@dataclass(frozen=True)
class Segmentation:
    """A lesion mask and the intensities that defined it (FLAIR units)."""

    mask: np.ndarray
    nawm_median: float
    nawm_sd: float
    candidate_threshold: float
    boundary_threshold: float


def robust_stats(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based SD."""
    median = float(np.median(values))
    return median, _MAD_TO_SD * float(np.median(np.abs(values - median)))


def segment_flair(flair: np.ndarray, brain: np.ndarray, wm_prior: np.ndarray, gm: np.ndarray,
                  voxel_mm3: float, min_size_mm3: float = MIN_SIZE_MM3, k_wm: float = K_WM,
                  k_gm: float = K_GM) -> Segmentation:  # fmt: skip
    """FLAIR hyperintensities inside the WM prior (``wm_prior`` >= 0.5) of the ``brain``.

    ``gm`` is the GM fraction of the session's segmentation; voxels with GM >= 0.9 outside the WM
    prior give the cortical reference, WM prior >= 0.9 the NAWM reference (robust to the lesions in it).
    """
    flair = np.asarray(flair, dtype=np.float64)
    brain = np.asarray(brain, dtype=bool)
    wm_region = brain & (wm_prior >= 0.5)
    nawm_ref = brain & (wm_prior >= 0.9)
    cortex_ref = brain & (gm >= 0.9) & ~wm_region
    if not nawm_ref.any():
        raise ValueError("no white matter to take the NAWM intensity from")
    wm_median, wm_sd = robust_stats(flair[nawm_ref])
    threshold = wm_median + k_wm * wm_sd
    if cortex_ref.any():
        gm_median, gm_sd = robust_stats(flair[cortex_ref])
        threshold = max(threshold, gm_median + k_gm * gm_sd)
    candidates = wm_region & (flair > threshold)
    boundary = threshold
    if candidates.any():
        # half-way from NAWM to the lesions' intensity: the 50 % partial-volume boundary
        boundary = 0.5 * (wm_median + float(np.percentile(flair[candidates], LESION_LEVEL_PERCENTILE)))
        labels, _ = label_lesions(wm_region & (flair > boundary))
        seeds = np.unique(labels[candidates])
        candidates = np.isin(labels, seeds[seeds > 0])
    mask = remove_small(candidates, voxel_mm3, min_size_mm3)
    return Segmentation(mask, wm_median, wm_sd, threshold, boundary)


def remove_small(mask: np.ndarray, voxel_mm3: float, min_size_mm3: float) -> np.ndarray:
    """``mask`` without its 26-connected components smaller than ``min_size_mm3``."""
    labels, n = label_lesions(mask)
    if n == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.reshape(-1))[1:] * voxel_mm3
    keep = np.flatnonzero(sizes >= min_size_mm3 - 1e-9) + 1
    return np.isin(labels, keep)


def label_lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of a lesion mask, numbered 1..n in scan order."""
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=CONNECTIVITY)
    return labels.astype(np.int32), int(n)


def lesion_table(labels: np.ndarray, n: int, affine: np.ndarray,
                 maps: dict[str, np.ndarray]) -> list[dict[str, float | int]]:  # fmt: skip
    """One row per lesion: id, volume (ml), centroid (world RAS mm) and the mean of each map over the
    lesion's voxels where the map has data (non-zero; NaN when none)."""
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    counts = np.bincount(labels.reshape(-1), minlength=n + 1)[1:]
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    centres = np.array(ndimage.center_of_mass(np.ones(labels.shape), labels, index)).reshape(n, 3)
    world = centres @ affine[:3, :3].T + affine[:3, 3]
    rows: list[dict[str, float | int]] = []
    means = {}
    for name, values in maps.items():  # voxels where a map is 0 (no data there) are left out
        covered = np.asarray(ndimage.sum(values != 0, labels, index), dtype=np.float64)
        total = np.asarray(ndimage.sum(values, labels, index), dtype=np.float64)
        means[name] = np.divide(total, covered, out=np.full(n, np.nan), where=covered > 0)
    for k in range(n):
        row: dict[str, float | int] = {"lesion_id": k + 1, "volume_ml": counts[k] * voxel_ml,
                                       "centroid_x": world[k, 0], "centroid_y": world[k, 1], "centroid_z": world[k, 2]}  # fmt: skip
        row.update({f"{name}_mean": float(means[name][k]) for name in maps})
        rows.append(row)
    return rows
