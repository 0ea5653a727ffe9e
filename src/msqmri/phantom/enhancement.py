"""The post-contrast T1w of the phantom: enhancing new lesions and the structures that enhance in every head.

After gadolinium, active (new) MS lesions enhance for a few weeks, most as a solid nodule, larger ones often as a
ring (open or closed) around a non-enhancing core (He et al., Neuroradiology 2001; Rovira et al. 2015). What
enhances in every head is the normal confounder of an automated reading: the dural venous sinuses (superior
sagittal and transverse), veins on the brain's surface in the subarachnoid CSF, the choroid plexus in the
ventricles' atria, and the dura itself; the normal-appearing parenchyma takes up a little (a few percent, more in
grey than in white matter). Enhancement here is T1w signal added in units of the WM signal, on the MPRAGE-like
contrast of :mod:`msqmri.phantom.tissues`.

Each new lesion of a session enhances in that session (ring when larger than :data:`RING_MIN_MM3` and drawn so,
with a :data:`RING_MM` rim); enlarging, stable and baseline lesions do not. Vessels are tubes in subject space
placed relative to the subject's intracranial surface, so they move with the head and follow its anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msqmri.phantom.anatomy import Lesion, SubjectAnatomy, sample

#: signal an enhancing lesion gains (WM units), drawn per lesion
LESION_GAIN = (0.35, 0.6)
#: a ring-enhancing lesion: at least this large (mm^3), drawn with this probability, its enhancing rim (mm)
RING_MIN_MM3, RING_ODDS, RING_MM = 80.0, 0.5, 1.5
#: gain of the veins and sinuses, the choroid plexus and the dura (WM units)
VESSEL_GAIN, CHOROID_GAIN, DURA_GAIN = 1.1, 0.7, 0.4
#: uptake of the normal-appearing tissue: signal x (1 + uptake)
WM_UPTAKE, GM_UPTAKE = 0.03, 0.05
#: surface veins per subject: radius (mm) and the half-angle of the arc each follows over the brain (degrees)
N_VEINS, VEIN_RADIUS_MM, VEIN_ARC_DEG = 8, 1.2, 22.0
#: the superior sagittal and transverse sinuses: half-width (mm) of the tube at the inner table
SINUS_HALF_WIDTH_MM = 3.5


@dataclass(frozen=True)
class Vein:
    """A surface vein: the arc of the great circle through ``direction`` about the subject's centre whose plane has
    normal ``normal``."""

    normal: np.ndarray
    direction: np.ndarray


@dataclass(frozen=True)
class EnhancementPlan:
    """What enhances in a subject: each (lesion index, session) that does, with its pattern and gain, and the
    subject's surface veins."""

    lesions: dict[tuple[int, int], tuple[str, float]]
    veins: tuple[Vein, ...]

    def enhancing(self, session: int) -> dict[int, tuple[str, float]]:
        """Lesion index (0-based) -> (pattern, gain) of the lesions enhancing in ``session``."""
        return {index: value for (index, k), value in self.lesions.items() if k == session}


def lobe_volume_mm3(lesion: Lesion, session: int) -> float:
    """A lesion's largest lobe's volume in ``session`` (mm^3), to tell which lesions are large enough for a ring."""
    k = lesion.scale[session]
    return max(4.0 / 3.0 * np.pi * float(np.prod(lobe.radii)) for lobe in lesion.lobes) * k**3


def plan_enhancement(rng: np.random.Generator, lesions: list[Lesion]) -> EnhancementPlan:
    """Which lesions enhance when (each new lesion, in the session it appears) and the surface veins."""
    plan = {}
    for index, lesion in enumerate(lesions):
        for k, status in enumerate(lesion.status):
            if status == "new":
                ring = lobe_volume_mm3(lesion, k) >= RING_MIN_MM3 and rng.random() < RING_ODDS
                plan[index, k] = ("ring" if ring else "solid", float(rng.uniform(*LESION_GAIN)))
    veins = []
    for _ in range(N_VEINS):
        direction = rng.normal(size=3)
        direction[2] = abs(direction[2]) + 0.3  # over the convexity, not the skull base
        direction /= np.linalg.norm(direction)
        normal = np.cross(direction, rng.normal(size=3))
        veins.append(Vein(normal / np.linalg.norm(normal), direction))
    return EnhancementPlan(plan, tuple(veins))


def _band(value: np.ndarray, lo: float, hi: float, edge: float = 1.0) -> np.ndarray:
    """Soft indicator of ``lo <= value <= hi`` with partial volume over ``edge`` mm."""
    return np.clip((value - lo) / edge + 0.5, 0.0, 1.0) * np.clip((hi - value) / edge + 0.5, 0.0, 1.0)


def vessel_fraction(points: np.ndarray, anatomy: SubjectAnatomy, veins: tuple[Vein, ...]) -> np.ndarray:
    """Partial-volume fraction of the enhancing vessels at subject ``points`` (N, 3): the superior sagittal sinus
    along the upper midline and the transverse sinuses at the back, both at the inner table, and the surface veins
    in the CSF over the brain."""
    dist = sample(anatomy.distance, anatomy.affine, points, cval=1e3)
    rel = points - anatomy.centroid.astype(np.float32)
    csf = anatomy.layers.csf
    at_table = _band(dist, csf - 1.0, csf + 2.0)
    sagittal = _band(rel[:, 0], -SINUS_HALF_WIDTH_MM, SINUS_HALF_WIDTH_MM) * np.clip((rel[:, 2] - 10.0) / 5.0, 0, 1)
    transverse = _band(rel[:, 2], -28.0, -28.0 + 2 * SINUS_HALF_WIDTH_MM) * np.clip(-(rel[:, 1] + 45.0) / 5.0, 0, 1)
    fraction = at_table * np.maximum(sagittal, transverse)
    in_csf = _band(dist, 0.0, csf, 0.5)
    radius = np.linalg.norm(rel, axis=1) + 1e-6
    for vein in veins:
        off_plane = np.abs(rel @ vein.normal)
        along = (rel @ vein.direction) / radius
        arc = np.clip((along - np.cos(np.radians(VEIN_ARC_DEG))) * 20.0, 0.0, 1.0)
        fraction = np.maximum(fraction, in_csf * arc * np.clip(VEIN_RADIUS_MM - off_plane + 0.5, 0.0, 1.0))
    return fraction.astype(np.float32)


def lesion_gain(
    lesion_id: np.ndarray, lesion_fraction: np.ndarray, enhancing: dict[int, tuple[str, float]], voxel_mm: np.ndarray
) -> np.ndarray:
    """Signal each voxel of an image grid gains from its enhancing lesions: a solid lesion over its partial volume,
    a ring over its outer :data:`RING_MM` (``lesion_id`` 1-based, as the renderer writes it)."""
    gain = np.zeros(lesion_id.shape, np.float32)
    for index, (pattern, amount) in enhancing.items():
        weight = np.where(lesion_id == index + 1, lesion_fraction, 0.0)
        if pattern == "ring":
            core = ndimage.distance_transform_edt(weight >= 0.5, sampling=voxel_mm) > RING_MM
            weight = np.where(core, 0.0, weight)
        gain += (amount * weight).astype(np.float32)
    return gain
