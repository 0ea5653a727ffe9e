"""Cross-sectional white-matter lesion segmentation from FLAIR and T1w.

The FLAIR comes bias-corrected and divided by the local NAWM level
(:mod:`msqmri.lesions.normalization`), so that 1 is normal white matter everywhere, the brainstem
included. Lesions are then found as outliers of the normal tissues, in the spirit of lesion growth
and outlier detection (Schmidt et al., NeuroImage 2012, LST; Van Leemput et al., IEEE TMI 2001;
Garcia-Lorenzo et al., Med Image Anal 2013):

1. **Seeds**: voxels of the white-matter territory (the session's WM fraction or the MNI WM prior
   warped to the session, whichever is larger: lesions, dark on T1w, drop out of the former) above a
   threshold that follows the tissue the template expects there: in white matter, ``K_WM`` robust SDs
   of the NAWM (at least 20 %) above it; where the template expects grey matter (cortex, deep GM,
   which may be as bright as 1.3 x WM, and the GM/WM border), above the upper tail of normal grey
   matter (its 99.5th percentile, which takes in the mildly hyperintense cortex, plus ``K_GM`` robust
   SDs); in between, linearly. Seeds must also not be brighter than WM on T1w (T1w-informed evidence:
   T2 lesions are iso- to hypointense on T1w; FLAIR-bright, T1-bright voxels are not lesion), nor lie in
   the template's CSF (choroid plexus, flow artefacts) or its septum pellucidum (the midline between the
   lateral ventricles, :mod:`msqmri.anat.template`).
2. **Rejection** of the seed clusters that are known false positives of FLAIR thresholds (Filippi et
   al., Lancet Neurol 2016; Commowick et al., Sci Rep 2018): clusters lying mostly in cortex (cortical
   partial volume and mildly hyperintense cortex), mostly in the template's CSF (choroid plexus, flow
   artefacts in the ventricles and the cisterns, infratentorial CSF), mostly surrounded by CSF (the
   septum pellucidum, choroid plexus), or thin layers along the ventricles: clusters thinner than
   ``LINING_MM`` whose voxels lie on average within ``LINING_MM`` of the ventricular CSF (the ependyma and
   the periventricular caps and rims, normal findings that MAGNIMS does not count as periventricular
   lesions; Filippi et al., Lancet Neurol 2016). The partial volume of a bright ependyma reaches one or two
   voxels into the white matter at 1 mm, so the distance is in mm, not a one-voxel shell.
3. **Extent**: around each remaining seed cluster, every connected voxel that is at least half lesion:
   above half-way from its normal background (WM, or GM where the template says cortex) to the lesion
   level, the session's pure-lesion FLAIR (the median of the seed clusters' interiors) or the cluster's
   own 90th percentile when that is brighter. Seed voxels below that level are not lesion; a small
   lesion, whose voxels are all partial volume, keeps those half-way to its brightest. A bright
   structure next to a lesion (the septum beside a periventricular lesion) is not taken in, since it is
   not half lesion.
4. The rejection again on the grown clusters, and clusters smaller than the minimum size (3 mm^3 by
   default, the MSSEG-2 convention) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage

from msqmri.lesions.components import CONNECTIVITY, MIN_INTERIOR, label_lesions, remove_small, robust_stats

#: robust SDs above the NAWM (and the least contrast), and above the upper tail of grey matter, of a seed
K_WM, MIN_CONTRAST, K_GM = 5.0, 0.2, 2.0
#: the upper tail of normal grey matter (percentile of the confident GM voxels)
GM_TAIL_PERCENTILE = 99.5
#: a seed's T1w may exceed the local WM level by at most this many robust SDs of NAWM T1w
K_T1W = 2.0
#: the lesion's own level: this percentile of its seed voxels
LEVEL_PERCENTILE = 90.0
#: the extent of a lesion reaches at most this far (mm) from its seeds
GROW_MM = 5.0
#: WM territory: the larger of the WM fraction and the WM prior at least this
WM_TERRITORY = 0.4
#: rejection: mean template CSF prior of a cluster in CSF, share of CSF in a cluster's one-voxel shell, and
#: the thickness (mm) under which a cluster whose mean distance to the ventricular CSF is also under it is a
#: lining; a cortical cluster is one where the template expects more GM than WM
REJECT_CSF, REJECT_SHELL_CSF = 0.5, 0.6
LINING_MM = 2.5


def near_ventricles(ventricles: np.ndarray) -> np.ndarray:
    """The template's ventricles (warped, 0-1) widened by two voxels, where the session's CSF is ventricle."""
    return ndimage.binary_dilation(ventricles >= 0.5, CONNECTIVITY, iterations=2)


@dataclass(frozen=True)
class Tissues:
    """What the segmentation compares the FLAIR against, on the T1w grid: the session's brain mask and
    CSF/GM/WM fractions, the MNI priors warped to the session (csf, gm, wm), the template's ventricles
    and septum warped (0-1) and the bias-corrected T1w."""

    brain: np.ndarray
    fractions: dict[str, np.ndarray]
    priors: dict[str, np.ndarray]
    ventricles: np.ndarray
    septum: np.ndarray
    t1w: np.ndarray
    voxel_size: tuple[float, ...]

    @property
    def voxel_mm3(self) -> float:
        return float(np.prod(self.voxel_size))

    def nawm(self) -> np.ndarray:
        """Confident normal white matter (the NAWM reference)."""
        return self.brain & (self.fractions["wm"] >= 0.9) & (self.priors["wm"] >= 0.5)

    def cortex_and_deep_gm(self) -> np.ndarray:
        """Confident grey matter (the GM reference)."""
        return self.brain & (self.fractions["gm"] >= 0.9) & (self.priors["gm"] >= 0.5)

    def wm_territory(self) -> np.ndarray:
        return self.brain & (np.maximum(self.fractions["wm"], self.priors["wm"]) >= WM_TERRITORY)

    def ventricular_csf(self) -> np.ndarray:
        """CSF of the session inside the (dilated) template ventricles."""
        return self.brain & near_ventricles(self.ventricles) & (self.fractions["csf"] >= 0.5)

    @cached_property
    def to_ventricles(self) -> np.ndarray:
        """Distance (mm) to the ventricular CSF."""
        return ndimage.distance_transform_edt(~self.ventricular_csf(), sampling=self.voxel_size).astype(np.float32)

    def grey_share(self) -> np.ndarray:
        """How much the template expects grey matter rather than white: 0 in WM, 1 where GM is at least
        as likely as WM."""
        gm, wm = self.priors["gm"], self.priors["wm"]
        return np.clip(2.0 * gm / np.maximum(gm + wm, 1e-6), 0.0, 1.0)

    def not_lesion(self) -> np.ndarray:
        """Voxels no lesion is looked for in: the template's CSF and its septum pellucidum."""
        return (self.priors["csf"] >= 0.5) | (self.septum >= 0.5)


