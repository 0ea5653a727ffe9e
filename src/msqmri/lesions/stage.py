"""The lesion steps of the workflow, with I/O at the edges (algorithms in the other modules of
:mod:`msqmri.lesions` and in :mod:`msqmri.lesions.regions`).

Per session: the FLAIR bias-corrected and normalised to its local NAWM (``flair_normalization``); the
lesion mask on the T1w grid, from the user's mask (derivatives/lesions, T1w or FLAIR space) when there is
one, else from the built-in segmentation, else empty (``lesion_mask``); lesion labels, each lesion's
location class and black-hole status, and the regional and per-lesion FA, MD, MTR and R2*
(``session_metrics``). Per session pair, in its halfway space: activity from the subtraction image and the
baseline lesion map (``lesion_activity``; the two masks compared by overlap when a session has no
FLAIR) and the subtraction image (``flair_subtraction``). Per subject: persistent lesion identities and
the per-session counts by location (``lesion_tracking``), and each session's lesions labelled by
identity (``lesion_identities``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ants
import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from msqmri.anat import template
from msqmri.anat.bias import n4
from msqmri.atrophy.halfway import Grid, resample
from msqmri.core.io import MsqmriInputError, load_json, load_nifti, save_array, save_json, save_tsv
from msqmri.core.registration import ants_image, register_to_t1w, resample_mask
from msqmri.lesions import (
    activity,
    components,
    enhancement,
    location,
    longitudinal,
    normalization,
    regions,
    segmentation,
    tracking,
)

Paths = Mapping[str, str]
#: the quantitative maps a session may have, in T1w space (input key -> table metric)
METRICS = ("fa", "md", "mtr", "r2star")
REGIONAL_COLUMNS = (
    "participant_id",
    "session_id",
    "region",
    "metric",
    "mean",
    "median",
    "std",
    "n_voxels",
    "volume_ml",
)
LESION_COLUMNS = (
    "participant_id",
    "session_id",
    "lesion_id",
    "volume_ml",
    "centroid_x",
    "centroid_y",
    "centroid_z",
    *(f"{m}_mean" for m in METRICS),
)
#: a session's lesion table: the contract's columns (``lesion_id`` the label in the session's lesion map), then
#: location class (infratentorial: brainstem or cerebellum) and black hole
SESSION_LESION_COLUMNS = (*LESION_COLUMNS, "location", "infratentorial_part", "black_hole")
#: group/lesions.tsv: ``lesion_id`` persistent across the subject's sessions, ``component`` the label in the
#: session's lesion map, ``status`` against the previous session, merges and splits
TRACKED_LESION_COLUMNS = (
    *SESSION_LESION_COLUMNS,
    "chronic_black_hole",
    "status",
    "merged_from",
    "split_from",
    "component",
)
COUNT_COLUMNS = (
    "participant_id",
    "session_id",
    "n_lesions",
    "lesion_volume_ml",
    *(c for loc in location.LOCATIONS for c in (f"n_{loc}", f"{loc}_volume_ml")),
    "n_brainstem",
    "n_cerebellar",
    "n_black_holes",
    "black_hole_volume_ml",
    "n_chronic_black_holes",
)
CHANGE_COLUMNS = (
    "participant_id",
    "session_from",
    "session_to",
    "lesion_id",
    "status",
    "volume_from_ml",
    "volume_to_ml",
    "mtr_decrease_fraction",
    "mtr_increase_fraction",
    "mtr_change_threshold_pu",
    "black_hole",
    "volume_change_sd_ml",
    "from_lesions",
    "to_lesions",
)


def _grid_image(path: str) -> tuple[nib.Nifti1Image, ants.ANTsImage, tuple[float, ...]]:
    """An image of the T1w grid, an empty ANTs image on it (to warp the template to) and its voxel size."""
    img, _ = load_nifti(path)
    like = ants_image(np.zeros(img.shape[:3], dtype=np.float32), img.affine)
    return img, like, tuple(float(z) for z in nib.affines.voxel_sizes(img.affine))


def _on_grid(inputs: Paths, name: str, shape: tuple[int, ...], allow_empty: bool = True) -> np.ndarray:
    img, data = load_nifti(inputs[name], allow_empty=allow_empty)
    if img.shape[:3] != shape:
        raise MsqmriInputError(inputs[name], f"grid {img.shape[:3]} differs from the T1w grid {shape}")
    return data


def _warped(inputs: Paths, like: ants.ANTsImage, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Template images (priors, regions) on the session's grid through its template transform."""
    return {name: template.warped(name, like, inputs["from_template"]) for name in names}


