"""MTR and R2*: the formulas and fits on known signals, bad input, and accuracy on 3 mm phantoms
against the ground truth (pure-tissue voxels)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from msqmri.core.io import MsqmriInputError
from msqmri.inputs.bids import Echo
from msqmri.inputs.checks import load_echoes, load_mt_pair
from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.qmri import mtr, r2star
from msqmri.qmri import stage as quantitative
from msqmri.workflow import layout

STEM = "sub-01_ses-01"
#: pure-tissue classes checked against the truth
TISSUES = ("gm", "wm", "dgm")
UNIFORM_TE = np.array([0.004, 0.0085, 0.013, 0.0175, 0.022, 0.0265, 0.031, 0.0355])
UNEVEN_TE = np.array([0.003, 0.005, 0.009, 0.014, 0.02, 0.03])


def rician(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))


# -- MTR -------------------------------------------------------------------------------------------
def test_mtr_formula_mask_and_clipping() -> None:
    off = np.array([100.0, 100.0, 100.0, 0.0, 50.0])
    on = np.array([60.0, 120.0, -5.0, 10.0, 30.0])
    mask = np.array([True, True, True, True, False])
    np.testing.assert_array_equal(mtr.mtr_map(on, off, mask), [40.0, 0.0, 100.0, 0.0, 0.0])
    assert mtr.mtr_map(on, off, mask).dtype == np.float64
    # float64: an MTR of 1e-6 pu survives int16-scale signals
    assert mtr.mtr_map(np.array([29999.9997]), np.array([30000.0]), np.array([True]))[0] == pytest.approx(
        1e-6, rel=1e-3
    )


def test_mt_state() -> None:
    assert mtr.mt_state_problem(None, True) is None and mtr.mt_state_problem(True, True) is None
    assert "swapped" in mtr.mt_state_problem(False, True)
    assert "true or false" in mtr.mt_state_problem("on", True)
    bright = np.full((4, 4, 4), 120.0)
    assert mtr.swapped_by_contrast(bright, bright / 1.5, np.ones((4, 4, 4), bool))
    assert not mtr.swapped_by_contrast(bright / 1.5, bright, np.ones((4, 4, 4), bool))


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 3 mm session (LAS) with T1w, MT-on 1 mm away from MT-off (SNR 40) and 8 echoes (SNR 50)."""
    spec = CohortSpec(
        n_subjects=1,
        n_sessions=1,
        resolution=3.0,
        modalities=("T1w", "MTR", "MEGRE"),
        mt_misalignment_mm=1.0,
        orientations=("LAS",),
        seed=3,
        lesions=False,
    )
    return generate_cohort(tmp_path_factory.mktemp("qmri") / "bids", spec)


def stage_inputs(root: Path) -> dict[str, str]:
    """Raw T1w and the true brain mask stand in for the structural outputs."""
    anat, truth = root / "sub-01" / "ses-01" / "anat", root / "sourcedata" / "ground_truth" / "sub-01" / "ses-01"
    return {
        "mt_on": str(anat / f"{STEM}_mt-on_MTR.nii.gz"),
        "mt_off": str(anat / f"{STEM}_mt-off_MTR.nii.gz"),
        "t1w": str(anat / f"{STEM}_T1w.nii.gz"),
        "t1w_mask": str(truth / f"{STEM}_space-T1w_desc-brain_mask.nii.gz"),
    }


def outputs(patterns: dict[str, str], out: Path) -> dict[str, str]:
    return {key: str(out / p.format(sesdir=".", stem=STEM)) for key, p in patterns.items()}


def tissue_errors(map_path: str, root: Path, space: str, column: str, relative: bool = False) -> dict[str, np.ndarray]:
    """Per tissue, the map's errors in that tissue's pure voxels (percent of truth when ``relative``)."""
    values = np.asarray(nib.load(map_path).dataobj, dtype=float)
    pure_path = (
        root / "sourcedata" / "ground_truth" / "sub-01" / "ses-01" / f"{STEM}_space-{space}_desc-pure_dseg.nii.gz"
    )
    pure = np.asarray(nib.load(str(pure_path)).dataobj)
    tissues = pd.read_csv(root / "sourcedata" / "ground_truth" / "tissues.tsv", sep="\t")
    errors = {}
    for label, tissue in enumerate(tissues.itertuples(), start=1):
        if tissue.name in TISSUES:
            truth = getattr(tissue, column)
            v = values[pure == label]
            errors[tissue.name] = (v / truth - 1) * 100 if relative else v - truth
    return errors


