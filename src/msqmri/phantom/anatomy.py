"""A subject's continuous anatomy: tissue fractions at any point of the subject's head.

The brain comes from the MNI ICBM152 2009a template that nilearn ships (Fonov 2011): its GM/WM
probability maps are turned into crisp labels (argmax with CSF), deep grey matter is split from
cortex by depth, and each label becomes a partial-volume map. A subject is the template under a
random smooth nonlinear warp and a head-size scaling; the head (CSF rim, skull with diploe, scalp
muscle and fat) is then built around that subject's brain from a signed distance map, so skull
thickness does not follow the template. Atrophy shrinks the brain tissue about its centroid
while the skull stays fixed (the brain tissue volume changes by exactly ``scale**3``); lesions are
unions of analytic ellipsoids carved out of white matter and move with the tissue. Region weights
(ventricles, infratentorial region, FLAIR confounders) are warped with the brain, so that the FLAIR can
be rendered with them and lesions placed by location class.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
from scipy import ndimage

from msqmri.anat import template
from msqmri.core.morphology import near
from msqmri.phantom.head import Head
from msqmri.phantom.tissues import BRAIN, INDEX, NAMES
from msqmri.phantom.tissues import LESIONS as LESION_TISSUES

#: margin added around the template grid so the skull and scalp fit (mm)
PAD_MM = 24.0


#: region channels of the anatomy (0-1 weights, moving with the brain): the template's ventricles,
#: infratentorial region and brainstem; the FLAIR confounders (the tissue lining the ventricles, the
#: septum pellucidum, the choroid plexus in the atria, the CSF of the fourth ventricle and prepontine
#: cistern where flow spoils the FLAIR's CSF suppression); the subject's mildly hyperintense cortex
REGIONS = ("ventricle", "infratentorial", "brainstem", "ependyma", "septum", "choroid", "flow", "cortical_patch")
#: smoothing (Gaussian SD, mm) of the regions' edges: the brainstem's brighter FLAIR fades out gradually
REGION_SMOOTHING_MM = {"brainstem": 3.0}
#: thickness of the bright ependymal lining (mm)
EPENDYMA_MM = 1.2
#: radius of the choroid plexus glomus, a ball in each atrium (mm)
GLOMUS_MM = 4.5
#: MNI boxes (mm; x as |x|) of the atria, where the choroid plexus glomus lies, and of the CSF with flow artefacts
CHOROID_BOX_MM = ((20.0, 36.0), (-46.0, -28.0), (2.0, 22.0))
FLOW_BOX_MM = ((0.0, 8.0), (-50.0, -5.0), (-45.0, -15.0))


def _in_box(world: tuple[np.ndarray, ...], box: tuple[tuple[float, float], ...]) -> np.ndarray:
    (x, y, z), ((x0, x1), (y0, y1), (z0, z1)) = world, box
    return (np.abs(x) >= x0) & (np.abs(x) <= x1) & (y >= y0) & (y <= y1) & (z >= z0) & (z <= z1)


def template_regions(label: np.ndarray, icv: np.ndarray, world: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The template-space :data:`REGIONS` but the subject's cortical patches, as boolean maps."""
    anatomy = template.regions()
    ventricle = anatomy["ventricles"]
    x = world[0]
    brain = label > 1
    # the septum: the midline between the two lateral ventricles
    sides = [near(ventricle & side, template.SPACING, 4.0) for side in (x > 1.0, x < -1.0)]
    septum = (np.abs(x) <= 0.5) & sides[0] & sides[1]
    atria = ventricle & _in_box(world, CHOROID_BOX_MM) & ndimage.binary_erosion(ventricle)  # > 1 mm from its wall
    choroid = np.zeros_like(ventricle)
    for side in (x > 0, x < 0):  # the glomus: a ball about the centre of each atrium's lumen
        centre = [np.mean(np.broadcast_to(c, atria.shape)[atria & side]) for c in world]
        distance = np.sqrt(sum((c - m) ** 2 for c, m in zip(world, centre, strict=True)))
        choroid |= atria & (distance <= GLOMUS_MM)
    flow = icv & (label == 1) & ~ventricle & _in_box(world, FLOW_BOX_MM)
    return {
        "ventricle": ventricle,
        "infratentorial": anatomy["infratentorial"],
        "brainstem": anatomy["brainstem"],
        "ependyma": brain & near(ventricle, template.SPACING, EPENDYMA_MM) & ~septum,
        "septum": septum,
        "choroid": choroid,
        "flow": flow,
    }


