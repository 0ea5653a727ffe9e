"""Build one synthetic subject: warped template brain, head layers, fibre field and a lesion history."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from msqmri.phantom.anatomy import HeadLayers, Lesion, SubjectAnatomy, grid_points, sample, template_maps

#: mean linear head size relative to the (large) MNI template, so brain volumes are adult-like
MEAN_HEAD_SCALE = 0.92
#: radius multipliers of enlarging and shrinking lesions (volume x2.7 and x0.34)
ENLARGE, SHRINK = 1.4, 0.7


def coarse_field(
    rng: np.random.Generator, shape: tuple[int, ...], affine: np.ndarray, spacing_mm: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` smooth random fields (unit max) on a coarse grid covering ``shape``/``affine``, and its affine."""
    extent = np.array(shape) * abs(affine[0, 0])
    cshape = tuple(int(np.ceil(e / spacing_mm)) + 3 for e in extent)
    fields = np.stack(
        [ndimage.gaussian_filter(rng.standard_normal(cshape), 1.2, mode="wrap") for _ in range(n)]
    ).astype(np.float32)
    fields /= np.abs(fields).max(axis=(1, 2, 3), keepdims=True)
    caffine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    caffine[:3, 3] = affine[:3, 3] - spacing_mm
    return fields, caffine


def make_subject(
    rng: np.random.Generator,
    step: float,
    lesion_scales: list[tuple[float, ...]],
    lesion_status: list[tuple[str, ...]],
) -> tuple[SubjectAnatomy, float]:
    """A subject anatomy on a ``step`` mm grid and its head scale (linear, relative to MNI).

    The template is warped by ``x_template = x / head_scale + u(x)`` with ``u`` a smooth random
    displacement of a few mm; the head is then built around the warped brain. One lesion is placed
    per entry of ``lesion_scales`` (radius multiplier per session) deep inside white matter.
    """
    maps, affine = template_maps(step)
    shape = maps.shape[1:]
    head_scale = MEAN_HEAD_SCALE * (1.0 + rng.uniform(-0.07, 0.07))
    warp, warp_affine = coarse_field(rng, shape, affine, 8.0, 3)
    warp *= rng.uniform(2.0, 4.0)  # peak displacement, mm
    points = grid_points(shape, affine)
    source = points / head_scale + sample(warp, warp_affine, points).T
    subject_maps = sample(maps, affine, source).reshape(maps.shape)
    del points, source
    brain, icv = subject_maps[:3], subject_maps[3] > 0.5
    distance = ndimage.distance_transform_edt(~icv, sampling=step) - ndimage.distance_transform_edt(
        icv, sampling=step
    )
    # skull and scalp thickness vary smoothly by +/- 25 % around the head
    thick, thick_affine = coarse_field(rng, shape, affine, 16.0, 1)
    factor = 1.0 + 0.25 * sample(thick[0], thick_affine, grid_points(shape, affine)).reshape(shape)
    distance = np.where(distance > 0, distance / factor, distance).astype(np.float32)
    layers = HeadLayers(
        csf=rng.uniform(1.5, 2.5),
        inner_table=rng.uniform(1.2, 2.0),
        diploe=rng.uniform(2.0, 4.0),
        outer_table=rng.uniform(1.2, 2.0),
        muscle=rng.uniform(1.5, 3.0),
        fat=rng.uniform(2.5, 5.0),
    )
    fibre, fibre_affine = coarse_field(rng, shape, affine, 20.0, 3)
    weights = brain.sum(0)
    centroid = (np.stack(np.nonzero(weights > 0.5), axis=1).mean(0)) * step + affine[:3, 3]
    wm_depth = ndimage.distance_transform_edt(brain[1] > 0.5, sampling=step)
    anatomy = SubjectAnatomy(
        brain=brain,
        distance=distance,
        affine=affine,
        fibre=fibre,
        fibre_affine=fibre_affine,
        layers=layers,
        centroid=centroid,
    )
    anatomy.lesions = place_lesions(rng, wm_depth, affine, lesion_scales, lesion_status)
    return anatomy, head_scale


def place_lesions(
    rng: np.random.Generator,
    wm_depth: np.ndarray,
    affine: np.ndarray,
    scales: list[tuple[float, ...]],
    status: list[tuple[str, ...]],
) -> list[Lesion]:
    """Ellipsoids deep enough in WM to stay inside it at their largest, at least 3 mm apart."""
    lesions: list[Lesion] = []
    step = abs(affine[0, 0])
    for scale, stat in zip(scales, status, strict=True):
        radius = rng.uniform(2.0, 4.5)
        radii = radius * np.array([1.0, rng.uniform(0.65, 1.0), rng.uniform(0.5, 0.85)])
        reach = radii.max() * max(scale)
        candidates = np.argwhere(wm_depth >= reach + 1.5)
        rng.shuffle(candidates)
        for ijk in candidates[:2000]:
            center = ijk * step + affine[:3, 3]
            if all(
                np.linalg.norm(center - o.center) > reach + o.radii.max() * max(o.scale) + 3.0 for o in lesions
            ):
                break
        else:
            continue  # no room left deep in WM: fewer lesions rather than overlapping ones
        rotation = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
        lesions.append(Lesion(center=center, radii=radii, rotation=rotation, scale=scale, status=stat))
    return lesions


def plan_lesions(rng: np.random.Generator, n_sessions: int) -> tuple[list[tuple[float, ...]], list[tuple[str, ...]]]:
    """A lesion history: per lesion, its radius multiplier and status at each session.

    Baseline lesions stay stable or, at one follow-up, enlarge (radius x1.4), shrink (x0.7) or
    resolve; each follow-up brings one or two new lesions and at least one enlarging lesion.
    """
    scales: list[list[float]] = []
    status: list[list[str]] = []
    n_base = int(rng.integers(4, 7))
    for _ in range(n_base):
        scales.append([1.0] * n_sessions)
        status.append(["present"] + ["stable"] * (n_sessions - 1))
    fates = ["enlarging", "shrinking", "resolved"]
    for k in range(1, n_sessions):
        # fates for this follow-up, applied to still-stable baseline lesions
        chosen = ["enlarging"] + [f for f in fates[1:] if rng.random() < 0.6]
        stable = [i for i in range(n_base) if all(s == "stable" for s in status[i][1:])]
        for fate, i in zip(chosen, rng.permutation(stable), strict=False):
            factor = {"enlarging": ENLARGE, "shrinking": SHRINK, "resolved": 0.0}[fate]
            for j in range(k, n_sessions):
                scales[i][j] = factor
                status[i][j] = fate if j == k else ("absent" if fate == "resolved" else "stable")
        for _ in range(int(rng.integers(1, 3))):
            scales.append([0.0] * k + [1.0] * (n_sessions - k))
            status.append(["absent"] * k + ["new"] + ["stable"] * (n_sessions - k - 1))
    return [tuple(s) for s in scales], [tuple(s) for s in status]
