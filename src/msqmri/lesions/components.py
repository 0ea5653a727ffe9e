"""Lesions as connected components, and per-lesion measures.

Lesions are the 26-connected components of a lesion mask (the convention of lesion counting in MS
trials); components under the minimum size are dropped (3 mm^3 by default, as the MSSEG-2 challenge
scores, Commowick et al. 2021).

Lesion volume: a binary mask under-counts small convex lesions (voxels >= 50 % lesion miss more of the
curved border than they add) and its volume error grows as lesions shrink. When the session has a
FLAIR, each lesion's volume is its partial-volume sum instead (in the spirit of LST's lesion
probability sums; Schmidt et al., NeuroImage 2012): over the lesion and a one-voxel shell around it, a
voxel's lesion fraction is (I - b) / (L - b), with b the median FLAIR of the lesion's surrounding NAWM (a
ring 3-4 voxels out, so a bias field cancels locally) and L = r b the pure-lesion level, r being the
median ratio of the lesions' interior voxels to their local NAWM; fractions within 2 noise SDs of 0
or 1 are set to 0 or 1 (plain clipping would bias the sum upwards by the shell's noise).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: 26-connectivity
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
#: default smallest lesion, mm^3 (3 voxels at 1 mm)
MIN_SIZE_MM3 = 3.0
_MAD_TO_SD = 1.4826
#: without interior voxels, the lesions' own FLAIR level is this percentile of their voxels (their median is
#: lowered by partial volume)
LESION_LEVEL_PERCENTILE = 75.0
#: partial-volume volumes: the local NAWM ring lies this many voxels (26-steps) beyond the lesion (inner, outer)
RING_VOXELS = (3, 4)
#: fewest interior (eroded) lesion voxels from which the pure-lesion level is taken
MIN_INTERIOR = 10
#: fractions within this many noise SDs of 0 (or 1) count as 0 (or 1): clipping noisy fractions to
#: [0, 1] would add +0.4 SD per pure-background voxel of the shell
NOISE_Z = 2.0


def robust_stats(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based SD."""
    median = float(np.median(values))
    return median, _MAD_TO_SD * float(np.median(np.abs(values - median)))


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


def lesion_table(
    labels: np.ndarray, n: int, affine: np.ndarray, maps: dict[str, np.ndarray], sizes: np.ndarray | None = None
) -> list[dict[str, float | int]]:
    """One row per lesion: id, volume (ml: ``sizes`` in voxels, e.g. :func:`partial_volumes`, else the
    voxel count), centroid (world RAS mm) and the mean of each map over the lesion's voxels where the
    map has data (non-zero; NaN when none)."""
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    counts = np.bincount(labels.reshape(-1), minlength=n + 1)[1:] if sizes is None else sizes
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
        row: dict[str, float | int] = {
            "lesion_id": k + 1,
            "volume_ml": counts[k] * voxel_ml,
            "centroid_x": world[k, 0],
            "centroid_y": world[k, 1],
            "centroid_z": world[k, 2],
        }
        row.update({f"{name}_mean": float(means[name][k]) for name in maps})
        rows.append(row)
    return rows


def lesion_fractions(
    flair: np.ndarray, labels: np.ndarray, n: int, nawm: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each voxel's lesion fraction over lesions 1..n and a one-voxel shell around them, from the FLAIR on
    their grid (module docstring), and the territory (lesion label) each voxel's fraction belongs to;
    ``nawm`` is the normal-appearing WM the local background is taken from. None when the lesions are
    not hyperintense against it (no lesion level can be set)."""
    flair = np.asarray(flair, dtype=np.float64)
    mask = labels > 0
    index = np.arange(1, n + 1)
    inner, outer = RING_VOXELS
    near = ndimage.grey_dilation(labels, footprint=np.ones((2 * outer + 1,) * 3, dtype=bool))
    ring = nawm & (near > 0) & ~ndimage.binary_dilation(mask, structure=CONNECTIVITY, iterations=inner - 1)
    if not ring.any():
        return None
    background = np.full(n + 1, float(np.median(flair[ring])))
    has_ring = np.bincount(near[ring], minlength=n + 1)[1:] > 0
    background[1:][has_ring] = ndimage.median(flair, np.where(ring, near, 0), index[has_ring])
    if np.any(background <= 0):
        return None
    interior = ndimage.binary_erosion(mask, structure=CONNECTIVITY)
    core = interior if interior.sum() >= MIN_INTERIOR else mask
    ratios = flair[core] / background[labels[core]]
    ratio = float(np.median(ratios) if core is interior else np.percentile(ratios, LESION_LEVEL_PERCENTILE))
    if ratio <= 1.0:
        return None
    # the fraction's noise, from the NAWM ring's spread relative to its local level
    noise = NOISE_Z * robust_stats(flair[ring] / background[near[ring]])[1] / (ratio - 1.0)
    territory = np.where(mask, labels, ndimage.grey_dilation(labels, footprint=CONNECTIVITY))
    b = background[territory]
    fraction = np.where(territory > 0, (flair - b) / ((ratio - 1.0) * b), 0.0)
    return np.where(fraction < noise, 0.0, np.where(fraction > 1.0 - noise, 1.0, fraction)), territory


def partial_volumes(flair: np.ndarray, labels: np.ndarray, n: int, nawm: np.ndarray) -> np.ndarray | None:
    """Partial-volume size (in voxels) of lesions 1..n (:func:`lesion_fractions` summed over each lesion's
    territory); None when no lesion level can be set: then voxel counts are the volumes."""
    if n == 0:
        return np.zeros(0)
    fractions = lesion_fractions(flair, labels, n, nawm)
    if fractions is None:
        return None
    fraction, territory = fractions
    return np.asarray(ndimage.sum(fraction, territory, np.arange(1, n + 1)), dtype=np.float64)
