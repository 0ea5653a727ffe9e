"""Gradient tables, tensor fit and b-vector rotation on analytic data (no registration)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import dipy
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from msqmri.core.io import MsqmriInputError
from msqmri.dwi import preprocessing as dwi
from msqmri.dwi import stage as diffusion
from msqmri.dwi import tensor as dti
from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.phantom.cohort import hemisphere_directions
from msqmri.phantom.tissues import fractional_anisotropy
from msqmri.workflow import layout

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


def test_schemes_that_cannot_support_the_fit_are_named() -> None:
    assert dti.scheme_problem(scheme(), "RESTORE") is None
    assert "determine only 3 of the 6" in dti.scheme_problem(
        dwi.Gradients(np.r_[0.0, 1000, 1000, 1000], np.vstack([np.zeros(3), np.eye(3)])), "WLS"
    )
    seven = dwi.Gradients(np.r_[0.0, np.full(6, 1000.0)], np.vstack([np.zeros(3), hemisphere_directions(6)]))
    assert dti.scheme_problem(seven, "WLS") is None
    assert "RESTORE needs more than 7 volumes" in dti.scheme_problem(seven, "RESTORE")


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
        transforms[j, :3, :3] = Rotation.from_rotvec(
            rng.normal(size=3) / np.sqrt(3) * np.radians(angle_deg)
        ).as_matrix()
    fibres = np.broadcast_to(np.array([0.6, 0.8, 0.0]), (4, 4, 4, 3))
    head_frame = np.einsum("nji,nj->ni", transforms[:, :3, :3], gradients.bvecs)  # Q_j^T g_j
    data = np.stack(
        [
            tensor_signal(fibres, head_frame[j : j + 1], gradients.bvals[j : j + 1], 1.6e-3, 0.35e-3)[..., 0]
            for j in range(len(gradients.bvals))
        ],
        axis=-1,
    )
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


MRTRIX = shutil.which("dwi2tensor") and shutil.which("tensor2metric")


@pytest.mark.skipif(
    not MRTRIX and not os.environ.get("MSQMRI_REQUIRE_MRTRIX"), reason="MRtrix3 not installed (Debian package mrtrix3)"
)
def test_fa_md_agree_with_mrtrix_on_real_data(tmp_path: Path) -> None:
    """dipy's small_64D (real data, 64 directions): FA and MD against MRtrix3 dwi2tensor + tensor2metric."""
    files = Path(dipy.__file__).parent / "data" / "files"
    img = nib.load(str(files / "small_64D.nii"))
    data = np.asarray(img.dataobj, dtype=np.float32)
    gradients = dwi.read_gradients(files / "small_64D.bval", files / "small_64D.bvec", data.shape[3], img.affine)
    mask = data[..., gradients.b0].mean(-1) > 0
    ours = dti.fit_tensor(data, gradients, mask)
    # MRtrix reads the same gradients in FSL layout (3 rows); the b=0 rows of dipy's file are NaN
    bvec = tmp_path / "dwi.bvec"
    bvec.write_text("\n".join(" ".join(f"{v:.8f}" for v in row) for row in dwi.to_fsl(gradients.bvecs, img.affine).T))
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine), str(tmp_path / "mask.nii"))
    run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=tmp_path)
    run(
        [
            "dwi2tensor",
            "-quiet",
            "-fslgrad",
            str(bvec),
            str(files / "small_64D.bval"),
            "-mask",
            "mask.nii",
            str(files / "small_64D.nii"),
            "tensor.mif",
        ]
    )
    run(["tensor2metric", "-quiet", "-mask", "mask.nii", "-fa", "fa.nii", "-adc", "md.nii", "tensor.mif"])
    fa = np.asarray(nib.load(str(tmp_path / "fa.nii")).dataobj)[mask]
    md = np.asarray(nib.load(str(tmp_path / "md.nii")).dataobj)[mask]
    assert mask.sum() > 500
    assert np.median(np.abs(ours.fa[mask] - fa)) <= 0.02
    assert np.median(np.abs(ours.md[mask] / md - 1)) <= 0.02


# -- phantom: known tensors, SNR 25, 3 mm ---------------------------------------------------------------
BRAIN_TISSUES = ("gm", "wm", "dgm")  # CSF sits at the noise floor at b=1000 and is not scored


