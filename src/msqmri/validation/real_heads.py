"""Real heads available offline, for tests and benchmarks beside the phantom.

Colin27 (Holmes et al., J Comput Assist Tomogr 1998: 27 averaged 1 mm T1w scans of one man, skull,
scalp, face and the top of the neck, in MNI space) as Debian's ``mricron-data`` package ships it
(``apt-get install mricron-data``), with the brain mask BET made of it (``ch2bet``, Smith 2002), an
independent reference: BET's mask takes in the subarachnoid CSF that a GM + WM brain mask leaves out.

:func:`scan_colin27` images Colin27 as a clinic scans a head: repositioned in the scanner (rotation about
the head's centre, translation), on a grid in any storage orientation (RAS, LAS, LPS, an oblique slab)
and voxel size (thick slices average their thickness), a field of view cut at the vertex or reaching
below the skull base, a smooth bias field and Rician noise. Colin27's own field of view stops at the top
of the neck (71 mm below the AC); a longer one is extended downward by repeating its lowest slice, a
cross-section of the neck with the spinal cord, muscles and the jaw. BET's mask goes through the same
mapping (trilinear, kept at >= 0.5), so the reference never passes through msqmri.

:func:`shrunk_brain` gives a known atrophy of that real anatomy: a smooth contraction of the brain and the
CSF next to it towards the brain's centre, fading out before the skull (which stays put), and its true
PBVC, BET's brain volume after the deformation over before (both by trilinear partial volume on Colin27's
1 mm grid).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from msqmri.core.io import save_array
from msqmri.phantom.acquisition import bias_field, make_grid, rician, store
from msqmri.phantom.anatomy import box_corners, grid_points

#: where mricron-data puts its templates (``MSQMRI_MRICRON_TEMPLATES`` overrides it)
MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
#: Colin27's white matter intensity (the mode of its WM peak) as mricron ships it (uint8)
COLIN_WM = 110.0
#: Colin27's intracranial volume (ml) by SAMSEG 0.4a0 from PyPI (Puonti et al., NeuroImage 2016; its sbTIV:
#: every intracranial structure, CSF included, bounded by the skull it segments), run on ``ch2.nii.gz`` as shipped
#: (``python benchmarks/structural.py --samseg PATH`` reruns it): the skull-bounded reference of its ICV
SAMSEG_ICV_ML = 1950.1


def colin27_dir() -> Path | None:
    """The directory holding ``ch2.nii.gz`` and ``ch2bet.nii.gz``, or None where mricron-data is missing."""
    folder = Path(os.environ.get("MSQMRI_MRICRON_TEMPLATES", MRICRON_TEMPLATES))
    return folder if (folder / "ch2.nii.gz").is_file() and (folder / "ch2bet.nii.gz").is_file() else None


@dataclass(frozen=True)
class Scan:
    """How Colin27 is scanned: head pose (degrees about x, y, z through the head's centre, then mm), grid,
    field of view in scanner z (mm from the AC; None: the whole head), neck length added below Colin27's
    field of view (mm), bias field amplitude, noise (sigma as a fraction of WM) and seed."""

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    voxel: tuple[float, float, float] = (1.0, 1.0, 1.0)
    orientation: str = "RAS"
    fov_z_mm: tuple[float, float] | None = None
    neck_mm: float = 0.0
    bias: float = 0.2
    noise: float = 0.03
    seed: int = 0


#: a point of the subject (Colin27's MNI mm) -> the point whose tissue it holds (a deformation), or None
Warp = Callable[[np.ndarray], np.ndarray] | None


#: the reference brain masks of Colin27: BET's (1 mm) and the better extraction mricron ships (0.5 mm)
REFERENCES = {"bet": "ch2bet.nii.gz", "better": "ch2better.nii.gz"}


def colin27(folder: Path, neck_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Colin27's head (float32) and its affine, extended ``neck_mm`` downward by repeating its lowest slice
    (module docstring)."""
    img = nib.load(str(folder / "ch2.nii.gz"))
    head = np.asarray(img.dataobj, dtype=np.float32)
    affine = img.affine.copy()
    extra = int(round(neck_mm / float(img.header.get_zooms()[2])))
    if extra:
        head = np.pad(head, ((0, 0), (0, 0), (extra, 0)), mode="edge")
        affine[:3, 3] -= affine[:3, 2] * extra
    return head, affine


def reference(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A reference brain mask of Colin27 (:data:`REFERENCES`) as float32 0/1, and its affine."""
    img = nib.load(str(folder / REFERENCES[name]))
    return (np.asarray(img.dataobj) > 0).astype(np.float32), img.affine


#: the contraction is uniform over BET's brain grown by this much (mm) and fades over about this much again
SHRINK_MARGIN_MM = 3.0


def shrunk_brain(folder: Path, pbvc_percent: float) -> tuple[Warp, float]:
    """A deformation of Colin27 whose brain volume changes by about ``pbvc_percent`` (module docstring), and
    the true PBVC (%) it gives."""
    bet, affine = reference(folder, "bet")
    margin = ndimage.binary_dilation(bet > 0, iterations=int(SHRINK_MARGIN_MM))
    weight = np.clip(ndimage.gaussian_filter(margin.astype(np.float32), SHRINK_MARGIN_MM / 2) * 2.0, 0.0, 1.0)
    centre = nib.affines.apply_affine(affine, np.asarray(ndimage.center_of_mass(bet)))
    stretch = (1.0 + pbvc_percent / 100.0) ** (-1.0 / 3.0) - 1.0  # sampled farther out: the brain shrinks
    inverse = np.linalg.inv(affine)

    def warp(points: np.ndarray) -> np.ndarray:
        w = ndimage.map_coordinates(weight, nib.affines.apply_affine(inverse, points).T, order=1, mode="constant")
        return points + stretch * (points - centre) * w[:, None]

    index = np.argwhere(margin)
    lo, hi = index.min(0) - 2, index.max(0) + 3
    box = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1)
    moved = warp(nib.affines.apply_affine(affine, box.reshape(-1, 3).astype(np.float64)))
    after = ndimage.map_coordinates(bet, nib.affines.apply_affine(inverse, moved).T, order=1, mode="constant")
    return warp, float((after.sum(dtype=np.float64) / bet.sum(dtype=np.float64) - 1.0) * 100.0)


def head_centre(head: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World centre (mm) of the head above the background."""
    return nib.affines.apply_affine(affine, np.asarray(ndimage.center_of_mass(head > 0.2 * COLIN_WM)))


def scan_colin27(
    folder: Path, scan: Scan, out: Path, warp: Warp = None, supersample: int = 2
) -> tuple[Path, dict[str, np.ndarray]]:
    """Colin27 scanned as ``scan`` says (module docstring), written at ``out`` (int16), and the reference brain
    masks (:data:`REFERENCES`) on that grid; ``warp`` deforms the anatomy (for atrophy); each voxel averages
    ``supersample`` samples along each axis thicker than 1 mm and the image is sampled with cubic splines."""
    head, affine = colin27(folder, scan.neck_mm)
    centre = head_centre(head, affine)
    rotation = Rotation.from_euler("xyz", scan.rotation_deg, degrees=True).as_matrix()
    translation = np.asarray(scan.translation_mm, dtype=float)
    corners = (np.zeros(3), np.subtract(head.shape, 1))
    extent = box_corners(*(nib.affines.apply_affine(affine, np.asarray(c, dtype=float)) for c in corners))
    scanner = (extent - centre) @ rotation.T + centre + translation
    if scan.fov_z_mm is not None:
        scanner[:, 2] = np.clip(scanner[:, 2], *scan.fov_z_mm)
    shape, grid = make_grid(scanner, scan.voxel, scan.orientation, margin_mm=0.0)
    if scan.fov_z_mm is not None:
        shape, grid = _crop_z(shape, grid, scan.fov_z_mm)
    per_axis = [supersample if v > 1.0 + 1e-6 else 1 for v in scan.voxel]
    offsets = (np.indices(per_axis).reshape(3, -1).T + 0.5) / np.asarray(per_axis) - 0.5
    volumes = {"head": (ndimage.spline_filter(head, order=3), affine)}
    volumes.update((name, reference(folder, name)) for name in REFERENCES)
    sums = {name: np.zeros(int(np.prod(shape)), dtype=np.float32) for name in volumes}
    for offset in offsets:
        shifted = grid.copy()
        shifted[:3, 3] += grid[:3, :3] @ offset
        subject = (grid_points(shape, shifted).astype(np.float64) - centre - translation) @ rotation + centre
        if warp is not None:
            subject = warp(subject)
        for name, (volume, on) in volumes.items():
            ijk = nib.affines.apply_affine(np.linalg.inv(on), subject).T
            order = 3 if name == "head" else 1
            sums[name] += ndimage.map_coordinates(volume, ijk, order=order, prefilter=False, mode="constant")
    image = np.clip(sums.pop("head").reshape(shape) / len(offsets), 0.0, None)
    rng = np.random.default_rng(scan.seed)
    image = rician(image * bias_field(rng, shape, grid, scan.bias), scan.noise * COLIN_WM, rng)
    save_array(store(image * 8.0, "int16"), grid, str(out), np.int16)
    return out, {name: total.reshape(shape) / len(offsets) >= 0.5 for name, total in sums.items()}


def _crop_z(shape: tuple[int, int, int], grid: np.ndarray, fov_z_mm: tuple[float, float]) -> tuple[tuple, np.ndarray]:
    """The grid cut to the slices (along the voxel axis closest to scanner z) whose centre lies in the field
    of view ``fov_z_mm``."""
    axis = int(np.argmax(np.abs(grid[2, :3])))
    centre = nib.affines.apply_affine(grid, (np.asarray(shape) - 1) / 2.0)
    index = np.arange(shape[axis])
    z = centre[2] + (index - (shape[axis] - 1) / 2.0) * grid[2, axis]
    keep = index[(z >= fov_z_mm[0]) & (z <= fov_z_mm[1])]
    out = grid.copy()
    out[:3, 3] += grid[:3, axis] * keep[0]
    cropped = list(shape)
    cropped[axis] = len(keep)
    return tuple(cropped), out


#: Colin27 as clinics scan it, at 1 mm (tests take them at 3 mm with :func:`coarser`): poses up to 15 degrees
#: and 8 mm, oblique slabs, fields of view from a cut vertex to the shoulders, RAS/LAS/LPS storage, thick
#: slices, bias fields and noise levels
CLINICAL_SCANS = {
    "as-shipped": Scan(bias=0.0, noise=0.0),
    "tilted-15-to-the-shoulders": Scan((15.0, -4.0, 6.0), (5.0, -4.0, 4.0), neck_mm=90.0, seed=1),
    "oblique-slab-vertex-cut": Scan(
        (-5.0, 3.0, 4.0), orientation="oblique", fov_z_mm=(-95.0, 92.0), neck_mm=40.0, seed=2
    ),
    "LAS-1x1x1.3-strong-bias": Scan((3.0, -5.0, -3.0), (-5.0, 3.0, -4.0), (1.0, 1.0, 1.3), "LAS", bias=0.4, seed=3),
    "LPS-rolled-12-noisy": Scan(
        (-3.0, 8.0, -12.0), (3.0, 5.0, -5.0), orientation="LPS", neck_mm=50.0, noise=0.05, seed=4
    ),
    "chin-down-12": Scan((-12.0, 2.0, 3.0), (0.0, 8.0, -6.0), neck_mm=70.0, seed=5),
    "yawed-15": Scan((2.0, -3.0, 15.0), (-8.0, 0.0, 3.0), seed=6),
    "vertex-cut-tight": Scan((6.0, 0.0, -4.0), fov_z_mm=(-75.0, 85.0), seed=7),
    "LAS-oblique-neck": Scan((-8.0, -6.0, 5.0), (4.0, -6.0, 0.0), (1.0, 1.0, 1.2), "oblique", neck_mm=80.0, seed=8),
    "PIR-sagittal-1.2": Scan((4.0, 5.0, -2.0), (0.0, 4.0, 6.0), (1.2, 1.0, 1.0), "PIR", neck_mm=30.0, seed=9),
    "shifted-low-snr": Scan((0.0, 0.0, 0.0), (8.0, -8.0, -8.0), noise=0.08, bias=0.3, seed=10),
    "tilted-back-10-long-fov": Scan(
        (10.0, 6.0, -6.0), (-4.0, 6.0, 2.0), (1.0, 1.0, 1.3), "LPS", neck_mm=100.0, seed=11
    ),
}


def coarser(scan: Scan, factor: float) -> Scan:
    """The same scan with voxels ``factor`` times larger."""
    return replace(scan, voxel=tuple(v * factor for v in scan.voxel))
