"""Magnetization transfer ratio (Dousset et al. 1992; Tofts, Quantitative MRI of the Brain, 2003, ch. 7).

MTR = 100 (M_off - M_on) / M_off in percent units (pu), computed voxel-wise in float64 from the
MT-off image and the MT-on image already registered to it, inside a brain mask and before any
smoothing. Values are clipped to :data:`MTR_RANGE`: outside it lie only noise, partial volume
with air and misregistration, never tissue.
"""

from __future__ import annotations

import numpy as np

#: clipping range of the MTR map (pu)
MTR_RANGE = (0.0, 100.0)


def mtr_map(mt_on: np.ndarray, mt_off: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """MTR (pu, float64) inside ``mask`` where M_off > 0, clipped to :data:`MTR_RANGE`; 0 elsewhere."""
    off = np.asarray(mt_off, dtype=np.float64)
    on = np.asarray(mt_on, dtype=np.float64)
    valid = np.asarray(mask, dtype=bool) & (off > 0)
    mtr = np.zeros(off.shape, dtype=np.float64)
    mtr[valid] = 100.0 * (off[valid] - on[valid]) / off[valid]
    return np.where(valid, np.clip(mtr, *MTR_RANGE), 0.0)


def mt_state_problem(state: object, expected: bool) -> str | None:
    """Why a sidecar's BIDS ``MTState`` contradicts the image's ``mt-on``/``mt-off`` name (None if it
    agrees or is absent)."""
    if state is None:
        return None
    if not isinstance(state, bool):
        return f"MTState must be true or false (got {state!r})"
    if state != expected:
        name, other = ("mt-on", "mt-off") if expected else ("mt-off", "mt-on")
        return f"MTState is {str(state).lower()} in a {name} image: MT-on and MT-off look swapped ({other} expected)"
    return None


def swapped_by_contrast(mt_on: np.ndarray, mt_off: np.ndarray, mask: np.ndarray) -> bool:
    """True when the MT-on image is brighter than the MT-off image in the brain (median ratio > 1):
    saturation transfer only ever lowers the signal, so the two files must have been swapped."""
    mask = np.asarray(mask, dtype=bool) & (np.asarray(mt_off) > 0)
    if not mask.any():
        return False
    return (
        float(np.median(np.asarray(mt_on, dtype=np.float64)[mask] / np.asarray(mt_off, dtype=np.float64)[mask])) > 1.0
    )
