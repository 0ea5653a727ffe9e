"""Contrast-enhancing lesions (CEL) from a post-contrast T1w, with the pre-contrast T1w of the session.

Both images, on the T1w grid, are divided by their local normal-appearing white matter level
(:mod:`msqmri.lesions.normalization`), so that the coil profile and the NAWM's own slight enhancement drop out;
the enhancement map is their difference (post alone, minus NAWM's 1, when there is no pre-contrast T1w). Subtraction
is how enhancement is read when a pre-contrast scan exists (Tan et al., AJNR 2002; Bozsik et al. 2022), and the
candidates are then those of automated CEL detection (e.g. Coronado et al., AJNR 2021; Schlaeger et al. 2023):

1. seeds: enhancement above :data:`K_SIGMA` robust SDs of the map in NAWM and above :data:`MIN_ENHANCEMENT`, where
   the post-contrast T1w is brighter than the NAWM (by :data:`MIN_BRIGHTER`: an enhancing lesion is hyperintense, a
   dark lesion merely less dark after resampling is not), in the brain mask and outside the ventricles (the choroid
   plexus enhances there);
2. each seed component's extent: the connected voxels above half its median enhancement, holes filled (a
   ring-enhancing lesion is outlined whole, as it is measured), 26-connected components;
3. the normal enhancing structures rejected: components lying mostly outside the brain mask (dural sinuses, the
   dura, the pituitary), mostly in CSF (veins in the sulci and the subarachnoid space), neither in a T2 lesion nor
   in white matter (veins along the cortex), or long and thin (a vessel: linearity of the voxel cloud's principal
   axes, over a minimum length), and those under the minimum size.

Each CEL is reported with its volume, centroid, mean and peak enhancement, pattern (ring when filling its holes
added more than a third of its volume) and the T2 lesion it lies in, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from msqmri.lesions.components import CONNECTIVITY, robust_stats

#: seed threshold in robust SDs of the enhancement map over the NAWM, and its absolute floor (NAWM units): an
#: enhancing lesion gains 30-60 % of the NAWM signal; what is below 20 % is read as not enhancing
K_SIGMA = 4.0
MIN_ENHANCEMENT = 0.20
#: a seed is brighter than the NAWM on the post-contrast T1w by at least this (NAWM units)
MIN_BRIGHTER = 0.05
#: a component's extent: its voxels above this share of its seed's median enhancement (and above half the seed
#: threshold), within this margin of its seed (mm)
EXTENT_OF_PEAK, EXTENT_MARGIN_MM = 0.5, 15.0
#: rejected when less than this share of a component lies in the brain mask, when it is this much CSF on average,
#: or, outside the T2 lesions, when it is less than this much white matter (a lesion enhances in the WM)
MIN_IN_BRAIN, MAX_CSF, MIN_WM = 0.5, 0.5, 0.5
#: a vessel: principal-axis linearity 1 - sqrt(l2 / l1) above this, and at least this long (mm, +/- 2 SD)
MAX_LINEARITY, VESSEL_MIN_MM = 0.7, 8.0
#: smallest CEL kept (mm^3)
MIN_SIZE_MM3 = 10.0
#: filling the holes of a ring-enhancing lesion adds more than this share of its enhancing voxels
RING_FILL = 1.0 / 3.0
#: a session's contrast-enhancing lesions (a session's table: one row per CEL)
CEL_COLUMNS = (
    "participant_id",
    "session_id",
    "cel_id",
    "volume_ml",
    "centroid_x",
    "centroid_y",
    "centroid_z",
    "mean_enhancement",
    "peak_enhancement",
    "pattern",
    "in_t2_lesion",
    "lesion_component",
)


@dataclass(frozen=True)
class Enhancing:
    """CEL labels (1..n) on the T1w grid, each CEL's pattern, and how many candidates each test rejected."""

    labels: np.ndarray
    n: int
    patterns: tuple[str, ...]
    rejected: dict[str, int] = field(default_factory=dict)


def enhancement_map(post: np.ndarray, pre: np.ndarray | None) -> np.ndarray:
    """Post minus pre contrast, both in NAWM units; post alone minus the NAWM's 1 without a pre-contrast T1w."""
    return (post - (1.0 if pre is None else pre)).astype(np.float32)