def flair_normalization(inputs: Paths, outputs: Paths) -> None:
    """The FLAIR (in T1w space) after N4 inside the brain and divided by its local NAWM level."""
    img, flair = load_nifti(inputs["flair"])
    brain = _on_grid(inputs, "brain_mask", img.shape[:3]) > 0
    wm = _on_grid(inputs, "probseg_wm", img.shape[:3])
    voxel_size = tuple(float(z) for z in nib.affines.voxel_sizes(img.affine))
    reference = brain & (wm >= 0.9)
    if reference.sum() < 100:
        raise MsqmriInputError(inputs["probseg_wm"], "too little white matter to normalise the FLAIR to")
    image = ants_image(flair, img.affine)
    corrected = n4(image, image.new_image_like(brain.astype(np.float32))).numpy()
    normalised, level = normalization.normalise(corrected, reference, voxel_size)
    save_array(normalised, img.affine, outputs["flair"], np.float32)
    spread = np.percentile(level[brain], [5, 95]) / np.median(level[brain])
    save_json(
        {
            "Sources": [Path(inputs["flair"]).name],
            "Units": "arbitrary (normal-appearing white matter = 1)",
            "EstimationAlgorithm": "N4 inside the brain mask, then divided by the local NAWM level (block median "
            f"over WM >= 0.9 voxels, {normalization.BLOCK_MM:g} mm blocks, two passes)",
            "LocalNAWMLevelRange": [float(spread[0]), float(spread[1])],
        },
        outputs["json"],
    )


def lesion_mask(inputs: Paths, outputs: Paths, min_size_mm3: float = components.MIN_SIZE_MM3) -> None:
    """The session's lesion mask on the T1w grid, with a sidecar saying where it came from."""
    t1w_img, like, voxel_size = _grid_image(inputs["t1w"])
    shape = t1w_img.shape[:3]
    brain = _on_grid(inputs, "brain_mask", shape) > 0
    voxel_mm3 = float(np.prod(voxel_size))
    record: dict[str, Any]
    if "lesion" in inputs:
        mask = resample_mask(inputs["lesion"], like, inputs.get("lesion_transform")) & brain
        mask = components.remove_small(mask, voxel_mm3, min_size_mm3)
        record = {
            "Sources": [Path(inputs["lesion"]).name],
            "EstimationAlgorithm": "user lesion mask brought to T1w space",
        }
    elif "flair" in inputs:
        flair = _on_grid(inputs, "flair", shape)
        warped = _warped(inputs, like, ("csf", "gm", "wm", "ventricles", "septum"))
        tissues = segmentation.Tissues(
            brain=brain,
            fractions={c: _on_grid(inputs, f"probseg_{c}", shape) for c in ("csf", "gm", "wm")},
            priors={c: warped[c] for c in ("csf", "gm", "wm")},
            ventricles=warped["ventricles"],
            septum=warped["septum"],
            t1w=_on_grid(inputs, "t1w", shape, allow_empty=False),
            voxel_size=voxel_size,
        )
        try:
            seg = segmentation.segment(flair, tissues, min_size_mm3)
        except ValueError as exc:
            raise MsqmriInputError(inputs["probseg_wm"], str(exc)) from None
        mask = seg.mask
        record = {
            "Sources": [Path(inputs["flair"]).name],
            "EstimationAlgorithm": "built-in FLAIR + T1w segmentation: seeds "
            "above the NAWM and the upper tail of GM, grown to the 50 % lesion level, known false positives rejected",
            "NAWMRobustSD": seg.nawm_sd,
            "GMLevel": seg.gm_level,
            "GMRobustSD": seg.gm_sd,
            "SeedThresholdWM": seg.wm_threshold,
            "SeedThresholdGM": seg.gm_threshold,
            "LesionLevel": seg.lesion_level,
            "RejectedClusters": seg.rejected,
        }
    else:
        mask = np.zeros(brain.shape, dtype=bool)
        record = {"Sources": [], "EstimationAlgorithm": "none: no lesion mask and no FLAIR, so no lesions"}
    _, n = components.label_lesions(mask)
    save_array(mask, t1w_img.affine, outputs["mask"], np.uint8)
    save_json(
        {
            **record,
            "MinimumLesionSizeMm3": min_size_mm3,
            "Connectivity": 26,
            "NumberOfLesions": n,
            "LesionVolumeMl": float(mask.sum()) * voxel_mm3 / 1000.0,
        },
        outputs["mask_json"],
    )


