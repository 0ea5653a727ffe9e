"""Gradient tables, tensor fit and b-vector rotation on analytic data (no registration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from msqmri import dti, dwi
from msqmri.io import MsqmriInputError
from msqmri.phantom.cohort import hemisphere_directions
from msqmri.phantom.tissues import fractional_anisotropy

LAS = np.diag([-2.0, 2.0, 2.0, 1.0])
RAS = np.diag([2.0, 2.0, 2.5, 1.0])
OBLIQUE = np.eye(4)
OBLIQUE[:3, :3] = Rotation.from_euler("xz", [14.0, -9.0], degrees=True).as_matrix() @ np.diag([2.0, 2.0, 3.0])


def write_gradients(tmp_path: Path, bvals: str, bvecs: str) -> tuple[Path, Path]:
    bval, bvec = tmp_path / "sub-01_dwi.bval", tmp_path / "sub-01_dwi.bvec"
    bval.write_text(bvals)
    bvec.write_text(bvecs)
    return bval, bvec


GOOD_BVECS = "0 1 0 0\n0 0 1 0\n0 0 0 1\n"


@pytest.mark.parametrize(
    ("bvals", "bvecs", "bad_file", "message"),
    [
        ("0 1000 1000\n", GOOD_BVECS, "bval", "3 b-values for 4 volumes"),
        ("0 1000 1000 1000\n", "0 1 0 0\n0 0 1 0\n", "bvec", "expected 3 rows of 4 values, got 2 rows of 4"),
        ("0 1000 1000 1000\n", "0 1 0 0\n0 0 1 0\n0 0 0 0.5\n", "bvec", "volume 3 has norm 0.500; expected unit"),
        ("0 1000 1000 1000\n", "0 0 0 0\n0 0 1 0\n0 0 0 1\n", "bvec", "volume 1 has norm 0.000"),
        ("1000 1000 1000 1000\n", GOOD_BVECS, "bval", "no b=0 volume"),
        ("0 0 5 0\n", GOOD_BVECS, "bval", "no diffusion-weighted volume"),
        ("0 -1000 1000 1000\n", GOOD_BVECS, "bval", "negative b-value"),
        ("0 1e9 1e9 1e9\n", GOOD_BVECS, "bval", "implausible; BIDS uses s/mm^2"),
        ("0 1000 x 1000\n", GOOD_BVECS, "bval", "not a numeric table"),
        ("0 1000\n1000 1000\n", GOOD_BVECS, "bval", "4 b-values for 4 volumes"),
    ],
)
def test_bad_gradients_are_one_line_naming_the_file(
    tmp_path: Path, bvals: str, bvecs: str, bad_file: str, message: str
) -> None:
    bval, bvec = write_gradients(tmp_path, bvals, bvecs)
    with pytest.raises(MsqmriInputError) as info:
        dwi.read_gradients(bval, bvec, 4, LAS)
    text = str(info.value)
    assert "\n" not in text and message in text
    assert text.startswith(str(bval if bad_file == "bval" else bvec))


def test_gradients_column_bval_and_renormalised_vectors(tmp_path: Path) -> None:
    bval, bvec = write_gradients(tmp_path, "0\n1000\n1000\n1000\n", "0 1.02 0 0\n0 0 1 0\n0 0 0 0.99\n")
    gradients = dwi.read_gradients(bval, bvec, 4, LAS)
    np.testing.assert_array_equal(gradients.bvals, [0, 1000, 1000, 1000])
    np.testing.assert_allclose(np.linalg.norm(gradients.bvecs[1:], axis=1), 1.0)
    assert gradients.b0.tolist() == [True, False, False, False]


def test_fsl_bvecs_to_world_and_back() -> None:
    vectors = hemisphere_directions(12)
    # FSL's convention: voxel axes, with x flipped when the voxel-to-world determinant is positive
    np.testing.assert_allclose(dwi.to_world(vectors, LAS), vectors * [-1, 1, 1])
    np.testing.assert_allclose(dwi.to_world(vectors, RAS), vectors * [-1, 1, 1])
    for affine in (LAS, RAS, OBLIQUE):
        np.testing.assert_allclose(dwi.to_fsl(dwi.to_world(vectors, affine), affine), vectors, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(dwi.to_world(vectors, affine), axis=1), 1.0)


def tensor_signal(fibres: np.ndarray, bvecs: np.ndarray, bvals: np.ndarray, ad: float, rd: float) -> np.ndarray:
    """Noise-free signal (..., n) of cylindrical tensors along ``fibres`` (..., 3), world gradients (n, 3)."""
    cos2 = (fibres @ bvecs.T) ** 2
    return 1000.0 * np.exp(-bvals * (rd + (ad - rd) * cos2))


def scheme(n: int = 30) -> dwi.Gradients:
    bvecs = np.vstack([np.zeros((2, 3)), hemisphere_directions(n)])
    return dwi.Gradients(np.r_[0.0, 0.0, np.full(n, 1000.0)], bvecs)


@pytest.mark.parametrize("method", dti.FIT_METHODS)
def test_tensor_fit_is_exact_on_noise_free_tensors(method: str) -> None:
    rng = np.random.default_rng(0)
    fibres = rng.normal(size=(6, 5, 4, 3))
    fibres /= np.linalg.norm(fibres, axis=-1, keepdims=True)
    gradients = scheme()
    ad, rd = 1.6e-3, 0.35e-3
    data = tensor_signal(fibres, gradients.bvecs, gradients.bvals, ad, rd).astype(np.float32)
    mask = np.ones(fibres.shape[:3], dtype=bool)
    mask[0] = False
    maps = dti.fit_tensor(data, gradients, mask, method=method, sigma=1.0, threads=2, chunk=37)
    assert np.all(maps.fa[0] == 0)
    np.testing.assert_allclose(maps.fa[mask], fractional_anisotropy(np.array([ad, rd, rd])), atol=1e-3)
    np.testing.assert_allclose(maps.md[mask], (ad + 2 * rd) / 3, rtol=2e-3)
    np.testing.assert_allclose(maps.ad[mask], ad, rtol=2e-3)
    np.testing.assert_allclose(maps.rd[mask], rd, rtol=3e-3)
    alignment = np.abs((maps.v1 * fibres).sum(-1))[mask]
    assert alignment.min() > 0.9999  # V1 along the fibre, in world coordinates
    colour = maps.colour_fa()
    assert colour.shape == (*mask.shape, 3) and colour.max() <= 1.0


def test_unknown_fit_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tensor fit"):
        dti.fit_tensor(np.ones((2, 2, 2, 4)), scheme(2), np.ones((2, 2, 2), bool), method="OLS2")


def test_eigen_maps_clip_negative_eigenvalues() -> None:
    maps = dti.eigen_maps(np.array([[1e-3, 0.5e-3, -0.1e-3], [0.0, 0.0, 0.0]]))
    assert 0 <= maps["fa"][0] <= 1 and maps["rd"][0] == pytest.approx(0.25e-3)
    assert maps["fa"][1] == 0.0


def rotated_acquisition(angle_deg: float, seed: int = 1) -> tuple[np.ndarray, dwi.Gradients, np.ndarray]:
    """Tensors measured with the head rotated by a different known rotation Q_j in every volume,
    already realigned: volume j probed the head with gradient Q_j^T g_j. Returns the realigned data,
    the nominal (scanner) gradients and the transforms reference -> volume (Q_j)."""
    rng = np.random.default_rng(seed)
    gradients = scheme()
    transforms = np.tile(np.eye(4), (len(gradients.bvals), 1, 1))
    for j in np.flatnonzero(~gradients.b0):
        transforms[j, :3, :3] = Rotation.from_rotvec(rng.normal(size=3) / np.sqrt(3) * np.radians(angle_deg)).as_matrix()
    fibres = np.broadcast_to(np.array([0.6, 0.8, 0.0]), (4, 4, 4, 3))
    head_frame = np.einsum("nji,nj->ni", transforms[:, :3, :3], gradients.bvecs)  # Q_j^T g_j
    data = np.stack([tensor_signal(fibres, head_frame[j : j + 1], gradients.bvals[j : j + 1], 1.6e-3, 0.35e-3)[..., 0]
                     for j in range(len(gradients.bvals))], axis=-1)  # fmt: skip
    return data.astype(np.float32), gradients, transforms


def test_bvec_rotation_undoes_head_rotation() -> None:
    """Leemans & Jones (2009): with the b-vectors rotated by the inverse head rotation the tensor is
    recovered exactly; with the nominal b-vectors FA is biased."""
    data, gradients, transforms = rotated_acquisition(10.0)
    mask = np.ones(data.shape[:3], dtype=bool)
    truth = fractional_anisotropy(np.array([1.6e-3, 0.35e-3, 0.35e-3]))
    rotated = dwi.rotate_gradients(gradients, transforms)
    fa_rotated = dti.fit_tensor(data, rotated, mask).fa
    fa_nominal = dti.fit_tensor(data, gradients, mask).fa
    np.testing.assert_allclose(fa_rotated, truth, atol=1e-3)
    assert np.median(np.abs(fa_nominal - truth)) > 0.01  # 0.017 at 10 degrees
    # the opposite rotation (a sign error) is worse than none at all
    wrong = dwi.rotate_gradients(gradients, np.linalg.inv(transforms))
    assert np.median(np.abs(dti.fit_tensor(data, wrong, mask).fa - truth)) > np.median(np.abs(fa_nominal - truth))
