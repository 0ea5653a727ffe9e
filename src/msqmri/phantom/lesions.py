"""A subject's MS lesions: shapes, locations and a planned history across sessions.

Lesions are placed by the McDonald 2017 / MAGNIMS location classes (Thompson et al., Lancet Neurol
2018; Filippi et al., Lancet Neurol 2016), so that every lesion's class is known by construction:

- *periventricular*: abutting the lateral ventricles; mostly Dawson's fingers (ovoids with their long
  axis perpendicular to the ventricle wall), and one confluent lesion of several lobes along the wall;
- *juxtacortical*: in WM, abutting the cortex;
- *infratentorial*: in the WM of the brainstem or cerebellum;
- *deep WM*: away from ventricles, cortex and the posterior fossa.

A lesion is a union of ellipsoidal lobes (irregular and confluent shapes), from about 10 mm^3 up;
lesions are clipped by the WM they sit in, so those abutting the ventricles or the cortex end at their
wall. The one or two largest baseline WM lesions above the tentorium are black holes (markedly
T1-hypointense, :mod:`msqmri.phantom.tissues`).

History (``active``): baseline lesions stay, or at one follow-up enlarge (size x1.4, volume x2.7),
shrink (x0.7) or resolve; every follow-up brings at least one enlarging lesion and one to three new
lesions. Without ``active`` every lesion is present and unchanged at every session (a scan-rescan study).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from msqmri.core.morphology import ball
from msqmri.phantom.anatomy import Lesion, Lobe

#: size multipliers of enlarging and shrinking lesions (volume x2.7 and x0.34)
ENLARGE, SHRINK = 1.4, 0.7
#: periventricular lesions abut the ventricles where these are at least twice this thick (mm): a thin
#: recess of the ventricle is not visible at 2-3 mm
VENTRICLE_BODY_MM = 1.5
#: smallest gap between two lesions at their largest (mm), so that the truth's lesions stay apart
GAP_MM = 3.0
#: the locations of a subject's baseline lesions (then a few more drawn at random)
BASELINE_LOCATIONS = (
    "periventricular",
    "periventricular",
    "periventricular",
    "juxtacortical",
    "juxtacortical",
    "infratentorial",
    "deep_wm",
    "deep_wm",
)
#: how likely each location is for a new lesion or an extra baseline lesion
LOCATION_ODDS = {"periventricular": 0.3, "juxtacortical": 0.2, "infratentorial": 0.15, "deep_wm": 0.35}
#: lesion volumes (mm^3) drawn log-uniformly per location
VOLUME_MM3 = {
    "periventricular": (40.0, 400.0),
    "juxtacortical": (10.0, 200.0),
    "infratentorial": (15.0, 120.0),
    "deep_wm": (10.0, 200.0),
}


@dataclass
class PlacementMaps:
    """Distances (mm) on the subject's anatomy grid that lesions are placed by."""

    affine: np.ndarray
    wm_depth: np.ndarray  # inside WM, to its border
    to_ventricle: np.ndarray  # to the ventricles' body (their parts at least 3 mm thick)
    to_cortex: np.ndarray
    to_deep_gm: np.ndarray
    infratentorial_depth: np.ndarray  # inside the infratentorial region, to its border
    to_infratentorial: np.ndarray
    to_confounder: np.ndarray  # to the septum, choroid plexus and CSF flow (lesions stay clear of them)

    @classmethod
    def from_anatomy(cls, brain: np.ndarray, regions: dict[str, np.ndarray], affine: np.ndarray) -> PlacementMaps:
        step = float(abs(affine[0, 0]))

        def distance(mask: np.ndarray) -> np.ndarray:
            return ndimage.distance_transform_edt(~mask, sampling=step).astype(np.float32)

        infratentorial = regions["infratentorial"] >= 0.5
        return cls(
            affine=affine,
            wm_depth=ndimage.distance_transform_edt(brain[1] >= 0.5, sampling=step).astype(np.float32),
            to_ventricle=distance(
                ndimage.binary_opening(regions["ventricle"] >= 0.5, ball(VENTRICLE_BODY_MM, (step,) * 3))
            ),
            to_cortex=distance(brain[0] >= 0.5),
            to_deep_gm=distance(brain[2] >= 0.5),
            infratentorial_depth=ndimage.distance_transform_edt(infratentorial, sampling=step).astype(np.float32),
            to_infratentorial=distance(infratentorial),
            to_confounder=distance(np.maximum.reduce([regions[r] for r in ("septum", "choroid", "flow")]) >= 0.25),
        )

    def candidates(self, location: str, reach: float, touch: float) -> np.ndarray:
        """Voxel indices (N, 3) where a lesion of ``location`` can be centred: ``reach`` is its largest
        extent (mm), ``touch`` the distance (mm) within which its surface surely lies in every session."""
        clear = (self.wm_depth >= 0.5) & (self.to_confounder >= reach + 2.0)
        if location == "periventricular":
            ok = (self.to_ventricle >= 0.3 * touch) & (self.to_ventricle <= 0.75 * touch)
            # the whole lesion in WM (a wall lined by the caudate or thalamus does not count)
            ok &= (self.to_cortex >= reach + 1.5) & (self.to_infratentorial >= reach + 8.0) & (self.to_deep_gm >= reach)
        elif location == "juxtacortical":
            ok = (self.to_cortex >= 0.3 * touch) & (self.to_cortex <= 0.75 * touch)
            ok &= (self.to_ventricle >= reach + 5.0) & (self.to_infratentorial >= reach + 8.0)
            ok &= self.to_deep_gm >= reach + 3.0
        elif location == "infratentorial":
            ok = (self.infratentorial_depth >= reach + 2.0) & (self.wm_depth >= 0.7 * reach) & (self.to_cortex >= reach)
        else:
            ok = (self.wm_depth >= reach + 1.0) & (self.to_ventricle >= reach + 5.0) & (self.to_cortex >= reach + 5.0)
            ok &= (self.to_infratentorial >= reach + 8.0) & (self.to_deep_gm >= reach + 2.0)
        return np.argwhere(clear & ok)

    def world(self, ijk: np.ndarray) -> np.ndarray:
        return ijk * np.diag(self.affine)[:3] + self.affine[:3, 3]

    def ventricle_normal(self, ijk: np.ndarray) -> np.ndarray:
        """Unit vector away from the nearest ventricle wall at voxel ``ijk``."""
        lo = np.maximum(ijk - 1, 0)
        patch = self.to_ventricle[lo[0] : ijk[0] + 2, lo[1] : ijk[1] + 2, lo[2] : ijk[2] + 2]
        gradient = np.array([np.mean(np.diff(patch, axis=a)) for a in range(3)], dtype=float)
        norm = np.linalg.norm(gradient)
        return gradient / norm if norm > 0 else np.array([1.0, 0.0, 0.0])