def session_metrics(inputs: Paths, outputs: Paths, ids: Mapping[str, str | None]) -> None:
    """Lesion labels, regional metrics and the per-lesion table (metrics, location, black hole) of a session."""
    mask_img, lesion = load_nifti(inputs["lesion_mask"], allow_empty=True)
    shape, affine = mask_img.shape[:3], mask_img.affine
    like = ants_image(np.zeros(shape, dtype=np.float32), affine)
    voxel_size = tuple(float(z) for z in nib.affines.voxel_sizes(affine))
    brain = _on_grid(inputs, "brain_mask", shape) > 0
    dseg = np.rint(_on_grid(inputs, "dseg", shape)).astype(np.int16)
    maps = {name: _on_grid(inputs, name, shape) for name in METRICS if name in inputs}
    labels, n = components.label_lesions(lesion > 0)
    save_array(labels, affine, outputs["labels"], np.int16 if n < 32767 else np.int32)
    masks = regions.region_masks(brain, dseg, labels > 0, voxel_size)
    voxel_ml = float(np.prod(voxel_size)) / 1000.0
    regional = pd.DataFrame(
        [{**ids, **row} for row in regions.region_rows(masks, maps, voxel_ml)], columns=list(REGIONAL_COLUMNS)
    )
    fraction = sizes = None
    if "flair" in inputs and n:
        fractions = components.lesion_fractions(
            _on_grid(inputs, "flair", shape, allow_empty=False), labels, n, masks["nawm"]
        )
        if fractions is not None:  # a lesion the FLAIR does not show (a user's mask) keeps its voxel count
            fraction = fractions[0]
            sizes = np.asarray(np.bincount(fractions[1].ravel(), weights=fraction.ravel(), minlength=n + 1)[1:])
            sizes = np.where(sizes > 0, sizes, np.bincount(labels.ravel(), minlength=n + 1)[1:])
    rows = [{**ids, **row} for row in components.lesion_table(labels, n, affine, maps, sizes)]
    classes, parts, holes = _lesion_classes(inputs, like, labels, n, brain, voxel_size, fraction)
    for row, cls, part, hole in zip(rows, classes, parts, holes, strict=True):
        row.update(location=cls, infratentorial_part=part, black_hole=bool(hole))
    save_tsv(regional, outputs["regional"])
    save_tsv(pd.DataFrame(rows, columns=list(SESSION_LESION_COLUMNS)), outputs["lesions"])


