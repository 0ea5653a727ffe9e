"""SIENA-like percentage brain volume change by edge displacement (Smith et al., NeuroImage 2002).

Both sessions are resampled once into their halfway space (:mod:`msqmri.atrophy.halfway`). Edge
points are the brain voxels of the first image with a non-brain 6-neighbour inside both fields of
view; at each, the outward normal is the (negative, Sobel-smoothed) intensity gradient; intensity
profiles are sampled from -8 to +8 mm along it in both images, differentiated, windowed around the
edge point and cross-correlated over shifts of -4..4 mm (symmetrically, so that an image matched with
itself reads exactly zero); the peak, refined by a parabola, is the edge's perpendicular
displacement (outward = growth).
SIENA turns the mean displacement into PBVC with a self-calibration factor, from each image matched
with a copy of itself scaled by 1.002 (expected change (1.002**6 - 1) x 100 = 1.207 %); that
estimate is kept (``pbvc_self_calibrated``). The reported PBVC is calibrated on the pair itself: the
brain in the second image (a layer of its partial-volume fraction over CSF), rescaled about the brain
centre while the rest of the head stays in place as it does in atrophy, is matched
against the first image's edges, and the scale k that brings the mean displacement to zero (secant
steps started from the 1.002-scaled copies) gives PBVC = (k**-3 - 1) x 100. On phantoms this removes
the 10-25 % gain error the self-calibration leaves when the two sessions are sampled differently, and
the one a rescaled whole head has where the dura lies within the profile window (benchmarks/pbvc.py).
Forward (edges of A) and backward (edges of B) estimates are averaged as (forward - backward) / 2.
Only edges that are the same anatomy in both sessions are measured: an edge point of A where B's mask
boundary lies within :data:`~msqmri.atrophy.halfway.SAME_ANATOMY_MM`, and the converse, so that what one
session's mask alone takes in (dura, a sinus, neck tissue, a brainstem cut elsewhere) adds no edges; the
fraction of edges kept is reported (``shared_edge_fraction``) and checked (:mod:`msqmri.atrophy.qc`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msqmri.atrophy.halfway import (
    HALFWAY_VOXEL_MM,
    SAME_ANATOMY_MM,
    Grid,
    Registration,
    Scan,
    about,
    boundary,
    centroid,
    halfway_images,
    resample,
)
from msqmri.atrophy.qc import non_border_fraction
from msqmri.core.io import MsqmriError
from msqmri.core.morphology import near

#: profile half-length (mm, in 1 mm steps) and largest displacement searched (mm)
PROFILE_MM = 8
SEARCH_MM = 4
#: half-width (mm) of the window on the derivative profiles around the edge point
WINDOW_MM = 3
#: profile samples per mm; shifts are searched in steps of two samples (each profile moves one)
SAMPLES_PER_MM = 4
#: linear scale of the self-calibration copies (one scaled by m, the other by 1/m)
CALIBRATION_SCALE = 1.002
#: secant steps of the pair calibration and the mean displacement (mm) that ends them
BALANCE_STEPS = 3
BALANCE_TOLERANCE_MM = 1e-4
#: brain fraction above which CSF, not the image, lies behind the brain in the pair calibration
CSF_BEHIND_FRACTION = 0.02
#: points per chunk when sampling profiles (bounds memory)
CHUNK = 100_000


@dataclass
class EdgeDisplacement:
    """Edge points (voxel indices on the halfway grid) and their outward displacement (mm)."""

    points: np.ndarray
    displacement: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.displacement.mean())


@dataclass
class Siena:
    """The result of the edge method for one pair, A -> B."""

    pbvc: float
    pbvc_forward: float  # edges of A, A -> B
    pbvc_backward: float  # edges of B, B -> A (sign as measured: negative of forward when consistent)
    pbvc_self_calibrated: float  # SIENA's estimate: mean displacement x self-calibration factor
    calibration: tuple[float, float]  # SIENA self-calibration factors of A and B (% per mm)
    forward: EdgeDisplacement
    grid: Grid
    edge_points: tuple[int, int]  # of A and of B
    non_border: float  # fraction of all edge points (A's and B's) that are not brain/CSF borders
    shared_edges: float  # fraction of both masks' edge points that the other session's mask boundary shares

    def qc_figures(self) -> dict[str, float]:
        """The figures :func:`msqmri.atrophy.qc.qc_flag` checks, by their names in the pair's JSON."""
        return {
            "pbvc_forward": self.pbvc_forward,
            "pbvc_backward": self.pbvc_backward,
            "self_calibration_from": self.calibration[0],
            "self_calibration_to": self.calibration[1],
            "edge_points": self.edge_points[0],
            "edge_points_to": self.edge_points[1],
            "non_border_edge_fraction": self.non_border,
            "shared_edge_fraction": self.shared_edges,
        }

    def flow_map(self) -> np.ndarray:
        """The edge-displacement image (mm, outward positive) of A's edges, zero elsewhere."""
        flow = np.zeros(self.grid.shape, np.float32)
        flow[tuple(self.forward.points.T)] = self.forward.displacement
        return flow


