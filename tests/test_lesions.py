"""Lesions, regions and their algorithms on known arrays: connected components and per-lesion measures,
local NAWM normalisation, the segmentation's rejection of the ventricle lining, location classes and black
holes, the pair's noise model and status bands, subtraction-based activity, mask-overlap activity and
persistent identities. (Detection from the images of the phantom is tested in test_lesion_detection.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from msqmri.lesions import (
    activity,
    components,
    location,
    longitudinal,
    normalization,
    regions,
    segmentation,
    stage,
    tracking,
)
from msqmri.workflow import layout

STEM = "sub-01_ses-01"


def test_components_are_26_connected_and_small_ones_dropped() -> None:
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[1, 1, 1] = mask[2, 2, 2] = True  # corner neighbours: one lesion
    mask[6:8, 6:8, 6:8] = True  # 8 voxels
    labels, n = components.label_lesions(mask)
    assert n == 2 and labels[1, 1, 1] == labels[2, 2, 2]
    # 1 x 1 x 2 mm voxels: the corner pair is 4 mm^3, the cube 16 mm^3
    kept = components.remove_small(mask, voxel_mm3=2.0, min_size_mm3=5.0)
    assert not kept[1, 1, 1] and kept[6:8, 6:8, 6:8].all()
    assert components.remove_small(mask, 2.0, 4.0)[1, 1, 1]
    assert not components.remove_small(np.zeros((4, 4, 4), bool), 1.0, 3.0).any()


def test_lesion_table_volume_centroid_and_means() -> None:
    affine = np.diag([-2.0, 2.0, 3.0, 1.0])  # LAS, anisotropic
    affine[:3, 3] = [50.0, -40.0, -30.0]
    labels = np.zeros((12, 12, 12), dtype=np.int32)
    labels[2:4, 2:4, 2:4] = 1
    labels[8:9, 5:8, 5:6] = 2
    mtr = np.full(labels.shape, 30.0)
    mtr[2, 2, 2] = 0.0  # no data in one voxel: left out of the mean
    mtr[3, 3, 3] = 37.0
    rows = components.lesion_table(labels, 2, affine, {"mtr": mtr})
    assert [r["lesion_id"] for r in rows] == [1, 2]
    assert rows[0]["volume_ml"] == pytest.approx(8 * 12 / 1000) and rows[1]["volume_ml"] == pytest.approx(3 * 12 / 1000)
    centre = affine @ [2.5, 2.5, 2.5, 1.0]
    assert (rows[0]["centroid_x"], rows[0]["centroid_y"], rows[0]["centroid_z"]) == pytest.approx(tuple(centre[:3]))
    assert rows[0]["mtr_mean"] == pytest.approx((6 * 30 + 37) / 7)
    assert components.lesion_table(np.zeros((3, 3, 3), np.int32), 0, affine, {"mtr": mtr}) == []


def test_partial_volume_lesion_volumes() -> None:
    """Spheres of 30-270 mm^3 at 1 mm (fractions by 4^3 supersampling) on a FLAIR with a 30 % bias
    field and noise: the FLAIR partial-volume sums are within 4 % of the true volumes, the >= 50 % mask
    counts are not better; no hyperintensity: no partial-volume estimate."""
    rng = np.random.default_rng(4)
    shape, sub = (48, 48, 24), 4
    fine = (np.indices((shape[0] * sub, shape[1] * sub, shape[2] * sub), dtype=np.float32) + 0.5) / sub
    fraction, truth = np.zeros(shape), []
    for centre, radius in (((10, 10, 12), 1.93), ((10, 30, 12), 2.6), ((30, 12, 12), 3.3), ((32, 34, 12), 4.0)):
        inside = ((fine - np.array(centre, np.float32)[:, None, None, None] - 0.2) ** 2).sum(0) < radius**2
        fraction += inside.reshape(shape[0], sub, shape[1], sub, shape[2], sub).mean(axis=(1, 3, 5))
        truth.append(4 / 3 * np.pi * radius**3)
    bias = 1.0 + 0.3 * np.linspace(-1, 1, shape[0])[:, None, None] * np.ones(shape)
    flair = bias * (500.0 * (1 - fraction) + 1000.0 * fraction) + rng.normal(0, 12.0, shape)
    labels, n = components.label_lesions(fraction >= 0.5)
    nawm = ~regions.dilate_mm(labels > 0, 2.0, (1.0, 1.0, 1.0))
    sizes = components.partial_volumes(flair, labels, n, nawm)
    binary = np.bincount(labels.ravel())[1:]
    pv_error, binary_error = np.abs(sizes / truth - 1), np.abs(binary / truth - 1)
    assert pv_error.max() <= 0.04, pv_error
    assert pv_error.mean() < binary_error.mean(), (pv_error, binary_error)
    rows = components.lesion_table(labels, n, np.eye(4), {}, sizes)
    assert [r["volume_ml"] for r in rows] == pytest.approx(list(sizes / 1000.0))
    assert components.partial_volumes(np.full(shape, 500.0), labels, n, nawm) is None


def test_region_masks_and_rows() -> None:
    shape = (30, 30, 30)
    brain = np.zeros(shape, dtype=bool)
    brain[2:28, 2:28, 2:28] = True
    dseg = np.where(brain, 3, 0)
    dseg[2:6] = 2  # a GM slab
    lesion = np.zeros(shape, dtype=bool)
    lesion[14:16, 14:16, 14:16] = True
    masks = regions.region_masks(brain, dseg, lesion, (1.0, 1.0, 1.0))
    assert masks["wm"][14, 14, 14] and not masks["gm"][14, 14, 14]
    assert masks["perilesional"][13, 14, 14] and masks["perilesional"][12, 14, 14]  # within 2 mm
    assert not masks["perilesional"][11, 14, 14] and masks["nawm"][11, 14, 14]
    assert not (masks["nawm"] & masks["perilesional"]).any() and not (masks["nawm"] & masks["lesion"]).any()
    fa = np.where(brain, 0.5, 0.0)
    fa[lesion] = 0.3
    rows = {(r["region"], r["metric"]): r for r in regions.region_rows(masks, {"fa": fa}, 0.001)}
    assert rows[("lesion", "fa")]["mean"] == pytest.approx(0.3) and rows[("lesion", "fa")]["n_voxels"] == 8
    assert rows[("nawm", "fa")]["std"] == pytest.approx(0.0) and rows[("gm", "fa")]["volume_ml"] == pytest.approx(
        4 * 26 * 26 / 1000
    )
    empty = regions.region_masks(brain, dseg, np.zeros(shape, bool), (1.0, 1.0, 1.0))
    assert (empty["nawm"] == empty["wm"]).all() and not empty["perilesional"].any()
    none = {(r["region"], r["metric"]): r for r in regions.region_rows(empty, {"fa": fa}, 0.001)}
    assert none[("lesion", "fa")]["n_voxels"] == 0 and none[("lesion", "fa")]["mean"] is None


def test_mask_overlap_activity() -> None:
    """Without FLAIRs, overlap clusters on hand-made label maps: new, enlarging, shrinking, resolved,
    stable, and a lesion that split in two counted once."""
    before, after = np.zeros((40, 12, 12), np.int32), np.zeros((40, 12, 12), np.int32)
    before[2:4, 2:4, 2:4] = 1  # stable
    after[2:4, 2:4, 2:5] = 1  # +50 % exactly: still stable
    before[8:10, 2:4, 2:4] = 2  # enlarging
    after[8:12, 2:5, 2:4] = 2
    before[16:20, 2:6, 2:4] = 3  # shrinking
    after[16:18, 2:4, 2:4] = 3
    before[24:26, 2:4, 2:4] = 4  # resolved
    after[30:32, 2:4, 2:4] = 4  # new
    before[34:38, 2:4, 2:4] = 5  # splits into two stable pieces
    after[34:36, 2:4, 2:4], after[36:38, 2:4, 2:4] = 5, 6
    changes, core = activity.match(before, after, 0.001)
    assert activity.counts(changes) == pytest.approx(
        {"n_new": 1, "n_enlarging": 1, "n_shrinking": 1, "n_resolved": 1, "n_stable": 2, "new_volume_ml": 0.008}
    )
    split = [c for c in changes if len(c.to_ids) == 2]
    assert len(split) == 1 and split[0].status == "stable" and split[0].from_ids == (5,)
    new = next(c for c in changes if c.status == "new")
    assert core[31, 2, 2] == new.cluster_id and core[0, 0, 0] == 0
    assert activity.counts(activity.match(before * 0, after * 0, 0.001)[0])["n_new"] == 0


def test_mtr_change_threshold_and_fractions() -> None:
    rng = np.random.default_rng(3)
    change = rng.normal(0.0, 1.5, (40, 40, 40))
    nawm = np.zeros(change.shape, bool)
    nawm[:20] = True
    threshold = activity.mtr_change_threshold(change, nawm)
    assert threshold == pytest.approx(1.96 * 1.5, rel=0.05)
    lesion = np.zeros(change.shape, bool)
    lesion[30:34, 30:34, 30:34] = True
    change[lesion] = -10.0  # demyelinating lesion
    assert activity.mtr_change_fractions(change, lesion, threshold) == (1.0, 0.0)


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4) if affine is None else affine), str(path))
    return str(path)


@pytest.mark.parametrize("interval_days", [400.0, 100.0])
def test_black_holes_and_mtr_change_in_the_activity_stage(tmp_path: Path, interval_days: float) -> None:
    """Three stable lesions on known arrays through the stage (no FLAIR: the maps compared by overlap): A a
    black hole in both sessions' lesion tables (chronic when >= 6 months apart), B in one only, C
    demyelinating (MTR down 8 pu in half its voxels); NAWM MTR scan-rescan noise 1 pu per session, so the
    threshold is 1.96 sqrt(2) pu."""
    rng = np.random.default_rng(5)
    shape = (40, 40, 40)
    dseg = np.full(shape, regions.WM_LABEL, np.int16)
    dseg[:, :, 32:] = regions.GM_LABEL
    labels = np.zeros(shape, np.int16)
    for k, box in enumerate((np.s_[6:10, 6:10, 6:10], np.s_[6:10, 20:24, 6:10], np.s_[18:24, 18:24, 14:20]), start=1):
        labels[box] = k
    inputs = {"transform": str(tmp_path / "t.json"), "grid": _save(tmp_path / "grid.nii.gz", np.zeros(shape))}
    Path(inputs["transform"]).write_text(
        json.dumps({"halfway_to_from": np.eye(4).tolist(), "halfway_to_to": np.eye(4).tolist()})
    )
    demyelinated = np.zeros(shape, bool)
    demyelinated[18:24, 18:24, 14:17] = True
    for side, holes in (("from", [True, True, False]), ("to", [True, False, False])):
        mtr = 40.0 + rng.normal(0, 1.0, shape) - 8.0 * (demyelinated & (side == "to"))
        inputs |= {
            f"{side}_labels": _save(tmp_path / f"{side}_labels.nii.gz", labels),
            f"{side}_dseg": _save(tmp_path / f"{side}_dseg.nii.gz", dseg),
            f"{side}_mtr": _save(tmp_path / f"{side}_mtr.nii.gz", mtr),
            f"{side}_lesions": str(tmp_path / f"{side}_lesions.tsv"),
        }
        pd.DataFrame({"lesion_id": [1, 2, 3], "black_hole": holes}).to_csv(
            inputs[f"{side}_lesions"], sep="\t", index=False
        )
    outs = {
        k: str(tmp_path / v.format(subject="sub-01", pair="sub-01_ses-01to02"))
        for k, v in layout.LESION_ACTIVITY.items()
    }
    ids = {"participant_id": "sub-01", "session_from": "ses-01", "session_to": "ses-02", "interval_days": interval_days}
    stage.lesion_activity(inputs, outs, ids)
    rows = pd.read_csv(outs["changes"], sep="\t").set_index("lesion_id")
    assert list(rows.columns) == list(stage.CHANGE_COLUMNS[:3] + stage.CHANGE_COLUMNS[4:])
    assert (
        list(rows["status"]) == ["stable"] * 3
        and json.loads(Path(outs["counts"]).read_text())["Method"] == "mask overlap"
    )
    assert rows["mtr_change_threshold_pu"].iloc[0] == pytest.approx(1.96 * np.sqrt(2.0), rel=0.1)
    assert list(rows["volume_from_ml"]) == pytest.approx([0.064, 0.064, 0.216])  # clusters in scan order: a, b, c
    assert list(rows["from_lesions"].astype(str)) == ["1", "2", "3"]
    by_box = dict(zip("abc", (rows.loc[k] for k in (1, 2, 3)), strict=True))
    assert by_box["c"]["mtr_decrease_fraction"] == pytest.approx(0.5, abs=0.08)
    assert by_box["a"]["mtr_decrease_fraction"] < 0.1 and by_box["c"]["mtr_increase_fraction"] < 0.1
    assert bool(by_box["a"]["black_hole"]) is (interval_days >= tracking.CHRONIC_DAYS)
    assert not by_box["b"]["black_hole"] and not by_box["c"]["black_hole"]


def test_local_nawm_level_follows_a_bias_field_not_a_lesion() -> None:
    """A WM-like image with a +-30 % smooth field and a large bright 'confluent lesion': the local level
    follows the field within 2 %, and the lesion block does not raise it (the median of each block's 3x3x3
    neighbourhood); the normalised image is 1 in WM and keeps the lesion at its own contrast."""
    rng = np.random.default_rng(1)
    shape = (80, 80, 60)
    x = np.linspace(-1, 1, shape[0])[:, None, None]
    field = np.exp(np.log(1.3) * x * np.ones(shape))
    lesion = np.zeros(shape, bool)
    lesion[30:46, 30:46, 20:36] = True  # 16 mm cube at 1 mm: more than one 12 mm block
    image = field * np.where(lesion, 1.8, 1.0) * (1 + rng.normal(0, 0.02, shape))
    reference = np.ones(shape, bool)
    normalised, level = normalization.normalise(image, reference, (1.0, 1.0, 1.0))
    inside = (slice(8, -8),) * 3
    assert np.abs(level[inside] / field[inside] - 1).max() < 0.02
    assert np.median(normalised[~lesion]) == pytest.approx(1.0, abs=0.01)
    assert np.median(normalised[lesion]) == pytest.approx(1.8, rel=0.02)
    with pytest.raises(ValueError, match="no white matter"):
        normalization.local_level(image, np.zeros(shape, bool), (1.0, 1.0, 1.0))


def test_segmentation_keeps_a_periventricular_lesion_and_rejects_the_lining() -> None:
    """1 mm: a bright two-voxel rim one to two voxels off a ventricle's wall (the partial volume of a bright
    ependyma, 1.3 x NAWM) is rejected as a lining, although only half of it touches the ventricle; a 3 mm
    radius lesion (1.8 x NAWM) against the other wall is kept whole."""
    rng = np.random.default_rng(3)
    shape = (40, 40, 40)
    ventricle = np.zeros(shape, dtype=bool)
    ventricle[15:25, 10:30, 15:25] = True
    grid = np.indices(shape)
    lesion = ((grid - np.array([11.0, 20.0, 20.0])[:, None, None, None]) ** 2).sum(axis=0) <= 9.0
    rim = np.zeros(shape, dtype=bool)
    rim[25:27, 12:28, 16:24] = True
    flair = np.where(ventricle, 0.3, 1.0) + rng.normal(0.0, 0.02, shape)
    flair[rim], flair[lesion] = 1.3, 1.8
    t1w = np.where(ventricle, 0.3, np.where(lesion, 0.7, 1.0)) + rng.normal(0.0, 0.02, shape)
    brain = np.zeros(shape, dtype=bool)
    brain[2:-2, 2:-2, 2:-2] = True
    csf, wm = ventricle.astype(np.float32), (brain & ~ventricle).astype(np.float32)
    zero = np.zeros(shape, dtype=np.float32)
    tissues = segmentation.Tissues(
        brain=brain,
        fractions={"csf": csf, "gm": zero, "wm": wm},
        priors={"csf": csf, "gm": zero, "wm": wm},
        ventricles=csf,
        septum=zero,
        t1w=t1w.astype(np.float32),
        voxel_size=(1.0, 1.0, 1.0),
    )
    result = segmentation.segment(flair, tissues, min_size_mm3=3.0)
    _, n = components.label_lesions(result.mask)
    assert n == 1 and not (result.mask & rim).any(), result.rejected
    assert (result.mask & lesion).sum() >= 0.9 * lesion.sum() and (result.mask & ~lesion).sum() <= 0.2 * lesion.sum()
    assert result.rejected["ventricle_lining"] >= 1


def test_location_classes_and_black_holes() -> None:
    """Hand-made masks: a lesion below the tentorium (brainstem), one abutting a ventricle through a
    partial-volume voxel, one abutting cortex, one in deep WM; the T1w level of a lesion corrected for
    partial volume: a lesion darker than cortex only after the correction is a black hole."""
    shape, voxel = (60, 40, 40), (1.0, 1.0, 1.0)
    labels = np.zeros(shape, np.int32)
    labels[5:9, 5:9, 5:9] = 1  # below the tentorium
    labels[20:24, 10:14, 10:14] = 2  # 2 mm from the ventricle (x 26-29): one voxel of partial volume between
    labels[35:39, 10:14, 10:14] = 3  # touching cortex at x 39
    labels[50:54, 20:24, 20:24] = 4  # deep
    infratentorial = np.zeros(shape, np.float32)
    infratentorial[:12] = 1.0
    brainstem = infratentorial.copy()
    ventricles = np.zeros(shape, bool)
    ventricles[25:29, 8:16, 8:16] = True
    cortex = np.zeros(shape, bool)
    cortex[39:42, 8:16, 8:16] = True
    classes, parts = location.classify(labels, 4, infratentorial, brainstem, ventricles, cortex, voxel)
    assert classes == ["infratentorial", "periventricular", "juxtacortical", "deep_wm"]
    assert parts == ["brainstem", None, None, None]
    ventricles[25] = False  # a full voxel of WM between: no longer abutting
    assert location.classify(labels, 4, infratentorial, brainstem, ventricles, cortex, voxel)[0][1] == "deep_wm"
    # two lesions of T1w 0.45 (WM = 1, cortex 0.62), the second seen through 50 % partial volume everywhere
    fraction = np.where(labels > 0, 1.0, 0.0)
    fraction[labels == 2] = 0.5
    t1w = np.where(labels > 0, 1.0 - fraction * 0.55, 1.0)
    levels = location.lesion_t1w(t1w, labels, 4, fraction)
    assert levels == pytest.approx([0.45] * 4)
    assert np.median(t1w[labels == 2]) > 0.62  # the uncorrected lesion looks brighter than cortex
    assert list(location.black_holes(levels, 0.62)) == [True] * 4
    assert not location.black_holes(location.lesion_t1w(np.where(labels > 0, 0.78, 1.0), labels, 4, None), 0.62).any()
    assert np.isnan(location.lesion_t1w(t1w, labels, 5, fraction)[4])  # no such lesion: no level


def test_subtraction_noise_model() -> None:
    """White noise has correlation 1; noise smoothed by a 2x2x2 box has sums of 8 voxels with 8x the
    variance of white noise of the same SD: the model's SD of a sum follows."""
    rng = np.random.default_rng(2)
    shape = (60, 60, 60)
    white = rng.normal(0, 0.03, shape)
    everywhere = np.ones(shape, bool)
    noise = longitudinal.noise_model(white, everywhere)
    assert noise.sd == pytest.approx(0.03, rel=0.05) and noise.correlation == pytest.approx(1.0, abs=0.1)
    smooth = ndimage.uniform_filter(rng.normal(0, 1, shape), 2)
    smooth *= 0.03 / smooth.std()
    model = longitudinal.noise_model(smooth, everywhere)
    sums = smooth[:48, :48, :48].reshape(12, 4, 12, 4, 12, 4).sum(axis=(1, 3, 5)).ravel()  # 64-voxel blocks
    assert model.sum_sd(64) == pytest.approx(sums.std(), rel=0.3)
    with pytest.raises(ValueError):
        longitudinal.noise_model(white, np.zeros(shape, bool))


