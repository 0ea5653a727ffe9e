"""SIENAX-like cross-sectional volumes (Smith et al., NeuroImage 2002).

Tissue volumes are sums of partial-volume fractions (lesions counted as WM, as ``sienax -lm``);
``vscale`` is the volume scaling of the affine that maps the subject's intracranial mask onto the
template's, so ``normalized = volume * vscale`` removes head size without absorbing atrophy (the
skull-constrained normalisation of SIENAX; here the skull constraint is the ICV boundary).
"""

from __future__ import annotations

import ants
import numpy as np

from msqmri.anat import template
from msqmri.core.registration import register

#: resolution (mm) at which the intracranial masks are registered
VSCALE_RESOLUTION = 2.0


def tissue_volumes(
    fractions: dict[str, np.ndarray], lesion: np.ndarray | None, voxel_ml: float
) -> dict[str, float | None]:
    """GM, WM, CSF, brain (GM + WM) and lesion volumes in ml (lesion None when no mask was given)."""
    gm = float(fractions["gm"].sum(dtype=np.float64)) * voxel_ml
    wm = float(fractions["wm"].sum(dtype=np.float64)) * voxel_ml
    csf = float(fractions["csf"].sum(dtype=np.float64)) * voxel_ml
    lesion_ml = float(lesion.sum()) * voxel_ml if lesion is not None else None
    return {
        "brain_volume_ml": gm + wm,
        "gm_volume_ml": gm,
        "wm_volume_ml": wm,
        "csf_volume_ml": csf,
        "lesion_volume_ml": lesion_ml,
    }


def volume_scaling(icv: ants.ANTsImage, seed: int = 1) -> float:
    """Determinant of the 12-parameter affine taking the subject ICV mask onto the template ICV mask."""
    fixed = template.image("icv", VSCALE_RESOLUTION)
    moving = ants.resample_image(icv, (VSCALE_RESOLUTION,) * 3, False, 0)
    reg = register(fixed, moving, seed, type_of_transform="Affine", aff_metric="meansquares")
    matrix = np.asarray(ants.read_transform(reg["fwdtransforms"][0]).parameters[:9]).reshape(3, 3)
    # the transform maps template points to subject points: its inverse scales the subject onto the template
    return float(1.0 / abs(np.linalg.det(matrix)))