def frame(axis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation whose first column is ``axis`` (the other two at a random angle about it)."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    second = np.cross(axis, helper)
    second /= np.linalg.norm(second)
    third = np.cross(axis, second)
    angle = rng.uniform(0, 2 * np.pi)
    second, third = np.cos(angle) * second + np.sin(angle) * third, -np.sin(angle) * second + np.cos(angle) * third
    return np.column_stack([axis, second, third])


def lobes(rng: np.random.Generator, volume_mm3: float, shape: str, normal: np.ndarray | None) -> tuple[Lobe, ...]:
    """Lobes of a lesion of about ``volume_mm3`` (its main lobes' volume): ``shape`` is "ovoid",
    "irregular" (a main ovoid with one or two smaller lobes on it), "finger" (a Dawson's finger, long axis
    along ``normal``) or "confluent" (three ovoids in a row across ``normal``)."""
    if shape == "finger":
        ratios = np.array([1.8, rng.uniform(0.7, 0.85), rng.uniform(0.55, 0.7)])
        radius = (3 * volume_mm3 / (4 * np.pi * np.prod(ratios))) ** (1 / 3)
        return (Lobe(np.zeros(3), radius * ratios, frame(normal, rng)),)
    ratios = np.array([1.0, rng.uniform(0.7, 1.0), rng.uniform(0.55, 0.85)])
    radius = (3 * volume_mm3 / (4 * np.pi * np.prod(ratios))) ** (1 / 3)
    rotation = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
    main = Lobe(np.zeros(3), radius * ratios, rotation)
    if shape == "confluent":  # three lobes of a third of the volume each, overlapping along the wall
        along = frame(normal, rng)[:, 1]
        radius /= 3 ** (1 / 3)
        return tuple(
            Lobe(k * 1.3 * radius * along, radius * ratios * rng.uniform(0.85, 1.0), frame(normal, rng))
            for k in (-1, 0, 1)
        )
    if shape == "irregular":
        extra = []
        for _ in range(int(rng.integers(1, 3))):
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            extra.append(
                Lobe(
                    0.75 * radius * direction,
                    radius * rng.uniform(0.45, 0.65) * ratios,
                    Rotation.random(random_state=int(rng.integers(2**31))).as_matrix(),
                )
            )
        return (main, *extra)
    return (main,)


@dataclass
class _Plan:
    location: str
    shape: str
    volume_mm3: float
    scale: list[float]
    status: list[str]
    tissue: str = "lesion"
    room: float = 1.0  # the largest size multiplier the lesion must have room for


def place(rng: np.random.Generator, maps: PlacementMaps, plan: _Plan, placed: list[Lesion]) -> Lesion | None:
    """The lesion of ``plan`` at a random admissible centre at least :data:`GAP_MM` from ``placed``, or None."""
    present = [s for s in plan.scale if s > 0]
    radial = plan.shape in ("finger", "confluent")
    shape_lobes = lobes(rng, plan.volume_mm3, plan.shape, np.array([1.0, 0.0, 0.0]) if radial else None)
    reach = Lesion(np.zeros(3), shape_lobes, (1.0,), ("present",)).reach(max(*present, plan.room))
    # the surface lies within the smallest radius of the main lobe (the long one for a finger) of the centre
    touch = (shape_lobes[0].radii[0] if plan.shape == "finger" else shape_lobes[0].radii.min()) * min(present)
    candidates = maps.candidates(plan.location, reach, touch)
    rng.shuffle(candidates)
    for ijk in candidates[:4000]:
        center = maps.world(ijk)
        if all(np.linalg.norm(center - o.center) > reach + o.reach(max(o.scale)) + GAP_MM for o in placed):
            break
    else:
        return None
    if radial:  # Dawson's finger / confluent lesion: oriented on the ventricle wall where it was placed
        shape_lobes = lobes(rng, plan.volume_mm3, plan.shape, maps.ventricle_normal(ijk))
    return Lesion(
        center=center,
        lobes=shape_lobes,
        scale=tuple(plan.scale),
        status=tuple(plan.status),
        location=plan.location,
        tissue=plan.tissue,
    )


def _draw(rng: np.random.Generator, location: str) -> tuple[str, float]:
    """A shape and a volume (mm^3) for a lesion at ``location``."""
    lo, hi = VOLUME_MM3[location]
    volume = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if location == "periventricular":
        return ("finger" if rng.random() < 0.7 else "irregular"), volume
    return ("irregular" if rng.random() < 0.4 else "ovoid"), volume


def _random_location(rng: np.random.Generator) -> str:
    names = list(LOCATION_ODDS)
    return str(rng.choice(names, p=np.array([LOCATION_ODDS[n] for n in names])))


def make_lesions(rng: np.random.Generator, maps: PlacementMaps, n_sessions: int, active: bool = True) -> list[Lesion]:
    """The subject's lesions with their history (module docstring)."""
    stable = ["present"] + ["stable"] * (n_sessions - 1)
    locations = [*BASELINE_LOCATIONS, *(_random_location(rng) for _ in range(int(rng.integers(0, 3))))]
    plans = [_Plan(loc, *_draw(rng, loc), [1.0] * n_sessions, list(stable), room=ENLARGE) for loc in locations]
    plans.append(
        _Plan("periventricular", "confluent", float(rng.uniform(150.0, 350.0)), [1.0] * n_sessions, list(stable))
    )
    placed: list[tuple[_Plan, Lesion]] = []
    for plan in plans:  # baseline lesions first, each with room to enlarge
        lesion = place(rng, maps, plan, [lesion for _, lesion in placed])
        if lesion is not None:
            placed.append((plan, lesion))
    # black holes: the one or two largest chronic baseline lesions outside the posterior fossa
    holes = sorted(
        (p for p, _ in placed if p.location in ("deep_wm", "periventricular") and p.shape != "confluent"),
        key=lambda p: -p.volume_mm3,
    )
    for plan in holes[: int(rng.integers(1, 3))]:
        plan.tissue = "blackhole"
    new: list[_Plan] = []
    for k in range(1, n_sessions if active else 1):
        candidates = [
            p
            for p, _ in placed
            if p.tissue == "lesion" and p.room == ENLARGE and all(s == "stable" for s in p.status[1:])
        ]
        fates = ["enlarging"] + [f for f in ("shrinking", "resolved") if rng.random() < 0.6]
        for fate, index in zip(fates, rng.permutation(len(candidates)), strict=False):
            factor = {"enlarging": ENLARGE, "shrinking": SHRINK, "resolved": 0.0}[fate]
            plan = candidates[index]
            for j in range(k, n_sessions):
                plan.scale[j] = factor
                plan.status[j] = fate if j == k else ("absent" if fate == "resolved" else "stable")
        for _ in range(int(rng.integers(1, 4))):
            location = _random_location(rng)
            new.append(
                _Plan(
                    location,
                    *_draw(rng, location),
                    [0.0] * k + [1.0] * (n_sessions - k),
                    ["absent"] * k + ["new"] + ["stable"] * (n_sessions - k - 1),
                )
            )
    lesions = [
        replace(lesion, scale=tuple(plan.scale), status=tuple(plan.status), tissue=plan.tissue)
        for plan, lesion in placed
    ]
    for plan in new:
        lesion = place(rng, maps, plan, lesions)
        if lesion is not None:
            lesions.append(lesion)
    return lesions