@dataclass(frozen=True)
class Segmentation:
    """A lesion mask and the levels that defined it (normalised FLAIR: NAWM = 1)."""

    mask: np.ndarray
    nawm_sd: float
    gm_level: float
    gm_sd: float
    wm_threshold: float
    gm_threshold: float
    lesion_level: float
    rejected: dict[str, int]


def segment(
    flair: np.ndarray, tissues: Tissues, min_size_mm3: float, k_wm: float = K_WM, k_gm: float = K_GM
) -> Segmentation:
    """Lesions of one session from its normalised FLAIR (module docstring)."""
    flair = np.asarray(flair, dtype=np.float32)
    nawm = tissues.nawm()
    if not nawm.any():
        raise ValueError("no confident white matter to take the NAWM intensity from")
    _, nawm_sd = robust_stats(flair[nawm])
    gm_ref = tissues.cortex_and_deep_gm()
    gm_level, gm_sd = robust_stats(flair[gm_ref]) if gm_ref.any() else (1.0, nawm_sd)
    wm_threshold = 1.0 + max(k_wm * nawm_sd, MIN_CONTRAST)
    gm_threshold = max(gm_level, float(np.percentile(flair[gm_ref], GM_TAIL_PERCENTILE)) if gm_ref.any() else 0.0)
    gm_threshold = max(wm_threshold, gm_threshold + k_gm * gm_sd)
    threshold = wm_threshold + tissues.grey_share() * (gm_threshold - wm_threshold)
    t1w_level, t1w_sd = robust_stats(tissues.t1w[nawm])
    allowed = tissues.wm_territory() & ~tissues.not_lesion()
    seeds = allowed & (flair > threshold) & (tissues.t1w <= t1w_level + K_T1W * t1w_sd)
    seeds, rejected = _reject(seeds, tissues)
    lesion_level = pure_lesion_level(flair, seeds)
    grown = _extent(flair, seeds, tissues, gm_level, lesion_level) & (allowed | seeds)
    mask, after_growth = _reject(grown, tissues)
    mask = remove_small(mask, tissues.voxel_mm3, min_size_mm3)
    rejected = {name: count + after_growth[name] for name, count in rejected.items()}
    return Segmentation(mask, nawm_sd, gm_level, gm_sd, wm_threshold, gm_threshold, lesion_level, rejected)


