"""A whole head around the phantom brain: neck, face, orbits, dura and venous sinuses, skull-base marrow.

The skull-only head of :mod:`msqmri.phantom.anatomy` is a brain in a CSF rim, skull and scalp. Real T1w
heads also hold what brain extraction has to reject (Smith 2002; Iglesias et al., ROBEX, IEEE TMI 2011;
Eskildsen et al., BEaST, NeuroImage 2012): the neck down to the shoulders with the spinal cord continuing
the medulla, the face with the orbits, the eyes and the optic nerves, bright fatty marrow in the clivus
and the skull base, and inside the skull the dura, falx and tentorium and the venous sinuses (the superior
sagittal and transverse sinuses, bright on MPRAGE from slow flow: the classic over-inclusion along the
vertex). Structures are analytic shapes placed in MNI coordinates (mm) scaled by the subject's head size,
with their own random sizes and offsets; each has a partial-volume edge of about 1 mm.

Outside the intracranial surface a structure paints its tissue over the skull layers (later structures
over earlier ones); inside, the dura, falx, tentorium and sinuses take their volume from the CSF only,
so the brain and its atrophy are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from msqmri.phantom.tissues import INDEX

#: below this MNI z (mm) the diploe of the skull is fatty (yellow) marrow, bright on T1w
FATTY_MARROW_Z_MM = -20.0
#: MNI z (mm) of the template's lowest medulla slice: the spinal canal runs below it
MEDULLA_Z_MM = -72.0
#: edge width (mm) of the analytic structures' partial volume
EDGE_MM = 1.0

Weight = Callable[[np.ndarray], np.ndarray]
#: a structure: its tissue, its weight at MNI points, and the MNI box (lo, hi) holding it
Structure = tuple[str, Weight, tuple[np.ndarray, np.ndarray]]


def box_of(centre: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box (lo, hi) of an ellipsoid, grown by the partial-volume edge."""
    return centre - radii - EDGE_MM, centre + radii + EDGE_MM