def edge_points(brain: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Brain voxels with a non-brain 6-neighbour, inside ``valid``, top and bottom slices skipped."""
    edges = boundary(brain) & valid
    edges[..., 0] = edges[..., -1] = False
    return np.argwhere(edges)


def edge_normals(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals (down the intensity gradient, 3x3x3 Sobel) and which points have one."""
    gradient = np.stack([ndimage.sobel(image, axis=a, output=np.float32)[tuple(points.T)] for a in range(3)], 1)
    norm = np.linalg.norm(gradient, axis=1)
    ok = norm > 1e-6 * max(float(norm.max(initial=0.0)), 1e-30)
    return -gradient / np.where(ok, norm, 1.0)[:, None], ok


def profiles(image: np.ndarray, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``image`` from -8 to +8 mm along each normal, ``SAMPLES_PER_MM`` per mm."""
    steps = np.arange(-PROFILE_MM * SAMPLES_PER_MM, PROFILE_MM * SAMPLES_PER_MM + 1, dtype=np.float32)
    steps /= np.float32(SAMPLES_PER_MM * HALFWAY_VOXEL_MM)
    out = np.empty((len(points), steps.size), np.float32)
    for start in range(0, len(points), CHUNK):
        p, n = points[start : start + CHUNK].astype(np.float32), normals[start : start + CHUNK].astype(np.float32)
        coords = p[:, :, None] + n[:, :, None] * steps[None, None, :]  # (n, 3, steps)
        flat = coords.transpose(1, 0, 2).reshape(3, -1)
        out[start : start + CHUNK] = ndimage.map_coordinates(image, flat, order=1, mode="nearest").reshape(
            len(p), steps.size
        )
    return out


def profile_shifts(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Displacement (mm, outward positive) of the edge of ``second`` relative to ``first`` along the profiles.

    Central-difference derivatives of both are cross-correlated at shifts s from -4 to 4 mm in steps
    of 2 / ``SAMPLES_PER_MM`` mm, symmetrically about the edge point (``first`` at t - s/2 against
    ``second`` at t + s/2) under a Hann window of +-3 mm and normalised by the windowed energies, so
    that identical profiles correlate best at exactly zero whatever the intensity scale; the best
    shift is refined by a parabola through its neighbours (offsets beyond half a step, or no positive
    correlation, are discarded as in SIENA).
    """
    d1 = first[:, 2:] - first[:, :-2]  # at t = -8 mm + 1 sample .. 8 mm - 1 sample
    d2 = second[:, 2:] - second[:, :-2]
    centre = PROFILE_MM * SAMPLES_PER_MM - 1
    half = WINDOW_MM * SAMPLES_PER_MM
    t = np.arange(-half, half + 1) / SAMPLES_PER_MM
    window = 0.5 * (1.0 + np.cos(np.pi * t / (WINDOW_MM + 0.5)))
    reach = SEARCH_MM * SAMPLES_PER_MM // 2  # each side moves by half the shift
    shifts = np.arange(-reach, reach + 1)
    corr = np.empty((len(d1), shifts.size), np.float32)
    for column, shift in enumerate(shifts):
        a = d1[:, centre - half - shift : centre + half + 1 - shift]
        b = d2[:, centre - half + shift : centre + half + 1 + shift]
        energy = np.sqrt((window * a * a).sum(1) * (window * b * b).sum(1))
        corr[:, column] = (window * a * b).sum(1) / np.where(energy > 0, energy, np.inf)
    best = corr.argmax(1)
    rows = np.arange(len(corr))
    inner = (best > 0) & (best < len(shifts) - 1)
    left = corr[rows, np.clip(best - 1, 0, None)]
    mid = corr[rows, best]
    right = corr[rows, np.clip(best + 1, None, len(shifts) - 1)]
    curvature = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(inner & (curvature < 0), 0.5 * (left - right) / curvature, 0.0)
    delta = np.where(np.abs(delta) > 0.5, 0.0, delta)
    displacement = (shifts[best] + delta) * (2.0 / SAMPLES_PER_MM) * HALFWAY_VOXEL_MM
    return np.where(mid > 0, displacement, 0.0).astype(np.float32)


@dataclass
class Edges:
    """The edge points of one image on the halfway grid, their outward normals and intensity profiles."""

    points: np.ndarray
    normals: np.ndarray
    profiles: np.ndarray

    def displacement(self, second: np.ndarray) -> EdgeDisplacement:
        """Outward displacement of each edge in ``second`` relative to this image."""
        shifts = profile_shifts(self.profiles, profiles(second, self.points, self.normals))
        return EdgeDisplacement(points=self.points, displacement=shifts)


def edges(first: np.ndarray, brain: np.ndarray, valid: np.ndarray) -> Edges:
    """Edge points of ``brain`` on the image ``first`` with their normals and profiles."""
    points = edge_points(brain, valid)
    if len(points) == 0:
        raise MsqmriError("no brain edge points inside both fields of view")
    normals, ok = edge_normals(first, points)
    points, normals = points[ok], normals[ok]
    return Edges(points=points, normals=normals, profiles=profiles(first, points, normals))


def self_calibration(scan: Scan, grid: Grid, to_scan: np.ndarray, centre: np.ndarray) -> float:
    """SIENA's calibration factor (expected / measured): the scan against itself scaled by 1.002.

    Both copies are resampled from the original with the scale applied about ``centre`` (halfway mm),
    one by m and the other by 1/m, so they are interpolated like the real pair; expected PBVC is
    (m**6 - 1) x 100.
    """
    m = CALIBRATION_SCALE
    small, inside = resample(scan.image, scan.affine, grid, to_scan @ about(np.eye(3) * m, centre))
    large, _ = resample(scan.image, scan.affine, grid, to_scan @ about(np.eye(3) / m, centre))
    brain, _ = resample(scan.brain_fraction, scan.affine, grid, to_scan @ about(np.eye(3) * m, centre), order=1)
    measured = edges(small, brain >= 0.5, inside).displacement(large).mean
    if measured <= 0:
        raise MsqmriError("self-calibration failed: a 1.002-scaled copy did not read as growth")
    return (m**6 - 1.0) * 100.0 / measured


def brain_layer(image: np.ndarray, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` as a brain layer over what lies behind it: ``image = brain + (1 - fraction) x behind``.

    Behind the brain (fraction above :data:`CSF_BEHIND_FRACTION`) lies CSF, at the level of the CSF
    the brain encloses (the ventricles: voxels of the filled brain with no brain, one voxel in from
    their walls, which no dura, sinus or skull contaminates); elsewhere the image itself. Moving the
    brain layer and its fraction then leaves CSF where the brain was and covers what it moves over, as
    atrophy and growth do in a head that stays in place.
    """
    enclosed = ndimage.binary_fill_holes(fraction >= 0.5) & (fraction < 0.05)
    csf = ndimage.binary_erosion(enclosed)
    if not csf.any():
        csf = enclosed
    if not csf.any():
        raise MsqmriError("calibration failed: the brain encloses no CSF (ventricles) to take its level from")
    behind = np.where(fraction > CSF_BEHIND_FRACTION, np.float32(np.median(image[csf])), image)
    return image - (1.0 - fraction) * behind, behind


def balancing_scale(
    first: Edges, image: np.ndarray, fraction: np.ndarray, centre: np.ndarray, measured: float
) -> float:
    """The scale k of the brain in ``image`` (halfway grid, about the voxel point ``centre``) at which its
    mean edge displacement against ``first`` is zero, by secant steps from the 1.002-scaled copies.

    Only the brain layer of the image is rescaled (:func:`brain_layer`): atrophy moves the brain inside
    a head that stays in place, and a rescaled whole head (dura and skull moving with the cortex within
    the profile window) reads a larger displacement for the same brain change. Calibrating on the pair
    itself, rather than on an image against its own copy, also absorbs what differs between two
    acquisitions (sampling phase, noise, interpolation) and the non-linearity of the profile matching.
    """
    layer, behind = brain_layer(image, fraction)
    coefficients = ndimage.spline_filter(layer.astype(np.float64), 3)

    def mean_shift(k: float) -> float:
        linear = np.eye(3) / k
        offset = centre - linear @ centre
        moved = ndimage.affine_transform(
            coefficients, linear, offset=offset, order=3, mode="nearest", prefilter=False, output=np.float32
        )
        moved_fraction = ndimage.affine_transform(
            fraction, linear, offset=offset, order=1, mode="nearest", output=np.float32
        )
        return first.displacement(moved + (1.0 - moved_fraction) * behind).mean

    m = CALIBRATION_SCALE
    ks, ds = [1.0 / m, m], [mean_shift(1.0 / m), mean_shift(m)]
    if ds[1] <= ds[0]:
        raise MsqmriError("calibration failed: a 1.002-scaled copy did not read as growth")
    k = 1.0 - measured * (ks[1] - ks[0]) / (ds[1] - ds[0])
    for _ in range(BALANCE_STEPS):
        d = mean_shift(k)
        ks, ds = [ks[-1], k], [ds[-1], d]
        if abs(d) < BALANCE_TOLERANCE_MM or ds[1] == ds[0]:
            break
        k = k - d * (ks[1] - ks[0]) / (ds[1] - ds[0])
    return k


def siena(a: Scan, b: Scan, registration: Registration) -> Siena:
    """PBVC from session A to session B (negative for loss) by edge displacement in halfway space."""
    to_a, to_b = registration.halfway_a, registration.halfway_b
    grid, half = halfway_images(a, b, registration)
    valid = half["inside_a"] & half["inside_b"]
    mask_a, mask_b = half["brain_a"] >= 0.5, half["brain_b"] >= 0.5
    spacing = (HALFWAY_VOXEL_MM,) * 3
    edges_a = edges(half["a"], mask_a, valid & near(boundary(mask_b), spacing, SAME_ANATOMY_MM))
    edges_b = edges(half["b"], mask_b, valid & near(boundary(mask_a), spacing, SAME_ANATOMY_MM))
    every_edge = len(edge_points(mask_a, valid)) + len(edge_points(mask_b, valid))
    forward, backward = edges_a.displacement(half["b"]), edges_b.displacement(half["a"])
    # scalings are about the mean of the two brain centres (the same point when A and B swap)
    centre = np.mean(
        [(np.linalg.inv(t) @ np.append(centroid(s.brain, s.affine), 1.0))[:3] for s, t in ((a, to_a), (b, to_b))],
        axis=0,
    )
    calibration = (self_calibration(a, grid, to_a, centre), self_calibration(b, grid, to_b, centre))
    centre_voxel = np.linalg.solve(grid.affine[:3, :3], centre - grid.affine[:3, 3])
    k_forward = balancing_scale(edges_a, half["b"], half["brain_b"], centre_voxel, forward.mean)
    k_backward = balancing_scale(edges_b, half["a"], half["brain_a"], centre_voxel, backward.mean)
    # B scaled by k matches A: B's volume is A's / k**3
    pbvc_forward = (k_forward**-3 - 1.0) * 100.0
    pbvc_backward = (k_backward**-3 - 1.0) * 100.0
    self_calibrated = (calibration[0] * forward.mean - calibration[1] * backward.mean) / 2.0
    profiles = np.concatenate([edges_a.profiles, edges_b.profiles])
    return Siena(
        pbvc=(pbvc_forward - pbvc_backward) / 2.0,
        pbvc_forward=pbvc_forward,
        pbvc_backward=pbvc_backward,
        pbvc_self_calibrated=self_calibrated,
        calibration=calibration,
        forward=forward,
        grid=grid,
        edge_points=(len(edges_a.points), len(edges_b.points)),
        non_border=non_border_fraction(profiles, PROFILE_MM * SAMPLES_PER_MM, SAMPLES_PER_MM),
        shared_edges=(len(edges_a.points) + len(edges_b.points)) / every_edge,
    )
