"""The lesion-mask and metrics stages of one session, and the lesion-activity stages of a session
pair, with I/O at the edges (algorithms in :mod:`msqmri.lesions`, :mod:`msqmri.regions` and
:mod:`msqmri.lesion_activity`).

The lesion mask on the T1w grid comes from the user's mask (derivatives/lesions, T1w or FLAIR space)
when there is one, else from the built-in FLAIR segmentation, else it is empty. The metrics stage
labels the lesions (26-connected components) and summarises FA, MD, MTR and R2* (whichever the
session has, all in T1w space) per region and per lesion; a lesion's volume is its partial-volume
sum from the FLAIR when the session has one (:func:`msqmri.lesions.partial_volumes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ants
import nibabel as nib
import numpy as np
import pandas as pd

from msqmri import lesion_activity as lesion_activity_method
from msqmri import lesions, regions, template
from msqmri.atrophy.halfway import Grid, resample
from msqmri.io import MsqmriInputError, load_json, load_nifti, save_array, save_json, save_tsv
from msqmri.registration import ants_image, resample_mask

Paths = Mapping[str, str]
#: the quantitative maps a session may have, in T1w space (input key -> table metric)
METRICS = ("fa", "md", "mtr", "r2star")
REGIONAL_COLUMNS = ("participant_id", "session_id", "region", "metric", "mean", "median", "std", "n_voxels", "volume_ml")
LESION_COLUMNS = ("participant_id", "session_id", "lesion_id", "volume_ml", "centroid_x", "centroid_y", "centroid_z",
                  *(f"{m}_mean" for m in METRICS))  # fmt: skip


def lesion_mask(inputs: Paths, outputs: Paths, min_size_mm3: float = lesions.MIN_SIZE_MM3) -> None:
    """The session's lesion mask on the T1w grid, with a sidecar saying where it came from."""
    t1w_img, _ = load_nifti(inputs["t1w"])
    _, brain = load_nifti(inputs["brain_mask"], allow_empty=True)
    brain = brain > 0
    like = ants_image(np.zeros(t1w_img.shape[:3], dtype=np.float32), t1w_img.affine)
    voxel_mm3 = abs(float(np.linalg.det(t1w_img.affine[:3, :3])))
    record: dict[str, Any]
    if "lesion" in inputs:
        mask = resample_mask(inputs["lesion"], like, inputs.get("lesion_transform")) & brain
        mask = lesions.remove_small(mask, voxel_mm3, min_size_mm3)
        record = {"Sources": [Path(inputs["lesion"]).name], "EstimationAlgorithm": "user lesion mask brought to T1w space"}
    elif "flair" in inputs:
        _, flair = load_nifti(inputs["flair"])
        _, gm = load_nifti(inputs["probseg_gm"], allow_empty=True)
        seg = lesions.segment_flair(flair, brain, wm_prior(inputs, like), gm, voxel_mm3, min_size_mm3)
        mask = seg.mask
        record = {
            "Sources": [Path(inputs["flair"]).name], "EstimationAlgorithm": "FLAIR hyperintensity outliers against "
            f"NAWM (> {lesions.K_WM:g} robust SD) and cortex (> {lesions.K_GM:g} robust SD) inside the WM prior, "
            "boundary half-way from NAWM to the lesion intensity",
            "NAWMMedian": seg.nawm_median, "NAWMRobustSD": seg.nawm_sd,
            "CandidateThreshold": seg.candidate_threshold, "BoundaryThreshold": seg.boundary_threshold,
        }  # fmt: skip
    else:
        mask = np.zeros(brain.shape, dtype=bool)
        record = {"Sources": [], "EstimationAlgorithm": "none: no lesion mask and no FLAIR, so no lesions"}
    _, n = lesions.label_lesions(mask)
    save_array(mask, t1w_img.affine, outputs["mask"], np.uint8)
    save_json({**record, "MinimumLesionSizeMm3": min_size_mm3, "Connectivity": 26, "NumberOfLesions": n,
               "LesionVolumeMl": float(mask.sum()) * voxel_mm3 / 1000.0}, outputs["mask_json"])  # fmt: skip