def test_mtr_on_phantom_with_misalignment(phantom: Path, tmp_path: Path) -> None:
    """SNR 40, MT-on 1 mm off MT-off: the median MTR of every pure tissue within 0.5 pu of the
    truth (or, for a tissue with few pure voxels, within three standard errors of a median of that many
    voxels), natively and in T1w space; the 1 mm shift is recovered."""
    outs = outputs(layout.MTR, tmp_path)
    quantitative.mtr(stage_inputs(phantom), outs)
    for key, space in (("mtr", "MTR"), ("mtr_t1w", "T1w")):
        for tissue, err in tissue_errors(outs[key], phantom, space, "mtr").items():
            standard_error = 1.2533 * 1.4826 * np.median(np.abs(err - np.median(err))) / np.sqrt(err.size)
            assert err.size > 30 and abs(np.median(err)) <= max(0.5, 3 * standard_error), (key, tissue, np.median(err))
            assert np.median(np.abs(err)) <= 2.5, (key, tissue)  # per-voxel noise at SNR 40 is ~2 pu
    sidecar = json.loads(Path(outs["mtr_json"]).read_text())
    assert abs(sidecar["MTonToMToffTranslationMm"] - 1.0) <= 0.25
    assert sidecar["Units"] == "percent" and sidecar["MTState"][f"{STEM}_mt-on_MTR.nii.gz"] is True
    assert json.loads(Path(outs["mtr_t1w_json"]).read_text())["Sources"][0] == Path(outs["mtr"]).name


def test_mtr_registration_removes_misalignment_error(tmp_path: Path) -> None:
    """Noise-free, MT-on 1.5 mm off MT-off: compared with the same phantom acquired without the
    shift, the unregistered MTR of brain voxels is wrong at every tissue border; registration
    removes most of that error (what remains is resampling a 3 mm image with sharp borders)."""
    maps = {}
    for shift in (1.5, 0.0):
        spec = CohortSpec(
            n_subjects=1,
            n_sessions=1,
            resolution=3.0,
            modalities=("T1w", "MTR"),
            noise=False,
            mt_misalignment_mm=shift,
            orientations=("RAS",),
            seed=4,
            lesions=False,
        )
        root = generate_cohort(tmp_path / f"bids{shift}", spec)
        inputs, outs = stage_inputs(root), outputs(layout.MTR, tmp_path / f"out{shift}")
        quantitative.mtr(inputs, outs)
        _, on, off = load_mt_pair(Path(inputs["mt_on"]), Path(inputs["mt_off"]))
        maps[shift] = {"registered": np.asarray(nib.load(outs["mtr"]).dataobj), "raw": mtr.mtr_map(on, off, off > 0)}
    # brain tissue voxels (partial volume with CSF, where the MTR of a border voxel is unstable, excluded)
    tissue = (maps[0.0]["registered"] > 0) & (maps[0.0]["raw"] >= 25)
    truth = maps[0.0]["raw"][tissue]  # no shift: the exact MTR of every voxel
    error = {kind: np.abs(maps[1.5][kind][tissue] - truth) for kind in ("registered", "raw")}
    assert np.percentile(error["raw"], 75) > 2.5  # several pu at every tissue border
    assert np.percentile(error["registered"], 75) < 0.5 * np.percentile(error["raw"], 75)
    assert np.median(error["registered"]) <= 0.75