@functools.lru_cache(maxsize=4)
def template_maps(step: float) -> tuple[np.ndarray, np.ndarray]:
    """Partial-volume maps of the padded template at ``step`` mm: array (C, X, Y, Z) and affine.

    Channels: gm, wm, dgm, icv (intracranial = brain + internal CSF), then the template-space
    :data:`REGIONS` (all but the last, ``cortical_patch``, which each subject draws); float32 in [0, 1].
    """
    paths = template.paths()
    t1_img = nib.load(paths["t1w"])
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    gm = np.asarray(nib.load(paths["gm"]).dataobj, dtype=np.float32) / 255.0
    wm = np.asarray(nib.load(paths["wm"]).dataobj, dtype=np.float32) / 255.0
    icv = template.intracranial(t1)
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    label = np.argmax(np.stack([csf, gm, wm]), axis=0).astype(np.uint8) + 1  # 1 csf, 2 gm, 3 wm
    label[~icv] = 0
    world = [np.arange(n) * t1_img.affine[a, a] + t1_img.affine[a, 3] for a, n in enumerate(t1.shape)]
    label[(label == 2) & template.regions()["deep_gm"]] = 4  # deep grey matter: thalamus, basal ganglia
    coordinates = np.meshgrid(*world, indexing="ij", sparse=True)
    regions = template_regions(label, icv, tuple(coordinates))
    pad = int(round(PAD_MM))
    label = np.pad(label, pad)
    affine = t1_img.affine.copy()
    affine[:3, 3] -= pad * np.diag(affine)[:3]
    # partial volume: each crisp label smoothed slightly (sums to one everywhere)
    maps = np.stack(
        [ndimage.gaussian_filter((label == k).astype(np.float32), 0.5) for k in (2, 3, 4)]
        + [ndimage.gaussian_filter((label > 0).astype(np.float32), 0.5)]
        + [
            ndimage.gaussian_filter(np.pad(regions[name], pad).astype(np.float32), REGION_SMOOTHING_MM.get(name, 0.5))
            for name in REGIONS[:-1]
        ]
    )
    if step != 1.0:
        zoom = 1.0 / step
        maps = np.stack([ndimage.zoom(m, zoom, order=1, grid_mode=True, mode="grid-constant") for m in maps])
        # grid_mode zoom keeps the field of view: output voxel j is centred on input (j + 0.5) * step - 0.5
        affine = affine @ np.array(
            [[step, 0, 0, (step - 1) / 2], [0, step, 0, (step - 1) / 2], [0, 0, step, (step - 1) / 2], [0, 0, 0, 1]]
        )
    return np.clip(maps, 0.0, 1.0).astype(np.float32), affine


def sample(volume: np.ndarray, affine: np.ndarray, points: np.ndarray, cval: float = 0.0) -> np.ndarray:
    """Trilinear interpolation of ``volume`` (on a grid with ``affine``) at world ``points`` (N, 3).

    ``volume`` may carry leading channel axes (C, X, Y, Z); the result is then (C, N).
    """
    inv = np.linalg.inv(affine).astype(np.float32)
    ijk = inv[:3, :3] @ np.ascontiguousarray(points.T, dtype=np.float32) + inv[:3, 3:4]  # (3, N), BLAS-fast
    channels = volume if volume.ndim == 4 else volume[None]
    out = np.stack(
        [ndimage.map_coordinates(v, ijk, order=1, mode="constant", cval=cval, prefilter=False) for v in channels]
    )
    return out if volume.ndim == 4 else out[0]


@dataclass(frozen=True)
class Lobe:
    """One ellipsoid of a lesion: its centre's offset from the lesion centre, radii and axes (mm)."""

    offset: np.ndarray
    radii: np.ndarray
    rotation: np.ndarray  # 3x3, columns are the ellipsoid axes


#: McDonald 2017 / MAGNIMS location classes of the phantom's lesions
LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "deep_wm")