def wm_prior(inputs: Paths, like: ants.ANTsImage) -> np.ndarray:
    """WM probability on the T1w grid: the larger of the session's WM fraction and the template's WM
    prior warped to the session (lesions, dark on T1w, are often missing from the former)."""
    _, wm = load_nifti(inputs["probseg_wm"], allow_empty=True)
    return np.maximum(wm, template.warped("wm", like, inputs["from_template"]))


def session_metrics(inputs: Paths, outputs: Paths, ids: Mapping[str, str | None]) -> None:
    """Lesion labels, regional metrics and per-lesion metrics of one session (TSVs with the group
    tables' columns)."""
    mask_img, lesion = load_nifti(inputs["lesion_mask"], allow_empty=True)
    _, brain = load_nifti(inputs["brain_mask"], allow_empty=True)
    _, dseg = load_nifti(inputs["dseg"], allow_empty=True)
    affine = mask_img.affine

    def on_t1w_grid(name: str, allow_empty: bool = True) -> np.ndarray:
        img, data = load_nifti(inputs[name], allow_empty=allow_empty)
        if img.shape[:3] != mask_img.shape[:3]:
            raise MsqmriInputError(inputs[name], f"grid {img.shape[:3]} differs from the T1w grid {mask_img.shape[:3]}")
        return data

    maps = {name: on_t1w_grid(name) for name in METRICS if name in inputs}
    labels, n = lesions.label_lesions(lesion > 0)
    save_array(labels, affine, outputs["labels"], np.int16 if n < 32767 else np.int32)
    zooms = tuple(float(z) for z in nib.affines.voxel_sizes(affine))
    masks = regions.region_masks(brain > 0, np.rint(dseg).astype(np.int16), labels > 0, zooms)
    voxel_ml = float(np.prod(zooms)) / 1000.0
    regional = pd.DataFrame([{**ids, **row} for row in regions.region_rows(masks, maps, voxel_ml)],
                            columns=list(REGIONAL_COLUMNS))  # fmt: skip
    sizes = None
    if "flair" in inputs:
        sizes = lesions.partial_volumes(on_t1w_grid("flair", allow_empty=False), labels, n, masks["nawm"])
    rows = [{**ids, **row} for row in lesions.lesion_table(labels, n, affine, maps, sizes)]
    save_tsv(regional, outputs["regional"])
    save_tsv(pd.DataFrame(rows, columns=list(LESION_COLUMNS)), outputs["lesions"])


CHANGE_COLUMNS = ("participant_id", "session_from", "session_to", "lesion_id", "status", "volume_from_ml",
                  "volume_to_ml", "mtr_decrease_fraction", "mtr_increase_fraction", "mtr_change_threshold_pu",
                  "black_hole")  # fmt: skip


def halfway_sampler(inputs: Paths) -> Callable[..., np.ndarray]:
    """A function ``sample(side, key, order=1)`` resampling the map ``inputs[f"{side}_{key}"]`` of session
    ``side`` ("from"/"to") into the pair's halfway grid; the transform and the grid are read once."""
    record = load_json(inputs["transform"])
    grid_img = nib.load(inputs["grid"])
    grid = Grid(grid_img.shape[:3], grid_img.affine)

    def sample(side: str, key: str, order: int = 1) -> np.ndarray:
        img, data = load_nifti(inputs[f"{side}_{key}"], allow_empty=True)
        return resample(data, img.affine, grid, np.asarray(record[f"halfway_to_{side}"]), order=order)[0]

    return sample