def test_mt_swapped_is_one_line_error(phantom: Path, tmp_path: Path) -> None:
    inputs = stage_inputs(phantom)
    # by MTState in the sidecar
    bad = tmp_path / "bad"
    bad.mkdir()
    for state in ("on", "off"):
        shutil.copy(inputs[f"mt_{state}"], bad / f"{STEM}_mt-{state}_MTR.nii.gz")
        (bad / f"{STEM}_mt-{state}_MTR.json").write_text(json.dumps({"MTState": state == "off"}))
    with pytest.raises(MsqmriInputError, match=rf"{STEM}_mt-on_MTR.json: MTState is false in a mt-on image"):
        load_mt_pair(bad / f"{STEM}_mt-on_MTR.nii.gz", bad / f"{STEM}_mt-off_MTR.nii.gz")
    # by contrast, when the sidecars say nothing
    for state, other in (("on", "off"), ("off", "on")):
        (bad / f"{STEM}_mt-{state}_MTR.json").unlink()
        shutil.copy(inputs[f"mt_{other}"], bad / f"{STEM}_mt-{state}_MTR.nii.gz")
    swapped = {
        **inputs,
        "mt_on": str(bad / f"{STEM}_mt-on_MTR.nii.gz"),
        "mt_off": str(bad / f"{STEM}_mt-off_MTR.nii.gz"),
    }
    with pytest.raises(MsqmriInputError, match="mt-on_MTR.nii.gz: brighter than .* look swapped"):
        quantitative.mtr(swapped, outputs(layout.MTR, tmp_path / "out"))


# -- R2* -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,times", [("wls", UNEVEN_TE), ("nlls", UNEVEN_TE), ("arlo", UNIFORM_TE)])
def test_fits_are_exact_on_clean_signals(method: str, times: np.ndarray) -> None:
    r2_true = np.array([2.0, 17.0, 40.0, 120.0])
    s0_true = np.array([900.0, 700.0, 500.0, 1500.0])
    signal = s0_true[:, None] * np.exp(-r2_true[:, None] * times)
    r2, s0, nrmse, n = r2star.fit_signals(signal, times, method)
    np.testing.assert_allclose(r2, r2_true, rtol=1e-3 if method == "arlo" else 1e-8)
    np.testing.assert_allclose(s0, s0_true, rtol=1e-3 if method == "arlo" else 1e-8)
    assert (nrmse < 1e-3).all() and (n == len(times)).all()


def test_weighted_log_linear_matches_nlls_precision() -> None:
    """At SNR 50 (Rician), the weighted log-linear fit's spread is within 5 % of nonlinear least
    squares'; the vectorised NLLS agrees with scipy's curve_fit; all are unbiased."""
    rng = np.random.default_rng(0)
    for r2_true in (17.0, 20.0, 40.0):
        signal = rician(np.full((20000, UNIFORM_TE.size), 1.0) * np.exp(-r2_true * UNIFORM_TE), 1 / 50, rng)
        fits = {m: r2star.fit_signals(signal, UNIFORM_TE, m)[0] for m in r2star.FIT_METHODS}
        assert fits["wls"].std() <= 1.05 * fits["nlls"].std(), r2_true
        assert fits["arlo"].std() <= 1.25 * fits["nlls"].std(), r2_true
        for estimate in fits.values():
            assert abs(np.median(estimate) / r2_true - 1) <= 0.01
        _, s0, _, _ = r2star.fit_signals(signal[:50], UNIFORM_TE, "nlls")
        for k in range(50):
            (a, r), _ = curve_fit(lambda t, a, r: a * np.exp(-r * t), UNIFORM_TE, signal[k], p0=(1.0, r2_true))
            assert fits["nlls"][k] == pytest.approx(r, rel=1e-4) and s0[k] == pytest.approx(a, rel=1e-4)


def test_noise_floor_echoes_are_dropped() -> None:
    """Where the signal decays into the Rician floor (R2* 200 1/s, S0 SNR 20: the fourth echo is at
    SNR 1), fitting every echo reads R2* ~30 % low; dropping echoes whose fitted signal is under
    2 sigma leaves a few percent. Where the floor is not reached (R2* 40 1/s at SNR 10), dropping
    changes nothing."""
    rng = np.random.default_rng(1)
    for snr, r2_true in ((20, 200.0), (10, 40.0)):
        sigma = 1 / snr
        signal = rician(np.ones((20000, UNIFORM_TE.size)) * np.exp(-r2_true * UNIFORM_TE), sigma, rng)
        for method in r2star.FIT_METHODS:
            every = np.median(r2star.fit_signals(signal, UNIFORM_TE, method, 0.0)[0]) / r2_true - 1
            dropped = np.median(r2star.fit_signals(signal, UNIFORM_TE, method, 2 * sigma)[0]) / r2_true - 1
            if r2_true == 200.0:
                assert every < -0.2 and abs(dropped) <= 0.07 and abs(dropped) < abs(every) / 4, method
            else:
                assert abs(dropped - every) <= 0.01, method
    n_used = r2star.fit_signals(signal, UNIFORM_TE, "wls", 2 * sigma)[3]
    assert n_used.min() >= 2 and n_used.max() == UNIFORM_TE.size
    np.testing.assert_array_equal(
        r2star.used_echoes(np.array([[5.0, 2.0, 0.9, 0.3]]), 1.0), [[True, True, False, False]]
    )