def linearity(points_mm: np.ndarray) -> tuple[float, float]:
    """1 - sqrt(l2 / l1) of the points' covariance (0 for a ball, 1 for a line) and their length along the main
    axis (4 SD, mm)."""
    if len(points_mm) < 3:
        return 0.0, 0.0
    eigen = np.sort(np.linalg.eigvalsh(np.cov(points_mm.T)))[::-1]
    eigen = np.clip(eigen, 1e-9, None)
    return float(1.0 - np.sqrt(eigen[1] / eigen[0])), float(4.0 * np.sqrt(eigen[0]))


def find_enhancing(
    enhancement: np.ndarray,
    brain: np.ndarray,
    nawm: np.ndarray,
    tissue: dict[str, np.ndarray],
    ventricles: np.ndarray,
    voxel_size: tuple[float, ...],
    min_size_mm3: float = MIN_SIZE_MM3,
    post: np.ndarray | None = None,
) -> Enhancing:
    """The CEL of a session (see the module docstring); ``nawm`` are the reference voxels of the noise, ``tissue``
    the CSF and WM fractions and the T2 lesion mask (``csf``, ``wm``, ``lesion``), ``ventricles`` the template's
    ventricles on the grid, ``post`` the post-contrast T1w in NAWM units (None: the enhancement map is post alone)."""
    _, sd = robust_stats(enhancement[nawm])
    threshold = max(K_SIGMA * sd, MIN_ENHANCEMENT)
    brighter = (enhancement if post is None else post - 1.0) >= MIN_BRIGHTER
    seeds, n_seeds = ndimage.label((enhancement >= threshold) & brighter & brain & ~ventricles, structure=CONNECTIVITY)
    voxel_mm3 = float(np.prod(voxel_size))
    margin = [int(np.ceil(EXTENT_MARGIN_MM / v)) for v in voxel_size]
    labels = np.zeros(enhancement.shape, np.int32)
    taken = np.zeros(enhancement.shape, bool)
    patterns: list[str] = []
    rejected = {"outside_brain": 0, "csf": 0, "not_wm": 0, "vessel": 0, "small": 0}
    boxes = ndimage.find_objects(seeds)
    index = np.arange(1, n_seeds + 1)
    peaks = np.asarray(ndimage.maximum(enhancement, seeds, index)) if n_seeds else np.zeros(0)
    # the enhancement a seed reaches, robustly: its median (the maximum of a noisy map overstates it, and an extent
    # at half the maximum then leaves out the partial-volume rim: CEL volumes 13-37 % small at 1 mm)
    plateaus = np.asarray(ndimage.median(enhancement, seeds, index)) if n_seeds else np.zeros(0)
    for k in np.argsort(-peaks, kind="stable") + 1:  # the brightest first: its extent takes in the smaller seeds
        box = tuple(slice(max(s.start - m, 0), s.stop + m) for s, m in zip(boxes[k - 1], margin, strict=True))
        seed = seeds[box] == k
        if taken[box][seed].any():
            continue
        level = max(EXTENT_OF_PEAK * plateaus[k - 1], 0.5 * threshold)
        above, _ = ndimage.label(enhancement[box] >= level, structure=CONNECTIVITY)
        # the components above the level that hold a seed voxel (seed voxels below half the peak hold none)
        extent = np.isin(above, np.setdiff1d(above[seed], 0)) & ~taken[box]
        filled = ndimage.binary_fill_holes(extent) & ~taken[box]
        taken[box] |= filled
        reason = _rejection(
            filled, brain[box], {key: value[box] for key, value in tissue.items()}, voxel_size, voxel_mm3, min_size_mm3
        )
        if reason:
            rejected[reason] += 1
            continue
        labels[box][filled] = len(patterns) + 1
        patterns.append("ring" if filled.sum() > (1 + RING_FILL) * extent.sum() else "solid")
    return Enhancing(labels, len(patterns), tuple(patterns), rejected)


def _rejection(
    cel: np.ndarray,
    brain: np.ndarray,
    tissue: dict[str, np.ndarray],
    voxel_size: tuple[float, ...],
    voxel_mm3: float,
    min_size_mm3: float,
) -> str | None:
    """Why a candidate is not a CEL, or None."""
    if cel.sum() * voxel_mm3 < min_size_mm3:
        return "small"
    if brain[cel].mean() < MIN_IN_BRAIN:
        return "outside_brain"
    if tissue["csf"][cel].mean() >= MAX_CSF:
        return "csf"
    if not tissue["lesion"][cel].any() and tissue["wm"][cel].mean() < MIN_WM:
        return "not_wm"
    line, length = linearity(np.argwhere(cel) * np.asarray(voxel_size))
    if line > MAX_LINEARITY and length >= VESSEL_MIN_MM:
        return "vessel"
    return None
