"""The Snakemake workflow and the msqmri command line, end to end on the tiny dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from msqmri import layout
from msqmri.adapter import report_errors
from msqmri.bids import discover
from msqmri.cli import find_snakefile, main
from msqmri.io import MsqmriInputError
from msqmri.metrics import LESION_COLUMNS, REGIONAL_COLUMNS
from msqmri.regions import REGIONS

pytestmark = pytest.mark.slow


def msqmri(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msqmri", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def snakemake(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", "--snakefile", find_snakefile(), "--directory", cwd, *args]
    return subprocess.run(list(map(str, command)), cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("configured", [True, False], ids=["configured", "bare"])
def test_lint_is_clean(tiny_bids: Path, tmp_path: Path, configured: bool) -> None:
    config = ["--config", f"bids_dir={tiny_bids}", f"output_dir={tmp_path / 'out'}"] if configured else []
    result = snakemake("--lint", *config, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_cli_participant_then_group(tiny_bids: Path, tmp_path: Path) -> None:
    out = tmp_path / "derivatives"
    participant = msqmri(tiny_bids, out, "participant", "--cores", "2", "--config", "pbvc_methods=[siena]",
                         cwd=tmp_path)
    assert participant.returncode == 0, participant.stderr
    dataset = discover(tiny_bids)
    for path in layout.participant_targets(dataset, ("siena",)):
        assert (out / path).is_file(), path
    assert not list(out.rglob("*desc-jacobian*"))  # the method selection is honoured
    check_tensor_maps(out / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01", tiny_bids)
    check_quantitative_maps(out / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01", "weighted log-linear")
    assert (out / "sub-02" / "anat" / "sub-02_desc-t1w_qc.json").is_file()  # sessionless: no ses- level
    assert (
        participant.stderr.strip()
        .splitlines()[-1]
        .startswith("msqmri: participant stage done for 2 subjects / 3 sessions")
    )
    group = msqmri(tiny_bids, out, "group", "--config", "pbvc_methods=[siena]", cwd=tmp_path)
    assert group.returncode == 0, group.stderr
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "msqmri" and description["GeneratedBy"][0]["Version"]
    assert description["BIDSVersion"]
    table = pd.read_csv(out / "group" / "sessions.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(zip(table.participant_id, table.session_id, strict=True)) == [
        ("sub-01", "ses-01"),
        ("sub-01", "ses-02"),
        ("sub-02", "n/a"),
    ]
    assert table.loc[0, "modalities"] == "T1w,FLAIR,MTR,MEGRE,dwi" and table.loc[2, "t1w_orientation"] == "LAS"
    regional = pd.read_csv(out / "group" / "regional_metrics.tsv", sep="\t", keep_default_na=False)
    assert list(regional.columns) == list(REGIONAL_COLUMNS)  # the contract's columns, in order
    first = regional[regional.session_id == "ses-01"]
    assert set(first.metric) == {"fa", "md", "mtr", "r2star"} and set(first.region) == set(REGIONS)
    assert regional[regional.session_id != "ses-01"].empty  # T1w-only sessions have no maps to summarise
    assert list(pd.read_csv(out / "group" / "lesions.tsv", sep="\t").columns) == list(LESION_COLUMNS)


def test_cli_participant_label_and_dry_run(tiny_bids: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    dry = msqmri(tiny_bids, out, "participant", "--participant-label", "02", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "sub-02_desc-t1w_qc.json" in dry.stdout and "sub-01_ses-01" not in dry.stdout
    assert not (out / "sub-02").exists()


def test_failing_input_is_one_line_without_traceback(tiny_bids: Path, tmp_path: Path) -> None:
    bval = tiny_bids / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01_dwi.bval"
    bval.write_text("0 1000\n")
    result = msqmri(tiny_bids, tmp_path / "out", "participant", "--config", "pbvc_methods=[siena]", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("msqmri: error:")]
    assert errors == [f"msqmri: error: sub-01 ses-01: {bval}: 2 b-values for 7 volumes"]
    # the other sessions still ran (--keep-going)
    assert (tmp_path / "out" / "sub-02" / "sub-02_desc-inputs_qc.json").is_file()


def test_bad_label_is_one_line(tiny_bids: Path, tmp_path: Path) -> None:
    (tiny_bids / "sub-$(x)").mkdir()
    result = msqmri(tiny_bids, tmp_path / "out", "participant", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = "invalid sub- label '$(x)': BIDS labels may contain only letters and digits"
    assert result.stderr.strip() == f"msqmri: error: {tiny_bids / 'sub-$(x)'}: {reason}"


def check_tensor_maps(stem: Path, bids: Path) -> None:
    """The tiny series' tensor (AD 1.6, RD 0.4 um^2/ms: FA 0.71, MD 0.8e-3) in T1w space, with sidecars."""
    fa = nib.load(f"{stem}_space-T1w_model-tensor_param-fa_dwimap.nii.gz")
    md = np.asarray(nib.load(f"{stem}_space-T1w_model-tensor_param-md_dwimap.nii.gz").dataobj)
    t1w = nib.load(str(bids / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01_T1w.nii.gz"))
    assert fa.shape == t1w.shape and np.allclose(fa.affine, t1w.affine)
    brain = np.asarray(fa.dataobj) > 0
    assert 0.6 <= np.median(np.asarray(fa.dataobj)[brain]) <= 0.8
    assert 0.7e-3 <= np.median(md[brain]) <= 0.9e-3
    sidecar = json.loads(Path(f"{stem}_model-tensor_param-md_dwimap.json").read_text())
    assert sidecar["Units"] == "mm^2/s" and sidecar["Sources"] and sidecar["EstimationAlgorithm"]


def check_quantitative_maps(stem: Path, r2star_fit: str) -> None:
    """The tiny dataset's MTR (40 pu) and R2* (20 1/s) in T1w space, on the brain mask's grid, with sidecars."""
    brain_img = nib.load(f"{stem}_desc-brain_mask.nii.gz")
    brain = np.asarray(brain_img.dataobj) > 0
    for suffix, truth, units in (("MTRmap", 40.0, "percent"), ("R2starmap", 20.0, "1/s")):
        img = nib.load(f"{stem}_space-T1w_{suffix}.nii.gz")
        assert img.shape == brain_img.shape and np.allclose(img.affine, brain_img.affine)
        assert np.median(np.asarray(img.dataobj)[brain]) == pytest.approx(truth, rel=0.02), suffix
        assert json.loads(Path(f"{stem}_{suffix}.json").read_text())["Units"] == units
    assert r2star_fit in json.loads(Path(f"{stem}_R2starmap.json").read_text())["EstimationAlgorithm"]


def test_plain_snakemake_run(tiny_bids: Path, tmp_path: Path) -> None:
    """Plain Snakemake with the non-default options: Jacobian PBVC only, MP-PCA denoising, NLLS fit,
    the T1w brain mask for the fit, an affine b=0 -> T1w registration and the ARLO R2* fit."""
    out = tmp_path / "out"
    config = [f"bids_dir={tiny_bids}", f"output_dir={out}", "pbvc_methods=[jacobian]", "dwi_denoise=mppca",
              "dti_fit=NLLS", "dwi_mask=t1w", "dwi_to_t1w=affine", "r2star_fit=arlo"]  # fmt: skip
    result = snakemake("--cores", "2", "--config", *config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for path in layout.participant_targets(discover(tiny_bids), ("jacobian",)) + list(layout.GROUP_TARGETS):
        assert (out / path).is_file(), path
    assert not list(out.rglob("*desc-siena_*"))
    stem = out / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01"
    check_tensor_maps(stem, tiny_bids)
    check_quantitative_maps(out / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01", "ARLO")
    assert json.loads(Path(f"{stem}_space-dwi_desc-preproc_dwi.json").read_text())["Denoising"] == "mppca"
    assert "NLLS" in json.loads(Path(f"{stem}_model-tensor_param-fa_dwimap.json").read_text())["EstimationAlgorithm"]


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "participant" in text and "msqmri demo" in text and "examples:" in text


def test_report_errors_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "job.log"
    job = SimpleNamespace(params=SimpleNamespace(label="sub-01 ses-01"), log=[str(log)], rule="demo")
    with pytest.raises(SystemExit) as info, report_errors(job):
        raise MsqmriInputError("x.nii.gz", "broken\nheader")
    assert info.value.code == 1
    assert capsys.readouterr().err == "msqmri: error: sub-01 ses-01: x.nii.gz: broken header\n"
    with pytest.raises(SystemExit), report_errors(job):
        raise KeyError("boom")
    err = capsys.readouterr().err
    assert err.startswith("msqmri: error: sub-01 ses-01: internal error KeyError") and "Traceback" not in err
    assert "Traceback" in log.read_text()