def test_status_bands() -> None:
    """The status of a cluster from its volumes (mm^3): beyond the noise and beyond the size band (Goodkin
    1992: 50 % under 400 mm^3, 25 % above), with a region of significant change."""
    assert longitudinal.relative_band(100.0) == 0.5 and longitudinal.relative_band(1000.0) == 0.25
    common = {"change_sd": 2.0, "min_size": 3.0}
    assert (
        longitudinal.classify(0.0, 40.0, has_from=False, has_to=True, increased=True, decreased=False, **common)
        == "new"
    )
    assert (
        longitudinal.classify(30.0, 40.0, has_from=False, has_to=True, increased=True, decreased=False, **common)
        == "stable"
    )
    assert (
        longitudinal.classify(100.0, 160.0, has_from=True, has_to=True, increased=True, decreased=False, **common)
        == "enlarging"
    )
    assert (
        longitudinal.classify(100.0, 140.0, has_from=True, has_to=True, increased=True, decreased=False, **common)
        == "stable"
    )
    assert (
        longitudinal.classify(1000.0, 1300.0, has_from=True, has_to=True, increased=True, decreased=False, **common)
        == "enlarging"
    )
    assert (
        longitudinal.classify(100.0, 160.0, has_from=True, has_to=True, increased=False, decreased=False, **common)
        == "stable"
    )
    noisy = {"change_sd": 30.0, "min_size": 3.0}  # +60 mm^3 is within 3 noise SDs
    assert (
        longitudinal.classify(100.0, 160.0, has_from=True, has_to=True, increased=True, decreased=False, **noisy)
        == "stable"
    )
    assert (
        longitudinal.classify(100.0, 50.0, has_from=True, has_to=True, increased=False, decreased=True, **common)
        == "shrinking"
    )
    assert (
        longitudinal.classify(100.0, 10.0, has_from=True, has_to=False, increased=False, decreased=True, **common)
        == "resolved"
    )


