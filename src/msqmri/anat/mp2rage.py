"""MP2RAGE background: the head mask from the second inversion (Marques et al., NeuroImage 2010).

The UNIT1 image is a ratio of the two inversions' signals, so where both are noise (air) it is noise as
bright as tissue (O'Brien et al., PLoS One 2014), which brain extraction and the skull-based scaling
take for head. INV2 is a proton-density-like magnitude image whose air is dark: the head is every voxel
above a small fraction of its bright tissue, with the gaps inside (dark bone, sinuses) filled in 3D and
slice by slice (a field of view cut at the chin leaves the 3D shell open).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from msqmri.core.morphology import ball, filled, largest_component

#: INV2 level of the head: this fraction of its 99th percentile (air is a Rayleigh noise floor far below)
HEAD_FRACTION = 0.05


def head_from_inv2(inv2: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """The head on an INV2 magnitude image (see the module docstring)."""
    signal = inv2 > HEAD_FRACTION * np.percentile(inv2, 99)
    head = largest_component(ndimage.binary_closing(signal, ball(4.0, spacing)))
    return filled(head)