def _lesion_classes(
    inputs: Paths,
    like: ants.ANTsImage,
    labels: np.ndarray,
    n: int,
    brain: np.ndarray,
    voxel_size: tuple[float, ...],
    fraction: np.ndarray | None,
) -> tuple[list, list, np.ndarray]:
    """Location class, infratentorial part and black-hole status of lesions 1..n (:mod:`msqmri.lesions.location`)."""
    if n == 0:
        return [], [], np.zeros(0, dtype=bool)
    shape = labels.shape
    warped = _warped(inputs, like, ("gm", "ventricles", "infratentorial", "brainstem", "deep_gm"))
    fractions = {c: _on_grid(inputs, f"probseg_{c}", shape) for c in ("csf", "gm", "wm")}
    lesion = labels > 0
    near_ventricles = segmentation.near_ventricles(warped["ventricles"])
    ventricles = brain & ~lesion & near_ventricles & (fractions["csf"] >= location.VENTRICLE_CSF)
    cortex = location.cortex_mask(fractions["gm"], warped["gm"], warped["deep_gm"], brain, lesion)
    classes, parts = location.classify(
        labels, n, warped["infratentorial"], warped["brainstem"], ventricles, cortex, voxel_size
    )
    t1w = _on_grid(inputs, "t1w", shape, allow_empty=False)
    nawm = brain & (fractions["wm"] >= 0.9) & ~regions.dilate_mm(lesion, regions.PERILESIONAL_MM, voxel_size)
    if nawm.sum() < 100:
        return classes, parts, np.zeros(n, dtype=bool)
    level = normalization.local_level(t1w, nawm, voxel_size)
    cortex_level = np.median((t1w / level)[cortex & (fractions["gm"] >= 0.9)]) if cortex.any() else np.nan
    # voxels touching the cortex are left out: their T1w mixes with grey matter, darker than WM
    clear = ~ndimage.binary_dilation(cortex, np.ones((3, 3, 3), dtype=bool))
    levels = location.lesion_t1w(t1w / level, np.where(clear, labels, 0), n, fraction)
    return classes, parts, location.black_holes(levels, float(cortex_level))


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


def format_ids(ids: Sequence[int]) -> str | None:
    return ";".join(str(i) for i in ids) or None


def lesion_activity(
    inputs: Paths,
    outputs: Paths,
    ids: Mapping[str, Any],
    enlarging: float = longitudinal.ENLARGING,
    min_size_mm3: float = components.MIN_SIZE_MM3,
) -> None:
    """New, enlarging, shrinking, resolved and stable lesions of a session pair in its halfway space (from
    the subtraction image when both sessions have a FLAIR, else by comparing the two lesion maps), each
    cluster's MTR change and whether its lesions are black holes in both sessions."""
    grid_img = nib.load(inputs["grid"])
    voxel_size = tuple(float(z) for z in nib.affines.voxel_sizes(grid_img.affine))
    voxel_mm3 = float(np.prod(voxel_size))
    to_halfway = halfway_sampler(inputs)
    labels = {side: np.rint(to_halfway(side, "labels", order=0)).astype(np.int32) for side in ("from", "to")}
    dseg = {side: np.rint(to_halfway(side, "dseg", order=0)) for side in ("from", "to")}
    any_lesion = (labels["from"] > 0) | (labels["to"] > 0)
    wm_both = (dseg["from"] == regions.WM_LABEL) & (dseg["to"] == regions.WM_LABEL)
    nawm = wm_both & ~regions.dilate_mm(any_lesion, regions.PERILESIONAL_MM, voxel_size)
    method = "subtraction"
    if "from_flair" in inputs and "to_flair" in inputs:
        flair = {side: to_halfway(side, "flair", order=3) for side in ("from", "to")}
        grey = (dseg["from"] == regions.GM_LABEL) & (dseg["to"] == regions.GM_LABEL) & ~any_lesion
        try:
            changes, core, noise = longitudinal.detect(
                flair["from"],
                flair["to"],
                labels["from"],
                labels["to"],
                nawm,
                grey,
                voxel_size,
                min_size_mm3,
                enlarging,
            )
        except ValueError as exc:
            raise MsqmriInputError(inputs["to_flair"], str(exc)) from None
        noise_record = {"SubtractionNoiseSD": noise.sd, "SubtractionNoiseCorrelation": noise.correlation}
    else:
        method, noise_record = "mask overlap", {}
        changes, core = activity.match(labels["from"], labels["to"], voxel_mm3 / 1000.0, enlarging)
    status = np.zeros(core.shape, dtype=np.uint8)
    codes = np.array([0] + [1 + longitudinal.STATUSES.index(c.status) for c in changes], dtype=np.uint8)
    status[core > 0] = codes[core[core > 0]]
    save_array(status, grid_img.affine, outputs["status"], np.uint8)
    mtr_change, threshold, covered = _mtr_change(inputs, to_halfway, nawm)
    black_holes = {side: _black_holes(inputs.get(f"{side}_lesions")) for side in ("from", "to")}
    interval = ids.get("interval_days")
    rows = []
    for change in changes:
        row = {
            "participant_id": ids["participant_id"],
            "session_from": ids["session_from"],
            "session_to": ids["session_to"],
            "lesion_id": change.cluster_id,
            "status": change.status,
            "volume_from_ml": change.volume_from_ml,
            "volume_to_ml": change.volume_to_ml,
            "volume_change_sd_ml": change.change_sd_ml,
            "from_lesions": format_ids(change.from_ids),
            "to_lesions": format_ids(change.to_ids),
        }
        if mtr_change is not None and threshold is not None:
            row["mtr_decrease_fraction"], row["mtr_increase_fraction"] = activity.mtr_change_fractions(
                mtr_change, (core == change.cluster_id) & covered, threshold
            )
            row["mtr_change_threshold_pu"] = threshold
        if change.from_ids and change.to_ids and interval is not None:
            row["black_hole"] = bool(
                interval >= tracking.CHRONIC_DAYS
                and all(
                    black_holes[side].get(i, False)
                    for side, which in (("from", change.from_ids), ("to", change.to_ids))
                    for i in which
                )
            )
        rows.append(row)
    save_tsv(pd.DataFrame(rows, columns=list(CHANGE_COLUMNS)), outputs["changes"])
    save_json(
        {
            "participant_id": ids["participant_id"],
            "session_from": ids["session_from"],
            "session_to": ids["session_to"],
            **activity.counts(changes),
            "Method": method,
            "EnlargingThreshold": enlarging,
            "MTRChangeThresholdPu": threshold,
            **noise_record,
            "Space": "halfway (1 mm) of the pair",
        },
        outputs["counts"],
    )


