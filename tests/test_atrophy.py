"""PBVC: the edge method's pieces, the halfway registration and whole pairs on an analytic head.

The analytic head (2 mm) is an ellipsoidal brain with a ventricle inside CSF, skull and scalp
shells; atrophy shrinks the brain and ventricle inside the fixed skull, the head is repositioned
between sessions and may be scaled as a whole (scanner drift). Its PBVC is known exactly.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from scipy import ndimage

from msqmri.atrophy import halfway, qc, siena
from msqmri.atrophy.halfway import Scan, log_mean, matrix_root, register_pair
from msqmri.atrophy.stage import annualised, load_scan
from msqmri.cohort.tables import PBVC_COLUMNS, pbvc_table
from msqmri.core.io import MsqmriInputError, save_array
from msqmri.core.registration import read_matrix, write_matrix

RADII = np.array([52.0, 44.0, 40.0])  # brain ellipsoid (mm)
VENTRICLE = (np.array([16.0, 9.0, 8.0]), np.array([0.0, 6.0, 5.0]))  # radii, centre offset
SHELLS = ((6.0, 0.25), (12.0, 0.08), (19.0, 0.85))  # (outer distance beyond the brain, intensity): CSF, bone, scalp
BLUR_VOXELS = 0.5  # the acquisition's point-spread (Gaussian SD)
#: the same head with a bright dura 1.5-3 mm outside the brain, in a thin CSF space, as on real T1w
DURA_SHELLS = ((1.5, 0.25), (3.0, 0.6), (6.0, 0.25), (12.0, 0.08), (19.0, 0.85))


def _fraction(points: np.ndarray, radii: np.ndarray, centre: np.ndarray, voxel: float) -> np.ndarray:
    """Partial-volume fraction of an ellipsoid (approximate signed distance, one-voxel ramp)."""
    q = np.sqrt((((points - centre) / radii) ** 2).sum(-1))
    return np.clip((1.0 - q) * radii.min() / voxel + 0.5, 0.0, 1.0)


def analytic_scan(
    pbvc: float, rotation_deg: float, shift_mm: tuple, drift: float = 1.0, seed: int = 0, shells: tuple = SHELLS
) -> Scan:
    """One session of the analytic head on a 2 mm grid: the brain shrinks, the shells outside it stay."""
    voxel, n = 2.0, 84
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (n - 1) / 2
    ijk = np.indices((n, n, n), dtype=np.float64).reshape(3, -1).T
    world = ijk * voxel + affine[:3, 3]
    angle = np.radians(rotation_deg)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    subject = (world / drift - np.asarray(shift_mm)) @ rot  # world = drift (R x + t)
    scale = (1.0 + pbvc / 100.0) ** (1.0 / 3.0)
    zero = np.zeros(3)
    brain = _fraction(subject, RADII * scale, zero, voxel / drift)
    ventricle = _fraction(subject, VENTRICLE[0] * scale, VENTRICLE[1] * scale, voxel / drift)
    tissue = brain * (1.0 - ventricle)
    image = tissue * 1.0
    inner = brain
    for distance, intensity in shells:
        outer = _fraction(subject, RADII + distance, zero, voxel / drift)
        image += (outer - inner) * intensity
        inner = outer
    image += ventricle * brain * shells[0][1]
    rng = np.random.default_rng(seed)
    image = image + rng.normal(0.0, 0.01, image.shape)
    shape = (n, n, n)
    icv = _fraction(subject, RADII + shells[-3][0], zero, voxel / drift).reshape(shape) >= 0.5
    # the image and its brain fraction blurred alike, as a segmentation's partial-volume map follows the image
    return Scan(
        image=ndimage.gaussian_filter(image.reshape(shape), BLUR_VOXELS).astype(np.float32),
        affine=affine,
        brain=ndimage.binary_fill_holes(brain.reshape(shape) >= 0.5),
        icv=icv,
        brain_fraction=ndimage.gaussian_filter(tissue.reshape(shape), BLUR_VOXELS).astype(np.float32),
    )


def pbvc(a: Scan, b: Scan) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        registration = register_pair(a, b, seed=1, tmpdir=tmp)
    return siena.siena(a, b, registration).pbvc


@pytest.fixture(scope="module")
def sessions() -> dict[str, Scan]:
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
    return {
        "base": analytic_scan(0.0, 0.0, (0, 0, 0), seed=1),
        "rescan": analytic_scan(0.0, 5.0, (3, -2, 4), seed=2),
        "atrophy": analytic_scan(-1.0, -4.0, (-2, 3, 1), seed=3),
        "atrophy_drift": analytic_scan(-1.0, -4.0, (-2, 3, 1), drift=1.006, seed=3),
    }


def test_profile_shifts_are_zero_for_identical_profiles_and_follow_a_shift() -> None:
    t = np.arange(-8, 8 + 1e-9, 1.0 / siena.SAMPLES_PER_MM)
    edge = 1.0 / (1.0 + np.exp(t / 0.8))  # bright inside (t < 0), dark outside
    profiles = np.stack([edge, edge])
    assert np.all(siena.profile_shifts(profiles, profiles) == 0.0)
    for shift in (-2.0, -0.6, 0.4, 1.5):
        moved = 1.0 / (1.0 + np.exp((t - shift) / 0.8))[None, :]
        measured = siena.profile_shifts(edge[None, :], moved)[0]
        assert measured == pytest.approx(shift, abs=0.15), shift  # outward displacement reads positive


def test_transform_helpers_round_trip_and_are_symmetric(tmp_path) -> None:
    rng = np.random.default_rng(0)
    a = halfway.about(np.eye(3) * 1.01, rng.normal(size=3)) @ np.block(
        [[np.linalg.qr(rng.normal(size=(3, 3)))[0] * np.sign(1), rng.normal(size=(3, 1))], [np.zeros((1, 3)), 1]]
    )
    a[:3, :3] *= np.sign(np.linalg.det(a[:3, :3]))  # a proper rotation
    b = halfway.about(np.eye(3) * 0.995, rng.normal(size=3))
    np.testing.assert_allclose(read_matrix(write_matrix(b, str(tmp_path / "b.mat"))), b, atol=1e-6)
    np.testing.assert_allclose(log_mean(np.linalg.inv(b), np.linalg.inv(b)), np.linalg.inv(b), atol=1e-9)
    np.testing.assert_allclose(matrix_root(b, 0.5) @ matrix_root(b, 0.5), b, atol=1e-9)
    np.testing.assert_allclose(
        log_mean(np.linalg.inv(b), np.linalg.inv(b @ b)), np.linalg.inv(log_mean(b, b @ b)), atol=1e-9
    )


def test_siena_recovers_known_atrophy_rescan_swap_and_drift(sessions) -> None:
    measured = pbvc(sessions["base"], sessions["atrophy"])
    assert measured == pytest.approx(-1.0, abs=0.15)
    assert abs(pbvc(sessions["base"], sessions["rescan"])) <= 0.1
    assert abs(pbvc(sessions["atrophy"], sessions["base"]) + measured) <= 0.05
    # a 0.6 % whole-head scale drift is absorbed by the skull-constrained registration
    assert pbvc(sessions["base"], sessions["atrophy_drift"]) == pytest.approx(measured, abs=0.1)


def test_brain_layer_lies_over_the_ventricles_csf_level() -> None:
    scan = analytic_scan(0.0, 0.0, (0, 0, 0), seed=1, shells=DURA_SHELLS)
    layer, behind = siena.brain_layer(scan.image, scan.brain_fraction)
    np.testing.assert_allclose(layer + (1.0 - scan.brain_fraction) * behind, scan.image, atol=1e-5)
    has_brain = scan.brain_fraction > siena.CSF_BEHIND_FRACTION
    np.testing.assert_array_equal(behind[~has_brain], scan.image[~has_brain])
    # behind the brain lies the ventricles' CSF (0.25), not raised by the dura (0.6) around it
    level = np.unique(behind[has_brain])
    assert len(level) == 1 and level[0] == pytest.approx(0.25, abs=0.02)


def test_non_border_fraction_tells_brain_csf_edges_from_edges_inside_bright_tissue() -> None:
    t = np.arange(-8, 8 + 1e-9, 1.0 / siena.SAMPLES_PER_MM)
    border = 0.2 + 0.8 / (1.0 + np.exp(t / 0.8))  # brain (1.0) to CSF (0.2)
    sinus = 0.6 + 0.35 / (1.0 + np.exp(-t / 0.8))  # cortex (0.6) to a brighter vein (0.95)
    centre = siena.PROFILE_MM * siena.SAMPLES_PER_MM
    profiles = np.stack([border] * 3 + [sinus])
    assert qc.non_border_fraction(profiles, centre, siena.SAMPLES_PER_MM) == pytest.approx(0.25)


def test_pair_qc_passes_consistent_pairs_and_flags_a_mask_that_is_not_the_same_anatomy(sessions) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        registration = register_pair(sessions["base"], sessions["atrophy"], seed=1, tmpdir=tmp)
    good = siena.siena(sessions["base"], sessions["atrophy"], registration)
    assert good.non_border < 0.05 and qc.qc_flag(good.qc_figures()) == qc.PASS
    # the follow-up's mask cut 20 mm below the top of the brain (as a mask that stops short, or cuts the
    # brainstem elsewhere): its edges there run through tissue, and it no longer matches the baseline's
    cut = sessions["atrophy"]
    z = (np.indices(cut.brain.shape)[2] * cut.affine[2, 2] + cut.affine[2, 3]) < RADII[2] - 20.0
    short = Scan(
        image=cut.image, affine=cut.affine, brain=cut.brain & z, icv=cut.icv, brain_fraction=cut.brain_fraction * z
    )
    bad = siena.siena(sessions["base"], short, registration)
    assert "masks" in qc.qc_flag(bad.qc_figures()) and bad.shared_edges < qc.SHARED_EDGE_FRACTION, bad.qc_figures()
    # the edges only one mask has (the baseline's cap, the follow-up's cut face) are left out of both
    # directions: the PBVC stays the truth's (-1 %) instead of following the mask
    assert good.shared_edges > 0.99 and bad.pbvc == pytest.approx(-1.0, abs=0.15), (good.pbvc, bad.pbvc)
    assert qc.qc_flag({"pbvc_forward": -0.5, "pbvc_backward": 0.5}) == qc.PASS  # the jacobian's figures
    assert (
        qc.qc_flag(
            {"pbvc_forward": -0.9, "pbvc_backward": 0.2, "self_calibration_from": 1.0, "self_calibration_to": 2.0}
        )
        == "forward_backward;calibration"
    )


def test_annualised_rate_and_table_columns(tmp_path) -> None:
    assert annualised(-0.5, 365.25 / 2) == pytest.approx(-1.0)
    assert annualised(-0.5, None) is None and annualised(-0.5, 0.0) is None
    import json

    reports = []
    for method, value in (("siena", -0.4), ("jacobian", -0.3)):
        path = tmp_path / f"{method}.json"
        path.write_text(
            json.dumps(
                {
                    "participant_id": "sub-01",
                    "session_from": "ses-01",
                    "session_to": "ses-02",
                    "interval_days": 200.0,
                    "pbvc": value,
                    "pbvc_per_year": value * 365.25 / 200,
                    "method": method,
                    "edge_points": 3,
                }
            )
        )
        reports.append(path)
    table = pbvc_table(reports)
    assert list(table.columns) == list(PBVC_COLUMNS)
    assert list(table.method) == ["jacobian", "siena"]


def test_load_scan_rejects_mismatched_grids_and_empty_masks(tmp_path) -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    data = np.random.default_rng(0).random((10, 10, 10)).astype(np.float32)
    paths = {}
    for key in ("preproc", "brain_mask", "icv_mask", "probseg_gm", "probseg_wm"):
        paths[key] = str(tmp_path / f"{key}.nii.gz")
        save_array(data if key == "preproc" else data > 0.5, affine, paths[key], np.float32)
    assert load_scan(paths).brain.any()
    save_array(np.zeros((10, 10, 9)), affine, paths["icv_mask"], np.uint8)
    with pytest.raises(MsqmriInputError, match="icv_mask.nii.gz: grid differs"):
        load_scan(paths)
    save_array(data > 0.5, affine, paths["icv_mask"], np.uint8)
    save_array(np.zeros((10, 10, 10)), affine, paths["brain_mask"], np.uint8)
    with pytest.raises(MsqmriInputError, match="brain mask is empty"):
        load_scan(paths)
