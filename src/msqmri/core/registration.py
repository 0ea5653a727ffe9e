"""Within-session rigid registration (antspyx, mutual information; Avants et al. 2008).

Used for FLAIR -> T1w; the transform is saved as an ITK ``.mat`` with a BIDS ``from-_to-`` name and
the moving image is resampled once onto the T1w grid.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from msqmri.core.io import atomic_path, load_nifti, save_array


def ants_image(data: np.ndarray, affine: np.ndarray) -> ants.ANTsImage:
    """A 3D array on the grid ``affine`` (voxel -> RAS mm) as a float32 ANTs image.

    The ITK geometry is built from the affine itself (LPS origin, column norms as spacing, the
    normalised columns as direction), so a sheared affine keeps its shear: nibabel's converter
    would de-shear it and refuse float32 header zooms that differ from the columns in the 5th digit.
    """
    lps = FLIP[:3, :3] @ np.asarray(affine, dtype=float)[:3, :]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    return ants.from_numpy(
        np.asarray(data, dtype=np.float32),
        origin=lps[:, 3].tolist(),
        spacing=spacing.tolist(),
        direction=lps[:, :3] / spacing,
    )


def ras_affine(image: ants.ANTsImage) -> np.ndarray:
    """The voxel -> RAS mm affine of an ANTs image (ITK stores LPS origin, spacing and direction)."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.direction) * np.asarray(image.spacing)[None, :]
    lps[:3, 3] = image.origin
    return FLIP @ lps


def register(fixed: ants.ANTsImage, moving: ants.ANTsImage, seed: int, **options: Any) -> dict[str, Any]:
    """``ants.registration`` with ANTs's ``--random-seed``, so a rerun gives the same transform.

    antspyx passes a seed to antsRegistration only from its global config (a ``random_seed=`` keyword
    is swallowed by ``**kwargs``), and without it the sampling jitter differs on every call.
    """
    previous = ants.config._random_seed
    ants.config._random_seed = seed
    try:
        return ants.registration(fixed=fixed, moving=moving, **options)
    finally:
        ants.config._random_seed = previous


#: RAS <-> LPS (ITK's physical space)
FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def read_matrix(path: str) -> np.ndarray:
    """An ITK affine transform file as a 4x4 RAS matrix (ITK maps fixed points to moving points)."""
    tx = ants.read_transform(path)
    linear = np.asarray(tx.parameters[:9], dtype=float).reshape(3, 3)
    translation = np.asarray(tx.parameters[9:12], dtype=float)
    centre = np.asarray(tx.fixed_parameters, dtype=float)
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = translation + centre - linear @ centre
    return FLIP @ lps @ FLIP


def write_matrix(matrix: np.ndarray, path: str) -> str:
    """A 4x4 RAS matrix as an ITK affine transform file (for ``initial_transform``)."""
    lps = FLIP @ matrix @ FLIP
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=lps[:3, :3], translation=lps[:3, 3], center=(0, 0, 0)
    )
    ants.write_transform(tx, path)
    return path


def to_ants(path: str | os.PathLike[str]) -> ants.ANTsImage:
    """A validated 3D NIfTI as an ANTs image (one-line error naming the file otherwise)."""
    img, data = load_nifti(path, ndim=3)
    return ants_image(data, img.affine)


def to_ants_averaged(path: str | os.PathLike[str], seed: int = 1) -> ants.ANTsImage:
    """A validated 3D NIfTI as an ANTs image, or the average of a 4D series of repeated acquisitions (a T1w
    stored with its averages as volumes) after rigid realignment of every volume to the first, as
    fMRIPrep averages several T1w runs (Esteban et al. 2019)."""
    img, data = load_nifti(path, ndim=(3, 4))
    if data.ndim == 3:
        return ants_image(data, img.affine)
    first = ants_image(data[..., 0], img.affine)
    volumes = [data[..., 0]]
    for k in range(1, data.shape[3]):
        transform = rigid_matrix(ants_image(data[..., k], img.affine), first, seed)
        volumes.append(realign(data[..., k], img.affine, transform))
    return ants_image(np.mean(volumes, axis=0), img.affine)


