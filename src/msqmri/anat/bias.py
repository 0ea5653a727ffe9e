"""Intensity non-uniformity correction: N4 (Tustison et al., IEEE TMI 2010) through antspyx."""

from __future__ import annotations

import ants
import numpy as np

#: the extrapolated field is kept within this factor of its median inside the mask
FIELD_RANGE = (0.25, 4.0)


def n4(image: ants.ANTsImage, mask: ants.ANTsImage, weight: ants.ANTsImage | None = None) -> ants.ANTsImage:
    """Bias-corrected ``image``: N4 fitted inside ``mask`` (optionally weighted, e.g. by a WM probability).

    The smooth B-spline field is applied to the whole image, normalised to a median of 1 inside the
    mask, so intensities keep their scale and nothing jumps at the mask boundary (ANTs' own output
    leaves voxels outside the mask uncorrected). The shrink factor keeps the fit on a grid of about
    4 mm, whatever the voxel size.
    """
    shrink = max(1, int(round(4.0 / min(image.spacing))))
    field = ants.n4_bias_field_correction(
        image,
        mask=mask,
        weight_mask=weight,
        shrink_factor=shrink,
        return_bias_field=True,
        convergence={"iters": [50, 50, 30], "tol": 1e-6},
    ).numpy()
    field = np.clip(field / np.median(field[mask.numpy() > 0]), *FIELD_RANGE)
    return image.new_image_like((image.numpy() / field).astype(np.float32))