@dataclass(frozen=True)
class Lesion:
    """A white-matter lesion, the union of one or more ellipsoidal lobes (irregular, confluent shapes);
    ``scale[k]`` multiplies its size about its centre at session k (0 = absent)."""

    center: np.ndarray  # subject space, mm
    lobes: tuple[Lobe, ...]
    scale: tuple[float, ...]
    status: tuple[str, ...]  # per session: absent, present, new, stable, enlarging, shrinking, resolved
    location: str = "deep_wm"  # one of LOCATIONS, as planned
    tissue: str = "lesion"  # "lesion", or "blackhole" (markedly T1-hypointense)

    def fraction(self, points: np.ndarray, session: int, edge_mm: float = 1.0) -> np.ndarray:
        """Partial-volume fraction of the lesion at ``points`` (N, 3) in session ``session``."""
        k = self.scale[session]
        total = np.zeros(len(points), dtype=np.float32)
        if k <= 0:
            return total
        for lobe in self.lobes:
            local = (points - self.center - k * lobe.offset) @ lobe.rotation / (lobe.radii * k)
            r = np.sqrt(np.einsum("ij,ij->i", local, local))
            mean_radius = float(np.mean(lobe.radii) * k)
            total = np.maximum(total, np.clip((1.0 - r) * mean_radius / edge_mm + 0.5, 0.0, 1.0))
        return total.astype(np.float32)

    def reach(self, scale: float = 1.0) -> float:
        """Largest distance (mm) from the centre to the lesion's surface at ``scale``."""
        return scale * max(float(np.linalg.norm(lobe.offset) + lobe.radii.max()) for lobe in self.lobes)

    def bounding_radius(self, session: int) -> float:
        return self.reach(self.scale[session]) + 1.0


@dataclass(frozen=True)
class HeadLayers:
    """Thicknesses (mm) of the layers outside the brain surface: CSF rim, skull tables and diploe, scalp."""

    csf: float
    inner_table: float
    diploe: float
    outer_table: float
    muscle: float
    fat: float

    def bounds(self) -> list[tuple[str, float, float]]:
        """The layers outside the CSF rim as (tissue, inner distance, outer distance) in mm."""
        edges = np.cumsum([self.csf, self.inner_table, self.diploe, self.outer_table, self.muscle, self.fat])
        names = ["bone", "marrow", "bone", "muscle", "fat"]
        return [(n, float(a), float(b)) for n, a, b in zip(names, edges[:-1], edges[1:], strict=True)]

    @property
    def total(self) -> float:
        return self.csf + self.inner_table + self.diploe + self.outer_table + self.muscle + self.fat