def _mtr_change(
    inputs: Paths, to_halfway: Callable[..., np.ndarray], nawm: np.ndarray
) -> tuple[np.ndarray | None, float | None, np.ndarray]:
    """Later minus earlier MTR in halfway space where both have data, and its NAWM change threshold."""
    if "from_mtr" not in inputs or "to_mtr" not in inputs:
        return None, None, np.zeros(nawm.shape, dtype=bool)
    mtr = {side: to_halfway(side, "mtr") for side in ("from", "to")}
    covered = (mtr["from"] > 0) & (mtr["to"] > 0)
    change = np.where(covered, mtr["to"] - mtr["from"], 0.0)
    return change, activity.mtr_change_threshold(change, nawm & covered), covered


def _black_holes(path: str | None) -> dict[int, bool]:
    """Black-hole status of each lesion (label) of a session's lesion table."""
    if path is None:
        return {}
    table = pd.read_csv(path, sep="\t")
    return {int(r.lesion_id): str(r.black_hole) == "True" for r in table.itertuples()}


def flair_subtraction(inputs: Paths, outputs: Paths) -> None:
    """Later minus earlier FLAIR in halfway space, both normalised to their local NAWM: the subtraction image
    MAGNIMS recommends for reading new and enlarging lesions."""
    grid_img = nib.load(inputs["grid"])
    to_halfway = halfway_sampler(inputs)
    save_array(
        to_halfway("to", "flair", order=3) - to_halfway("from", "flair", order=3),
        grid_img.affine,
        outputs["subtraction"],
        np.float32,
    )


def parse_ids(text: Any) -> tuple[int, ...]:
    """Lesion labels from a ``from_lesions``/``to_lesions`` cell (``1;3``, or empty)."""
    return () if pd.isna(text) else tuple(int(float(i)) for i in str(text).split(";") if i)


def lesion_counts(lesions: pd.DataFrame, ids: Mapping[str, str | None]) -> dict[str, Any]:
    """One session's row of group/lesion_counts.tsv from its rows of the tracked lesion table."""
    volume = lesions.volume_ml.astype(float)
    row: dict[str, Any] = {**ids, "n_lesions": len(lesions), "lesion_volume_ml": float(volume.sum())}
    for name in location.LOCATIONS:
        inside = lesions.location == name
        row |= {f"n_{name}": int(inside.sum()), f"{name}_volume_ml": float(volume[inside].sum())}
    row["n_brainstem"] = int((lesions.infratentorial_part == "brainstem").sum())
    row["n_cerebellar"] = int((lesions.infratentorial_part == "cerebellum").sum())
    holes = lesions.black_hole.astype(str) == "True"
    row |= {"n_black_holes": int(holes.sum()), "black_hole_volume_ml": float(volume[holes].sum())}
    chronic = lesions.chronic_black_hole
    row["n_chronic_black_holes"] = None if chronic[holes].isna().any() else int((chronic.astype(str) == "True").sum())
    return row