def tube_box(start: np.ndarray, end: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The box (lo, hi) of a capsule, grown by the partial-volume edge."""
    return np.minimum(start, end) - radius - EDGE_MM, np.maximum(start, end) + radius + EDGE_MM


def _soft(inside_mm: np.ndarray) -> np.ndarray:
    """Partial-volume weight from a signed depth (mm, positive inside)."""
    return np.clip(inside_mm / EDGE_MM + 0.5, 0.0, 1.0).astype(np.float32)


def ellipsoid(centre: np.ndarray, radii: np.ndarray) -> Weight:
    """Weight of an axis-aligned ellipsoid (depth approximated by the mean radius, as for lesions)."""

    def weight(p: np.ndarray) -> np.ndarray:
        r = np.sqrt((((p - centre) / radii) ** 2).sum(1))
        return _soft((1.0 - r) * float(np.mean(radii)))

    return weight


def tube(start: np.ndarray, end: np.ndarray, radius: float) -> Weight:
    """Weight of a capsule of ``radius`` around the segment ``start``-``end``."""
    axis = end - start
    length2 = float(axis @ axis)

    def weight(p: np.ndarray) -> np.ndarray:
        t = np.clip((p - start) @ axis / length2, 0.0, 1.0)
        return _soft(radius - np.linalg.norm(p - start - t[:, None] * axis, axis=1))

    return weight


@dataclass(frozen=True)
class Neck:
    """The neck (elliptic cross-section, widening into the shoulders) and the cervical spine, MNI mm."""

    centre_y: float
    radii: tuple[float, float]
    bottom_z: float
    top_z: float = -40.0
    fat_mm: float = 5.0
    shoulders_z: float = -140.0

    def radii_at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        widen = np.clip(self.shoulders_z - z, 0.0, None)
        return self.radii[0] + 2.2 * widen, self.radii[1] + 0.3 * widen

    def depth(self, p: np.ndarray) -> np.ndarray:
        """Approximate depth (mm) inside the neck's surface (negative outside, and above ``top_z``)."""
        rx, ry = self.radii_at(p[:, 2])
        r = np.sqrt((p[:, 0] / rx) ** 2 + ((p[:, 1] - self.centre_y) / ry) ** 2)
        return np.minimum(np.minimum((1.0 - r) * np.minimum(rx, ry), self.top_z - p[:, 2]), p[:, 2] - self.bottom_z)

    def canal_y(self, z: np.ndarray) -> np.ndarray:
        """The spinal canal's y below the medulla, curving forward with the cervical lordosis."""
        return -45.0 + 0.12 * np.clip(MEDULLA_Z_MM - z, 0.0, None)


@dataclass(frozen=True)
class Head:
    """The extracranial and dural structures of one subject (see the module docstring)."""

    scale: float  # subject mm per MNI mm
    neck: Neck
    face_centre: np.ndarray
    face_radii: np.ndarray
    eye_centre: np.ndarray  # right eye, MNI mm (the left mirrors it)
    eye_radius: float
    dura_mm: float
    sinus_mm: float  # half-width of the superior sagittal sinus at the inner table
    top_z: float | None = None  # MNI z (mm) where the field of view ends above; None: above the scalp

    def field_of_view(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The skull-only head's box (subject mm) grown to hold the neck and face, cut at ``top_z``."""
        s, neck = self.scale, self.neck
        rx, ry = neck.radii_at(np.array(neck.bottom_z))
        lo = np.minimum(lo, s * np.array([-rx, neck.centre_y - ry, neck.bottom_z]))
        hi = np.maximum(hi, s * np.array([rx, self.face_centre[1] + self.face_radii[1], hi[2] / s]))
        if self.top_z is not None:
            hi = np.array([hi[0], hi[1], min(hi[2], s * self.top_z)])
        return lo, hi

    def structures(self) -> list[Structure]:
        """Extracranial structures in painting order (see :data:`Structure`)."""
        neck = self.neck
        rx, ry = neck.radii_at(np.array(neck.bottom_z))
        neck_box = (
            np.array([-rx, neck.centre_y - ry, neck.bottom_z]) - EDGE_MM,
            np.array([rx, neck.centre_y + ry, neck.top_z]) + EDGE_MM,
        )
        spine_y = neck.canal_y(np.array(neck.bottom_z))

        def spine(offset_y: float, radius: float) -> tuple[Weight, tuple[np.ndarray, np.ndarray]]:
            def weight(p: np.ndarray) -> np.ndarray:
                z = p[:, 2]
                across = np.hypot(p[:, 0], p[:, 1] - neck.canal_y(z) - offset_y)
                return _soft(radius - across) * _soft(-60.0 - z)

            box = (
                np.array([-radius, -45.0 + offset_y - radius, neck.bottom_z]) - EDGE_MM,
                np.array([radius, spine_y + offset_y + radius, -60.0]) + EDGE_MM,
            )
            return weight, box

        def ball(tissue: str, centre: np.ndarray, radii: np.ndarray, z_max: float | None = None) -> Structure:
            inside = ellipsoid(centre, radii)
            if z_max is None:
                return tissue, inside, box_of(centre, radii)
            return tissue, lambda p: inside(p) * _soft(z_max - p[:, 2]), box_of(centre, radii)

        def capsule(tissue: str, start: np.ndarray, end: np.ndarray, radius: float) -> Structure:
            return tissue, tube(start, end, radius), tube_box(start, end, radius)

        airway_top, airway_bottom = np.array([0.0, 8.0, -55.0]), np.array([0.0, 14.0, neck.bottom_z])
        out: list[Structure] = [
            ("fat", lambda p: _soft(neck.depth(p)), neck_box),
            ("muscle", lambda p: _soft(neck.depth(p) - neck.fat_mm), neck_box),
            ("bone", *spine(20.0, 9.5)),
            ("marrow", *spine(20.0, 8.0)),  # vertebral bodies
            capsule("air", airway_top, airway_bottom, 7.0),  # pharynx and trachea
            ("fluid", *spine(0.0, 7.5)),
            ("cord", *spine(0.0, 4.5)),  # spinal canal and cord
            ball("fat", self.face_centre, self.face_radii, z_max=-5.0),
            ball("muscle", self.face_centre, self.face_radii - 4.0, z_max=-9.0),
            ball("air", np.array([0.0, 66.0, -40.0]), np.array([8.0, 20.0, 16.0])),  # nasal cavity
        ]
        for side in (1.0, -1.0):
            eye = self.eye_centre * np.array([side, 1.0, 1.0])
            r = self.eye_radius
            out += [
                ball("air", np.array([side * 0.75 * eye[0], 52.0, -58.0]), np.array([11.0, 14.0, 13.0])),  # maxillary
                ball("fat", eye + np.array([0.0, -8.0, 2.0]), np.array([16.0, 20.0, 15.0])),  # orbit
                ball("muscle", eye, np.full(3, r)),
                ball("fluid", eye, np.full(3, r - 1.0)),  # sclera, vitreous
                ball("muscle", eye + np.array([0.0, r - 3.0, 0.0]), np.array([4.5, 2.0, 4.5])),  # lens
                capsule("cord", eye - np.array([0.0, r, 0.0]), np.array([side * 8.0, 12.0, -14.0]), 2.2),  # optic nerve
            ]
        clivus_top, clivus_bottom = np.array([0.0, -2.0, -28.0]), np.array([0.0, -28.0, -66.0])
        return [*out, capsule("bone", clivus_top, clivus_bottom, 8.0), capsule("fat", clivus_top, clivus_bottom, 6.5)]

    def paint_outside(self, points: np.ndarray, distance: np.ndarray, csf_mm: float, frac: np.ndarray) -> None:
        """Paint the extracranial structures over ``frac`` (N, T) at subject ``points`` outside the
        intracranial CSF rim (``distance``: mm outside the intracranial surface), and turn the skull
        base's diploe into fatty marrow. Call it before the intracranial tissue is filled in."""
        mni = points / np.float32(self.scale)
        outside = np.clip(distance - csf_mm + 0.5, 0.0, 1.0).astype(np.float32)
        fatty = _soft(FATTY_MARROW_Z_MM - mni[:, 2])
        moved = fatty * frac[:, INDEX["marrow"]]
        frac[:, INDEX["marrow"]] -= moved
        frac[:, INDEX["fat"]] += moved
        structures = self.structures()
        top = max(float(hi[2]) for _, _, (_, hi) in structures)
        candidates = np.flatnonzero((outside > 0) & (mni[:, 2] <= top))
        p = mni[candidates]
        for tissue, weight, (lo, hi) in structures:
            near = np.flatnonzero((p[:, 2] >= lo[2]) & (p[:, 2] <= hi[2]))
            near = near[np.all((p[near, :2] >= lo[:2]) & (p[near, :2] <= hi[:2]), axis=1)]
            if not len(near):
                continue
            w = weight(p[near])
            rows = candidates[near]
            frac[rows] *= (1.0 - w)[:, None]
            frac[rows, INDEX[tissue]] += w * outside[rows]

    def take_from_csf(self, points: np.ndarray, distance: np.ndarray, csf_mm: float, frac: np.ndarray) -> None:
        """The venous sinuses, falx, tentorium and dura take their volume from the CSF at ``points``."""
        rows = np.flatnonzero(frac[:, INDEX["csf"]] > 0)
        mni = points[rows] / np.float32(self.scale)
        x, y, z = mni.T
        depth = csf_mm - distance[rows]  # mm inside the CSF rim's outer surface (the inner table)
        tentorium = -3.0 - 0.35 * np.abs(x) + 0.35 * np.minimum(0.0, y + 65.0)
        sinus = (
            _soft(self.sinus_mm * (1.0 - depth / 6.0) - np.abs(x))
            * _soft(depth)
            * _soft(6.0 - depth)
            * _soft(z + 10.0)
            * _soft(45.0 - y)
        )  # superior sagittal: a triangle under the vertex
        transverse = (
            _soft(3.5 - np.abs(z - tentorium))
            * _soft(depth)
            * _soft(5.0 - depth)
            * _soft(-62.0 - y)
            * _soft(np.abs(x) - 8.0)
        )
        falx = _soft(0.6 - np.abs(x)) * _soft(z - 15.0 + 0.1 * y) * _soft(55.0 - y)
        tent = _soft(0.6 - np.abs(z - tentorium)) * _soft(-45.0 - y)
        dura = _soft(depth) * _soft(self.dura_mm - depth)
        csf = frac[rows, INDEX["csf"]]
        for tissue, weight in (
            ("blood", np.maximum(sinus, transverse)),
            ("dura", np.maximum(falx, tent)),
            ("dura", dura),
        ):
            taken = np.minimum(weight, csf)
            csf -= taken
            frac[rows, INDEX[tissue]] += taken
        frac[rows, INDEX["csf"]] = csf


def make_head(rng: np.random.Generator, scale: float) -> Head:
    """A subject's whole head: sizes and positions drawn around adult values (MNI mm, scaled by ``scale``)."""
    return Head(
        scale=scale,
        neck=Neck(
            centre_y=float(rng.uniform(-30.0, -20.0)),
            radii=(float(rng.uniform(48.0, 58.0)), float(rng.uniform(50.0, 60.0))),
            bottom_z=float(rng.uniform(-190.0, -120.0)),
        ),
        face_centre=np.array([0.0, rng.uniform(42.0, 50.0), rng.uniform(-55.0, -45.0)]),
        face_radii=np.array([rng.uniform(55.0, 62.0), rng.uniform(42.0, 50.0), rng.uniform(45.0, 52.0)]),
        eye_centre=np.array([rng.uniform(30.0, 34.0), rng.uniform(52.0, 58.0), rng.uniform(-38.0, -32.0)]),
        eye_radius=float(rng.uniform(11.0, 12.5)),
        dura_mm=float(rng.uniform(0.6, 1.0)),
        sinus_mm=float(rng.uniform(3.5, 5.0)),
        top_z=float(rng.uniform(83.0, 87.0)) if rng.uniform() < 0.4 else None,  # cut just above the vertex
    )
