"""Three-class tissue segmentation (CSF, GM, WM partial volumes) with template priors.

Atropos (Avants et al., Neuroinformatics 2011): a Gaussian mixture with an MRF prior (beta 0.1),
initialised and weighted by the template's tissue probability maps warped to the subject.
Lesions given as a mask are assigned to WM, as SIENAX ``-lm`` does (Smith et al. 2002).
"""

from __future__ import annotations

import ants
import numpy as np

CLASSES = ("csf", "gm", "wm")


def segment(
    image: ants.ANTsImage, mask: ants.ANTsImage, priors: dict[str, ants.ANTsImage], prior_weight: float = 0.25
) -> dict[str, np.ndarray]:
    """Posterior probability of each class in ``CLASSES`` inside ``mask`` (zero outside), float32 arrays."""
    prior_list = [priors[c] * mask for c in CLASSES]
    result = ants.atropos(
        a=image, x=mask, i=prior_list, m="[0.1,1x1x1]", c="[5,0]", priorweight=prior_weight
    )
    return {c: p.numpy().astype(np.float32) for c, p in zip(CLASSES, result["probabilityimages"], strict=True)}


def fill_lesions(posteriors: dict[str, np.ndarray], lesion: np.ndarray | None) -> dict[str, np.ndarray]:
    """Partial-volume maps with every lesion voxel counted as WM."""
    if lesion is None or not lesion.any():
        return posteriors
    out = {c: np.where(lesion, 0.0, p).astype(np.float32) for c, p in posteriors.items()}
    out["wm"] = np.where(lesion, 1.0, posteriors["wm"]).astype(np.float32)
    return out


def hard_labels(posteriors: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """BIDS ``dseg``: 1 CSF, 2 GM, 3 WM (the most probable class) inside ``mask``, 0 outside."""
    stack = np.stack([posteriors[c] for c in CLASSES])
    return np.where(mask, stack.argmax(0) + 1, 0).astype(np.uint8)
