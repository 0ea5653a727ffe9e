"""Diffusion tensor fit and scalar maps: FA, MD, AD, RD, principal eigenvector and colour FA.

The tensor (Basser, Mattiello & Le Bihan 1994) is fitted with dipy's TensorModel: weighted linear
least squares by default (WLS, Salvador et al. 2005; weights from the predicted signal, as in
Veraart et al. 2013), non-linear least squares or RESTORE (Chang, Jones & Pierpaoli 2005) on request.
Brain voxels are fitted in chunks so memory stays bounded whatever the image size, and chunks run in
a thread pool (numpy's linear algebra releases the GIL). FA follows Basser & Pierpaoli (1996);
eigenvalues are clipped at zero before the maps are computed, as MRtrix3 and FSL do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from dipy.reconst.dti import TensorModel

from msqmri.dwi.preprocessing import Gradients

FIT_METHODS = ("WLS", "NLLS", "RESTORE")
#: voxels per chunk of the fit (about 3 MB of float64 signal for 65 volumes)
CHUNK_VOXELS = 5000
#: scalar maps and their units
SCALARS = {"fa": "unitless", "md": "mm^2/s", "ad": "mm^2/s", "rd": "mm^2/s"}
#: highest b-value (s/mm^2) of the volumes the tensor is fitted on: above it the signal departs from a
#: mono-exponential decay (diffusional kurtosis, Jensen et al. 2005) and MD is biased low
TENSOR_MAX_B = 1500.0
#: b-values are written rounded or with the scanner's small deviations (1000 as 995-1005): a shell's b within
#: this fraction of the bound is in
SHELL_TOLERANCE = 0.02


@dataclass(frozen=True)
class TensorMaps:
    """Per-voxel tensor maps on the DWI grid (zero outside the mask); ``v1`` is (x, y, z, 3) in world RAS."""

    fa: np.ndarray
    md: np.ndarray
    ad: np.ndarray
    rd: np.ndarray
    v1: np.ndarray

    def scalars(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in SCALARS}

    def colour_fa(self) -> np.ndarray:
        """Direction-encoded colour FA (Pajevic & Pierpaoli 1999): |V1| x FA, RGB = world x, y, z."""
        return np.clip(np.abs(self.v1) * self.fa[..., None], 0.0, 1.0).astype(np.float32)


def eigen_maps(evals: np.ndarray) -> dict[str, np.ndarray]:
    """FA, MD, AD and RD from eigenvalues (..., 3) sorted in decreasing order (negatives clipped to 0)."""
    evals = np.clip(evals, 0.0, None)
    md = evals.mean(-1)
    norm = np.sqrt((evals**2).sum(-1))
    spread = np.sqrt(((evals - md[..., None]) ** 2).sum(-1))
    fa = np.divide(np.sqrt(1.5) * spread, norm, out=np.zeros_like(norm), where=norm > 0)
    return {"fa": np.clip(fa, 0.0, 1.0), "md": md, "ad": evals[..., 0], "rd": evals[..., 1:].mean(-1)}


def tensor_volumes(gradients: Gradients, max_b: float = TENSOR_MAX_B) -> np.ndarray:
    """The volumes the tensor is fitted on: the b=0 volumes and the shells up to ``max_b``; a series whose
    every shell lies above it (a single b=2000 shell, say) keeps its lowest shell."""
    keep = gradients.bvals <= max_b * (1 + SHELL_TOLERANCE)
    weighted = ~gradients.b0
    if weighted.any() and not (keep & weighted).any():
        keep = gradients.bvals <= gradients.bvals[weighted].min() * (1 + SHELL_TOLERANCE)
    return keep


def scheme_problem(gradients: Gradients, method: str) -> str | None:
    """Why the acquisition cannot support ``method``'s tensor fit, or None: the weighted directions
    must determine the 6 tensor elements, and RESTORE needs spare volumes to reject outliers."""
    g = gradients.bvecs[~gradients.b0]
    design = np.column_stack(
        [g[:, 0] ** 2, g[:, 1] ** 2, g[:, 2] ** 2, g[:, 0] * g[:, 1], g[:, 0] * g[:, 2], g[:, 1] * g[:, 2]]
    )
    rank = np.linalg.matrix_rank(design, tol=1e-6)
    if rank < 6:
        return f"the {len(g)} diffusion directions determine only {rank} of the 6 tensor elements"
    if method.upper() == "RESTORE" and len(gradients.bvals) <= 7:
        return f"RESTORE needs more than 7 volumes to reject outliers (this series has {len(gradients.bvals)})"
    return None


def fit_tensor(
    data: np.ndarray,
    gradients: Gradients,
    mask: np.ndarray,
    method: str = "WLS",
    sigma: float | None = None,
    threads: int = 1,
    chunk: int = CHUNK_VOXELS,
) -> TensorMaps:
    """Fit the tensor in every voxel of ``mask``; ``sigma`` (noise SD) is needed for RESTORE."""
    method = method.upper()
    if method not in FIT_METHODS:
        raise ValueError(f"unknown tensor fit {method!r}; choose one of {', '.join(FIT_METHODS)}")
    options = {"sigma": sigma} if method == "RESTORE" else {}
    if method == "RESTORE" and sigma is None:
        raise ValueError("RESTORE needs the noise standard deviation sigma")
    model = TensorModel(gradients.table(), fit_method=method, **options)
    index = np.flatnonzero(mask.ravel())
    starts = range(0, index.size, chunk)

    def fit(start: int) -> tuple[np.ndarray, np.ndarray]:
        # gather the chunk's voxels only (no copy of the whole series, whatever its memory order)
        voxels = np.asarray(data[np.unravel_index(index[start : start + chunk], mask.shape)], dtype=np.float64)
        result = model.fit(voxels)
        return result.evals, result.evecs[..., 0]

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        parts = list(pool.map(fit, starts))
    evals = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 3))
    v1 = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 3))
    shape = data.shape[:3]
    maps = {}
    for name, values in eigen_maps(evals).items():
        volume = np.zeros(int(np.prod(shape)), dtype=np.float32)
        volume[index] = np.nan_to_num(values)
        maps[name] = volume.reshape(shape)
    vectors = np.zeros((int(np.prod(shape)), 3), dtype=np.float32)
    vectors[index] = np.nan_to_num(v1)
    return TensorMaps(v1=vectors.reshape(*shape, 3), **maps)


def noise_sigma(data: np.ndarray, gradients: Gradients, mask: np.ndarray) -> float:
    """Noise SD from the spread of the b=0 volumes about their mean inside the mask (needs >= 2 b=0s),
    else dipy's local estimate (Manjon et al. 2010 style) over the mask."""
    b0 = data[..., gradients.b0]
    if b0.shape[-1] >= 2:
        residual = b0[mask] - b0[mask].mean(-1, keepdims=True)
        n = b0.shape[-1]
        return float(np.sqrt((residual**2).sum() / (residual.shape[0] * (n - 1))))
    from dipy.denoise.noise_estimate import estimate_sigma

    return float(np.median(estimate_sigma(data)))
