"""The synthetic cohort's ground truth is what it claims to be."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.phantom.acquisition import Pose, render
from msqmri.phantom.anatomy import LOCATIONS, REGIONS, sample, template_maps
from msqmri.phantom.cohort import flair_signal, hemisphere_directions, session_pairs
from msqmri.phantom.lesions import ENLARGE
from msqmri.phantom.subject import make_subject
from msqmri.phantom.tissues import INDEX, NAMES, TISSUES, FlairContrast

CLEAN = CohortSpec(
    n_subjects=2,
    n_sessions=3,
    resolution=3.0,
    noise=False,
    pbvc=(0.0, -0.6, -1.5),
    seed=7,
    t1w_voxel=(3.0, 3.0, 3.6),
    flair_voxel=(3.0, 3.0, 6.0),
    orientations=("RAS", "LAS"),
    user_lesion_masks=True,
)


@pytest.fixture(scope="module")
def clean_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_cohort(tmp_path_factory.mktemp("clean"), CLEAN)


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)


def _pure(root: Path, sub: str, ses: str, space: str) -> np.ndarray:
    truth = root / "sourcedata" / "ground_truth" / f"sub-{sub}" / f"ses-{ses}"
    return _load(truth / f"sub-{sub}_ses-{ses}_space-{space}_desc-pure_dseg.nii.gz").astype(int)


def _pure_voxels(labels: np.ndarray, tissue: str, minimum: int = 5) -> np.ndarray:
    mask = labels == INDEX[tissue] + 1
    assert mask.sum() >= minimum, f"too few pure {tissue} voxels ({mask.sum()})"
    return mask


def test_volume_change_equals_requested_atrophy(clean_cohort: Path) -> None:
    pbvc = pd.read_csv(clean_cohort / "sourcedata/ground_truth/pbvc.tsv", sep="\t")
    assert len(pbvc) == 2 * 3  # (1,2), (2,3), (1,3) per subject
    assert np.all(np.abs(pbvc["pbvc"] - pbvc["pbvc_requested"]) <= 0.02)
    baseline_to_last = pbvc[(pbvc.session_from == "ses-01") & (pbvc.session_to == "ses-03")]
    assert np.allclose(baseline_to_last["pbvc_requested"], -1.5)


def test_skull_does_not_shrink_and_subjects_differ(clean_cohort: Path) -> None:
    vol = pd.read_csv(clean_cohort / "sourcedata/ground_truth/volumes.tsv", sep="\t")
    for _, rows in vol.groupby("participant_id"):
        assert np.ptp(rows["icv_ml"]) / rows["icv_ml"].mean() < 1e-4  # intracranial volume fixed
        assert rows["csf_ml"].is_monotonic_increasing  # CSF fills the space the brain leaves
    assert vol.brain_ml.between(900, 1800).all()
    sessions = pd.read_csv(clean_cohort / "sourcedata/ground_truth/sessions.tsv", sep="\t")
    scales = sessions.groupby("participant_id").head_scale.first()
    assert scales.between(0.92 * 0.93, 0.92 * 1.07).all() and scales.nunique() == 2


def test_subject_is_a_warped_template_not_a_scaled_copy() -> None:
    rng = np.random.default_rng(5)
    anatomy, head_scale = make_subject(rng, 3.0, lesions=False)
    maps, affine = template_maps(3.0)
    points = anatomy.grid_points()
    scaled_only = sample(maps[:3], affine, points / head_scale).reshape(anatomy.brain.shape)
    differs = np.abs(scaled_only - anatomy.brain).max(0) > 0.2  # partial volume of 3 mm voxels
    assert differs.sum() * 27 > 10_000  # > 10 ml of tissue moved by the nonlinear warp


def test_mtr_r2star_fa_equal_configured_values_in_pure_tissue(clean_cohort: Path) -> None:
    anat = clean_cohort / "sub-01/ses-02/anat"
    labels = _pure(clean_cohort, "01", "02", "MTR")
    off = _load(anat / "sub-01_ses-02_mt-off_MTR.nii.gz")
    on = _load(anat / "sub-01_ses-02_mt-on_MTR.nii.gz")
    for tissue in ("wm", "gm"):
        mask = _pure_voxels(labels, tissue)
        mtr = 100 * (off[mask] - on[mask]) / off[mask]
        assert np.allclose(mtr, TISSUES[INDEX[tissue]].mtr, atol=2e-3), tissue

    labels = _pure(clean_cohort, "01", "02", "MEGRE")
    echoes = sorted(anat.glob("*_MEGRE.nii.gz"), key=lambda p: int(p.name.split("echo-")[1].split("_")[0]))
    te = np.array(
        [pd.read_json(p.with_name(p.name.replace(".nii.gz", ".json")), typ="series")["EchoTime"] for p in echoes]
    )
    signal = np.stack([_load(p) for p in echoes], axis=-1)
    for tissue in ("wm", "gm", "dgm"):
        mask = _pure_voxels(labels, tissue)
        slope = np.polyfit(te, np.log(signal[mask]).T, 1)[0]
        assert np.allclose(-slope, TISSUES[INDEX[tissue]].r2star, rtol=2e-4), tissue

    dwi = clean_cohort / "sub-01/ses-02/dwi/sub-01_ses-02_dwi"
    data = _load(Path(f"{dwi}.nii.gz"))
    bvals = np.loadtxt(f"{dwi}.bval")
    bvecs = np.loadtxt(f"{dwi}.bvec").T
    labels = _pure(clean_cohort, "01", "02", "dwi")
    for tissue in ("wm", "gm"):
        mask = _pure_voxels(labels, tissue)
        fa, md = _tensor_fa_md(data[mask], bvals, bvecs)
        t = TISSUES[INDEX[tissue]]
        assert np.allclose(fa, t.fa, atol=1e-3), tissue
        assert np.allclose(md, t.md, rtol=1e-3), tissue


def _tensor_fa_md(signal: np.ndarray, bvals: np.ndarray, bvecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary least-squares log-linear tensor fit (exact on noise-free data)."""
    g = bvecs
    design = np.column_stack(
        [np.ones_like(bvals)]
        + [
            -bvals * g[:, i] * g[:, j] * (1 if i == j else 2)
            for i, j in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
        ]
    )
    coef = np.linalg.lstsq(design, np.log(signal).T, rcond=None)[0]
    dxx, dyy, dzz, dxy, dxz, dyz = coef[1:]
    tensor = np.stack([np.stack([dxx, dxy, dxz], -1), np.stack([dxy, dyy, dyz], -1), np.stack([dxz, dyz, dzz], -1)], -2)
    ev = np.linalg.eigvalsh(tensor)
    md = ev.mean(-1)
    fa = np.sqrt(1.5 * ((ev - md[:, None]) ** 2).sum(-1) / (ev**2).sum(-1))
    return fa, md


