"""Imaging a subject anatomy: head pose in the scanner, acquisition grids, partial volume, bias, noise.

A voxel's tissue fractions are the mean over ``n**3`` sub-voxel samples of the continuous anatomy,
so partial volume follows the acquisition's voxel size. The scanner sees subject point ``x`` at
``drift * (R x + t)``: ``R, t`` is the head position, ``drift`` a gradient-calibration error that
scales the whole head. Bias fields are smooth multiplicative fields fixed to the scanner; noise is
Rician (magnitude of complex Gaussian noise, Gudbjartsson & Patz 1995).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.orientations import axcodes2ornt
from scipy.spatial.transform import Rotation

from msqmri.phantom.anatomy import Sampled, SubjectAnatomy, grid_points


@dataclass(frozen=True)
class Pose:
    """Subject-to-scanner transform ``w = drift * (R x + t)``."""

    rotation: np.ndarray
    translation: np.ndarray
    drift: float = 1.0

    def to_scanner(self, x: np.ndarray) -> np.ndarray:
        return self.drift * (x @ self.rotation.T + self.translation)

    def to_subject(self, w: np.ndarray) -> np.ndarray:
        rotation, translation = self.rotation.astype(w.dtype), self.translation.astype(w.dtype)
        return (w / w.dtype.type(self.drift) - translation) @ rotation

    def moved(self, rotation_deg: np.ndarray, translation_mm: np.ndarray, center: np.ndarray) -> Pose:
        """This pose followed by a small head motion about subject point ``center``."""
        extra = Rotation.from_euler("xyz", rotation_deg, degrees=True).as_matrix()
        rotation = self.rotation @ extra
        translation = self.rotation @ (center - extra @ center) + self.translation + translation_mm
        return Pose(rotation, translation, self.drift)

    def matrix(self) -> np.ndarray:
        """4x4 subject-to-scanner matrix."""
        out = np.eye(4)
        out[:3, :3] = self.drift * self.rotation
        out[:3, 3] = self.drift * self.translation
        return out


def random_pose(rng: np.random.Generator, max_rotation_deg: float, max_translation_mm: float, drift: float) -> Pose:
    """A random head position: rotations and translations uniform within the given bounds."""
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, 3)
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    return Pose(rotation, rng.uniform(-max_translation_mm, max_translation_mm, 3), drift)


def grid_axes(orientation: str) -> np.ndarray:
    """3x3 matrix whose columns are the world directions of the voxel axes.

    ``orientation`` is a nibabel axis code string (``RAS``, ``LAS``, ``LPS``, ``PIR``...) or
    ``oblique`` (RAS tilted by 14 degrees about x and 9 about z).
    """
    if orientation == "oblique":
        return Rotation.from_euler("xz", [14.0, 9.0], degrees=True).as_matrix()
    ornt = axcodes2ornt(tuple(orientation))
    axes = np.zeros((3, 3))
    for voxel_axis, (world_axis, flip) in enumerate(ornt):
        axes[int(world_axis), voxel_axis] = flip
    return axes


def make_grid(
    corners: np.ndarray, voxel_size: tuple[float, float, float], orientation: str, margin_mm: float = 6.0
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of a grid in ``orientation`` holding the scanner-space points ``corners``."""
    axes = grid_axes(orientation)
    vox = np.asarray(voxel_size, dtype=float)
    local = corners @ axes  # coordinates along each voxel axis, mm
    lo = local.min(0) - margin_mm
    shape = tuple(
        int(np.ceil((hi - low) / v)) + 1 for low, hi, v in zip(lo, local.max(0) + margin_mm, vox, strict=True)
    )
    affine = np.eye(4)
    affine[:3, :3] = axes * vox
    affine[:3, 3] = axes @ lo
    return shape, affine


