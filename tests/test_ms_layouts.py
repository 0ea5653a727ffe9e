"""The layouts MS studies write, end to end on phantom images: two T1w runs, a post-gadolinium T1w, a 2D and
a 3D FLAIR, AP/PA DWI with dataset-level gradient tables and sidecars and a b=0 pair stored apart, dates only in
scans.tsv or in the sidecar, a T1w stored as two repeats, MP2RAGE (UNIT1 with its noisy background and the INV2
magnitude); and beside them the sessions the rules cannot use, which are skipped with one line while the others
run."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import write_dwi, write_json, write_tsv
from scipy import ndimage
from workflow_helpers import msqmri

from msqmri.phantom import CohortSpec, generate_cohort

#: two subjects, two sessions each, a true brain volume change of -0.8 % between them (3 mm: fast)
SPEC = CohortSpec(
    n_subjects=2,
    n_sessions=2,
    resolution=3.0,
    truth_step=2.0,
    seed=11,
    modalities=("T1w", "FLAIR"),
    lesions=False,
    pbvc=(0.0, -0.8),
    orientations=("RAS", "LAS"),
)
#: the session dates the layouts carry (scans.tsv for sub-01, UNIT1 sidecars for sub-02)
DATES = {
    ("01", "01"): "2020-03-02T10:00:00",
    ("01", "02"): "2021-03-01T10:00:00",
    ("02", "01"): "2020-05-04T09:30:00",
    ("02", "02"): "2020-11-02T09:30:00",
}


def _move(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    return target


def _copy(source: Path, target: Path, scale: float = 1.0) -> Path:
    img = nib.load(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image((np.asarray(img.dataobj, np.float32) * scale), img.affine), target)
    return target


def _unit1(t1w: Path, anat: Path, stem: str) -> None:
    """MP2RAGE from a phantom T1w: INV2 the magnitude head (dark air), UNIT1 the same head in air that is
    uniform noise over the tissue range, as a real UNIT1's background (O'Brien et al. 2014)."""
    img = nib.load(t1w)
    head = np.asarray(img.dataobj, np.float32)
    air = ~ndimage.binary_fill_holes(head > 0.05 * head.max())
    unit1 = np.where(air, np.random.default_rng(3).uniform(0, head.max(), head.shape), head).astype(np.float32)
    nib.save(nib.Nifti1Image(unit1, img.affine), anat / f"{stem}_UNIT1.nii.gz")
    nib.save(nib.Nifti1Image(head, img.affine), anat / f"{stem}_inv-2_MP2RAGE.nii.gz")
    nib.save(nib.Nifti1Image(0.4 * head, img.affine), anat / f"{stem}_inv-1_MP2RAGE.nii.gz")
    t1w.unlink()


def make_ms_layouts(root: Path) -> tuple[Path, Path]:
    """The phantom cohort rewritten into the MS layouts (see the module docstring); returns the dataset and its
    ground truth."""
    generated = generate_cohort(root / "generated", SPEC)
    bids = root / "bids"
    shutil.move(generated, bids)
    (bids / "sub-01" / "sub-01_sessions.tsv").unlink()
    (bids / "sub-02" / "sub-02_sessions.tsv").unlink()
    write_tsv(
        bids / "participants.tsv", ["participant_id", "age", "sex"], [["sub-01", "41", "F"], ["sub-02", "35-40", "M"]]
    )
    write_json(bids / "T1w.json", {"MRAcquisitionType": "3D", "Manufacturer": "Siemens", "MagneticFieldStrength": 3})
    # sub-01 ses-01: two T1w runs, a post-gadolinium T1w, 2D and 3D FLAIR, AP/PA DWI, the gradient table at the
    # dataset level; ses-02: a T1w and a post-gadolinium T1w; dates in scans.tsv
    anat, dwi, stem = bids / "sub-01" / "ses-01" / "anat", bids / "sub-01" / "ses-01" / "dwi", "sub-01_ses-01"
    _copy(anat / f"{stem}_T1w.nii.gz", anat / f"{stem}_run-1_T1w.nii.gz", 0.9)
    t1w = _move(anat / f"{stem}_T1w.nii.gz", anat / f"{stem}_run-2_T1w.nii.gz")
    flair = nib.load(_move(anat / f"{stem}_FLAIR.nii.gz", anat / f"{stem}_acq-3D_FLAIR.nii.gz"))
    nib.save(
        nib.Nifti1Image(np.asarray(flair.dataobj)[:, :, ::2], flair.affine @ np.diag([1, 1, 2, 1])),
        anat / f"{stem}_acq-2D_FLAIR.nii.gz",
    )  # every other slice, twice as thick
    write_json(anat / f"{stem}_acq-2D_FLAIR.json", {"MRAcquisitionType": "2D"})
    series = nib.load(write_dwi(dwi / f"{stem}_dir-AP", head=nib.load(t1w)))
    for ext in (".bval", ".bvec"):
        _move(dwi / f"{stem}_dir-AP_dwi{ext}", bids / f"dir-AP_dwi{ext}")
    for entities in ("dir-PA", "acq-b0_dir-AP"):  # a reverse-encoded b=0 pair, and a b=0 pair stored apart
        nib.save(
            nib.Nifti1Image(np.asarray(series.dataobj)[..., :1].repeat(2, axis=3), series.affine),
            dwi / f"{stem}_{entities}_dwi.nii.gz",
        )
        (dwi / f"{stem}_{entities}_dwi.bval").write_text("0 0\n")
        (dwi / f"{stem}_{entities}_dwi.bvec").write_text("0 0\n0 0\n0 0\n")
    (bids / "sub-01" / "ses-02" / "anat" / "sub-01_ses-02_FLAIR.nii.gz").unlink()
    for ses, t1w_name in (("01", t1w.name), ("02", "sub-01_ses-02_T1w.nii.gz")):
        base = bids / "sub-01" / f"ses-{ses}"
        _copy(base / "anat" / t1w_name, base / "anat" / f"sub-01_ses-{ses}_ce-gadolinium_T1w.nii.gz", 1.15)
        write_tsv(
            base / f"sub-01_ses-{ses}_scans.tsv", ["filename", "acq_time"], [[f"anat/{t1w_name}", DATES["01", ses]]]
        )
    # sub-01 ses-02's T1w stored as two repeats, the second moved by a voxel: realigned and averaged
    repeats = nib.load(bids / "sub-01" / "ses-02" / "anat" / "sub-01_ses-02_T1w.nii.gz")
    head = np.asarray(repeats.dataobj, np.float32)
    noisy = head + np.random.default_rng(4).normal(0, 0.02 * float(np.percentile(head, 99)), head.shape)
    nib.save(nib.Nifti1Image(np.stack([head, np.roll(noisy, 1, axis=1)], -1), repeats.affine), repeats.get_filename())
    for ses in ("01", "02"):  # sub-02: MP2RAGE, dates in the UNIT1 sidecar
        anat, stem = bids / "sub-02" / f"ses-{ses}" / "anat", f"sub-02_ses-{ses}"
        _unit1(anat / f"{stem}_T1w.nii.gz", anat, stem)
        (anat / f"{stem}_FLAIR.nii.gz").unlink()
        write_json(anat / f"{stem}_UNIT1.json", {"AcquisitionDateTime": DATES["02", ses]})
    # a DWI series whose tables exist at no level: skipped, the session runs
    inv2 = nib.load(anat / "sub-02_ses-02_inv-2_MP2RAGE.nii.gz")
    write_dwi(bids / "sub-02" / "ses-02" / "dwi" / "sub-02_ses-02", head=inv2)
    for ext in (".bval", ".bvec"):
        (bids / "sub-02" / "ses-02" / "dwi" / f"sub-02_ses-02_dwi{ext}").unlink()
    # sessions the rules cannot use: a post-contrast T1w only, and two UNIT1 files with the same entities
    _copy(
        bids / "sub-01/ses-02/anat/sub-01_ses-02_T1w.nii.gz",
        bids / "sub-01/ses-03/anat/sub-01_ses-03_ce-gadolinium_T1w.nii.gz",
    )
    for name in ("sub-02_ses-03_UNIT1.nii.gz", "sub-02_ses-03_UNIT1.nii"):
        _copy(bids / "sub-02/ses-02/anat/sub-02_ses-02_UNIT1.nii.gz", bids / "sub-02/ses-03/anat" / name)
    return bids, bids / "sourcedata" / "ground_truth"


@pytest.fixture(scope="module")
def ms_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """The layouts through the participant and group stages (SIENA PBVC)."""
    root = tmp_path_factory.mktemp("ms_layouts")
    bids, truth = make_ms_layouts(root)
    out = root / "derivatives"
    participant = msqmri(bids, out, "participant", "--cores", "2", "--config", "pbvc_methods=[siena]", cwd=root)
    assert participant.returncode == 0, participant.stderr
    group = msqmri(bids, out, "group", "--config", "pbvc_methods=[siena]", cwd=root)
    assert group.returncode == 0, group.stderr
    return bids, truth, out, participant.stderr


def test_the_documented_inputs_are_chosen(ms_run: tuple[Path, Path, Path, str]) -> None:
    _, _, out, _ = ms_run
    sessions = pd.read_csv(out / "group" / "sessions.tsv", sep="\t", dtype=str, keep_default_na=False).set_index(
        ["participant_id", "session_id"]
    )
    assert list(sessions.index) == [
        ("sub-01", "ses-01"),
        ("sub-01", "ses-02"),
        ("sub-02", "ses-01"),
        ("sub-02", "ses-02"),
    ]
    first = sessions.loc["sub-01", "ses-01"]
    assert first.t1w_file == "sub-01_ses-01_run-2_T1w.nii.gz"
    assert first.t1w_ce_file == "sub-01_ses-01_ce-gadolinium_T1w.nii.gz"
    assert "t1w=sub-01_ses-01_run-2_T1w.nii.gz (last run of 2)" in first.selection
    assert "flair=sub-01_ses-01_acq-3D_FLAIR.nii.gz (3D before 2D of 2)" in first.selection
    assert "dwi=sub-01_ses-01_dir-AP_dwi.nii.gz" in first.selection
    assert "dwi_b0=sub-01_ses-01_acq-b0_dir-AP_dwi.nii.gz" in first.selection
    mp2rage = sessions.loc["sub-02", "ses-01"]
    assert mp2rage.t1w_file == "sub-02_ses-01_UNIT1.nii.gz"
    assert "t1w_inv2=sub-02_ses-01_inv-2_MP2RAGE.nii.gz" in mp2rage.selection
    assert mp2rage.age == "37.5" and mp2rage.age_note == "bin 35-40"
    assert list(sessions.acq_time_source) == ["scans.tsv", "scans.tsv", "sidecar", "sidecar"]
    # the atrophy T1w the volumes were measured on is the chosen run, never the post-contrast one
    for (sub, ses), row in sessions.iterrows():
        volumes = json.loads((out / sub / ses / "anat" / f"{sub}_{ses}_desc-sienax_volumes.json").read_text())
        assert volumes["Sources"] == [row.t1w_file]
    dwi = out / "sub-01" / "ses-01" / "dwi"
    fa = np.asarray(nib.load(dwi / "sub-01_ses-01_space-T1w_model-tensor_param-fa_dwimap.nii.gz").dataobj)
    assert 0.6 <= np.median(fa[fa > 0]) <= 0.8  # the series' tensor (FA 0.71), with the dataset-level table
    bvals = (dwi / "sub-01_ses-01_space-dwi_desc-preproc_dwi.bval").read_text().split()
    assert len(bvals) == 7 + 2 and bvals[-2:] == ["0", "0"]  # the b=0 pair stored apart joined the series
    assert not list((out / "sub-02" / "ses-02").rglob("*dwimap*"))  # the DWI without tables was skipped


def test_mp2rage_brain_is_the_t1w_brain(ms_run: tuple[Path, Path, Path, str]) -> None:
    """The UNIT1 of a head, masked on INV2, gives the brain the same head's T1w would (the phantom's truth)."""
    _, truth, out, _ = ms_run
    for ses in ("01", "02"):
        stem = f"sub-02_ses-{ses}"
        measured = nib.load(out / "sub-02" / f"ses-{ses}" / "anat" / f"{stem}_desc-brain_mask.nii.gz")
        true = nib.load(truth / "sub-02" / f"ses-{ses}" / f"{stem}_space-T1w_desc-brain_mask.nii.gz")
        a, b = np.asarray(measured.dataobj) > 0, np.asarray(true.dataobj) > 0.5
        assert a.shape == b.shape
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.93, stem


def test_pbvc_is_annualised_from_the_layouts_dates(ms_run: tuple[Path, Path, Path, str]) -> None:
    _, truth, out, _ = ms_run
    pbvc = pd.read_csv(out / "group" / "pbvc.tsv", sep="\t").set_index("participant_id")
    true = pd.read_csv(truth / "pbvc.tsv", sep="\t").set_index("participant_id").pbvc
    for sub in ("01", "02"):
        row = pbvc.loc[f"sub-{sub}"]
        days = (datetime.fromisoformat(DATES[sub, "02"]) - datetime.fromisoformat(DATES[sub, "01"])).days
        assert row.interval_days == pytest.approx(days, abs=1)
        assert row.pbvc_per_year == pytest.approx(row.pbvc * 365.25 / row.interval_days, rel=1e-3)
        assert row.pbvc == pytest.approx(true[f"sub-{sub}"], abs=0.4), sub  # the phantom's true change, at 3 mm


def test_unusable_sessions_get_one_line_and_the_others_run(ms_run: tuple[Path, Path, Path, str]) -> None:
    _, _, out, stderr = ms_run
    assert "Traceback" not in stderr and "Exception" not in stderr
    lines = stderr.splitlines()
    ce_only = [line for line in lines if "sub-01 ses-03" in line]
    assert len(ce_only) == 1 and "only a post-contrast T1w (sub-01_ses-03_ce-gadolinium_T1w.nii.gz)" in ce_only[0]
    twins = [line for line in lines if "sub-02 ses-03" in line]
    assert len(twins) == 1 and "sub-02_ses-03_UNIT1.nii" in twins[0] and "same entities" in twins[0]
    no_tables = [line for line in lines if "sub-02_ses-02_dwi.nii.gz" in line]
    assert len(no_tables) == 1 and "bval" in no_tables[0]
    assert not (out / "sub-01" / "ses-03").exists() and not (out / "sub-02" / "ses-03").exists()