def test_brain_mask_is_filled_brain_tissue(clean_cohort: Path) -> None:
    truth = clean_cohort / "sourcedata/ground_truth/sub-01/ses-01"
    mask = _load(truth / "sub-01_ses-01_space-T1w_desc-brain_mask.nii.gz") > 0
    tissue = sum(_load(truth / f"sub-01_ses-01_space-T1w_label-{t}_probseg.nii.gz") for t in ("GM", "WM"))
    csf = _load(truth / "sub-01_ses-01_space-T1w_label-CSF_probseg.nii.gz")
    assert np.all(mask[tissue >= 0.5])
    assert (mask & (csf > 0.5)).sum() > 0  # ventricles are inside the mask
    voxel_ml = 3.0 * 3.0 * 3.6 / 1000
    assert abs(mask.sum() * voxel_ml - tissue.sum() * voxel_ml) / (tissue.sum() * voxel_ml) < 0.15


def test_lesion_history_and_masks(clean_cohort: Path) -> None:
    """The planned history: new lesions at follow-ups, at least one enlarging lesion per follow-up (deep ones
    grow by ENLARGE^3 in volume; those abutting a wall are clipped by it), every location class, black holes
    among the baseline lesions; the true masks written as a user's when asked."""
    lesions = pd.read_csv(clean_cohort / "sourcedata/ground_truth/lesions.tsv", sep="\t")
    sub = lesions[lesions.participant_id == "sub-01"].pivot(index="lesion_id", columns="session_id")
    status = sub["status"]
    assert (status["ses-02"] == "new").sum() >= 1 and (status["ses-02"] == "enlarging").sum() >= 1
    assert (status["ses-03"] == "enlarging").sum() >= 1
    assert (status["ses-01"] == "absent").sum() == (status["ses-02"] == "new").sum() + (status["ses-03"] == "new").sum()
    volume = sub["volume_ml"]
    grow = status["ses-02"] == "enlarging"
    ratio = volume.loc[grow, "ses-02"] / volume.loc[grow, "ses-01"]
    deep = grow & (sub["location"]["ses-01"].isin(["deep_wm", "infratentorial"]))
    expected = ENLARGE**3 * (1 - 0.006)  # x1.4, and the tissue shrank by 0.6 %
    assert np.allclose(ratio[deep], expected, rtol=0.05) and (ratio > 1.5).all()
    assert (volume.loc[status["ses-02"] == "new", "ses-01"] == 0).all()
    assert set(lesions.location) == set(LOCATIONS)
    holes = lesions[lesions.black_hole & (lesions.session_id == "ses-01")]
    assert 2 <= len(holes) <= 4 and (holes.status == "present").all()
    assert lesions.volume_ml[lesions.status != "absent"].min() * 1000 < 30  # small lesions too
    mask = _load(
        clean_cohort / "derivatives/lesions/sub-01/ses-02/anat/sub-01_ses-02_space-T1w_label-lesion_mask.nii.gz"
    )
    t1w = nib.load(str(clean_cohort / "sub-01/ses-02/anat/sub-01_ses-02_T1w.nii.gz"))
    assert mask.shape == t1w.shape and mask.sum() > 0
    flair = _load(clean_cohort / "sub-01/ses-02/anat/sub-01_ses-02_FLAIR.nii.gz")
    assert flair.max() > 0


