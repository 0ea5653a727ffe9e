"""Structural preprocessing against the phantom's ground truth (3 mm here; 1 mm in benchmarks/)."""

from __future__ import annotations

import base64
import gzip
import os
import re
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from msqmri.anat import template
from msqmri.anat.skull import IntracranialFailure
from msqmri.anat.stage import Structural, load_lesion_mask, load_t1w, measured_fractions, preprocess, run_structural
from msqmri.core.io import MsqmriError, MsqmriInputError, save_array
from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.qc.report import session_figures
from msqmri.validation.real_heads import CLINICAL_SCANS, coarser, colin27_dir, scan_colin27
from msqmri.workflow import layout

#: the true lesion masks are given as a user's (the SIENAX-like lesion filling is tested)
SPEC = CohortSpec(
    n_subjects=2,
    n_sessions=1,
    resolution=3.0,
    modalities=("T1w",),
    seed=4,
    orientations=("RAS", "LAS"),
    user_lesion_masks=True,
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_cohort(tmp_path_factory.mktemp("structural"), SPEC)


@pytest.fixture(scope="module")
def anisotropic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One subject stored LAS with anisotropic voxels, as 1x1x1.2 mm scans are (here 3x3x3.6 mm)."""
    spec = replace(SPEC, n_subjects=1, t1w_voxel=(3.0, 3.0, 3.6), orientations=("LAS",), seed=9)
    return generate_cohort(tmp_path_factory.mktemp("anisotropic"), spec)


@pytest.fixture(scope="module")
def whole_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole head (neck, face and orbits, dura and sinuses, skull-base marrow, a head coil's receive
    profile) prescribed obliquely."""
    spec = CohortSpec(
        n_subjects=1,
        n_sessions=1,
        resolution=3.0,
        modalities=("T1w",),
        seed=31,
        orientations=("oblique",),
        head="whole",
        coil=0.3,
    )
    return generate_cohort(tmp_path_factory.mktemp("whole"), spec)


def _truth(root: Path, sub: str, name: str) -> np.ndarray:
    path = root / f"sourcedata/ground_truth/sub-{sub}/ses-01/sub-{sub}_ses-01_space-T1w_{name}.nii.gz"
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)


def _run(root: Path, sub: str) -> tuple[Structural, np.ndarray]:
    anat = root / f"sub-{sub}/ses-01/anat"
    t1w = load_t1w(anat / f"sub-{sub}_ses-01_T1w.nii.gz")
    lesion_path = (
        root / f"derivatives/lesions/sub-{sub}/ses-01/anat/sub-{sub}_ses-01_space-T1w_label-lesion_mask.nii.gz"
    )
    lesion = load_lesion_mask(lesion_path, t1w)
    return preprocess(t1w, lesion), lesion


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def _check_against_truth(root: Path, sub: str, vscale_rel: float = 0.03) -> None:
    result, lesion = _run(root, sub)
    truth_brain = _truth(root, sub, "desc-brain_mask") > 0
    assert _dice(result.brain, truth_brain) >= 0.97
    pv = {t: _truth(root, sub, f"label-{t}_probseg") for t in ("CSF", "GM", "WM")}
    voxel_ml = (
        np.prod(nib.load(str(root / f"sub-{sub}/ses-01/anat/sub-{sub}_ses-01_T1w.nii.gz")).header.get_zooms()) / 1000
    )
    true_brain_ml = (pv["GM"] + pv["WM"]).sum() * voxel_ml
    assert abs(result.volumes["brain_volume_ml"] / true_brain_ml - 1) <= 0.05  # 1.5 % at 1 mm (benchmark)
    hard = np.argmax(np.stack([pv["CSF"], pv["GM"], pv["WM"]]), axis=0) + 1
    for label in (2, 3):  # GM, WM
        assert _dice(result.dseg == label, (hard == label) & truth_brain) >= 0.90
    assert np.all(result.dseg[lesion] == 3)  # lesions filled as WM
    assert np.all(result.fractions["wm"][lesion] == 1.0)
    sessions = pd.read_csv(root / "sourcedata/ground_truth/sessions.tsv", sep="\t")
    head_scale = sessions.set_index("participant_id").loc[f"sub-{sub}", "head_scale"]
    assert result.volumes["vscale"] == pytest.approx(head_scale**-3, rel=vscale_rel)


