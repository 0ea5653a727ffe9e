"""Skull and intracranial estimates from a bias-corrected T1w and its brain mask.

On a T1w the CSF around the brain and the skull tables are both dark; the dark layer connected to
the brain surface (within 15 mm) is taken as CSF + inner skull, and its outer surface as the
skull-side boundary of the intracranial volume (ICV). The ICV does not change with atrophy, so it
normalises head size (the role of BET's skull estimate in SIENAX, Smith et al. 2002).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from msqmri.brain_extraction import ball, white_matter_level

#: intensities below this fraction of WM count as CSF or bone
DARK_FRACTION = 0.35
#: the dark layer is searched this far outside the brain (mm)
SEARCH_MM = 15.0


def intracranial_mask(
    data: np.ndarray, brain: np.ndarray, head: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The intracranial mask (brain + surrounding dark CSF/inner table) and the dark shell itself."""
    dark = data < DARK_FRACTION * white_matter_level(data, head)
    distance = ndimage.distance_transform_edt(~brain, sampling=spacing)  # mm outside the brain
    candidates = dark & head & (distance > 0) & (distance <= SEARCH_MM)
    seed = candidates & (distance <= 3.0)  # beyond the partial-volume edge voxels
    dark_shell = ndimage.binary_propagation(seed, mask=candidates)
    icv = ndimage.binary_fill_holes(ndimage.binary_closing(brain | dark_shell, ball(2.0, spacing)))
    return icv, dark_shell
