"""FLAIR -> T1w rigid registration recovers a known head movement."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from msqmri.core.io import MsqmriInputError
from msqmri.core.registration import register_to_t1w, resample_mask, rigid_matrix, to_ants
from msqmri.phantom import CohortSpec, generate_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = CohortSpec(n_subjects=1, n_sessions=1, resolution=3.0, modalities=("T1w", "FLAIR"), seed=5)
    return generate_cohort(tmp_path_factory.mktemp("flair"), spec)


def _alignment(image: Path, tissue: np.ndarray) -> float:
    """Correlation of an image on the T1w grid with the true brain-tissue map: high when aligned."""
    data = np.asarray(nib.load(str(image)).dataobj, dtype=np.float64)
    return float(np.corrcoef(data.ravel(), tissue.ravel())[0, 1])


@pytest.mark.slow
def test_flair_registration_recovers_a_moved_head(cohort: Path, tmp_path: Path) -> None:
    anat = cohort / "sub-01/ses-01/anat"
    truth = cohort / "sourcedata/ground_truth/sub-01/ses-01"
    tissue = sum(
        np.asarray(nib.load(str(truth / f"sub-01_ses-01_space-T1w_label-{t}_probseg.nii.gz")).dataobj)
        for t in ("GM", "WM")
    )
    flair = nib.load(str(anat / "sub-01_ses-01_FLAIR.nii.gz"))
    # move the head by 8 degrees and 7 mm: rewrite the FLAIR's header
    motion = np.eye(4)
    motion[:3, :3] = Rotation.from_euler("xyz", [8.0, -5.0, 3.0], degrees=True).as_matrix()
    motion[:3, 3] = [7.0, -4.0, 3.0]
    moved = tmp_path / "moved_FLAIR.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(flair.dataobj), motion @ flair.affine), str(moved))
    t1w = anat / "sub-01_ses-01_T1w.nii.gz"
    scores = {}
    for name, source in (("original", anat / "sub-01_ses-01_FLAIR.nii.gz"), ("moved", moved)):
        register_to_t1w(source, t1w, tmp_path / f"{name}.mat", tmp_path / f"{name}.nii.gz")
        scores[name] = _alignment(tmp_path / f"{name}.nii.gz", tissue)
    assert scores["original"] > 0.5
    assert scores["moved"] == pytest.approx(scores["original"], abs=0.02)
    # a mask drawn on the FLAIR lands on the same T1w voxels whether the head moved or not
    data = np.asarray(flair.dataobj, dtype=np.float64)
    bright = (data > 0.55 * data.max()).astype(np.uint8)
    masks = {}
    for name, affine in (("original", flair.affine), ("moved", motion @ flair.affine)):
        path = tmp_path / f"{name}_mask.nii.gz"
        nib.save(nib.Nifti1Image(bright, affine), str(path))
        masks[name] = resample_mask(path, to_ants(t1w), tmp_path / f"{name}.mat")
    overlap = 2 * (masks["original"] & masks["moved"]).sum() / (masks["original"].sum() + masks["moved"].sum())
    assert overlap > 0.85


def test_registration_is_reproducible_and_seeded(cohort: Path) -> None:
    """Same seed, same transform to the last bit (ITK single-threaded, as the workflow runs it by
    default); another seed samples other points, so the seed does reach antsRegistration."""
    anat = cohort / "sub-01/ses-01/anat"
    flair, t1w = to_ants(anat / "sub-01_ses-01_FLAIR.nii.gz"), to_ants(anat / "sub-01_ses-01_T1w.nii.gz")
    first, again, other = (rigid_matrix(flair, t1w, seed=seed) for seed in (1, 1, 2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.allclose(first, other, atol=0.5)


def test_bad_moving_image_is_a_one_line_error(tmp_path: Path, cohort: Path) -> None:
    bad = tmp_path / "flair.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(MsqmriInputError) as info:
        register_to_t1w(
            bad, cohort / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz", tmp_path / "x.mat", tmp_path / "x.nii.gz"
        )
    assert str(info.value).startswith(str(bad)) and "\n" not in str(info.value)