def test_background_sigma() -> None:
    rng = np.random.default_rng(2)
    clean = np.zeros((60, 60, 40))
    clean[15:45, 15:45, 10:30] = 100.0
    assert r2star.background_sigma(rician(clean, 2.5, rng)) == pytest.approx(2.5, rel=0.03)
    assert r2star.background_sigma(clean) is None  # zero-filled background: no estimate


def test_r2star_on_phantom(phantom: Path, tmp_path: Path) -> None:
    """SNR 50, 8 echoes: the median R2* of every pure tissue (GM 17, WM 20, deep GM 40 1/s) within 3 %
    of the truth, natively and in T1w space; companions and sidecars written."""
    anat = phantom / "sub-01" / "ses-01" / "anat"
    echoes = [str(anat / f"{STEM}_echo-{k}_MEGRE.nii.gz") for k in range(1, 9)]
    outs = outputs(layout.R2STAR, tmp_path)
    quantitative.r2star({**stage_inputs(phantom), "echoes": echoes}, outs)
    for key, space in (("r2star", "MEGRE"), ("r2star_t1w", "T1w")):
        for tissue, err in tissue_errors(outs[key], phantom, space, "r2star", relative=True).items():
            assert err.size > 30 and abs(np.median(err)) <= 3.0, (key, tissue, np.median(err))
            assert np.median(np.abs(err)) <= 5.0, (key, tissue)
    r2 = np.asarray(nib.load(outs["r2star"]).dataobj)
    t2 = np.asarray(nib.load(outs["t2star"]).dataobj)
    inside = r2 > 1
    np.testing.assert_allclose(t2[inside], 1 / r2[inside], rtol=1e-5)
    sidecar = json.loads(Path(outs["r2star_json"]).read_text())
    assert sidecar["Units"] == "1/s" and sidecar["EchoTime"] == pytest.approx(list(UNIFORM_TE))
    assert sidecar["NoiseSigma"] > 0 and "dropped" in sidecar["NoiseFloor"]
    assert np.median(np.asarray(nib.load(outs["nrmse"]).dataobj)[r2 > 0]) < 0.1


def test_bad_echoes_are_one_line_errors(tmp_path: Path, phantom: Path) -> None:
    anat = phantom / "sub-01" / "ses-01" / "anat"
    bad = tmp_path / "anat"
    shutil.copytree(anat, bad)
    echoes = tuple(
        Echo(k, bad / f"{STEM}_echo-{k}_MEGRE.nii.gz", bad / f"{STEM}_echo-{k}_MEGRE.json") for k in range(1, 9)
    )
    with pytest.raises(
        MsqmriInputError, match=rf"{STEM}_echo-1_MEGRE.nii.gz: 1 MEGRE echo\(es\) found; R2\* needs at least 3"
    ):
        load_echoes(echoes[:1])
    (bad / f"{STEM}_echo-3_MEGRE.json").write_text(json.dumps({"RepetitionTime": 0.05}))
    with pytest.raises(MsqmriInputError, match=rf"{STEM}_echo-3_MEGRE.json: EchoTime missing"):
        load_echoes(echoes)
    uneven = {1: 0.004, 2: 0.0085, 3: 0.02}
    for k, te in uneven.items():
        (bad / f"{STEM}_echo-{k}_MEGRE.json").write_text(json.dumps({"EchoTime": te}))
    with pytest.raises(MsqmriInputError, match=rf"{STEM}_echo-3_MEGRE.json: ARLO needs evenly spaced echoes"):
        quantitative.r2star(
            {**stage_inputs(phantom), "echoes": [str(e.image) for e in echoes[:3]]},
            outputs(layout.R2STAR, tmp_path / "out"),
            method="arlo",
        )
    img = nib.load(str(echoes[1].image))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-1], img.affine), str(echoes[1].image))
    with pytest.raises(MsqmriInputError, match=rf"{STEM}_echo-2_MEGRE.nii.gz: grid"):
        load_echoes(echoes)
