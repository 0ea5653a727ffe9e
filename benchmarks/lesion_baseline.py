"""A published cross-sectional baseline for msqmri's lesion segmentation, run on the same inputs.

Automated segmentation of MS lesions by model outlier detection (Van Leemput, Maes, Vandermeulen,
Colchester and Suetens, IEEE TMI 2001; the outlier model SAMSEG's lesion extension builds on, Cerri et al.,
NeuroImage 2021): a Gaussian mixture of CSF, GM and WM over the joint (log T1w, log FLAIR) intensities of
the brain, with the MNI tissue priors warped to the session as spatial priors, fitted by EM in which every
voxel's contribution is weighted by its *typicality* under its class (``t = N / (N + lambda)``, lambda the
density at Mahalanobis distance ``KAPPA``), so that outliers do not pull the classes; lesions are the
white-matter voxels more atypical than typical (WM membership x (1 - t_WM) >= 0.5) that are hyperintense
on FLAIR (beyond the GM class by 2 SD), in 26-connected components of at least the minimum size (the
minimum size stands in for the original's Markov random field). Bias fields
are removed by N4 first (the pipeline's T1w is already N4-corrected; the FLAIR registered to it is
corrected here), as Van Leemput et al. correct them inside their EM.

LST-AI (Wiltgen et al. 2024) and LST-LPA would be the obvious peers, but LST-AI downloads its network
weights at first run and LST-LPA needs MATLAB and SPM, neither of which this machine can reach.
"""

from __future__ import annotations

import numpy as np

from msqmri.lesions.components import remove_small

#: Mahalanobis distance at which a voxel is as much outlier as typical
KAPPA = 3.0
ITERATIONS = 12
CLASSES = ("csf", "gm", "wm")


def _gaussian(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, float]:
    """Density of ``x`` (N, D) under N(mean, cov), and the density at Mahalanobis distance KAPPA (lambda)."""
    d = x - mean
    m2 = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    norm = 1.0 / np.sqrt((2 * np.pi) ** x.shape[1] * np.linalg.det(cov))
    return norm * np.exp(-0.5 * m2), norm * float(np.exp(-0.5 * KAPPA**2))


def segment(
    t1w: np.ndarray,
    flair: np.ndarray,
    brain: np.ndarray,
    priors: dict[str, np.ndarray],
    voxel_mm3: float,
    min_size_mm3: float = 3.0,
) -> np.ndarray:
    """The outlier-model lesion mask of a session (module docstring); ``priors`` are the warped template's
    csf/gm/wm probabilities on the T1w grid."""
    inside = brain & (t1w > 0) & (flair > 0)
    x = np.stack([np.log(t1w[inside]), np.log(flair[inside])], axis=1)
    prior = np.stack([priors[c][inside] for c in CLASSES], axis=1) + 1e-3
    prior /= prior.sum(1, keepdims=True)
    means, covs = [], []
    for k in range(len(CLASSES)):
        sure = prior[:, k] > 0.9
        sure = sure if sure.sum() > 50 else prior[:, k] >= np.percentile(prior[:, k], 90)
        means.append(x[sure].mean(0))
        covs.append(np.cov(x[sure].T) + 1e-4 * np.eye(2))
    for _ in range(ITERATIONS):
        densities, lam = zip(*(_gaussian(x, means[k], covs[k]) for k in range(len(CLASSES))), strict=True)
        typical = [d / (d + lk) for d, lk in zip(densities, lam, strict=True)]
        membership = prior * np.stack([d + lk for d, lk in zip(densities, lam, strict=True)], axis=1)
        membership /= membership.sum(1, keepdims=True)
        weights = membership * np.stack(typical, axis=1)
        for k in range(len(CLASSES)):
            w = weights[:, k]
            means[k] = (w[:, None] * x).sum(0) / w.sum()
            d = x - means[k]
            covs[k] = (w[:, None, None] * np.einsum("ni,nj->nij", d, d)).sum(0) / w.sum() + 1e-4 * np.eye(2)
    wm, gm = CLASSES.index("wm"), CLASSES.index("gm")
    outlier = membership[:, wm] * (1 - typical[wm]) >= 0.5  # white-matter voxels more atypical than typical
    hyperintense = x[:, 1] > means[gm][1] + 2 * np.sqrt(covs[gm][1, 1])
    mask = np.zeros(brain.shape, dtype=bool)
    mask[inside] = outlier & hyperintense
    return remove_small(mask, voxel_mm3, min_size_mm3)