def lesion_activity(inputs: Paths, outputs: Paths, ids: Mapping[str, Any], enlarging: float = lesion_activity_method.ENLARGING,
                    min_size_mm3: float = lesions.MIN_SIZE_MM3) -> None:  # fmt: skip
    """New, enlarging, shrinking, resolved and stable lesions of a session pair in its halfway space,
    per-lesion MTR change and chronic black holes."""
    grid_img = nib.load(inputs["grid"])
    voxel_mm3 = abs(float(np.linalg.det(grid_img.affine[:3, :3])))
    to_halfway = halfway_sampler(inputs)
    labels = {}
    for side in ("from", "to"):
        # nearest neighbour: thresholding a trilinear upsampling of a few-voxel lesion at 0.5 loses ~20 % of it
        mask = lesions.remove_small(to_halfway(side, "lesion_mask", order=0) >= 0.5, voxel_mm3, min_size_mm3)
        labels[side] = lesions.label_lesions(mask)[0]
    clusters = lesion_activity_method.match(labels["from"], labels["to"], voxel_mm3 / 1000.0, enlarging)
    save_array(lesion_activity_method.status_map(clusters, labels["from"], labels["to"]), grid_img.affine,
               outputs["status"], np.uint8)  # fmt: skip
    dseg = {side: np.rint(to_halfway(side, "dseg", order=0)) for side in ("from", "to")}
    any_lesion = (labels["from"] > 0) | (labels["to"] > 0)
    nawm = (dseg["from"] == regions.WM_LABEL) & (dseg["to"] == regions.WM_LABEL) & ~regions.dilate_mm(
        any_lesion, regions.PERILESIONAL_MM, tuple(nib.affines.voxel_sizes(grid_img.affine)))
    change, threshold = None, None
    if "from_mtr" in inputs and "to_mtr" in inputs:
        mtr = {side: to_halfway(side, "mtr") for side in ("from", "to")}
        covered = (mtr["from"] > 0) & (mtr["to"] > 0)
        change = np.where(covered, mtr["to"] - mtr["from"], 0.0)
        threshold = lesion_activity_method.mtr_change_threshold(change, nawm & covered)
    gm = (dseg["from"] == regions.GM_LABEL) & (dseg["to"] == regions.GM_LABEL)
    t1w = {side: np.asarray(nib.load(inputs[f"{side}_image"]).dataobj, dtype=np.float32) for side in ("from", "to")}
    interval = ids.get("interval_days")
    rows = []
    for cluster in clusters:
        voxels = {"from": np.isin(labels["from"], cluster.from_ids), "to": np.isin(labels["to"], cluster.to_ids)}
        row = {"participant_id": ids["participant_id"], "session_from": ids["session_from"],
               "session_to": ids["session_to"], "lesion_id": cluster.cluster_id, "status": cluster.status,
               "volume_from_ml": cluster.volume_from_ml, "volume_to_ml": cluster.volume_to_ml}  # fmt: skip
        if change is not None and threshold is not None:
            where = voxels["to"] if cluster.to_ids else voxels["from"]
            row["mtr_decrease_fraction"], row["mtr_increase_fraction"] = lesion_activity_method.mtr_change_fractions(
                change, where & covered, threshold)  # fmt: skip
            row["mtr_change_threshold_pu"] = threshold
        if cluster.from_ids and cluster.to_ids and interval is not None and gm.any():
            row["black_hole"] = lesion_activity_method.chronic_black_hole(t1w, voxels, gm, interval)
        rows.append(row)
    save_tsv(pd.DataFrame(rows, columns=list(CHANGE_COLUMNS)), outputs["changes"])
    save_json({"participant_id": ids["participant_id"], "session_from": ids["session_from"],
               "session_to": ids["session_to"], **lesion_activity_method.counts(clusters),
               "EnlargingThreshold": enlarging, "MTRChangeThresholdPu": threshold,
               "Space": "halfway (1 mm) of the pair"}, outputs["counts"])  # fmt: skip


def flair_subtraction(inputs: Paths, output: str) -> None:
    """Later minus earlier FLAIR in halfway space, each divided by its median in the brain (outside
    lesions) first: the subtraction image MAGNIMS recommends for reading new and enlarging lesions."""
    grid_img = nib.load(inputs["grid"])
    to_halfway = halfway_sampler(inputs)
    normalised = []
    for side in ("from", "to"):
        flair = to_halfway(side, "flair", order=3)
        brain = (to_halfway(side, "brain_mask") >= 0.5) & (to_halfway(side, "lesion_mask") < 0.5)
        if not brain.any():
            raise MsqmriInputError(inputs[f"{side}_brain_mask"], "brain mask is empty in the halfway space")
        normalised.append(flair / float(np.median(flair[brain])))
    save_array(normalised[1] - normalised[0], grid_img.affine, output, np.float32)
