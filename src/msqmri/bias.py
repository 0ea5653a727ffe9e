"""Intensity non-uniformity correction: N4 (Tustison et al., IEEE TMI 2010) through antspyx."""

from __future__ import annotations

import ants


def n4(image: ants.ANTsImage, mask: ants.ANTsImage, weight: ants.ANTsImage | None = None) -> ants.ANTsImage:
    """Bias-corrected ``image``: N4 fitted inside ``mask`` (optionally weighted, e.g. by a WM probability).

    The shrink factor keeps the fit on a grid of about 4 mm, whatever the voxel size.
    """
    shrink = max(1, int(round(4.0 / min(image.spacing))))
    return ants.n4_bias_field_correction(
        image, mask=mask, weight_mask=weight, shrink_factor=shrink,
        convergence={"iters": [50, 50, 30], "tol": 1e-6},
    )  # fmt: skip