def test_lesions_stay_where_planned() -> None:
    """Each planned lesion is where its class says, measured on the anatomy: periventricular lesions reach
    the ventricles, juxtacortical ones the cortex, infratentorial ones lie below the tentorium, deep ones
    away from all three; stable lesions (a scan-rescan subject) never change; a lesion-free subject has none."""
    rng = np.random.default_rng(9)
    anatomy, _ = make_subject(rng, 1.5, n_sessions=2)
    region = dict(zip(REGIONS, anatomy.regions, strict=True))
    step = anatomy.step
    wm, cortex = anatomy.brain[1], anatomy.brain[0]
    distance = {
        "ventricle": ndimage.distance_transform_edt(region["ventricle"] < 0.5, sampling=step),
        "cortex": ndimage.distance_transform_edt(cortex < 0.5, sampling=step),
    }
    points = anatomy.grid_points()
    for lesion in anatomy.lesions:
        session = int(np.argmax(np.asarray(lesion.scale) > 0))
        inside = (lesion.fraction(points, session) >= 0.5).reshape(wm.shape) & (wm >= 0.5)  # lesions replace WM
        nearest = {name: float(d[inside].min()) for name, d in distance.items()}
        below = float(np.mean(region["infratentorial"][inside]))
        if lesion.location == "periventricular":
            assert nearest["ventricle"] <= 1.5 * step, nearest
        elif lesion.location == "juxtacortical":
            assert nearest["cortex"] <= 1.5 * step and nearest["ventricle"] > 3.0, nearest
        elif lesion.location == "infratentorial":
            assert below > 0.99
        else:
            assert min(nearest.values()) > 2.0 and below < 0.01, nearest
    stable, _ = make_subject(np.random.default_rng(9), 3.0, n_sessions=3, active=False)
    assert stable.lesions and all(set(lesion.scale) == {1.0} for lesion in stable.lesions)
    assert not make_subject(np.random.default_rng(9), 3.0, lesions=False)[0].lesions