@pytest.fixture(scope="module")
def dwi_phantoms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same subject's DWI at 3 mm without and with 2 degrees of random head motion per volume."""
    root = tmp_path_factory.mktemp("dwi")
    spec = CohortSpec(n_subjects=1, n_sessions=1, resolution=3.0, modalities=("dwi",), lesions=False, seed=3)
    return {
        name: generate_cohort(root / name, replace(spec, dwi_motion_deg=motion))
        for name, motion in (("still", 0.0), ("moving", 2.0))
    }


def run_dwi_stage(root: Path, out: Path, motion_correction: bool) -> dict[str, str]:
    """Preprocess and fit the phantom session with the library's stage functions; the output paths."""
    stem = root / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01_dwi"
    fill = {"sesdir": "sub-01/ses-01", "stem": "sub-01_ses-01"}
    paths = {k: str(out / p.format(**fill)) for k, p in {**layout.DWI_PREPROC, **layout.DTI}.items()}
    diffusion.preprocess(
        {"dwi": f"{stem}.nii.gz", "bval": f"{stem}.bval", "bvec": f"{stem}.bvec"},
        paths,
        motion_correction=motion_correction,
    )
    diffusion.fit(paths, paths)
    return paths


def tissue_errors(root: Path, paths: dict[str, str]) -> pd.DataFrame:
    """Per brain tissue: median |FA error| and median |MD error| / MD in its pure voxels, and the pooled row."""
    truth = root / "sourcedata" / "ground_truth"
    pure = np.asarray(nib.load(str(truth / "sub-01/ses-01/sub-01_ses-01_space-dwi_desc-pure_dseg.nii.gz")).dataobj)
    mask = np.asarray(nib.load(paths["mask"]).dataobj) > 0
    fa, md = (np.asarray(nib.load(paths[k]).dataobj) for k in ("fa", "md"))
    tissues = pd.read_csv(truth / "tissues.tsv", sep="\t")
    rows, fa_err, md_err = [], [], []
    for label, row in enumerate(tissues.itertuples(), start=1):
        if row.name in BRAIN_TISSUES:
            voxels = (pure == label) & mask
            fa_err.append(np.abs(fa[voxels] - row.fa))
            md_err.append(np.abs(md[voxels] / row.md - 1))
            rows.append(
                {
                    "tissue": row.name,
                    "n": int(voxels.sum()),
                    "fa": np.median(fa_err[-1]),
                    "md": np.median(md_err[-1]),
                    "md_bias": np.median(md[voxels]) / row.md - 1,
                }
            )
    rows.append(
        {
            "tissue": "pooled",
            "n": sum(r["n"] for r in rows),
            "fa": np.median(np.concatenate(fa_err)),
            "md": np.median(np.concatenate(md_err)),
            "md_bias": 0.0,
        }
    )
    return pd.DataFrame(rows).set_index("tissue")


@pytest.mark.slow
def test_phantom_tensor_accuracy_and_motion_correction(dwi_phantoms: dict[str, Path], tmp_path: Path) -> None:
    """SNR 25: median FA error <= 0.03 and MD error <= 3 % in pure brain-tissue voxels; with 2 degrees of
    motion per volume, realignment + b-vector rotation keeps FA error within 0.01 of the motion-free case."""
    still = tissue_errors(dwi_phantoms["still"], run_dwi_stage(dwi_phantoms["still"], tmp_path / "still", False))
    paths = run_dwi_stage(dwi_phantoms["moving"], tmp_path / "moving", True)
    moving = tissue_errors(dwi_phantoms["moving"], paths)
    assert (still.n[:-1] >= 30).all()
    assert still.loc["pooled", "fa"] <= 0.03 and still.loc["pooled", "md"] <= 0.03
    assert (still.fa <= 0.03).all() and (still.md_bias.abs() <= 0.03).all()  # every tissue, not only the pool
    assert moving.loc["pooled", "fa"] <= 0.03 and moving.loc["pooled", "md"] <= 0.03
    # not worse than without motion (realignment interpolates, which also smooths the noise: often better)
    assert (moving.fa <= still.fa + 0.01).all()
    # the estimated head motion matches the simulated one
    truth = (
        dwi_phantoms["moving"] / "sourcedata/ground_truth/sub-01/ses-01/sub-01_ses-01_space-dwi_desc-motion_xfm.json"
    )
    simulated = np.array(json.loads(truth.read_text())["reference_to_volume"])
    estimated = pd.read_csv(paths["motion"], sep="\t")
    rotations = Rotation.from_euler("xyz", estimated[["rot_x", "rot_y", "rot_z"]].to_numpy())  # R = Rz Ry Rx
    residual = np.degrees((rotations * Rotation.from_matrix(simulated[:, :3, :3]).inv()).magnitude())
    assert np.median(residual) <= 0.5 and np.median(np.degrees(rotations.magnitude())) > 1.0
    assert estimated.framewise_displacement.iloc[1:].median() > 0.5  # the motion was seen


