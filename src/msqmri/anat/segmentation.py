"""Three-class tissue segmentation (CSF, GM, WM partial volumes) with template priors.

Atropos (Avants et al., Neuroinformatics 2011): a Gaussian mixture with an MRF prior (beta 0.1),
initialised and weighted by the template's tissue probability maps warped to the subject.
Lesions given as a mask are assigned to WM, as SIENAX ``-lm`` does (Smith et al. 2002).
"""

from __future__ import annotations

import ants
import numpy as np

from msqmri.core.intensity import histogram_mode
from msqmri.core.io import private_tempdir

CLASSES = ("csf", "gm", "wm")


def segment(
    image: ants.ANTsImage, mask: ants.ANTsImage, priors: dict[str, ants.ANTsImage], prior_weight: float = 0.25
) -> dict[str, np.ndarray]:
    """Posterior probability of each class in ``CLASSES`` inside ``mask`` (zero outside), float32 arrays."""
    prior_list = [priors[c] * mask for c in CLASSES]
    # r=0: Atropos's constant internal seed (its default seeds from the clock, so reruns differed)
    with private_tempdir():  # antspyx leaves Atropos's prior and posterior files behind
        result = ants.atropos(a=image, x=mask, i=prior_list, m="[0.1,1x1x1]", c="[5,0]", priorweight=prior_weight, r=0)
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


def class_means(
    data: np.ndarray, posteriors: dict[str, np.ndarray], mask: np.ndarray, csf_region: np.ndarray | None = None
) -> dict[str, float]:
    """Pure-tissue intensity of each class: the histogram mode of its confidently classified voxels
    (CSF only inside ``csf_region`` when given, e.g. the template's ventricles: T1 black holes in the
    white matter are as dark as CSF, and at 3 mm they can outnumber the ventricles' pure voxels).

    The mode, not the mean or median: confident CSF voxels are mostly partial-volume sulcal voxels,
    whose intensities spread towards GM, while pure (ventricular) CSF forms the peak.
    """
    means = {}
    for c in CLASSES:
        region = mask & csf_region if c == "csf" and csf_region is not None else mask
        confident = region & (posteriors[c] > 0.9)
        if confident.sum() < 50:
            confident = region & (posteriors[c] >= np.max([posteriors[k] for k in CLASSES], axis=0))
        means[c] = histogram_mode(data[confident])
    return means


def partial_volumes(data: np.ndarray, means: dict[str, float], region: np.ndarray) -> dict[str, np.ndarray]:
    """Tissue fractions from a two-class mixing model along CSF < GM < WM intensities.

    A voxel between the CSF and GM means is a CSF/GM mixture, one between GM and WM a GM/WM
    mixture, the fraction linear in intensity (the mixel model of Santago & Gage 1993, as FSL FAST
    uses for its PVE maps). Zero outside ``region``.
    """
    c, g, w = means["csf"], means["gm"], means["wm"]
    wm = np.clip((data - g) / (w - g), 0.0, 1.0)
    gm = np.where(data <= g, np.clip((data - c) / (g - c), 0.0, 1.0), 1.0 - wm)
    csf = 1.0 - gm - wm
    return {name: np.where(region, v, 0.0).astype(np.float32) for name, v in (("csf", csf), ("gm", gm), ("wm", wm))}
