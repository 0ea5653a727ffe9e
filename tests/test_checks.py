"""Input checks and the T1w summary: valid inputs pass, broken ones raise one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import SHAPE, write_image

from msqmri.core.io import MsqmriInputError
from msqmri.inputs.bids import Session, discover
from msqmri.inputs.checks import check_session
from msqmri.qc.summary import otsu_threshold, summarize_t1w, t1w_summary


def _full_session(root: Path) -> Session:
    return discover(root).subjects[0].sessions[0]


def _error(session: Session) -> str:
    with pytest.raises(MsqmriInputError) as info:
        check_session(session)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_check_valid_session_is_json_able(tiny_bids: Path) -> None:
    report = check_session(_full_session(tiny_bids))
    assert report["modalities"] == ["T1w", "FLAIR", "MTR", "MEGRE", "dwi"]
    assert report["MEGRE"]["echo_times_s"] == [0.005, 0.010, 0.015]
    assert report["dwi"]["n_volumes"] == 7 and report["dwi"]["b_values"] == [0, 1000]
    assert report["lesion_masks"]["FLAIR"]["n_voxels"] > 0
    assert report["T1w"]["orientation"] == "RAS"
    json.dumps(report)


def test_bval_count_mismatch(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    session.dwi.bval.write_text("0 1000 1000\n")
    assert _error(session).endswith("sub-01_ses-01_dwi.bval: 3 b-values for 7 volumes")


def test_bvec_shape_mismatch(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    session.dwi.bvec.write_text("1 0 0 0 0 0 0\n0 1 0 0 0 0 0\n")
    assert "sub-01_ses-01_dwi.bvec: expected 3 rows of 7 values, got 2 rows" in _error(session)


def test_missing_echo_time(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    session.megre[1].sidecar.write_text(json.dumps({"RepetitionTime": 0.03}))
    assert "sub-01_ses-01_echo-2_MEGRE.json: EchoTime missing" in _error(session)


def test_echo_time_in_milliseconds(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    session.megre[2].sidecar.write_text(json.dumps({"EchoTime": 15}))
    assert "looks like milliseconds" in _error(session)


def test_echo_grid_mismatch(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    write_image(session.megre[2].image, (8, 8, 8))
    assert "sub-01_ses-01_echo-3_MEGRE.nii.gz: grid (8, 8, 8)" in _error(session)


def test_mt_grid_mismatch(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    write_image(session.mt_on, SHAPE, affine=np.diag([1.0, 1.0, 1.0, 1.0]))
    assert "sub-01_ses-01_mt-on_MTR.nii.gz: grid" in _error(session)


def test_4d_t1w_is_a_series_of_repeats_and_5d_is_refused(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    write_image(session.t1w, (*SHAPE, 3))
    assert check_session(session)["T1w"]["shape"] == list(SHAPE)
    nib.save(nib.Nifti1Image(np.ones((*SHAPE, 3, 2), np.float32), np.eye(4)), session.t1w)
    assert "sub-01_ses-01_T1w.nii.gz: expected a 3D or 4D image, got shape (16, 16, 12, 3, 2)" in _error(session)


def test_truncated_gzip_names_the_file(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    data = session.flair.read_bytes()
    session.flair.write_bytes(data[: len(data) // 2])
    message = _error(session)
    assert "sub-01_ses-01_FLAIR.nii.gz" in message and "truncated or corrupt" in message


def test_lesion_mask_needs_its_reference(tiny_bids: Path) -> None:
    session = _full_session(tiny_bids)
    session.flair.unlink()
    session = _full_session(tiny_bids)
    assert "space-FLAIR_label-lesion_mask.nii.gz: mask is in space-FLAIR but the session has no FLAIR" in _error(
        session
    )


def test_otsu_separates_two_modes() -> None:
    values = np.concatenate([np.full(100, 10.0), np.full(50, 100.0)])
    assert 10 <= otsu_threshold(values) < 100
    assert otsu_threshold(np.ones(5)) == 1.0


def test_t1w_summary_geometry_and_volume() -> None:
    data = np.zeros((20, 20, 20), np.float32)
    data[5:15, 5:15, 5:15] = 100.0
    data += np.random.default_rng(0).normal(0, 1, data.shape).astype(np.float32)
    affine = nib.affines.from_matvec(np.diag([-2.0, 2.0, 2.0]), [0, 0, 0])
    summary = t1w_summary(data, affine, (2.0, 2.0, 2.0))
    assert summary["orientation"] == "LAS" and not summary["oblique"]
    assert summary["foreground_volume_ml"] == pytest.approx(1000 * 8 / 1000, rel=0.01)
    assert summary["intensity_p99"] > summary["intensity_p50"]


def test_oblique_affine_is_reported(tmp_path: Path) -> None:
    rotation = nib.eulerangles.euler2mat(z=np.radians(10))
    path = write_image(tmp_path / "t1.nii.gz", affine=nib.affines.from_matvec(rotation * 1.5, [1, 2, 3]))
    summary = summarize_t1w(path)
    assert summary["oblique"] and summary["obliquity_deg"] == pytest.approx(10, abs=0.01)
    assert summary["voxel_size_mm"] == [1.5, 1.5, 1.5]