def test_bad_dwi_series_is_one_line_naming_the_file(tmp_path: Path) -> None:
    bval, bvec = write_gradients(tmp_path, "0 1000 1000 1000\n", GOOD_BVECS)
    flat, series = tmp_path / "sub-01_dwi.nii.gz", tmp_path / "sub-02_dwi.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(flat))
    data = np.random.default_rng(0).uniform(1, 2, (4, 4, 4, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(series))
    with pytest.raises(MsqmriInputError, match=f"^{flat}: expected a 4D image"):
        diffusion.load_dwi(flat, bval, bvec)
    with pytest.raises(MsqmriInputError, match=f"^{series}: no matching .bvec file$"):
        diffusion.load_dwi(series, bval, None)


def test_mppca_brings_noisy_tensors_closer_to_the_clean_signal() -> None:
    rng = np.random.default_rng(4)
    gradients = scheme()
    fibres = rng.normal(size=(10, 10, 10, 3))
    fibres = ndimage_smooth(fibres)
    clean = tensor_signal(fibres, gradients.bvecs, gradients.bvals, 1.6e-3, 0.35e-3)
    noisy = (clean + rng.normal(0, 40.0, clean.shape)).astype(np.float32)
    denoised = dwi.denoise(noisy, "mppca")
    assert denoised.shape == noisy.shape and denoised.dtype == np.float32
    assert np.sqrt(np.mean((denoised - clean) ** 2)) < 0.8 * np.sqrt(np.mean((noisy - clean) ** 2))


def ndimage_smooth(vectors: np.ndarray) -> np.ndarray:
    """A smooth unit-vector field from random vectors (Gaussian smoothing, renormalised)."""
    from scipy import ndimage

    smooth = np.stack([ndimage.gaussian_filter(vectors[..., i], 3.0) for i in range(3)], axis=-1)
    return smooth / np.linalg.norm(smooth, axis=-1, keepdims=True)


def _write_series(
    tmp_path: Path, data: np.ndarray, gradients: dwi.Gradients, stem: str = "sub-01_dwi"
) -> dict[str, str]:
    """A DWI series on a 2 mm RAS grid with its FSL .bval/.bvec; the stage functions' input dict."""
    paths = {
        "dwi": str(tmp_path / f"{stem}.nii.gz"),
        "bval": str(tmp_path / f"{stem}.bval"),
        "bvec": str(tmp_path / f"{stem}.bvec"),
    }
    nib.save(nib.Nifti1Image(data.astype(np.float32), RAS), paths["dwi"])
    Path(paths["bval"]).write_text(" ".join(f"{b:g}" for b in gradients.bvals) + "\n")
    fsl = dwi.to_fsl(gradients.bvecs, RAS).T
    Path(paths["bvec"]).write_text("\n".join(" ".join(f"{v:.8f}" for v in row) for row in fsl) + "\n")
    return paths


def test_a_multishell_series_is_fitted_on_its_shells_up_to_1500(tmp_path: Path) -> None:
    """b=0, 30 directions at b=1000 and 30 at b=3000 where the signal is kurtotic (S = exp(-bD + b^2 D^2 K / 6),
    K = 1; Jensen et al. 2005): the tensor comes from the b=1000 shell, so MD is the true D, which the b=3000 shell
    would have pulled down."""
    rng = np.random.default_rng(1)
    fibres = rng.normal(size=(5, 4, 3, 3))
    fibres /= np.linalg.norm(fibres, axis=-1, keepdims=True)
    directions = hemisphere_directions(30)
    bvals = np.r_[0.0, 0.0, np.full(30, 1000.0), np.full(30, 3000.0)]
    gradients = dwi.Gradients(bvals, np.vstack([np.zeros((2, 3)), directions, directions]))
    ad, rd = 1.6e-3, 0.35e-3
    apparent = -np.log(tensor_signal(fibres, gradients.bvecs, bvals, ad, rd) / 1000.0)  # b D along each gradient
    signal = 1000.0 * np.exp(-apparent + np.where(bvals > 1500, apparent**2 / 6, 0.0))
    paths = _write_series(tmp_path, signal, gradients)
    nib.save(nib.Nifti1Image(np.ones(fibres.shape[:3], np.uint8), RAS), tmp_path / "mask.nii.gz")
    inputs = {**paths, "mask": str(tmp_path / "mask.nii.gz")}
    true_md = (ad + 2 * rd) / 3
    for max_b, bias in ((dti.TENSOR_MAX_B, (-0.005, 0.005)), (4000.0, (-1.0, -0.1))):
        out = {k: str(tmp_path / f"b{max_b:g}" / f"{k}.nii.gz") for k in layout.DTI}
        diffusion.fit(inputs, out, max_b=max_b)
        md = np.asarray(nib.load(out["md"]).dataobj)
        assert bias[0] <= np.median(md) / true_md - 1 <= bias[1], max_b
    sidecar = json.loads(Path(tmp_path / f"b{dti.TENSOR_MAX_B:g}" / "md_json.nii.gz").read_text())
    assert sidecar["TensorBValues"] == [1000] and sidecar["ExcludedVolumes"] == 30


def test_shell_selection_tolerates_rounded_b_values_and_keeps_a_lone_high_shell() -> None:
    def chosen(bvals: list[float]) -> list[bool]:
        return dti.tensor_volumes(dwi.Gradients(np.array(bvals), np.zeros((len(bvals), 3)))).tolist()

    assert chosen([0, 995, 1005, 1520, 2000, 3000]) == [True, True, True, True, False, False]
    assert chosen([5, 2000, 2010, 3000]) == [True, True, True, False]  # only higher shells: the lowest


def test_a_b0_series_stored_apart_joins_the_series(tmp_path: Path) -> None:
    """Its volumes are appended as b=0 (zero b-vectors) and enter the mean b=0; one on another grid is a one-line
    error naming it."""
    gradients = scheme(12)
    rng = np.random.default_rng(2)
    grid = np.indices((10, 10, 8)) - np.array([4.5, 4.5, 3.5])[:, None, None, None]
    head = ((grid / np.array([4.0, 4.0, 3.0])[:, None, None, None]) ** 2).sum(0) <= 1
    data = rng.uniform(50, 60, (10, 10, 8, len(gradients.bvals))) * head[..., None]
    data[..., gradients.b0] = 100.0 * head[..., None]
    paths = _write_series(tmp_path, data, gradients)
    b0_path = tmp_path / "sub-01_acq-b0_dwi.nii.gz"
    nib.save(nib.Nifti1Image(np.repeat(130.0 * head[..., None], 2, 3).astype(np.float32), RAS), b0_path)
    out = {k: str(tmp_path / "out" / f"{k}.nii.gz") for k in layout.DWI_PREPROC}
    diffusion.preprocess({**paths, "b0_series": [str(b0_path)]}, out, motion_correction=False)
    bvals = [float(b) for b in Path(out["bval"]).read_text().split()]
    assert bvals == [*gradients.bvals.tolist(), 0.0, 0.0]
    assert np.asarray(nib.load(out["dwi"]).dataobj).shape[3] == len(gradients.bvals) + 2
    assert np.asarray(nib.load(out["b0"]).dataobj)[head].mean() == pytest.approx((2 * 100 + 2 * 130) / 4)
    assert json.loads(Path(out["sidecar"]).read_text())["Sources"][-1] == b0_path.name
    nib.save(nib.Nifti1Image(rng.uniform(100, 130, (10, 10, 9, 2)).astype(np.float32), RAS), b0_path)
    with pytest.raises(MsqmriInputError, match=f"^{b0_path}: b=0 series grid \\(10, 10, 9\\)"):
        diffusion.preprocess({**paths, "b0_series": [str(b0_path)]}, out, motion_correction=False)
