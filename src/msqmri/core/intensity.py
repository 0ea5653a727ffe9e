"""Intensity levels shared by the domain packages: histogram modes and the white-matter level of a T1w."""

from __future__ import annotations

import numpy as np


def histogram_mode(
    values: np.ndarray, bins: int = 100, percentiles: tuple[float, float] | None = (1, 99), smoothing: int = 5
) -> float:
    """Mode of ``values``: the peak of their histogram over the ``percentiles`` range (None: all of it),
    smoothed by a moving average over ``smoothing`` bins (1: none)."""
    lo, hi = np.percentile(values, percentiles) if percentiles is not None else (values.min(), values.max())
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    smooth = np.convolve(hist, np.ones(smoothing) / smoothing, mode="same") if smoothing > 1 else hist
    peak = int(smooth.argmax())
    return float((edges[peak] + edges[peak + 1]) / 2)


def white_matter_level(data: np.ndarray, head: np.ndarray) -> float:
    """Intensity of WM on a T1w: the mode of the brightest quarter of the head's histogram (in the brighter
    half, grey matter can outnumber WM at coarse resolution, and its peak was taken for WM)."""
    values = data[head]
    return histogram_mode(values[values > np.percentile(values, 75)], bins=256, percentiles=None, smoothing=1)
