"""The bad-input corpus: one broken subject per case in one BIDS dataset, run through the command line.

Every broken session ends in exactly one ``msqmri: error:`` line naming its file, with no traceback;
the good subject still runs (``--keep-going``); the dataset is read only (a read-only bind mount when
root) and no input file changes (checksums before and after).
Cases that make the dataset itself unreadable (a bad date in sessions.tsv, an unusable subject
label) stop the run at discovery with one line, before any job.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import (
    head_affine,
    phantom_head,
    write_dwi,
    write_image,
    write_json,
    write_megre,
    write_mt_pair,
    write_t1w,
    write_tsv,
)
from workflow_helpers import msqmri, read_only

pytestmark = pytest.mark.slow


def _anat(root: Path, sub: str) -> Path:
    return root / f"sub-{sub}" / "ses-01" / "anat" / f"sub-{sub}_ses-01"


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(
        nib.Nifti1Image(data.astype(np.float32), head_affine(data.shape[:3]) if affine is None else affine), str(path)
    )
    return path


def _truncated(root: Path, sub: str) -> Path:
    path = Path(f"{_anat(root, sub)}_T1w.nii.gz")
    write_t1w(path)
    path.write_bytes(path.read_bytes()[:300])
    return path


def _wrong_magic(root: Path, sub: str) -> Path:
    path = Path(f"{_anat(root, sub)}_T1w.nii.gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))
    return path


def _shaped(ndim: int):
    def make(root: Path, sub: str) -> Path:
        head = phantom_head()
        data = (
            head[:, :, head.shape[2] // 2] if ndim == 2 else np.broadcast_to(head[..., None, None], (*head.shape, 2, 2))
        )
        return _save(Path(f"{_anat(root, sub)}_T1w.nii.gz"), data, head_affine(head.shape))

    return make


def _nonfinite(root: Path, sub: str) -> Path:
    data = phantom_head().copy()
    data[5, 5, 5], data[6, 6, 6] = np.nan, np.inf
    return _save(Path(f"{_anat(root, sub)}_T1w.nii.gz"), data)


def _all_zero(root: Path, sub: str) -> Path:
    return _save(Path(f"{_anat(root, sub)}_T1w.nii.gz"), np.zeros_like(phantom_head()))


def _with_t1w(make):
    """A case whose broken file is an optional modality: the session also has a good T1w."""

    def build(root: Path, sub: str) -> Path:
        write_t1w(Path(f"{_anat(root, sub)}_T1w.nii.gz"))
        return make(root, sub)

    return build


def _bval_count(root: Path, sub: str) -> Path:
    stem = root / f"sub-{sub}" / "ses-01" / "dwi" / f"sub-{sub}_ses-01"
    write_dwi(stem)
    Path(f"{stem}_dwi.bval").write_text("0 1000 1000\n")
    return Path(f"{stem}_dwi.bval")


def _bvec_not_unit(root: Path, sub: str) -> Path:
    stem = root / f"sub-{sub}" / "ses-01" / "dwi" / f"sub-{sub}_ses-01"
    write_dwi(stem)
    bvec = np.loadtxt(f"{stem}_dwi.bvec")
    bvec[:, 2] *= 3.0
    np.savetxt(f"{stem}_dwi.bvec", bvec, fmt="%.6f")
    return Path(f"{stem}_dwi.bvec")


def _missing_echo_time(root: Path, sub: str) -> Path:
    write_megre(_anat(root, sub))
    sidecar = Path(f"{_anat(root, sub)}_echo-2_MEGRE.json")
    sidecar.write_text(json.dumps({"RepetitionTime": 0.05}))
    return sidecar


def _echo_grids(root: Path, sub: str) -> Path:
    write_megre(_anat(root, sub))
    return write_image(Path(f"{_anat(root, sub)}_echo-3_MEGRE.nii.gz"), (10, 10, 8))


def _mt_shapes(root: Path, sub: str) -> Path:
    write_mt_pair(_anat(root, sub))
    return write_image(Path(f"{_anat(root, sub)}_mt-on_MTR.nii.gz"), (12, 12, 9))


def _lesion_grid(root: Path, sub: str) -> Path:
    mask = (
        root
        / "derivatives"
        / "lesions"
        / f"sub-{sub}"
        / "ses-01"
        / "anat"
        / f"sub-{sub}_ses-01_space-T1w_label-lesion_mask.nii.gz"
    )
    return write_image(mask, (9, 9, 9))


#: case -> (builder returning the broken file, words the error must contain)
CASES = {
    "truncated": (_truncated, "truncated or corrupt"),
    "magic": (_wrong_magic, "not a NIfTI image"),
    "twod": (_shaped(2), "expected a 3D or 4D image"),
    "fived": (_shaped(5), "expected a 3D or 4D image"),
    "nonfinite": (_nonfinite, "NaN"),
    "zero": (_all_zero, "image is empty"),
    "bvalcount": (_with_t1w(_bval_count), "3 b-values for"),
    "bvecnorm": (_with_t1w(_bvec_not_unit), "unit"),
    "noecho": (_with_t1w(_missing_echo_time), "EchoTime missing"),
    "echogrid": (_with_t1w(_echo_grids), "grid"),
    "mtshape": (_with_t1w(_mt_shapes), "grid"),
    "lesiongrid": (_with_t1w(_lesion_grid), "grid"),
}


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_bad_input_corpus(tmp_path: Path) -> None:
    root = tmp_path / "bids"
    write_json(root / "dataset_description.json", {"Name": "bad-input corpus", "BIDSVersion": "1.10.0"})
    broken = {case: build(root, case) for case, (build, _) in CASES.items()}
    write_t1w(Path(f"{_anat(root, 'good')}_T1w.nii.gz"))
    before = checksums(root)
    out = tmp_path / "out"
    with read_only(root) as source:  # the read-only input directory case: nothing needs writing there
        result = msqmri(source, out, "participant", "--cores", "2", "--until", "check_inputs", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("msqmri: error:")]
    for case, path in broken.items():
        mine = [line for line in errors if f"sub-{case} ses-01:" in line]
        assert len(mine) == 1, (case, errors)
        assert str(source / path.relative_to(root)) in mine[0] and CASES[case][1] in mine[0], (case, mine[0])
    assert (out / "sub-good" / "ses-01" / "sub-good_ses-01_desc-inputs_qc.json").is_file()  # the good one ran
    assert checksums(root) == before  # inputs never written to
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no partial output left


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        ("date", ["sub-01_sessions.tsv", "'last tuesday'"]),
        ("edss", ["sub-01_sessions.tsv: line 2:", "edss 'four' is not an EDSS score"]),
        ("label", ["sub-a;b"]),
        ("space", ["sub-a b"]),
    ],
)
def test_unreadable_dataset_stops_at_discovery(tmp_path: Path, breakage: str, words: list[str]) -> None:
    root = tmp_path / "bids"
    write_t1w(Path(f"{_anat(root, '01')}_T1w.nii.gz"))
    if breakage in ("date", "edss"):
        row = ["ses-01", "last tuesday", "2.0"] if breakage == "date" else ["ses-01", "2020-01-10", "four"]
        write_tsv(root / "sub-01" / "sub-01_sessions.tsv", ["session_id", "acq_time", "edss"], [row])
    else:
        shutil.copytree(root / "sub-01", root / ("sub-a;b" if breakage == "label" else "sub-a b"))
    before = checksums(root)
    result = msqmri(root, tmp_path / "out", "participant", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("msqmri: error:")]
    assert len(errors) == 1 and all(word in errors[0] for word in words), result.stderr
    assert checksums(root) == before