def lesion_tracking(
    inputs: Mapping[str, Sequence[str]],
    outputs: Paths,
    participant_id: str,
    session_ids: Sequence[str | None],
    days: Sequence[float | None],
) -> None:
    """A subject's lesions with persistent identities (``outputs["lesions"]``) and its per-session counts by
    location class and of black holes (``outputs["counts"]``). ``inputs["sessions"]`` are the lesion tables of
    the sessions ``session_ids`` in time order, with each session's day in ``days`` (None without a date);
    ``inputs["pairs"]`` the changes of each consecutive pair."""
    sessions = list(zip(session_ids, inputs["sessions"], strict=True))
    pair_tables = inputs["pairs"]
    keys = [session or "" for session, _ in sessions]
    tables = []
    for key, (session, path) in zip(keys, sessions, strict=True):
        table = pd.read_csv(path, sep="\t")
        tables.append(table.assign(participant_id=participant_id, session_id=session, key=key))
    volumes = {
        key: dict(zip(t.lesion_id.astype(int), t.volume_ml.astype(float), strict=True))
        for key, t in zip(keys, tables, strict=True)
    }
    pairs = [
        [
            tracking.PairCluster(r.status, parse_ids(r.from_lesions), parse_ids(r.to_lesions))
            for r in pd.read_csv(path, sep="\t").itertuples()
        ]
        for path in pair_tables
    ]
    identities = {(i.session, i.component): i for i in tracking.track(keys, volumes, pairs)}
    lesions = pd.concat(tables, ignore_index=True)
    index = list(zip(lesions.key, lesions.lesion_id.astype(int), strict=True))
    holes = {k: str(h) == "True" for k, h in zip(index, lesions.black_hole, strict=True)}
    chronic = tracking.chronic_black_holes([identities[k] for k in index], holes, dict(zip(keys, days, strict=True)))
    lesions = lesions.assign(
        component=lesions.lesion_id.astype(int),
        lesion_id=[identities[k].lesion_id for k in index],
        status=[identities[k].status for k in index],
        merged_from=[format_ids(identities[k].merged_from) for k in index],
        split_from=[identities[k].split_from for k in index],
        chronic_black_hole=[chronic[k] for k in index],
    )
    lesions = lesions.assign(order=lesions.key.map(keys.index)).sort_values(["order", "lesion_id"], kind="stable")
    save_tsv(lesions[list(TRACKED_LESION_COLUMNS)], outputs["lesions"])
    counts = [
        lesion_counts(lesions[lesions.key == key], {"participant_id": participant_id, "session_id": session})
        for key, (session, _) in zip(keys, sessions, strict=True)
    ]
    save_tsv(pd.DataFrame(counts, columns=list(COUNT_COLUMNS)), outputs["counts"])


def lesion_identities(inputs: Paths, outputs: Paths, ids: Mapping[str, str | None]) -> None:
    """The session's lesion ``labels`` renumbered by persistent identity (from the subject's ``tracking``
    table)."""
    session_id = ids["session_id"]
    img, labels = load_nifti(inputs["labels"], allow_empty=True)
    tracked = pd.read_csv(inputs["tracking"], sep="\t")
    rows = tracked[tracked.session_id.astype(str) == str(session_id)] if session_id else tracked
    lookup = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.int32)
    lookup[rows.component.astype(int).to_numpy()] = rows.lesion_id.astype(int).to_numpy()
    save_array(lookup[np.rint(labels).astype(np.int32)], img.affine, outputs["labels"], np.int32)