@dataclass
class SubjectAnatomy:
    """The continuous anatomy of one synthetic subject, in subject space (mm).

    ``brain`` holds gm, wm and dgm partial-volume maps on a grid with ``affine``, ``regions`` the
    :data:`REGIONS` weights on the same grid; ``distance`` is the signed distance (mm, positive outside)
    to the intracranial surface, modulated by a smooth thickness field; ``fibre`` is a smooth vector
    field of fibre directions on a coarse grid.
    """

    brain: np.ndarray
    regions: np.ndarray
    distance: np.ndarray
    affine: np.ndarray
    fibre: np.ndarray
    fibre_affine: np.ndarray
    layers: HeadLayers
    lesions: list[Lesion] = field(default_factory=list)
    centroid: np.ndarray = field(default_factory=lambda: np.zeros(3))
    head: Head | None = None  # neck, face, dura and sinuses (msqmri.phantom.head); None: skull and scalp only

    @property
    def step(self) -> float:
        return float(abs(self.affine[0, 0]))

    def grid_points(self) -> np.ndarray:
        """World coordinates of every voxel centre of the anatomy grid, (N, 3)."""
        return grid_points(self.brain.shape[1:], self.affine)

    def head_bbox(self) -> np.ndarray:
        """The 8 corners (8, 3) of a box in subject space holding the whole head."""
        inside = np.argwhere(self.distance < self.layers.total)
        corners = box_corners(inside.min(0) - 1, inside.max(0) + 1) @ self.affine[:3, :3].T + self.affine[:3, 3]
        if self.head is None:
            return corners
        return box_corners(*self.head.field_of_view(corners.min(0), corners.max(0)))

    def fractions(
        self, points: np.ndarray, session: int, atrophy_scale: float, fibre: bool = False, regions: bool = False
    ) -> Sampled:
        """Tissue fractions (N, T) at subject-space ``points``, lesion ids (N,) and, if asked, fibre
        directions and :data:`REGIONS` weights.

        Brain tissue is sampled at points pulled away from the centroid by ``1/atrophy_scale``,
        so the brain shrinks by ``atrophy_scale`` while CSF fills the gap to the fixed skull.
        """
        n = len(points)
        frac = np.zeros((n, len(NAMES)), dtype=np.float32)
        lesion_id = np.zeros(n, dtype=np.int16)
        dist = sample(self.distance, self.affine, points, cval=1e3)
        for name, lo, hi in self.layers.bounds():
            frac[:, INDEX[name]] += np.clip(hi - dist + 0.5, 0.0, 1.0) - np.clip(lo - dist + 0.5, 0.0, 1.0)
        if self.head is not None:
            self.head.paint_outside(points, dist, self.layers.csf, frac)
        # brain tissue only lies inside the CSF rim's outer surface; everything else there is CSF
        intracranial = np.clip(self.layers.csf - dist + 0.5, 0.0, 1.0)
        inside = np.flatnonzero(intracranial > 0)
        pulled = self.centroid.astype(np.float32) + (points[inside] - self.centroid.astype(np.float32)) / np.float32(
            atrophy_scale
        )
        gm, wm, dgm = sample(self.brain, self.affine, pulled)
        lesion = self._lesion_fraction(pulled, session)
        lesion_id[inside] = lesion.pop("id")
        remaining = wm
        for name in LESION_TISSUES:
            frac[inside, INDEX[name]] = np.minimum(lesion[name], remaining)
            remaining = remaining - frac[inside, INDEX[name]]
        frac[inside, INDEX["gm"]] = gm
        frac[inside, INDEX["wm"]] = remaining
        frac[inside, INDEX["dgm"]] = dgm
        frac[:, INDEX["csf"]] = np.clip(intracranial - frac[:, [INDEX[t] for t in BRAIN]].sum(1), 0.0, None)
        if self.head is not None:
            self.head.take_from_csf(points, dist, self.layers.csf, frac)
        total = frac.sum(1)
        over = total > 1.0
        frac[over] /= total[over, None]
        out = Sampled(frac, lesion_id)
        if regions:
            out.regions = np.zeros((n, len(REGIONS)), dtype=np.float32)
            out.regions[inside] = sample(self.regions, self.affine, pulled).T
        if fibre:
            pulled_all = self.centroid + (points - self.centroid) / atrophy_scale
            directions = sample(self.fibre, self.fibre_affine, pulled_all, cval=1.0).T
            out.fibre = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-6)
        return out

    def _lesion_fraction(self, points: np.ndarray, session: int) -> dict[str, np.ndarray]:
        """Fraction of each lesion tissue at ``points`` and the id (1-based) of the lesion there."""
        out = {name: np.zeros(len(points), dtype=np.float32) for name in LESION_TISSUES}
        ids = np.zeros(len(points), dtype=np.int16)
        for lesion_id, lesion in enumerate(self.lesions, start=1):
            if lesion.scale[session] <= 0:
                continue
            near = np.all(np.abs(points - lesion.center) < lesion.bounding_radius(session), axis=1)
            if not near.any():
                continue
            f = lesion.fraction(points[near], session)
            out[lesion.tissue][near] = np.maximum(out[lesion.tissue][near], f)
            ids[np.flatnonzero(near)[f > 0]] = lesion_id
        return {**out, "id": ids}


@dataclass
class Sampled:
    """What :meth:`SubjectAnatomy.fractions` returns: tissue fractions (N, T), lesion ids (N,), and when
    asked fibre directions (N, 3) and region weights (N, R)."""

    frac: np.ndarray
    lesion_id: np.ndarray
    fibre: np.ndarray | None = None
    regions: np.ndarray | None = None


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners (8, 3) of the axis-aligned box from ``lo`` to ``hi``."""
    return np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])


def grid_points(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """World coordinates (N, 3) of the voxel centres of a grid, in C order."""
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    return (affine[:3, :3].astype(np.float32) @ ijk + affine[:3, 3:4].astype(np.float32)).T
