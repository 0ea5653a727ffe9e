"""Skull-constrained two-way registration of two sessions and their halfway space.

SIENA's registration (Smith et al., NeuroImage 2002; Smith et al., J Comput Assist Tomogr 2001):
brain-to-brain rigid, then skull-to-skull affine of which only the scale/skew part is kept (the
skull does not atrophy, so a whole-head scale change is scanner drift and must not read as brain
loss), then brain-to-brain rigid again with that scale fixed. Done in both directions and averaged
(log-Euclidean mean of the two matrices), so swapping the sessions inverts the transform exactly.
Each image is then resampled once into the halfway space by the matrix square root, so both
undergo the same interpolation.

Registration uses antspyx (Avants et al. 2008/2011); matrices here are 4x4, in RAS millimetres,
and map points of one image's world to the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

import ants
import nibabel as nib
import numpy as np
from scipy import linalg, ndimage

from msqmri.core.intensity import white_matter_level
from msqmri.core.io import MsqmriError
from msqmri.core.morphology import near
from msqmri.core.registration import ants_image, ras_affine, read_matrix, register, write_matrix

#: halfway-space voxel size (mm), as SIENA resamples to 1 mm
HALFWAY_VOXEL_MM = 1.0
#: margin around the brains in the halfway grid (mm): room for the +-8 mm edge profiles
HALFWAY_MARGIN_MM = 12.0
#: the skull band used for the scale estimate, as distances (mm) outside the intracranial mask: past
#: the CSF next to the brain (which widens with atrophy), out to the scalp surface
SKULL_BAND_MM = (4.0, 20.0)
#: the brain registration sees the brain and this much around it (mm)
BRAIN_MARGIN_MM = 3.0
#: registrations run on images resampled to this voxel size (mm) when the scans are finer
REGISTRATION_VOXEL_MM = 2.0
#: the two sessions' brain masks are the same anatomy where they lie within this distance (mm) of each
#: other in halfway space: far beyond an interval's atrophy (2 % PBVC moves the edges about 0.2 mm), well
#: below a leak into dura, a sinus or the neck, or a brainstem cut at another level
SAME_ANATOMY_MM = 2.0
_LINEAR = {
    "aff_iterations": (1000, 500, 250),
    "aff_shrink_factors": (4, 2, 1),
    "aff_smoothing_sigmas": (2, 1, 0),
    "aff_random_sampling_rate": 0.5,
}


@dataclass
class Scan:
    """One session's bias-corrected T1w and masks on its own grid (``affine``: voxel -> RAS mm)."""

    image: np.ndarray
    affine: np.ndarray
    brain: np.ndarray  # brain mask (bool)
    icv: np.ndarray  # intracranial mask (bool)
    brain_fraction: np.ndarray  # GM + WM partial volume, 0-1

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(0)))

    def to_ants(self, data: np.ndarray, voxel_mm: float | None = None) -> ants.ANTsImage:
        """``data`` (on this scan's grid) as an ANTs image, resampled to ``voxel_mm`` when that is coarser."""
        image = ants_image(data, self.affine)
        if voxel_mm is None or min(self.spacing) >= voxel_mm:
            return image
        spacing = tuple(max(s, voxel_mm) for s in self.spacing)
        return ants.resample_image(image, spacing, use_voxels=False, interp_type=0)

    def normalised(self) -> ants.ANTsImage:
        """The image scaled so that white matter is 1 (same-contrast sessions compare by mean squares),
        on the registration grid."""
        return self.to_ants(self.image / white_matter_level(self.image, self.brain), REGISTRATION_VOXEL_MM)

    def within(self, mask: np.ndarray, low_mm: float, high_mm: float) -> np.ndarray:
        """Voxels whose distance outside ``mask`` is in (low_mm, high_mm] (low_mm < 0 includes the mask)."""
        distance = ndimage.distance_transform_edt(~mask, sampling=self.spacing)
        return (distance <= high_mm) & ((distance > low_mm) if low_mm >= 0 else True)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a 6-neighbour outside it."""
    return mask & ~ndimage.binary_erosion(mask, border_value=1)


def shared_brain(brain: np.ndarray, other: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """One session's brain fraction where the other session's mask (fraction >= 0.5) also has brain within
    :data:`SAME_ANATOMY_MM`: what one session's mask takes in alone (a leak, tissue below the other's
    brainstem cut) is the same anatomy in neither session and is left out of the measurement, as SIENA's
    standard-space masking (``-m``) leaves out what lies outside one mask for both sessions."""
    return np.where(near(other >= 0.5, spacing, SAME_ANATOMY_MM), brain, 0.0).astype(brain.dtype)


@dataclass
class Grid:
    """A RAS-aligned voxel grid (the halfway space)."""

    shape: tuple[int, int, int]
    affine: np.ndarray


@dataclass
class Registration:
    """The averaged two-way transform and what it consists of."""

    b_to_a: np.ndarray  # 4x4 RAS, maps points of session B to the same anatomy in session A
    skull_scale: np.ndarray  # 3x3 symmetric scale/skew (B -> A) from the skull
    inverse_consistency_mm: float  # how far the two directions disagree, at 80 mm from the centre

    @property
    def halfway_a(self) -> np.ndarray:
        """Halfway -> A points (the square root of B -> A)."""
        return matrix_root(self.b_to_a, 0.5)

    @property
    def halfway_b(self) -> np.ndarray:
        """Halfway -> B points."""
        return matrix_root(self.b_to_a, -0.5)

    @property
    def scale_percent(self) -> float:
        """Volume change of the skull scaling (%), i.e. the scanner scale drift corrected."""
        return float((np.linalg.det(self.skull_scale) - 1.0) * 100.0)


def matrix_root(matrix: np.ndarray, power: float) -> np.ndarray:
    """``matrix ** power`` of a 4x4 homogeneous transform, through the principal matrix logarithm."""
    return np.real(linalg.expm(power * np.real(linalg.logm(matrix))))


def log_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log-Euclidean mean of two transforms (symmetric: ``log_mean(inv b, inv a) = inv log_mean(a, b)``)."""
    return np.real(linalg.expm((np.real(linalg.logm(a)) + np.real(linalg.logm(b))) / 2.0))


