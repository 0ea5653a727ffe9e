"""Regions of a session on the T1w grid and summary statistics of quantitative maps inside them.

Regions: brain (the brain mask), GM and WM (hard tissue labels; lesions count as WM), lesion, NAWM
(WM minus the lesions dilated by 2 mm) and the perilesional rim (a 2 mm shell around the lesions,
inside the brain), the usual definitions of MS quantitative-MRI studies (e.g. Filippi et al. 2019,
MAGNIMS; Vrenken et al. 2006 for NAWM MTR).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

REGIONS = ("brain", "gm", "wm", "nawm", "lesion", "perilesional")
#: dilation of the lesions excluded from NAWM, and width of the perilesional rim (mm)
PERILESIONAL_MM = 2.0
#: dseg labels of the structural stage
GM_LABEL, WM_LABEL = 2, 3


def dilate_mm(mask: np.ndarray, distance_mm: float, voxel_size: tuple[float, ...]) -> np.ndarray:
    """``mask`` grown by ``distance_mm`` (Euclidean, in physical units)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=voxel_size) <= distance_mm


def region_masks(
    brain: np.ndarray, dseg: np.ndarray, lesion: np.ndarray, voxel_size: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """The masks of :data:`REGIONS`."""
    brain = np.asarray(brain, dtype=bool)
    lesion = np.asarray(lesion, dtype=bool) & brain
    wm = brain & ((dseg == WM_LABEL) | lesion)
    near = dilate_mm(lesion, PERILESIONAL_MM, voxel_size)
    return {
        "brain": brain,
        "gm": brain & (dseg == GM_LABEL) & ~lesion,
        "wm": wm,
        "nawm": wm & ~near,
        "lesion": lesion,
        "perilesional": brain & near & ~lesion,
    }


def region_rows(masks: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray], voxel_ml: float) -> list[dict]:
    """Long-format rows (region, metric, mean, median, std, n_voxels, volume_ml) for every region and
    map. Voxels where a map is 0 (outside its acquisition's brain mask or field of view) are left
    out; a region without voxels gets n_voxels 0 and no statistics."""
    rows = []
    for region, mask in masks.items():
        for metric, values in maps.items():
            inside = values[mask & (values != 0)].astype(np.float64)
            stats = (
                {"mean": inside.mean(), "median": np.median(inside), "std": inside.std()}
                if inside.size
                else {"mean": None, "median": None, "std": None}
            )
            rows.append(
                {
                    "region": region,
                    "metric": metric,
                    **stats,
                    "n_voxels": int(inside.size),
                    "volume_ml": inside.size * voxel_ml,
                }
            )
    return rows