def pure_lesion_level(flair: np.ndarray, seeds: np.ndarray) -> float:
    """The FLAIR of pure lesion: the median over the seed clusters' interiors (eroded), or the
    :data:`LEVEL_PERCENTILE` of all seeds when they have fewer than :data:`MIN_INTERIOR` interior voxels."""
    if not seeds.any():
        return float("nan")
    interior = ndimage.binary_erosion(seeds, CONNECTIVITY)
    if interior.sum() >= MIN_INTERIOR:
        return float(np.median(flair[interior]))
    return float(np.percentile(flair[seeds], LEVEL_PERCENTILE))


def _extent(flair: np.ndarray, seeds: np.ndarray, tissues: Tissues, gm_level: float, lesion_level: float) -> np.ndarray:
    """Every voxel connected to a seed cluster that is at least half lesion (module docstring)."""
    labels, n = label_lesions(seeds)
    if n == 0:
        return np.zeros(seeds.shape, dtype=bool)
    levels = np.zeros(n + 1)
    levels[1:] = [max(lesion_level, np.percentile(flair[labels == k], LEVEL_PERCENTILE)) for k in range(1, n + 1)]
    distance, nearest = ndimage.distance_transform_edt(labels == 0, sampling=tissues.voxel_size, return_indices=True)
    level = levels[labels[tuple(nearest)]]
    wm, gm = tissues.priors["wm"], tissues.priors["gm"]
    background = np.where(wm + gm > 0.1, (wm + gm * gm_level) / np.maximum(wm + gm, 1e-6), 1.0)
    above = tissues.brain & (distance <= GROW_MM) & (flair > background + 0.5 * (level - background))
    grown, _ = label_lesions(above)
    keep = np.unique(grown[seeds])
    extent = np.isin(grown, keep[keep > 0])
    # a seed cluster with no voxel half lesion (a small lesion, all partial volume): its voxels at least
    # half-way from the background to its brightest
    index = np.arange(1, n + 1)
    faint = np.zeros(n + 1, dtype=bool)
    faint[1:] = ndimage.maximum(above, labels, index) == 0
    peak = np.zeros(n + 1)
    peak[1:] = ndimage.maximum(flair, labels, index)
    return extent | (faint[labels] & (flair >= background + 0.5 * (peak[labels] - background)))


def _reject(mask: np.ndarray, tissues: Tissues) -> tuple[np.ndarray, dict[str, int]]:
    """``mask`` without the clusters that look like the known false positives (module docstring)."""
    labels, n = label_lesions(mask)
    counts = {"cortex": 0, "csf": 0, "surrounded_by_csf": 0, "ventricle_lining": 0}
    if n == 0:
        return mask, counts
    index = np.arange(1, n + 1)

    def mean(values: np.ndarray, where: np.ndarray = labels) -> np.ndarray:
        """Mean of ``values`` over each cluster's voxels of ``where`` (0 where it has none)."""
        counts = np.bincount(where.ravel(), minlength=n + 1)[1:]
        sums = np.bincount(where.ravel(), weights=np.asarray(values, dtype=np.float64).ravel(), minlength=n + 1)[1:]
        return np.divide(sums, counts, out=np.zeros(n), where=counts > 0)

    shell = np.where(mask, 0, ndimage.grey_dilation(labels, footprint=CONNECTIVITY))
    thickness = 2.0 * np.asarray(
        ndimage.maximum(ndimage.distance_transform_edt(mask, sampling=tissues.voxel_size), labels, index)
    )
    reasons = {
        "cortex": mean(tissues.priors["gm"]) > mean(tissues.priors["wm"]),
        "csf": mean(tissues.priors["csf"]) > REJECT_CSF,
        "surrounded_by_csf": mean(tissues.fractions["csf"] >= 0.5, shell) > REJECT_SHELL_CSF,
        "ventricle_lining": (mean(tissues.to_ventricles) <= LINING_MM) & (thickness < LINING_MM),
    }
    drop = np.zeros(n, dtype=bool)
    for name, hit in reasons.items():
        counts[name] = int((hit & ~drop).sum())
        drop |= hit
    return np.isin(labels, index[~drop]), counts