def test_subtraction_activity_on_a_synthetic_pair() -> None:
    """Normalised FLAIRs (NAWM 1, lesions 1.8, noise 0.02) of a pair: a stable lesion, one that doubles,
    a new one, one the earlier segmentation missed though both images show it, and one that resolves;
    the later image is shifted by 0.3 voxel (residual misregistration)."""
    rng = np.random.default_rng(4)
    shape = (70, 40, 40)
    grid = np.indices(shape).astype(float)

    def ball(centre: tuple[float, ...], radius: float, shift: float = 0.0) -> np.ndarray:
        d = np.sqrt(
            ((grid - np.array(centre)[:, None, None, None] - np.array([shift, 0, 0])[:, None, None, None]) ** 2).sum(0)
        )
        return np.clip(radius - d + 0.5, 0.0, 1.0)

    spheres = {
        "stable": ((10, 20, 20), 3.0, 3.0),
        "enlarging": ((22, 20, 20), 2.5, 3.6),
        "new": ((34, 20, 20), 0.0, 3.0),
        "missed": ((46, 20, 20), 3.0, 3.0),
        "resolved": ((58, 20, 20), 3.0, 0.0),
    }
    images, masks = {}, {}
    for side, shift in (("from", 0.0), ("to", 0.3)):
        fraction = sum(
            ball(c, r_from if side == "from" else r_to, shift) * ((r_from if side == "from" else r_to) > 0)
            for c, r_from, r_to in spheres.values()
        )
        images[side] = 1.0 + 0.8 * fraction + rng.normal(0, 0.02, shape)
        masks[side] = fraction >= 0.5
    masks["from"][40:52] = False  # the earlier segmentation missed the fourth lesion
    labels = {side: components.label_lesions(m)[0] for side, m in masks.items()}
    nawm = ~ndimage.binary_dilation(masks["from"] | masks["to"] | (images["to"] > 1.3), iterations=3)
    changes, core, noise = longitudinal.detect(
        images["from"], images["to"], labels["from"], labels["to"], nawm, np.zeros(shape, bool), (1.0, 1.0, 1.0), 3.0
    )
    by_x = {int(np.argwhere(core == c.cluster_id)[:, 0].mean() // 12): c for c in changes}
    assert [by_x[k].status for k in range(5)] == ["stable", "enlarging", "new", "stable", "resolved"]
    assert noise.sd == pytest.approx(0.02 * np.sqrt(2), rel=0.1)
    stable, grown = by_x[0], by_x[1]
    assert stable.volume_to_ml == pytest.approx(stable.volume_from_ml, rel=0.1)
    assert grown.volume_to_ml / grown.volume_from_ml == pytest.approx((3.6 / 2.5) ** 3, rel=0.15)
    assert by_x[3].from_ids == () and by_x[3].volume_from_ml > 0.05  # present in both images


def test_persistent_identities() -> None:
    """Three sessions: lesion 1 stays, 2 and 3 merge, 4 splits, 5 resolves, a new one appears; the merged
    lesion keeps the older identity, the larger part of the split keeps its identity; chronic black holes
    need a black hole under the same identity 6 months earlier."""
    volumes = {
        "a": {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.3, 5: 0.1},
        "b": {1: 0.1, 2: 0.25, 3: 0.2, 4: 0.1},
        "c": {1: 0.1, 2: 0.25, 3: 0.2, 4: 0.1, 5: 0.05},
    }
    first = [
        tracking.PairCluster("stable", (1,), (1,)),
        tracking.PairCluster("stable", (2, 3), (2,)),
        tracking.PairCluster("stable", (4,), (3, 4)),
        tracking.PairCluster("resolved", (5,), ()),
    ]
    second = [tracking.PairCluster("stable", (k,), (k,)) for k in (1, 2, 3, 4)] + [
        tracking.PairCluster("new", (), (5,))
    ]
    ids = {(i.session, i.component): i for i in tracking.track(["a", "b", "c"], volumes, [first, second])}
    assert [ids["a", k].lesion_id for k in range(1, 6)] == [1, 2, 3, 4, 5]
    assert ids["b", 1].lesion_id == 1 and ids["b", 2].lesion_id == 2 and ids["b", 2].merged_from == (3,)
    assert ids["b", 3].lesion_id == 4 and ids["b", 4].lesion_id == 6 and ids["b", 4].split_from == 4
    assert [ids["c", k].lesion_id for k in range(1, 5)] == [1, 2, 4, 6]
    assert ids["c", 5].lesion_id == 7 and ids["c", 5].status == "new" and ids["a", 1].status == "baseline"
    holes = {("a", 1): True, ("b", 1): True, ("c", 1): True, ("b", 2): True, ("c", 2): True}
    chronic = tracking.chronic_black_holes(list(ids.values()), holes, {"a": 0.0, "b": 100.0, "c": 250.0})
    assert chronic["a", 1] is False and chronic["b", 1] is False and chronic["c", 1] is True
    assert chronic["c", 2] is False and chronic["c", 3] is False  # a black hole only since 150 days
    assert tracking.chronic_black_holes(list(ids.values()), holes, {"a": 0.0, "b": None, "c": 250.0})["c", 1] is None