@pytest.mark.slow
def test_brain_extraction_segmentation_and_volumes_ras(cohort: Path) -> None:
    _check_against_truth(cohort, "01")


@pytest.mark.slow
def test_brain_extraction_segmentation_and_volumes_las(cohort: Path) -> None:
    _check_against_truth(cohort, "02")


@pytest.mark.slow
def test_anisotropic_las_voxels(anisotropic: Path) -> None:
    img = nib.load(str(anisotropic / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"))
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
    assert img.header.get_zooms() == pytest.approx((3.0, 3.0, 3.6))
    # 3.6 mm slices: the skull-based ICV runs about 10 % small on this head, so vscale is 3.6 % high
    # (the robust ICV on real heads is issue 18's)
    _check_against_truth(anisotropic, "01", vscale_rel=0.05)


@pytest.mark.slow
def test_whole_head_brain_mask_and_volume(whole_head: Path) -> None:
    """On an oblique head with neck, face, dura and sinuses the mask keeps to the brain (no leak into the
    neck, the orbits, the sinuses or the cord), the brain volume holds and so do the intracranial volume
    and vscale (deepbet: benchmarks/structural.py)."""
    t1w_path = whole_head / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"
    result = preprocess(load_t1w(t1w_path))
    truth = _truth(whole_head, "01", "desc-brain_mask") > 0
    assert _dice(result.brain, truth) >= 0.97
    pv = {t: _truth(whole_head, "01", f"label-{t}_probseg") for t in ("GM", "WM")}
    voxel_ml = np.prod(nib.load(str(t1w_path)).header.get_zooms()) / 1000
    assert abs(result.volumes["brain_volume_ml"] / ((pv["GM"] + pv["WM"]).sum() * voxel_ml) - 1) <= 0.03
    # nothing of the mask lies more than a voxel from the brain (neck, eyes, sinuses, cord)
    assert (result.brain & ~ndimage.binary_dilation(truth)).sum() * voxel_ml <= 20.0
    # the ICV stops at the skull, not in the orbits, the sinuses or the neck (it read 21 % high, vscale 17 %
    # low, before the template constraint; at 3 mm the dark layer takes in some bone: +6 %, 1 mm: +0.2 %),
    # so vscale maps it onto the template's intracranial volume
    true_icv = pd.read_csv(whole_head / "sourcedata/ground_truth/volumes.tsv", sep="\t").icv_ml.iloc[0]
    assert result.volumes["icv_volume_ml"] == pytest.approx(true_icv, rel=0.08)
    template_icv_ml = template.array("icv").sum() / 1000  # 1 mm grid
    assert result.volumes["vscale"] == pytest.approx(template_icv_ml / true_icv, rel=0.07)


@pytest.fixture(scope="module")
def colin27(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Colin27, a real 1 mm head (skull, scalp, face, top of the neck; Debian's mricron-data) at 3 mm, and
    BET's brain mask of it on that grid. ``MSQMRI_REQUIRE_REAL_HEAD=1`` (set by .ci/run) makes a missing
    package a failure."""
    folder = colin27_dir()
    if folder is None:
        if os.environ.get("MSQMRI_REQUIRE_REAL_HEAD") == "1":
            pytest.fail("MSQMRI_REQUIRE_REAL_HEAD=1 but no Colin27 (apt-get install mricron-data, as .ci/run does)")
        pytest.skip("Colin27 needs Debian's mricron-data")
    out = tmp_path_factory.mktemp("colin27")
    path, references = scan_colin27(folder, coarser(CLINICAL_SCANS["as-shipped"], 3.0), out / "sub-colin_T1w.nii.gz")
    return path, references["bet"]


def test_real_head_mask_against_bet_and_its_whole_head_qc_figure(
    colin27: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """On a real head (not the template's anatomy) the mask agrees with BET's, made independently, and
    nothing of it lies beyond BET's (neck, face, dura, sinuses); the session report's first mosaic shows the
    mask over the whole head for a user to check, as this test leaves it in its directory."""
    t1w_path, bet = colin27
    outputs = {
        key: str(tmp_path / name.format(sesdir=".", stem="sub-colin")) for key, name in layout.STRUCTURAL.items()
    }
    run_structural({"t1w": str(t1w_path)}, outputs, {"participant_id": "sub-colin", "session_id": None})
    img = nib.load(str(t1w_path))
    brain = np.asarray(nib.load(outputs["brain_mask"]).dataobj) > 0
    voxel_ml = float(np.prod(img.header.get_zooms())) / 1000
    # BET's mask takes in the subarachnoid CSF (measured: Dice 0.952, the GM + WM mask 6.5 % smaller; at
    # 1 mm 0.967 and 2.8 %, benchmarks/structural.py), and 2 ml of ours lies beyond a voxel of it
    assert _dice(brain, bet) >= 0.94
    assert 0.88 <= brain.sum() / bet.sum() <= 1.0
    assert (brain & ~ndimage.binary_dilation(bet)).sum() * voxel_ml <= 10.0
    lesions = tmp_path / "lesions.nii.gz"
    save_array(np.zeros(img.shape, np.uint8), img.affine, str(lesions), np.uint8)
    files = {
        "t1w": outputs["preproc"],
        "brain_mask": outputs["brain_mask"],
        "dseg": outputs["dseg"],
        "lesions": str(lesions),
        "from_template": outputs["from_template"],
    }
    first = session_figures(files, "sub-colin")[0]
    assert "over the whole field of view" in first
    png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", first).group(1))
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    (tmp_path / "colin27_brain_mask.png").write_bytes(png)


def _write(tmp_path: Path, data: np.ndarray, name: str = "t1w.nii.gz") -> Path:
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
    return path


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("5d", "expected a 3D or 4D image"),
        ("nan", "NaN or Inf"),
        ("empty", "image is empty"),
        ("truncated", "truncated or corrupt"),
        ("zeros_negative", "no positive signal"),
    ],
)
def test_bad_t1w_is_a_one_line_error_naming_the_file(tmp_path: Path, case: str, reason: str) -> None:
    rng = np.random.default_rng(0)
    good = rng.uniform(1, 100, (12, 12, 12)).astype(np.float32)
    if case == "5d":
        path = _write(tmp_path, np.stack([good, good], -1)[..., None].repeat(2, -1))
    elif case == "nan":
        good[3, 3, 3] = np.nan
        path = _write(tmp_path, good)
    elif case == "empty":
        path = _write(tmp_path, np.zeros_like(good))
    elif case == "zeros_negative":
        path = _write(tmp_path, -good)
    else:
        full = _write(tmp_path, good, "full.nii.gz").read_bytes()
        path = tmp_path / "t1w.nii.gz"
        path.write_bytes(full[: len(full) // 2])
        assert gzip.decompress(full)  # the untruncated file was valid
    with pytest.raises(MsqmriInputError) as info:
        load_t1w(path)
    message = str(info.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


def test_a_4d_t1w_of_repeats_is_realigned_and_averaged(cohort: Path, tmp_path: Path) -> None:
    """A T1w stored as two repeats, the second with the head turned 4 degrees and moved 3 mm: the average is the
    head in the first repeat's position (its plain mean would blur it), with the noise averaged down."""
    img = nib.load(cohort / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz")
    head = np.asarray(img.dataobj, np.float32)
    angle = np.radians(4.0)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    centre = (np.array(head.shape) - 1) / 2
    moved = ndimage.affine_transform(head, turn, centre - turn @ centre + [1.0, 0, 0], order=1)
    rng = np.random.default_rng(0)
    noise = 0.03 * float(np.percentile(head, 99))
    repeats = np.stack([head + rng.normal(0, noise, head.shape), moved + rng.normal(0, noise, head.shape)], -1)
    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(repeats.astype(np.float32), img.affine), path)
    inside = ndimage.binary_erosion(head > 0.1 * head.max(), iterations=3)
    error = {
        name: float(np.sqrt(np.mean((volume[inside] - head[inside]) ** 2)))
        for name, volume in (
            ("averaged", load_t1w(path).numpy()),
            ("plain mean", repeats.mean(-1)),
            ("one repeat", repeats[..., 0]),
        )
    }
    assert error["averaged"] < 0.5 * error["plain mean"], error
    assert error["averaged"] < 0.9 * error["one repeat"], error


@pytest.mark.slow
def test_deepbet_backend_or_clear_error(cohort: Path) -> None:
    """The CNN backend (optional extra) gives a brain mask, or a one-line error saying how to install it;
    ``MSQMRI_REQUIRE_DEEPBET=1`` (set by .ci/run, which installs it) makes a missing deepbet a failure."""
    t1w_path = cohort / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"
    t1w = load_t1w(t1w_path)
    try:
        import deepbet  # noqa: F401
    except ImportError:
        if os.environ.get("MSQMRI_REQUIRE_DEEPBET") == "1":
            pytest.fail("MSQMRI_REQUIRE_DEEPBET=1 but deepbet is not installed (pip install msqmri[cnn])")
        with pytest.raises(MsqmriError, match=r"pip install msqmri\[cnn\]"):
            preprocess(t1w, backend="deepbet", t1w_path=t1w_path)
        return
    result = preprocess(t1w, backend="deepbet", t1w_path=t1w_path)
    # the CNN's mask trimmed to the GM + WM tissue inside it (its own takes in the subarachnoid CSF)
    assert _dice(result.brain, _truth(cohort, "01", "desc-brain_mask") > 0) >= 0.97


def test_volumes_count_brain_tissue_in_the_mask_and_its_partial_volume_shell_only() -> None:
    """A dura-like sheet (read as half GM) two voxels outside the brain adds nothing to GM; the brain's own
    partial-volume edge voxel (just outside the mask) and all CSF inside the ICV still count."""
    shape = (12, 12, 12)
    brain = np.zeros(shape, bool)
    brain[3:7, 3:9, 3:9] = True
    icv = np.zeros(shape, bool)
    icv[1:11, 1:11, 1:11] = True
    gm = brain * 0.8
    gm[7, 3:9, 3:9] = 0.3  # the edge: partial volume
    gm[9, 3:9, 3:9] = 0.56  # dura beyond a CSF gap
    csf = np.where(icv & ~brain, 0.4, 0.0)
    kept = measured_fractions({"gm": gm, "wm": np.zeros(shape), "csf": csf}, brain, icv)
    assert kept["gm"].sum() == pytest.approx(0.8 * brain.sum() + 0.3 * 36, rel=1e-6)
    assert kept["csf"].sum() == pytest.approx(csf.sum(), rel=1e-6)


def test_an_extracted_mask_keeps_its_brain_tissue_with_the_ventricles() -> None:
    """A CNN-like mask that takes in a CSF rim and a bright blob of extracranial tissue beside the brain:
    what is kept is the block of GM + WM inside it, its ventricle filled, the blob and the rim dropped."""
    from msqmri.anat.brain_extraction import brain_tissue_within

    shape = (20, 20, 20)
    tissue = np.zeros(shape, bool)
    tissue[4:14, 4:14, 4:14] = True
    tissue[8:10, 8:10, 8:10] = False  # a ventricle
    tissue[16:19, 16:19, 16:19] = True  # bright tissue outside the brain, apart from it
    fractions = {"gm": tissue * 0.6, "wm": tissue * 0.3, "csf": (~tissue) * 1.0}
    extracted = np.zeros(shape, bool)
    extracted[2:19, 2:19, 2:19] = True  # the brain with a two-voxel CSF rim, and the blob
    brain = brain_tissue_within(extracted, fractions)
    expected = np.zeros(shape, bool)
    expected[4:14, 4:14, 4:14] = True
    np.testing.assert_array_equal(brain, expected)
    with pytest.raises(MsqmriError, match="holds no grey or white matter"):
        brain_tissue_within(extracted & ~tissue, fractions)  # a mask off the brain
    # tissue outside the extracted mask is not added
    assert not brain_tissue_within(extracted & (np.indices(shape)[0] < 10), fractions)[12:, :, :].any()


def test_the_intracranial_mask_stops_where_the_template_has_no_intracranial_space() -> None:
    """A brain (WM-bright) in a 2 mm CSF rim and a dark bone shell, a marrow layer outside, and a dark
    orbit-like blob reached through the bone: the ICV takes the rim and stops at the inner table, and takes the
    blob only when the template's intracranial mask reaches it."""
    from msqmri.anat.skull import intracranial_mask

    grid = np.indices((48, 48, 48)).astype(float)
    radius = np.sqrt(((grid - 24.0) ** 2).sum(0))
    data = np.select([radius <= 12, radius <= 14, radius <= 16, radius <= 19], [1.0, 0.12, 0.03, 0.45], 0.95)
    blob = np.sqrt(((grid - np.array([24.0, 24.0, 40.0])[:, None, None, None]) ** 2).sum(0)) <= 4.5
    data[blob] = 0.1  # vitreous-like, joined to the bone shell
    brain, head = radius <= 12, np.ones(data.shape, bool)
    icv = intracranial_mask(data, brain, head, (1.0, 1.0, 1.0), template_icv=radius <= 12, csf_level=0.12)
    assert icv[radius <= 14].all() and not icv[(radius > 14.5) & ~blob].any() and not icv[radius > 17].any()
    everywhere = intracranial_mask(data, brain, head, (1.0, 1.0, 1.0), template_icv=head, csf_level=0.12)
    assert everywhere[blob].all()
    # a template that does not hold the brain (half of it outside) is a failure that names the volumes, not an
    # ICV of the brain alone
    shifted = np.roll(radius <= 14, 13, axis=0)
    with pytest.raises(IntracranialFailure, match=r"brain mask 0\.01 L, \d+% of it beyond the registered template"):
        intracranial_mask(data, brain, head, (1.0, 1.0, 1.0), template_icv=shifted, csf_level=0.12)


def test_the_head_is_cut_below_its_top_along_the_world_superior_axis() -> None:
    """FSL robustfov's crop, in world coordinates: on a grid stored upside down (S -> I) and on an oblique one,
    what lies more than the given distance below the top of the head is left out."""
    from msqmri.anat.brain_extraction import below_top

    head = np.zeros((20, 20, 60), bool)
    head[5:15, 5:15, 10:50] = True  # 40 voxels tall, top at index 49
    upright = np.diag([2.0, 2.0, 2.0, 1.0])
    kept = below_top(head, upright, 30.0)  # 2 mm voxels: 15 slices below the top slice and the top slice
    assert kept[..., 34:].all() and not kept[..., :34].any()
    flipped = np.diag([2.0, 2.0, -2.0, 1.0])  # voxel index k goes down: the top of the head is index 10
    kept = below_top(head, flipped, 30.0)
    assert kept[..., :26].all() and not kept[..., 26:].any()
    tilt = np.deg2rad(20.0)
    oblique = np.eye(4)
    oblique[1:3, 1:3] = [[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]]
    kept = below_top(head, oblique, 20.0)
    height = np.indices(head.shape)[1] * np.sin(tilt) + np.indices(head.shape)[2] * np.cos(tilt)
    assert np.array_equal(kept, height >= height[head].max() - 20.0)


def test_a_template_registration_off_the_brain_is_reported_and_a_leaking_mask_is_cut_back() -> None:
    """The registration check asks how much of the registered template brain lies on the rough brain (a rough
    brain that leaks still holds all of it); the volume check cuts a mask that exceeds the template brain by
    more than 15 % to within 2 mm of it, and says so."""
    from msqmri.anat.brain_extraction import registration_failure, repaired

    grid = np.indices((40, 40, 40)).astype(float)
    radius = np.sqrt(((grid - 20.0) ** 2).sum(0))
    template_brain = radius <= 10
    leaking = (radius <= 10) | ((np.abs(grid[0] - 20) <= 4) & (np.abs(grid[1] - 20) <= 4) & (grid[2] < 20))
    assert registration_failure(template_brain, leaking) is None
    assert "only 6% of the registered template brain" in registration_failure(np.roll(template_brain, 16, 0), leaking)
    fixed, note = repaired(leaking, template_brain, (1.0, 1.0, 1.0))  # a cord-like leak of 22 %
    assert "22% beyond the registered template brain: cut to within 2 mm" in note
    assert fixed[template_brain].all() and radius[fixed].max() <= 12.0 and fixed.sum() < 1.05 * template_brain.sum()
    same, none = repaired(template_brain, template_brain, (1.0, 1.0, 1.0))
    assert none is None and np.array_equal(same, template_brain)
