"""Descriptive summary of a structural image: geometry, intensities and foreground volume."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from msqmri.core.io import load_nifti, save_json

PERCENTILES = (1, 5, 50, 95, 99)
OBLIQUE_DEGREES = 0.5  # nibabel's obliquity above this counts as an oblique acquisition


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Threshold maximising the between-class variance of a histogram of ``values`` (Otsu 1979)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return lo
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(counts)[:-1].astype(np.float64)
    weight_above = counts.sum() - weight_below
    sum_below = np.cumsum(counts * centres)[:-1]
    mean_below = sum_below / np.maximum(weight_below, 1)
    mean_above = (np.sum(counts * centres) - sum_below) / np.maximum(weight_above, 1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    return float(edges[1:-1][np.argmax(between)])


def foreground_threshold(data: np.ndarray) -> float:
    """Otsu threshold of the intensities clipped at their 99.9th percentile (robust to hot voxels)."""
    return otsu_threshold(np.minimum(data, np.percentile(data, 99.9)))


def geometry(affine: np.ndarray, shape: tuple[int, ...], zooms: tuple[float, ...]) -> dict[str, Any]:
    """Grid description: shape, voxel size (mm), orientation codes and obliquity (degrees)."""
    obliquity = float(np.degrees(np.max(nib.affines.obliquity(affine))))
    return {
        "shape": [int(n) for n in shape[:3]],
        "voxel_size_mm": [round(float(z), 6) for z in zooms[:3]],
        "orientation": "".join(nib.aff2axcodes(affine)),
        "obliquity_deg": round(obliquity, 4),
        "oblique": obliquity > OBLIQUE_DEGREES,
    }


def t1w_summary(data: np.ndarray, affine: np.ndarray, zooms: tuple[float, ...]) -> dict[str, Any]:
    """Geometry, intensity percentiles and an Otsu foreground volume (ml) of a 3D T1w image."""
    voxel_ml = float(np.prod(zooms[:3])) / 1000.0
    threshold = foreground_threshold(data)
    percentiles = np.percentile(data, PERCENTILES)
    return {
        **geometry(affine, data.shape, zooms),
        **{f"intensity_p{p:02d}": float(v) for p, v in zip(PERCENTILES, percentiles, strict=True)},
        "foreground_threshold": threshold,
        "foreground_volume_ml": round(float(np.count_nonzero(data > threshold)) * voxel_ml, 3),
    }


def summarize_t1w(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a T1w image (validated) and summarise it with :func:`t1w_summary` (a 4D series of repeats by the
    mean of its volumes)."""
    img, data = load_nifti(path, ndim=(3, 4))
    volumes = 1 if data.ndim == 3 else data.shape[3]
    summary = t1w_summary(data if volumes == 1 else data.mean(axis=3), img.affine, img.header.get_zooms())
    return {"file": Path(path).name, "n_volumes": volumes, **summary}


def write_t1w_summary(inputs: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    """The ``t1w_summary`` step: :func:`summarize_t1w` of the raw T1w as JSON."""
    save_json(summarize_t1w(inputs["t1w"]), outputs["summary"])
