"""The MNI ICBM152 2009a symmetric template (Fonov et al. 2011), as nilearn ships it.

No download happens: nilearn's wheel carries the 1 mm skull-stripped T1 and the GM/WM probability
maps. This module derives the images brain extraction and segmentation need from them.
"""

from __future__ import annotations

import functools

import ants
import numpy as np
from scipy import ndimage

#: BIDS space label of the template
SPACE = "MNI152NLin2009aSym"


@functools.lru_cache(maxsize=1)
def paths() -> dict[str, str]:
    """Paths of the template T1w, GM and WM probability maps in nilearn's data folder."""
    from nilearn import datasets

    t1 = str(datasets.MNI152_FILE_PATH)
    return {"t1w": t1, "gm": t1.replace("_t1_", "_gm_"), "wm": t1.replace("_t1_", "_wm_")}


def intracranial(t1w: np.ndarray) -> np.ndarray:
    """The template's intracranial mask: the skull-stripped extent, lightly smoothed, holes filled."""
    return ndimage.binary_fill_holes(ndimage.gaussian_filter((t1w > 0).astype(np.float32), 1.0) > 0.5)


@functools.lru_cache(maxsize=4)
def images(resolution: float = 1.0) -> dict[str, ants.ANTsImage]:
    """Template images at ``resolution`` mm: ``t1w``, ``brain`` (GM+WM >= 0.5, hole-filled),
    ``icv`` (intracranial: the skull-stripped extent) and the ``csf``, ``gm``, ``wm`` priors (sum to 1 in ICV).
    """
    p = paths()
    t1 = ants.image_read(p["t1w"])
    gm = ants.image_read(p["gm"]).numpy() / 255.0
    wm = ants.image_read(p["wm"]).numpy() / 255.0
    icv = intracranial(t1.numpy())
    brain = ndimage.binary_fill_holes(gm + wm >= 0.5)
    csf = np.where(icv, np.clip(1.0 - gm - wm, 0.0, 1.0), 0.0)
    arrays = {"t1w": t1.numpy(), "brain": brain, "icv": icv, "csf": csf, "gm": gm, "wm": wm}
    out = {name: t1.new_image_like(np.asarray(a, dtype=np.float32)) for name, a in arrays.items()}
    if resolution != 1.0:
        out = {name: ants.resample_image(img, (resolution,) * 3, False, 0) for name, img in out.items()}
    return out


def warped(name: str, like: ants.ANTsImage, transform: str) -> np.ndarray:
    """Template image ``name`` (e.g. ``wm``, ``brain``) brought onto the grid of ``like`` through the
    template -> session ``transform`` (linear interpolation)."""
    moved = ants.apply_transforms(fixed=like, moving=images(1.0)[name], transformlist=[transform], interpolator="linear")
    return moved.numpy()
