"""The MNI ICBM152 2009a symmetric template (Fonov et al. 2011), as nilearn ships it.

No download happens: nilearn's wheel carries the 1 mm skull-stripped T1 and the GM/WM probability
maps. This module derives the images brain extraction and segmentation need from them, and the
anatomical regions lesion locations are classified by (McDonald 2017 / MAGNIMS topography;
Thompson et al., Lancet Neurol 2018; Filippi et al., Lancet Neurol 2016):

- ``ventricles``: the lateral and third ventricles (with the temporal horns), the CSF the template's
  brain tissue encloses, in components of at least 100 mm^3 above the posterior fossa;
- ``infratentorial``: brainstem and cerebellum, below the tentorium cerebelli. The tentorium is
  approximated in MNI coordinates (mm) by the surface ``z = -3 - 0.35 |x| + 0.35 min(0, y + 65)``
  behind ``y = -45`` (it slopes down laterally and backwards from its apex at the straight sinus),
  and in front of it the brainstem box ``|x| <= 16``, ``-45 <= y <= -10``, ``z <= -6`` (midbrain, pons,
  medulla through the tentorial notch); checked on the template's sagittal and axial slices;
- ``brainstem``: the part of the infratentorial region with ``|x| <= 14`` and ``y >= -45`` (in front of
  the fourth ventricle and the vermis);
- ``septum``: the septum pellucidum and its surroundings, the midline (``|x| <= 3``) between the two
  lateral ventricles (within 6 mm of both), where a bright FLAIR is the membrane, not a lesion;
- ``deep_gm``: where grey matter is deep grey matter (thalamus, caudate, putamen, pallidum) rather than
  cortex: more than 12 mm inside the intracranial surface, within the box ``|x| <= 32``,
  ``-42 <= y <= 28``, ``-14 <= z <= 24``.
"""

from __future__ import annotations

import functools

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from msqmri.core.morphology import near

#: BIDS space label of the template
SPACE = "MNI152NLin2009aSym"
#: voxel size (mm) of the template's grid
SPACING = (1.0, 1.0, 1.0)
#: anatomical regions of the template (see the module docstring)
REGIONS = ("ventricles", "infratentorial", "brainstem", "septum", "deep_gm")
#: deep grey matter: depth below the intracranial surface (mm) and MNI box (x, y, z ranges, mm)
DEEP_GM_DEPTH_MM = 12.0
DEEP_GM_BOX_MM = ((-32.0, 32.0), (-42.0, 28.0), (-14.0, 24.0))
#: smallest enclosed CSF component counted as ventricle (mm^3, i.e. voxels of the 1 mm template)
VENTRICLE_MIN_MM3 = 100


@functools.lru_cache(maxsize=1)
def paths() -> dict[str, str]:
    """Paths of the template T1w, GM and WM probability maps in nilearn's data folder."""
    from nilearn import datasets

    t1 = str(datasets.MNI152_FILE_PATH)
    return {"t1w": t1, "gm": t1.replace("_t1_", "_gm_"), "wm": t1.replace("_t1_", "_wm_")}


def intracranial(t1w: np.ndarray) -> np.ndarray:
    """The template's intracranial mask: the skull-stripped extent, lightly smoothed, holes filled."""
    return ndimage.binary_fill_holes(ndimage.gaussian_filter((t1w > 0).astype(np.float32), 1.0) > 0.5)


def _mni_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> tuple[np.ndarray, ...]:
    """World (MNI mm) x, y, z of every voxel of an axis-aligned grid, as broadcastable arrays."""
    return tuple(
        (np.arange(n) * affine[a, a] + affine[a, 3]).reshape([-1 if b == a else 1 for b in range(3)])
        for a, n in enumerate(shape)
    )


