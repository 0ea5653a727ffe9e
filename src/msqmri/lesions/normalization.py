"""FLAIR intensity normalised to the local normal-appearing white matter (NAWM = 1).

After N4 (:func:`msqmri.anat.bias.n4`), what remains of the coil profile, and real regional differences of
the normal white matter's FLAIR signal (the brainstem and the corticospinal tracts are brighter than
the centrum semiovale), still move a global threshold by 10-30 % across the brain. The FLAIR is
therefore divided by a smooth *local* NAWM level: the median FLAIR of confidently classified WM
voxels in blocks of about 12 mm, each block's value replaced by the median of its 3x3x3 neighbourhood
(so that a block filled by a confluent lesion does not raise it), gaps filled from the neighbours and
the map smoothed, then interpolated back; a second pass leaves out the voxels the first one found
hyperintense. Local NAWM normalisation in this sense is the reference of LST's lesion growth
(Schmidt et al., NeuroImage 2012) and of subtraction imaging (Battaglini et al., Hum Brain Mapp 2014).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

#: block edge (mm) of the local NAWM level, and the least share of a block's voxels that must be NAWM
BLOCK_MM = 12.0
MIN_BLOCK_SHARE = 0.1
#: second pass: reference voxels further than this from the first pass's level (ratio) are left out
OUTLIER_RATIO = 0.2


def block_medians(image: np.ndarray, reference: np.ndarray, block: tuple[int, ...]) -> np.ndarray:
    """Median of ``image`` over the ``reference`` voxels of each block (NaN where a block has too few)."""
    coarse = tuple(-(-n // b) for n, b in zip(image.shape, block, strict=True))
    index = np.nonzero(reference)
    blocks = np.ravel_multi_index(tuple(i // b for i, b in zip(index, block, strict=True)), coarse)
    values = image[index]
    order = np.lexsort((values, blocks))
    blocks, values = blocks[order], values[order]
    counts = np.bincount(blocks, minlength=int(np.prod(coarse)))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    enough = counts >= max(8, MIN_BLOCK_SHARE * int(np.prod(block)))
    medians = np.full(counts.shape, np.nan)
    lo, hi = starts[enough] + (counts[enough] - 1) // 2, starts[enough] + counts[enough] // 2
    medians[enough] = 0.5 * (values[lo] + values[hi])
    return medians.reshape(coarse)


def _fill(coarse: np.ndarray) -> np.ndarray:
    """NaN blocks filled by normalised Gaussian averaging of their valid neighbours, then the nearest one."""
    valid = np.isfinite(coarse)
    if not valid.any():
        raise ValueError("no white matter to take the NAWM level from")
    values = np.where(valid, coarse, 0.0)
    weight = ndimage.gaussian_filter(valid.astype(float), 1.0, mode="nearest")
    smooth = ndimage.gaussian_filter(values, 1.0, mode="nearest")
    filled = np.where(valid, coarse, np.where(weight > 0.05, smooth / np.maximum(weight, 1e-9), np.nan))
    valid = np.isfinite(filled)
    nearest = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return filled[tuple(nearest)]


def local_level(
    image: np.ndarray, reference: np.ndarray, voxel_size: tuple[float, ...], block_mm: float = BLOCK_MM
) -> np.ndarray:
    """A smooth map of the level of ``image`` over the ``reference`` voxels, on the image's grid."""
    block = tuple(max(1, int(round(block_mm / v))) for v in voxel_size)
    medians = block_medians(np.asarray(image, dtype=np.float64), np.asarray(reference, dtype=bool), block)
    valid = np.isfinite(medians)
    with warnings.catch_warnings():  # a block with no valid neighbour stays NaN, and is filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        robust = ndimage.generic_filter(np.where(valid, medians, np.nan), np.nanmedian, size=3, mode="nearest")
    coarse = ndimage.gaussian_filter(_fill(np.where(valid, robust, np.nan)), 0.7, mode="nearest")
    fine = ndimage.zoom(coarse, block, order=1, grid_mode=True, mode="nearest")
    return fine[tuple(slice(0, n) for n in image.shape)].astype(np.float32)


def normalise(image: np.ndarray, reference: np.ndarray, voxel_size: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``image`` divided by its local level over ``reference`` (two passes, see the module docstring),
    and that level."""
    image = np.asarray(image, dtype=np.float32)
    level = local_level(image, reference, voxel_size)
    first = image / np.maximum(level, 1e-6)
    reference = reference & (np.abs(first - 1.0) < OUTLIER_RATIO)
    level = local_level(image, reference, voxel_size)
    return (image / np.maximum(level, 1e-6)).astype(np.float32), level
