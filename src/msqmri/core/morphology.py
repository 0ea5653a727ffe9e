"""Binary morphology shared by the domain packages: structuring elements in mm and connected components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def ball(radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    """A binary ellipsoidal structuring element of ``radius_mm`` on a grid of ``spacing``."""
    half = [int(np.floor(radius_mm / s)) for s in spacing]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    return sum((g * s / radius_mm) ** 2 for g, s in zip(grids, spacing, strict=True)) <= 1.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of ``mask`` (empty in, empty out)."""
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def near(
    mask: np.ndarray, spacing: tuple[float, ...], mm: float, within: tuple[slice, ...] | None = None
) -> np.ndarray:
    """Voxels within ``mm`` of ``mask`` (the mask included), distances in mm on a grid of ``spacing``, the
    distance map computed only over a crop: the bounding box of ``mask`` (or ``within``, where only voxels inside
    it are asked for) grown by ``mm``, which holds every voxel the answer can depend on."""
    out = np.zeros(mask.shape, dtype=bool)
    if within is None:
        boxes = ndimage.find_objects(mask.view(np.uint8))
        if not boxes:
            return out
        within = boxes[0]
    grow = [int(np.ceil(mm / step)) + 1 for step in spacing]
    crop = tuple(slice(max(s.start - g, 0), s.stop + g) for s, g in zip(within, grow, strict=True))
    out[crop] = ndimage.distance_transform_edt(~mask[crop], sampling=spacing) <= mm
    return out


def filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled in 3D and then slice by slice along each axis: a field of view that cuts
    through the neck opens the head's 3D shell (the spinal canal, the pharynx), which each slice still closes."""
    out = ndimage.binary_fill_holes(mask)
    for axis in range(3):
        out |= np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(out, axis, 0)], axis=axis)
    return out