def render(
    anatomy: SubjectAnatomy,
    session: int,
    atrophy_scale: float,
    pose: Pose,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    supersample: tuple[int, int, int],
    fibre: bool = False,
    regions: bool = False,
    slab: int = 8,
) -> Sampled:
    """Tissue fractions (X, Y, Z, T), lesion ids and, if asked, fibre directions in scanner space
    (X, Y, Z, 3) and region weights (X, Y, Z, R) of an acquisition grid.

    Each voxel averages ``prod(supersample)`` sub-voxel samples (per voxel axis: a thick slice is sampled
    along its thickness); computed in slabs to bound memory.
    """
    per_axis = np.asarray(supersample, dtype=float)
    offsets = (np.indices(supersample).reshape(3, -1).T + 0.5) / per_axis - 0.5  # (samples, 3) voxel units
    n = len(offsets)
    fracs, fibres, ids, weights = [], [], [], []
    for i0 in range(0, shape[0], slab):
        i1 = min(i0 + slab, shape[0])
        ijk = np.indices((i1 - i0, shape[1], shape[2]), dtype=np.float32).reshape(3, -1).T
        ijk[:, 0] += i0
        fine = (ijk[:, None, :] + offsets[None, :, :].astype(np.float32)).reshape(-1, 3)
        world = fine @ affine[:3, :3].T.astype(np.float32) + affine[:3, 3].astype(np.float32)
        sampled = anatomy.fractions(pose.to_subject(world), session, atrophy_scale, fibre, regions)
        m = len(ijk)
        fracs.append(sampled.frac.reshape(m, n, -1).mean(1))
        ids.append(sampled.lesion_id.reshape(m, n).max(1))
        if regions:
            weights.append(sampled.regions.reshape(m, n, -1).mean(1))
        if fibre:
            mean = sampled.fibre.reshape(m, n, 3).mean(1) @ pose.rotation.T
            fibres.append(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-6))
    return Sampled(
        np.concatenate(fracs).reshape(*shape, -1),
        np.concatenate(ids).reshape(shape),
        np.concatenate(fibres).reshape(*shape, 3).astype(np.float32) if fibre else None,
        np.concatenate(weights).reshape(*shape, -1) if regions else None,
    )


def bias_field(rng: np.random.Generator, shape: tuple[int, ...], affine: np.ndarray, amplitude: float) -> np.ndarray:
    """A smooth multiplicative field, ``exp`` of a random quadratic polynomial in scanner coordinates.

    Its log spans +/- ``log(1 + amplitude)`` over the image (0 gives a flat field).
    """
    if amplitude <= 0:
        return np.ones(shape, dtype=np.float32)
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1).T
    p = (ijk @ affine[:3, :3].T + affine[:3, 3]) / 100.0
    x, y, z = p.T
    basis = np.stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], axis=1)
    log_field = basis @ rng.standard_normal(9).astype(np.float32)
    log_field -= log_field.mean()
    log_field *= np.log1p(amplitude) / max(float(np.abs(log_field).max()), 1e-9)
    return np.exp(log_field).reshape(shape).astype(np.float32)


def coil_sensitivity(shape: tuple[int, ...], affine: np.ndarray, centre: np.ndarray, amplitude: float) -> np.ndarray:
    """Receive profile of a multichannel head coil: brighter towards the surface (``1 + amplitude`` at 90 mm
    from the head's ``centre``, scanner mm) and falling to about a third below the coil, in the neck
    (Roemer et al., MRM 1990: phased arrays trade a flat profile for surface gain)."""
    p = grid_points(shape, affine) - centre.astype(np.float32)
    radial = 1.0 + amplitude * np.minimum(np.linalg.norm(p, axis=1) / 90.0, 1.5) ** 2
    below = 0.35 + 0.65 / (1.0 + np.exp(-(p[:, 2] + 75.0) / 10.0))
    return (radial * below).reshape(shape).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of standard deviation ``sigma``."""
    if sigma <= 0:
        return signal.astype(np.float32)
    real = signal + rng.normal(0.0, sigma, signal.shape)
    imag = rng.normal(0.0, sigma, signal.shape)
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def store(image: np.ndarray, dtype: str) -> np.ndarray:
    """Cast to the on-disk type: integers are rounded and clipped to the type's range."""
    if dtype == "float32":
        return image.astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(np.rint(image), info.min, info.max).astype(dtype)