def _register(
    fixed: ants.ANTsImage,
    moving: ants.ANTsImage,
    mask: np.ndarray,
    kind: str,
    seed: int,
    initial: np.ndarray | None,
    tmpdir: str,
    metric: str = "meansquares",
) -> np.ndarray:
    """One antspyx linear registration restricted to ``mask`` (fixed grid); 4x4 RAS, fixed -> moving points."""
    init = write_matrix(initial, f"{tmpdir}/init_{kind}.mat") if initial is not None else None
    reg = register(
        fixed,
        moving,
        seed,
        type_of_transform=kind,
        initial_transform=init,
        mask=fixed.new_image_like(mask.astype(np.float32)),
        outprefix=f"{tmpdir}/{kind}_",
        aff_metric=metric,
        **_LINEAR,
    )
    return read_matrix(reg["fwdtransforms"][0])


def scale_skew(matrix: np.ndarray) -> np.ndarray:
    """The symmetric positive factor S of the polar decomposition of the linear part (L = R S)."""
    _, s = linalg.polar(matrix[:3, :3], side="right")
    return s


def about(linear: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """A 4x4 transform applying ``linear`` about the point ``centre``."""
    out = np.eye(4)
    out[:3, :3] = linear
    out[:3, 3] = centre - linear @ centre
    return out


def centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World (RAS mm) centre of mass of a mask."""
    return nib.affines.apply_affine(affine, np.asarray(ndimage.center_of_mass(mask)))


def one_way(fixed: Scan, moving: Scan, seed: int, tmpdir: str) -> tuple[np.ndarray, np.ndarray]:
    """Skull-constrained transform, fixed -> moving points, and its skull scale/skew (SIENA's three steps)."""
    fixed_img, moving_img = fixed.normalised(), moving.normalised()
    brain_region = fixed.within(fixed.brain, -1.0, BRAIN_MARGIN_MM)
    skull_region = fixed.within(fixed.icv, *SKULL_BAND_MM)
    if not skull_region.any():
        raise MsqmriError("no skull around the intracranial mask: cannot constrain the scaling")
    brain_region = _on_grid(fixed.to_ants(brain_region, REGISTRATION_VOXEL_MM))
    skull_region = _on_grid(fixed.to_ants(skull_region, REGISTRATION_VOXEL_MM))
    rigid = _register(fixed_img, moving_img, brain_region, "Rigid", seed, None, tmpdir)
    # the scalp outside the bias-corrected region keeps some bias field: mutual information
    skull = _register(fixed_img, moving_img, skull_region, "Affine", seed, rigid, tmpdir, metric="mattes")
    scale = scale_skew(skull)
    # the scaling is fixed on the moving side (rotated into it), the rigid part refined on the brain
    rotation = linalg.polar(skull[:3, :3], side="right")[0]
    moving_scale = about(
        rotation @ scale @ rotation.T, skull[:3, :3] @ centroid(fixed.brain, fixed.affine) + skull[:3, 3]
    )
    initial = np.linalg.inv(moving_scale) @ skull  # rigid part of the skull transform
    refined = _register(fixed_img, _rescaled(moving_img, moving_scale), brain_region, "Rigid", seed, initial, tmpdir)
    return moving_scale @ refined, scale


def _on_grid(mask: ants.ANTsImage) -> np.ndarray:
    """A mask resampled (linearly) onto the registration grid, back to binary."""
    return mask.numpy() >= 0.5


def _rescaled(image: ants.ANTsImage, transform: np.ndarray) -> ants.ANTsImage:
    """``image`` with its world coordinates mapped through ``inv(transform)`` (a header change, no resampling)."""
    return ants_image(image.numpy(), np.linalg.inv(transform) @ ras_affine(image))


def register_pair(a: Scan, b: Scan, seed: int, tmpdir: str) -> Registration:
    """Average of B->A (B fixed) and the inverse of A->B (A fixed): the halfway transform is symmetric."""
    b_to_a, scale_ba = one_way(b, a, seed, tmpdir)
    a_to_b, scale_ab = one_way(a, b, seed, tmpdir)
    mean = log_mean(b_to_a, np.linalg.inv(a_to_b))
    skull = (scale_ba + np.linalg.inv(scale_ab)) / 2.0
    # disagreement of the two directions: displacement of points 80 mm from the centre
    residual = b_to_a @ a_to_b - np.eye(4)
    consistency = float(np.abs(residual[:3, :3]).sum(1).max() * 80.0 + np.linalg.norm(residual[:3, 3]))
    return Registration(b_to_a=mean, skull_scale=skull, inverse_consistency_mm=consistency)


def halfway_grid(scans: tuple[Scan, Scan], to_halfway: tuple[np.ndarray, np.ndarray]) -> Grid:
    """The 1 mm grid covering both brains in halfway space, plus a margin for the profiles."""
    corners = []
    for scan, transform in zip(scans, to_halfway, strict=True):
        index = np.argwhere(scan.brain)
        lo, hi = index.min(0), index.max(0)
        box = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        corners.append(nib.affines.apply_affine(transform @ scan.affine, box))
    points = np.concatenate(corners)
    lo = np.floor((points.min(0) - HALFWAY_MARGIN_MM) / HALFWAY_VOXEL_MM) * HALFWAY_VOXEL_MM
    hi = np.ceil((points.max(0) + HALFWAY_MARGIN_MM) / HALFWAY_VOXEL_MM) * HALFWAY_VOXEL_MM
    affine = np.diag([HALFWAY_VOXEL_MM] * 3 + [1.0])
    affine[:3, 3] = lo
    shape = tuple(int(n) + 1 for n in np.rint((hi - lo) / HALFWAY_VOXEL_MM))
    return Grid(shape=shape, affine=affine)  # type: ignore[arg-type]


def resample(
    data: np.ndarray, affine: np.ndarray, grid: Grid, grid_to_world: np.ndarray, order: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` sampled at the grid points mapped through ``grid_to_world`` (slab by slab).

    Returns the values (float32) and the field-of-view mask: points at least one voxel inside ``data``.
    """
    source = ndimage.spline_filter(data.astype(np.float64), order) if order > 1 else data.astype(np.float32)
    to_voxel = np.linalg.inv(affine) @ grid_to_world @ grid.affine
    out = np.empty(grid.shape, np.float32)
    inside = np.empty(grid.shape, bool)
    j, k = np.meshgrid(np.arange(grid.shape[1]), np.arange(grid.shape[2]), indexing="ij")
    limit = np.asarray(data.shape, dtype=float)[:, None] - 2.0
    for i in range(grid.shape[0]):
        ijk = np.stack([np.full(j.size, i), j.ravel(), k.ravel()])
        coords = to_voxel[:3, :3] @ ijk + to_voxel[:3, 3:]
        out[i] = ndimage.map_coordinates(source, coords, order=order, prefilter=False, mode="nearest").reshape(j.shape)
        inside[i] = ((coords >= 1.0) & (coords <= limit)).all(0).reshape(j.shape)
    return out, inside


def halfway_images(a: Scan, b: Scan, registration: Registration) -> tuple[Grid, dict[str, np.ndarray]]:
    """Both images (cubic B-spline) and brain fractions (linear) resampled once into the halfway grid,
    with each one's field of view ("a", "b", "brain_a", "brain_b", "inside_a", "inside_b")."""
    to_a, to_b = registration.halfway_a, registration.halfway_b
    grid = halfway_grid((a, b), (np.linalg.inv(to_a), np.linalg.inv(to_b)))
    out: dict[str, np.ndarray] = {}
    for key, scan, to_scan in (("a", a, to_a), ("b", b, to_b)):
        out[key], out[f"inside_{key}"] = resample(scan.image, scan.affine, grid, to_scan)
        out[f"brain_{key}"], _ = resample(scan.brain_fraction, scan.affine, grid, to_scan, order=1)
    return grid, out