def test_flair_confounders_and_contrast() -> None:
    """The FLAIR signal model: tissue ratios to WM as drawn, the brainstem's WM brighter, hyperintense
    cortical patches, and the ependyma, septum, choroid plexus and CSF flow blended to their own signal."""
    contrast = FlairContrast(
        gm=1.3, dgm=1.3, brainstem=1.25, lesion=2.0, ependyma=1.7, septum=1.6, choroid=1.5, flow=2.0, cortical_patch=1.1
    )
    wm = TISSUES[INDEX["wm"]].flair
    frac = np.zeros((len(REGIONS) + 3, len(NAMES)), np.float32)
    frac[:, INDEX["wm"]] = 1.0
    frac[-3:, INDEX["wm"]] = 0.0
    frac[-3, INDEX["gm"]] = 1.0
    frac[-2, INDEX["lesion"]] = 1.0
    frac[-1, INDEX["csf"]] = 1.0
    regions = np.zeros((len(frac), len(REGIONS)), np.float32)
    for k in range(len(REGIONS)):
        regions[k, k] = 1.0
    signal = flair_signal(frac, regions, contrast) / wm
    by_region = dict(zip(REGIONS, signal[: len(REGIONS)], strict=True))
    assert by_region["ventricle"] == pytest.approx(1.0) and by_region["brainstem"] == pytest.approx(1.25)
    assert [by_region[r] for r in ("ependyma", "septum", "choroid", "flow")] == pytest.approx([1.7, 1.6, 1.5, 2.0])
    assert by_region["cortical_patch"] == pytest.approx(1.0)  # patches brighten cortex, not WM
    assert signal[-3:] == pytest.approx([1.3, 2.0, TISSUES[INDEX["csf"]].flair / wm])


