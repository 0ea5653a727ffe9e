"""Contrast-enhancing lesions on a known enhancement map (msqmri.lesions.enhancement): a solid and a
ring-enhancing lesion are found and outlined whole; a vessel, a vein in the CSF, the choroid plexus in a ventricle
and noise are not. (Detection from the phantom's images: test_lesion_detection.py and benchmarks/enhancement.py.)"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from msqmri.lesions.enhancement import enhancement_map, find_enhancing, linearity

SHAPE = (80, 80, 60)
GRID = np.indices(SHAPE).astype(float)


def _ball(centre: tuple[float, float, float], radius: float) -> np.ndarray:
    return sum((g - c) ** 2 for g, c in zip(GRID, centre, strict=True)) <= radius * radius


def test_cels_are_found_and_the_normal_enhancing_structures_rejected() -> None:
    rng = np.random.default_rng(0)
    brain = _ball((40, 40, 30), 28)
    csf = np.where(brain & ~ndimage.binary_erosion(brain, iterations=2), 0.8, 0.0)
    ventricles = _ball((40, 40, 30), 3)
    enhancement = rng.normal(0, 0.03, SHAPE).astype(np.float32)
    solid, ring = _ball((30, 40, 30), 3), _ball((50, 40, 30), 5)
    enhancement[solid] += 0.4
    enhancement[ring & ~_ball((50, 40, 30), 3.5)] += 0.4  # a 1.5 mm rim around a core that does not enhance
    vessel = (np.abs(GRID[0] - 40) <= 1) & (np.abs(GRID[2] - 20) <= 1) & (GRID[1] > 25) & (GRID[1] < 55)
    enhancement[vessel] += 0.8
    enhancement[_ball((40, 40, 30), 2.5)] += 0.8  # the choroid plexus, in the ventricle
    enhancement[_ball((40, 13, 30), 2)] += 0.8  # a vein in the CSF at the brain's surface
    tissue = {"csf": csf, "wm": np.where(csf > 0, 0.0, 1.0), "lesion": np.zeros(SHAPE, bool)}
    found = find_enhancing(enhancement, brain, brain & ~ventricles & (csf < 0.1), tissue, ventricles, (1.0, 1.0, 1.0))
    assert found.n == 2 and set(found.patterns) == {"solid", "ring"}
    for pattern, truth in (("solid", solid), ("ring", ring)):
        cel = found.labels == found.patterns.index(pattern) + 1
        assert 2 * (cel & truth).sum() / (cel.sum() + truth.sum()) >= 0.9  # outlined whole, the ring's core too
    assert found.rejected["vessel"] == 1 and found.rejected["csf"] == 1
    assert not (found.labels > 0)[vessel | ventricles].any()


def test_a_cel_with_a_noisy_peak_is_outlined_at_its_partial_volume_rim() -> None:
    """A CEL (enhancement 0.5 over a ball of radius 3 voxels, each voxel by the share of it inside the ball: 112.6
    voxels in all) in noise of SD 0.03, with a noise spike of 0.9 at its centre: its outline holds the ball's
    volume within 15 %, neither shrunk to half the spike nor spread over the search box."""
    grid = (np.indices((36, 36, 36)) + 0.5) / 4 - 4.5  # 4 x 4 x 4 samples per voxel of a 9-voxel cube
    share = ((grid**2).sum(0) <= 9).reshape(9, 4, 9, 4, 9, 4).mean((1, 3, 5))
    brain = _ball((40, 40, 30), 28)
    enhancement = np.random.default_rng(0).normal(0, 0.03, SHAPE).astype(np.float32)
    enhancement[36:45, 36:45, 26:35] += 0.5 * share
    enhancement[40, 40, 30] = 0.9
    tissue = {"csf": np.zeros(SHAPE), "wm": np.ones(SHAPE), "lesion": np.zeros(SHAPE, bool)}
    found = find_enhancing(enhancement, brain, brain, tissue, np.zeros(SHAPE, bool), (1.0, 1.0, 1.0))
    assert found.n == 1
    assert abs((found.labels > 0).sum() / share.sum() - 1) <= 0.15, (found.labels > 0).sum()


def test_without_a_pre_contrast_scan_the_map_is_post_minus_nawm() -> None:
    post = np.array([1.0, 1.3, 0.8], np.float32)
    assert np.allclose(enhancement_map(post, None), [0.0, 0.3, -0.2], atol=1e-6)
    assert np.allclose(enhancement_map(post, np.array([1.0, 0.9, 0.8])), [0.0, 0.4, 0.0], atol=1e-6)


def test_linearity_tells_a_line_from_a_ball() -> None:
    line = np.column_stack([np.arange(20.0), np.zeros(20), np.zeros(20)]) + np.random.default_rng(1).normal(
        0, 0.3, (20, 3)
    )
    ball = np.argwhere(_ball((10, 10, 10), 4)).astype(float)
    assert linearity(line)[0] > 0.9 and linearity(line)[1] > 15
    assert linearity(ball)[0] < 0.1
