"""Plain Snakemake (no msqmri wrapper) on the tiny dataset with the non-default options (its own
file, so that with ``--dist loadfile`` it runs beside the other workflow tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from workflow_helpers import check_quantitative_maps, check_tensor_maps, snakemake

from msqmri.inputs.bids import discover
from msqmri.workflow import layout

pytestmark = pytest.mark.slow


def test_plain_snakemake_run(tiny_bids: Path, tmp_path: Path) -> None:
    """Plain Snakemake with the non-default options, on sub-01 only (``participant_label``): Jacobian PBVC
    only, MP-PCA denoising, NLLS fit, the T1w brain mask for the fit, an affine b=0 -> T1w registration and
    the ARLO R2* fit. The jobs leave no ANTs transform or Atropos image in the temporary directory (antspyx
    never deletes its own)."""
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    config = [
        f"bids_dir={tiny_bids}",
        f"output_dir={out}",
        "pbvc_methods=[jacobian]",
        "dwi_denoise=mppca",
        "dti_fit=NLLS",
        "dwi_mask=t1w",
        "dwi_to_t1w=affine",
        "r2star_fit=arlo",
        "participant_label=[01]",
    ]
    result = snakemake("--cores", "2", "--config", *config, cwd=tmp_path, env={"TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    left = [p.name for p in scratch.rglob("*") if p.suffix in (".mat", ".h5", ".gz")]
    assert not left, left
    dataset = discover(tiny_bids, ["01"])
    for path in layout.participant_targets(dataset, ("jacobian",)) + layout.stage_targets("group", dataset):
        assert (out / path).is_file(), path
    assert not list(out.rglob("*desc-siena_*")) and not (out / "sub-02").exists()
    stem = out / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01"
    check_tensor_maps(stem, tiny_bids)
    check_quantitative_maps(out / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01", "ARLO")
    assert json.loads(Path(f"{stem}_space-dwi_desc-preproc_dwi.json").read_text())["Denoising"] == "mppca"
    assert "NLLS" in json.loads(Path(f"{stem}_model-tensor_param-fa_dwimap.json").read_text())["EstimationAlgorithm"]