def test_acquisition_geometry(clean_cohort: Path) -> None:
    t1 = nib.load(str(clean_cohort / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"))
    t2 = nib.load(str(clean_cohort / "sub-02/ses-01/anat/sub-02_ses-01_T1w.nii.gz"))
    assert nib.aff2axcodes(t1.affine) == ("R", "A", "S")
    assert nib.aff2axcodes(t2.affine) == ("L", "A", "S")
    assert np.allclose(t1.header.get_zooms(), (3.0, 3.0, 3.6))
    flair = clean_cohort / "sub-01/ses-01/anat/sub-01_ses-01_FLAIR"
    assert np.allclose(nib.load(f"{flair}.nii.gz").header.get_zooms(), (3.0, 3.0, 6.0))  # a 2D FLAIR's slices
    sidecar = json.loads(Path(f"{flair}.json").read_text())
    assert sidecar["MRAcquisitionType"] == "2D" and sidecar["SliceThickness"] == 6.0
    dwi = nib.load(str(clean_cohort / "sub-01/ses-01/dwi/sub-01_ses-01_dwi.nii.gz"))
    bvals = np.loadtxt(clean_cohort / "sub-01/ses-01/dwi/sub-01_ses-01_dwi.bval")
    bvecs = np.loadtxt(clean_cohort / "sub-01/ses-01/dwi/sub-01_ses-01_dwi.bvec")
    assert dwi.shape[3] == len(bvals) == bvecs.shape[1] == CLEAN.n_b0 + CLEAN.n_directions
    norms = np.linalg.norm(bvecs[:, bvals > 0], axis=0)
    assert np.allclose(norms, 1.0, atol=1e-5)
    sessions = pd.read_csv(clean_cohort / "sub-01/sub-01_sessions.tsv", sep="\t")
    assert list(sessions.session_id) == ["ses-01", "ses-02", "ses-03"]
    assert pd.to_datetime(sessions.acq_time).is_monotonic_increasing


def test_thick_slices_average_their_thickness() -> None:
    """A 2D FLAIR's 3 mm slice holds the tissue of the three 1 mm slices it spans (sub-voxel sampling per axis,
    not the same count along every axis)."""
    anatomy, _ = make_subject(np.random.default_rng(4), 3.0)
    pose = Pose(np.eye(3), np.zeros(3))
    corner = anatomy.centroid - np.array([12.0, 12.0, 6.0])
    thin, thick = np.diag([3.0, 3.0, 1.0, 1.0]), np.diag([3.0, 3.0, 3.0, 1.0])
    thin[:3, 3], thick[:3, 3] = (
        corner,
        corner + np.array([0.0, 0.0, 1.0]),
    )  # thick slice k spans thin slices 3k .. 3k + 2
    fine = render(anatomy, 0, 1.0, pose, (8, 8, 12), thin, (1, 1, 1)).frac
    coarse = render(anatomy, 0, 1.0, pose, (8, 8, 4), thick, (1, 1, 3)).frac
    np.testing.assert_allclose(coarse, fine.reshape(8, 8, 4, 3, -1).mean(3), atol=1e-6)
    assert np.abs(np.diff(fine, axis=2)).max() > 0.1  # the slab holds tissue borders across z


def test_noise_bias_and_drift_are_applied(tmp_path: Path) -> None:
    spec = CohortSpec(
        n_subjects=1, n_sessions=2, resolution=3.0, modalities=("T1w",), scale_drift=0.006, pbvc=(0.0, 0.0), seed=3
    )
    root = generate_cohort(tmp_path, spec)
    img = _load(root / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz")
    labels = _pure(root, "01", "01", "T1w")
    wm = img[_pure_voxels(labels, "wm", 100)]
    cv = wm.std() / wm.mean()
    assert 0.02 < cv < 0.3  # noise (SNR 40: 0.025 alone) and a +/-20 % bias field, not a flat tissue
    sessions = pd.read_csv(root / "sourcedata/ground_truth/sessions.tsv", sep="\t")
    drift = sessions.scale_drift.iloc[1]
    assert 0 < abs(drift) <= 0.006
    # the scanner sees the whole head scaled: the apparent brain volume changes by (1 + drift)^3
    truth = root / "sourcedata/ground_truth/sub-01"
    apparent = [
        _load(truth / f"ses-{s}/sub-01_ses-{s}_space-T1w_label-{t}_probseg.nii.gz").sum()
        * np.prod(nib.load(str(root / f"sub-01/ses-{s}/anat/sub-01_ses-{s}_T1w.nii.gz")).header.get_zooms())
        for s in ("01", "02")
        for t in ("GM",)
    ]
    assert apparent[1] / apparent[0] == pytest.approx((1 + drift) ** 3, abs=0.01)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    spec = CohortSpec(n_subjects=1, n_sessions=1, resolution=3.0, modalities=("T1w",), seed=11)
    digests = []
    for run in ("a", "b"):
        root = generate_cohort(tmp_path / run, spec)
        digests.append(
            hashlib.sha256(_load(root / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz").tobytes()).hexdigest()
        )
    assert digests[0] == digests[1]


def test_session_pairs_and_directions() -> None:
    assert session_pairs(1) == []
    assert session_pairs(3) == [(0, 1), (0, 2), (1, 2)]
    dirs = hemisphere_directions(30)
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    assert len({tuple(np.round(d, 6)) for d in dirs}) == 30


def test_whole_head_adds_neck_face_dura_and_sinuses_around_the_same_brain(tmp_path: Path) -> None:
    spec = CohortSpec(
        n_subjects=1,
        n_sessions=1,
        resolution=3.0,
        noise=False,
        modalities=("T1w",),
        seed=11,
        orientations=("RAS",),
        lesions=False,
    )
    skull, whole = (generate_cohort(tmp_path / head, replace(spec, head=head)) for head in ("skull", "whole"))
    volumes = [pd.read_csv(root / "sourcedata/ground_truth/volumes.tsv", sep="\t").iloc[0] for root in (skull, whole)]
    # the brain and the intracranial volume are the skull-only subject's: the dura and sinuses take CSF only
    for column in ("brain_ml", "icv_ml", "gm_ml", "wm_ml"):
        assert volumes[1][column] == pytest.approx(volumes[0][column], rel=1e-6), column
    assert volumes[1]["csf_ml"] < volumes[0]["csf_ml"]
    stem = "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"
    imgs = [nib.load(str(root / stem)) for root in (skull, whole)]
    extent = [
        nib.affines.apply_affine(img.affine, np.array([[0, 0, 0], np.array(img.shape) - 1]))[:, 2] for img in imgs
    ]
    assert extent[1].min() < extent[0].min() - 40.0  # the field of view reaches down the neck
    truth = whole / "sourcedata/ground_truth/sub-01/ses-01"
    pure = np.asarray(nib.load(str(truth / "sub-01_ses-01_space-T1w_desc-pure_dseg.nii.gz")).dataobj)
    for tissue in ("cord", "fluid", "air", "fat", "muscle"):  # spinal cord, vitreous and canal, pharynx, neck
        assert (pure == INDEX[tissue] + 1).sum() > 20, tissue
    brain = np.asarray(nib.load(str(truth / "sub-01_ses-01_space-T1w_desc-brain_mask.nii.gz")).dataobj) > 0
    below = np.argwhere(brain)[:, 2].min()  # RAS grid: the cord continues the medulla below the brain mask
    assert (pure[:, :, : below - 3] == INDEX["cord"] + 1).any()
    with pytest.raises(ValueError, match="head must be one of skull, whole"):
        replace(spec, head="full")
    with pytest.raises(ValueError, match="unknown FLAS"):
        replace(spec, t1w_sequences=("FLAS",))
