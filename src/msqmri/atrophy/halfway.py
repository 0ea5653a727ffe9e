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

from msqmri.brain_extraction import white_matter_level
from msqmri.io import MsqmriError

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
#: LPS (ITK) <-> RAS (NIfTI) flip of world coordinates
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
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
        img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), self.affine)
        img.header.set_xyzt_units("mm")
        image = ants.from_nibabel_nifti(img)
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


def read_matrix(path: str) -> np.ndarray:
    """An ITK affine transform file as a 4x4 RAS matrix (ITK maps fixed points to moving points)."""
    tx = ants.read_transform(path)
    linear = np.asarray(tx.parameters[:9], dtype=float).reshape(3, 3)
    translation = np.asarray(tx.parameters[9:12], dtype=float)
    centre = np.asarray(tx.fixed_parameters, dtype=float)
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = translation + centre - linear @ centre
    return _FLIP @ lps @ _FLIP


def write_matrix(matrix: np.ndarray, path: str) -> str:
    """A 4x4 RAS matrix as an ITK affine transform file (for ``initial_transform``)."""
    lps = _FLIP @ matrix @ _FLIP
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=lps[:3, :3], translation=lps[:3, 3], center=(0, 0, 0)
    )
    ants.write_transform(tx, path)
    return path


def _register(fixed: ants.ANTsImage, moving: ants.ANTsImage, mask: np.ndarray, kind: str, seed: int,
              initial: np.ndarray | None, tmpdir: str, metric: str = "meansquares") -> np.ndarray:
    """One antspyx linear registration restricted to ``mask`` (fixed grid); 4x4 RAS, fixed -> moving points."""
    init = write_matrix(initial, f"{tmpdir}/init_{kind}.mat") if initial is not None else None
    reg = ants.registration(
        fixed=fixed, moving=moving, type_of_transform=kind, initial_transform=init, random_seed=seed,
        mask=fixed.new_image_like(mask.astype(np.float32)), outprefix=f"{tmpdir}/{kind}_", aff_metric=metric,
        **_LINEAR,
    )  # fmt: skip
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
    moving_scale = about(rotation @ scale @ rotation.T, skull[:3, :3] @ centroid(fixed.brain, fixed.affine)
                         + skull[:3, 3])
    initial = np.linalg.inv(moving_scale) @ skull  # rigid part of the skull transform
    refined = _register(fixed_img, _rescaled(moving_img, moving_scale), brain_region, "Rigid", seed,
                        initial, tmpdir)
    return moving_scale @ refined, scale


def _on_grid(mask: ants.ANTsImage) -> np.ndarray:
    """A mask resampled (linearly) onto the registration grid, back to binary."""
    return mask.numpy() >= 0.5


def ras_affine(image: ants.ANTsImage) -> np.ndarray:
    """The voxel -> RAS mm affine of an ANTs image (ITK stores LPS origin, spacing and direction)."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.direction) * np.asarray(image.spacing)[None, :]
    lps[:3, 3] = image.origin
    return _FLIP @ lps


def _rescaled(image: ants.ANTsImage, transform: np.ndarray) -> ants.ANTsImage:
    """``image`` with its world coordinates mapped through ``inv(transform)`` (a header change, no resampling)."""
    img = nib.Nifti1Image(image.numpy(), np.linalg.inv(transform) @ ras_affine(image))
    img.header.set_xyzt_units("mm")
    return ants.from_nibabel_nifti(img)


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
