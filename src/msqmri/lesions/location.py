"""Where each lesion lies (the McDonald 2017 / MAGNIMS topography) and which are T1 black holes.

Location classes (Thompson et al., Lancet Neurol 2018; Filippi et al., Lancet Neurol 2016), taken in
this order:

- *infratentorial*: at least half the lesion in the brainstem or cerebellum (the MNI template's
  infratentorial region warped to the session; sub-classed brainstem / cerebellum);
- *periventricular*: abutting the lateral ventricles (voxels at least a third CSF, inside the template's
  ventricles: the wall's partial-volume voxels count), i.e. no white matter in between: within two voxel
  edges (2 mm at 1 mm; one voxel of partial volume may lie between the lesion and the wall);
- *juxtacortical*: abutting the cortex (the session's GM where the template expects GM, outside the
  template's deep grey matter) in the same sense;
- *deep_wm*: every other lesion (subcortical and deep white matter).

T1 black holes (van Walderveen et al., Neurology 1998; Sahraian et al., Neurology 2010): T2 lesions
markedly hypointense on T1w, i.e. darker than the cortex. A lesion's own T1w level is estimated free
of partial volume: with p a voxel's lesion fraction (from the FLAIR) and W the local NAWM T1w level,
the voxels' T1w / W - 1 is regressed on p through the origin, so the lesion's level is 1 + slope (in
units of NAWM); without a FLAIR every voxel of the mask counts as pure lesion. Voxels touching the
cortex are left out, since their T1w mixes with grey matter (darker than WM). A black hole persisting
6 months or more is chronic (decided across sessions, :mod:`msqmri.lesions.tracking`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "deep_wm")
#: greatest distance (mm) between a lesion's voxels and the ventricles' or the cortex's that still counts as
#: abutting, at voxels of 1 mm or less (two voxel edges on coarser grids)
TOUCH_MM = 2.0
#: a voxel at least this much CSF is ventricle (the ventricle wall's partial-volume voxels included)
VENTRICLE_CSF = 1 / 3


def touch_distance(voxel_size: Sequence[float]) -> float:
    """The abutting distance on a grid: :data:`TOUCH_MM`, or two voxel edges when that is larger."""
    return max(TOUCH_MM, 2.02 * float(max(voxel_size)))


def cortex_mask(
    gm: np.ndarray, gm_prior: np.ndarray, deep_gm: np.ndarray, brain: np.ndarray, lesion: np.ndarray
) -> np.ndarray:
    """Cortical GM: GM (fraction >= 0.5) where the template expects GM (prior >= 0.3) but not deep GM
    (warped region < 0.5), outside lesions (which look like GM on T1w)."""
    return (gm >= 0.5) & (gm_prior >= 0.3) & (deep_gm < 0.5) & brain & ~lesion


def classify(
    labels: np.ndarray,
    n: int,
    infratentorial: np.ndarray,
    brainstem: np.ndarray,
    ventricles: np.ndarray,
    cortex: np.ndarray,
    voxel_size: Sequence[float],
) -> tuple[list[str], list[str | None]]:
    """Location class of lesions 1..n (module docstring) and, for infratentorial ones, "brainstem" or
    "cerebellum". ``infratentorial``/``brainstem`` are warped template regions (0-1), ``ventricles`` and
    ``cortex`` the session's masks, all on the labels' grid."""
    if n == 0:
        return [], []
    index = np.arange(1, n + 1)
    below = np.asarray(ndimage.mean(infratentorial, labels, index)) >= 0.5
    stem = np.asarray(ndimage.mean(brainstem, labels, index)) >= 0.5
    touch = touch_distance(voxel_size)

    def abutting(region: np.ndarray) -> np.ndarray:
        if not region.any():
            return np.zeros(n, dtype=bool)
        distance = ndimage.distance_transform_edt(~region, sampling=voxel_size)
        return np.asarray(ndimage.minimum(distance, labels, index)) <= touch

    periventricular, juxtacortical = abutting(ventricles), abutting(cortex)
    classes = np.where(
        below,
        "infratentorial",
        np.where(periventricular, "periventricular", np.where(juxtacortical, "juxtacortical", "deep_wm")),
    )
    parts = [("brainstem" if s else "cerebellum") if b else None for b, s in zip(below, stem, strict=True)]
    return [str(c) for c in classes], parts


def lesion_t1w(t1w: np.ndarray, labels: np.ndarray, n: int, fraction: np.ndarray | None) -> np.ndarray:
    """Each lesion's partial-volume-free T1w level (module docstring), ``t1w`` divided by its local NAWM
    level (NAWM = 1); ``fraction`` is the lesion fraction of every voxel (None: the mask's voxels are pure
    lesion). NaN for a lesion without a voxel at least half lesion."""
    p = (labels > 0).astype(np.float64) if fraction is None else np.clip(fraction, 0.0, 1.0)
    where = np.where((labels > 0) & (p >= 0.5), labels, 0).ravel()
    numerator = np.bincount(where, weights=(p * (t1w - 1.0)).ravel(), minlength=n + 1)[1:]
    denominator = np.bincount(where, weights=(p * p).ravel(), minlength=n + 1)[1:]
    return 1.0 + np.divide(numerator, denominator, out=np.full(n, np.nan), where=denominator > 0)


def black_holes(lesion_levels: np.ndarray, cortex_level: float) -> np.ndarray:
    """Lesions whose own T1w level is below the cortex's."""
    return np.asarray(lesion_levels) < cortex_level