def rigid(moving: ants.ANTsImage, fixed: ants.ANTsImage, seed: int = 1) -> str:
    """Path of the rigid (6 parameter) transform taking ``fixed`` points to ``moving`` points."""
    return register(fixed, moving, seed, type_of_transform="Rigid", aff_metric="mattes")["fwdtransforms"][0]


def rigid_matrix(moving: ants.ANTsImage, fixed: ants.ANTsImage, seed: int = 1, **options: Any) -> np.ndarray:
    """The rigid transform (4x4 RAS, fixed -> moving points) by Mattes mutual information; ``options``
    are antspyx registration parameters (pyramid, iterations)."""
    reg = register(fixed, moving, seed, type_of_transform="Rigid", aff_metric="mattes", **options)
    return read_matrix(reg["fwdtransforms"][0])


def realign(volume: np.ndarray, affine: np.ndarray, transform: np.ndarray, order: int = 1) -> np.ndarray:
    """``volume`` resampled (spline of ``order``: 1 trilinear, 3 cubic) at the points ``transform``
    (world, reference -> volume) maps the reference grid to."""
    voxels = np.linalg.inv(affine) @ transform @ affine
    out = ndimage.affine_transform(volume, voxels[:3, :3], voxels[:3, 3], order=order, mode="constant", cval=0.0)
    return out.astype(np.float32)


def rigid_parameters(transforms: np.ndarray) -> np.ndarray:
    """Translations (mm) and rotations about x, y, z (rad, ZYX Euler) of (n, 4, 4) rigid transforms, shape (n, 6)."""
    rotation = transforms[:, :3, :3]
    rx = np.arctan2(rotation[:, 2, 1], rotation[:, 2, 2])
    ry = np.arcsin(np.clip(-rotation[:, 2, 0], -1, 1))
    rz = np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])
    return np.column_stack([transforms[:, :3, 3], rx, ry, rz])


def register_to_t1w(
    moving_path: str | os.PathLike[str],
    t1w_path: str | os.PathLike[str],
    transform_out: str | os.PathLike[str],
    resampled_out: str | os.PathLike[str],
    seed: int = 1,
    interpolator: str = "linear",
) -> None:
    """Rigidly register an image of the session to its T1w; write the transform and the resampled image
    (``interpolator``: an ANTs interpolator, e.g. ``lanczosWindowedSinc`` where blurring matters)."""
    moving, fixed = to_ants(moving_path), to_ants_averaged(t1w_path, seed)
    transform = rigid(moving, fixed, seed)
    with atomic_path(transform_out) as tmp:
        shutil.copyfile(transform, tmp)
    resampled = ants.apply_transforms(fixed=fixed, moving=moving, transformlist=[transform], interpolator=interpolator)
    save_array(resampled.numpy(), nib.load(os.fspath(t1w_path)).affine, resampled_out, np.float32)


def map_to_t1w(
    data: np.ndarray, affine: np.ndarray, t1w_img: nib.Nifti1Image, transform: str | os.PathLike[str]
) -> np.ndarray:
    """A map on the grid ``affine`` resampled onto the T1w grid through the ``transform`` of its
    acquisition to the T1w (linear interpolation)."""
    fixed = ants_image(np.zeros(t1w_img.shape[:3], dtype=np.float32), t1w_img.affine)
    moved = ants.apply_transforms(
        fixed=fixed, moving=ants_image(data, affine), transformlist=[os.fspath(transform)], interpolator="linear"
    )
    return moved.numpy()


def resample_mask(
    mask_path: str | os.PathLike[str],
    like: ants.ANTsImage,
    transform: str | os.PathLike[str] | None = None,
    invert: bool = False,
) -> np.ndarray:
    """A mask brought onto the grid of ``like`` (nearest neighbour), through ``transform`` (or its
    inverse) if given."""
    img, data = load_nifti(mask_path, ndim=3, allow_empty=True)
    mask = ants_image(data > 0.5, img.affine)
    if transform is None:
        moved = ants.resample_image_to_target(mask, like, interp_type="nearestNeighbor")
    else:
        moved = ants.apply_transforms(
            fixed=like,
            moving=mask,
            transformlist=[os.fspath(transform)],
            interpolator="nearestNeighbor",
            whichtoinvert=[invert],
        )
    return moved.numpy() > 0.5
