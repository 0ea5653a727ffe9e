"""Build one synthetic subject: warped template brain and regions, head layers, fibre field, lesions."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from msqmri.phantom.anatomy import REGIONS, HeadLayers, SubjectAnatomy, grid_points, sample, template_maps
from msqmri.phantom.lesions import PlacementMaps, make_lesions

#: mean linear head size relative to the (large) MNI template, so brain volumes are adult-like
MEAN_HEAD_SCALE = 0.92
#: share of the cortex that is mildly FLAIR-hyperintense, in patches (a confounder of FLAIR thresholds)
CORTICAL_PATCH_SHARE = 0.06


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


def cortical_patches(rng: np.random.Generator, cortex: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Weights (0-1) of smooth patches covering about :data:`CORTICAL_PATCH_SHARE` of ``cortex`` (GM fraction)."""
    field, field_affine = coarse_field(rng, cortex.shape, affine, 12.0, 1)
    values = sample(field[0], field_affine, grid_points(cortex.shape, affine)).reshape(cortex.shape)
    level = np.quantile(values[cortex >= 0.5], 1.0 - CORTICAL_PATCH_SHARE)
    return (np.clip((values - level) / 0.05, 0.0, 1.0) * cortex).astype(np.float32)


def make_subject(
    rng: np.random.Generator, step: float, n_sessions: int = 1, lesions: bool = True, active: bool = True
) -> tuple[SubjectAnatomy, float]:
    """A subject anatomy on a ``step`` mm grid and its head scale (linear, relative to MNI).

    The template is warped by ``x_template = x / head_scale + u(x)`` with ``u`` a smooth random
    displacement of a few mm; the head is then built around the warped brain, and the subject's lesions
    (when ``lesions``) are placed by location class with a history over ``n_sessions`` sessions
    (:func:`msqmri.phantom.lesions.make_lesions`; ``active`` False: unchanged lesions).
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
    regions = np.concatenate([subject_maps[4:], cortical_patches(rng, brain[0], affine)[None]])
    del subject_maps
    distance = ndimage.distance_transform_edt(~icv, sampling=step) - ndimage.distance_transform_edt(icv, sampling=step)
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
    anatomy = SubjectAnatomy(
        brain=brain,
        regions=regions,
        distance=distance,
        affine=affine,
        fibre=fibre,
        fibre_affine=fibre_affine,
        layers=layers,
        centroid=centroid,
    )
    if lesions:
        placement = PlacementMaps.from_anatomy(brain, dict(zip(REGIONS, regions, strict=True)), affine)
        anatomy.lesions = make_lesions(rng, placement, n_sessions, active)
    return anatomy, head_scale