def infratentorial(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Whether MNI points (mm) lie below the tentorium: cerebellum and brainstem (module docstring)."""
    tentorium = -3.0 - 0.35 * np.abs(x) + 0.35 * np.minimum(0.0, y + 65.0)
    posterior_fossa = (y < -45.0) & (z < tentorium)
    notch = (y >= -45.0) & (y <= -10.0) & (np.abs(x) <= 16.0) & (z <= -6.0)
    return posterior_fossa | notch


@functools.lru_cache(maxsize=1)
def _maps() -> dict[str, np.ndarray]:
    """The template T1w, its GM and WM probabilities (0-1) and intracranial mask on the 1 mm grid."""
    p = paths()
    t1 = np.asarray(nib.load(p["t1w"]).dataobj, dtype=np.float32)
    gm = np.asarray(nib.load(p["gm"]).dataobj, dtype=np.float32) / 255.0
    wm = np.asarray(nib.load(p["wm"]).dataobj, dtype=np.float32) / 255.0
    return {"t1w": t1, "gm": gm, "wm": wm, "icv": intracranial(t1)}


def _coordinates() -> tuple[np.ndarray, ...]:
    img = nib.load(paths()["t1w"])
    return _mni_coordinates(img.shape, img.affine)


def _ventricles() -> np.ndarray:
    maps, (x, y, z) = _maps(), _coordinates()
    below = infratentorial(x, y, z)
    tissue = maps["gm"] + maps["wm"] >= 0.5
    enclosed = ndimage.binary_fill_holes(tissue) & ~tissue & maps["icv"]
    labels, _ = ndimage.label(enclosed)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    supratentorial = np.bincount(labels.ravel(), weights=np.broadcast_to(~below, labels.shape).ravel()) > 0.5 * sizes
    return np.isin(labels, np.flatnonzero((sizes >= VENTRICLE_MIN_MM3) & supratentorial))


def _septum() -> np.ndarray:
    x = _coordinates()[0]
    ventricles = array("ventricles")
    sides = [near(ventricles & side, SPACING, 6.0) for side in (x > 0, x < 0)]
    return (np.abs(x) <= 3.0) & sides[0] & sides[1]


def _deep_gm() -> np.ndarray:
    coordinates = _coordinates()
    inside = [(c.ravel() >= lo) & (c.ravel() <= hi) for c, (lo, hi) in zip(coordinates, DEEP_GM_BOX_MM, strict=True)]
    box = tuple(slice(np.flatnonzero(i)[0], np.flatnonzero(i)[-1] + 1) for i in inside)
    deep = np.zeros(array("icv").shape, dtype=bool)
    deep[box] = True
    return deep & ~near(~array("icv"), SPACING, DEEP_GM_DEPTH_MM, within=box)


def _region(name: str) -> np.ndarray:
    x, y, z = _coordinates()
    shape = array("icv").shape
    if name == "infratentorial":
        return np.broadcast_to(infratentorial(x, y, z), shape).copy()
    if name == "brainstem":
        return np.broadcast_to(infratentorial(x, y, z) & (np.abs(x) <= 14.0) & (y >= -45.0), shape).copy()
    return {"ventricles": _ventricles, "septum": _septum, "deep_gm": _deep_gm}[name]()


@functools.cache
def array(name: str) -> np.ndarray:
    """Template image ``name`` on the 1 mm grid: ``t1w``, ``brain`` (GM+WM >= 0.5, hole-filled), ``icv``
    (intracranial: the skull-stripped extent), the ``csf``, ``gm``, ``wm`` priors (sum to 1 in ICV) or one
    of the :data:`REGIONS` (boolean; module docstring). Each is derived once per process, when asked for."""
    maps = _maps()
    if name in maps:
        return maps[name]
    if name == "brain":
        return ndimage.binary_fill_holes(maps["gm"] + maps["wm"] >= 0.5)
    if name == "csf":
        return np.where(maps["icv"], np.clip(1.0 - maps["gm"] - maps["wm"], 0.0, 1.0), 0.0)
    if name in REGIONS:
        return _region(name)
    raise KeyError(f"no template image {name!r}")


def regions() -> dict[str, np.ndarray]:
    """The :data:`REGIONS` as boolean arrays on the 1 mm template grid (module docstring)."""
    return {name: array(name) for name in REGIONS}


@functools.cache
def image(name: str, resolution: float = 1.0) -> ants.ANTsImage:
    """Template image ``name`` (:func:`array`) as a float32 ANTs image at ``resolution`` mm."""
    out = ants.image_read(paths()["t1w"]).new_image_like(np.asarray(array(name), dtype=np.float32))
    return out if resolution == 1.0 else ants.resample_image(out, (resolution,) * 3, False, 0)


def warped(name: str, like: ants.ANTsImage, transform: str) -> np.ndarray:
    """Template image ``name`` (e.g. ``wm``, ``brain``) brought onto the grid of ``like`` through the
    template -> session ``transform`` (linear interpolation)."""
    moved = ants.apply_transforms(fixed=like, moving=image(name), transformlist=[transform], interpolator="linear")
    return moved.numpy()