def enhancing_lesions(
    inputs: Paths,
    outputs: Paths,
    ids: Mapping[str, str | None],
    min_size_mm3: float = enhancement.MIN_SIZE_MM3,
    seed: int = 1,
) -> None:
    """The session's contrast-enhancing lesions (:mod:`msqmri.lesions.enhancement`): the post-contrast T1w
    registered rigidly to the T1w and bias-corrected, both divided by their local NAWM level, the enhancement map,
    the CEL labels and table, and a summary (count, volume, what was rejected)."""
    # windowed sinc: linear interpolation would blur small dark lesions into "enhancement" against the
    # unresampled pre-contrast T1w
    register_to_t1w(inputs["t1w_ce"], inputs["t1w"], outputs["transform"], outputs["post"], seed, "lanczosWindowedSinc")
    t1w_img, pre = load_nifti(inputs["t1w"])
    shape, affine = t1w_img.shape[:3], t1w_img.affine
    like = ants_image(np.zeros(shape, dtype=np.float32), affine)
    voxel_size = tuple(float(z) for z in nib.affines.voxel_sizes(affine))
    brain = _on_grid(inputs, "brain_mask", shape) > 0
    wm, csf = _on_grid(inputs, "probseg_wm", shape), _on_grid(inputs, "probseg_csf", shape)
    labels = np.rint(_on_grid(inputs, "labels", shape)).astype(np.int32)
    nawm = brain & (wm >= 0.9) & ~ndimage.binary_dilation(labels > 0, iterations=2)
    if nawm.sum() < 100:
        raise MsqmriInputError(inputs["probseg_wm"], "too little normal-appearing white matter to normalise to")
    _, post = load_nifti(outputs["post"])
    post_image = ants_image(post, affine)
    post = n4(post_image, post_image.new_image_like(brain.astype(np.float32))).numpy()
    save_array(post, affine, outputs["post"], np.float32)
    normalised = {
        name: normalization.normalise(image, nawm, voxel_size)[0] for name, image in (("pre", pre), ("post", post))
    }
    enhancement_map = enhancement.enhancement_map(normalised["post"], normalised["pre"])
    save_array(enhancement_map, affine, outputs["enhancement"], np.float32)
    ventricles = template.warped("ventricles", like, inputs["from_template"]) >= 0.5
    tissue = {"csf": csf, "wm": wm, "lesion": labels > 0}
    ventricles = ndimage.binary_dilation(ventricles, iterations=1)
    found = enhancement.find_enhancing(
        enhancement_map, brain, nawm, tissue, ventricles, voxel_size, min_size_mm3, normalised["post"]
    )
    save_array(found.labels, affine, outputs["labels"], np.int16)
    voxel_ml = float(np.prod(voxel_size)) / 1000.0
    rows = []
    for k in range(1, found.n + 1):
        cel = found.labels == k
        centroid = affine[:3, :3] @ np.argwhere(cel).mean(0) + affine[:3, 3]
        inside = labels[cel][labels[cel] > 0]
        rows.append(
            {
                **ids,
                "cel_id": k,
                "volume_ml": float(cel.sum()) * voxel_ml,
                "centroid_x": float(centroid[0]),
                "centroid_y": float(centroid[1]),
                "centroid_z": float(centroid[2]),
                "mean_enhancement": float(enhancement_map[cel].mean()),
                "peak_enhancement": float(enhancement_map[cel].max()),
                "pattern": found.patterns[k - 1],
                "in_t2_lesion": bool(inside.size),
                "lesion_component": int(np.bincount(inside).argmax()) if inside.size else None,
            }
        )
    table = pd.DataFrame(rows, columns=list(enhancement.CEL_COLUMNS))
    save_tsv(table, outputs["table"])
    save_json(
        {
            **ids,
            "n_cel": found.n,
            "cel_volume_ml": float(table.volume_ml.sum()),
            "rejected": found.rejected,
            "Sources": [Path(inputs["t1w_ce"]).name, Path(inputs["t1w"]).name],
            "EstimationAlgorithm": "post minus pre-contrast T1w in local NAWM units; seeds above "
            f"max({enhancement.K_SIGMA:g} robust SD, {enhancement.MIN_ENHANCEMENT:g}), extent at half the seed's "
            "median, holes filled; outside the brain, in CSF or vessel-shaped components rejected",
        },
        outputs["summary"],
    )
