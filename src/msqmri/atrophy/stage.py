"""Percentage brain volume change of a subject's session pair: the jobs, with I/O at the edges.

``run_halfway`` registers the two sessions and writes the halfway images, ``run_siena`` the edge
method (:mod:`msqmri.atrophy.siena`), ``run_jacobian`` Jacobian integration
(:mod:`msqmri.atrophy.jacobian`); each writes a JSON with PBVC, the annualised rate and the
method's parameters and intermediate figures, which :func:`msqmri.cohort.tables.pbvc_table` collects.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import nibabel as nib
import numpy as np

from msqmri.atrophy import jacobian, siena
from msqmri.atrophy.halfway import (
    HALFWAY_VOXEL_MM,
    REGISTRATION_VOXEL_MM,
    SKULL_BAND_MM,
    Registration,
    Scan,
    halfway_images,
    register_pair,
)
from msqmri.atrophy.qc import qc_flag
from msqmri.core.io import MsqmriInputError, load_json, load_nifti, save_array, save_json
from msqmri.core.morphology import near
from msqmri.core.registration import ants_image, ras_affine
from msqmri.workflow.layout import SCAN_KEYS

DAYS_PER_YEAR = 365.25
#: where a session has no ICV, the skull band of the halfway registration starts this far (mm) outside its brain
ICV_STANDIN_MM = 3.0


def load_scan(paths: Mapping[str, str | os.PathLike[str]]) -> Scan:
    """One session's structural outputs as a :class:`Scan`; every map must share the T1w grid."""
    img, image = load_nifti(paths["preproc"])
    maps = {}
    for key in SCAN_KEYS[1:]:
        other, data = load_nifti(paths[key], allow_empty=True)
        if data.shape != image.shape or not np.allclose(other.affine, img.affine, atol=1e-4):
            raise MsqmriInputError(paths[key], f"grid differs from {os.path.basename(paths['preproc'])}")
        maps[key] = data
    brain = maps["brain_mask"] > 0.5
    if not brain.any():
        raise MsqmriInputError(paths["brain_mask"], "brain mask is empty")
    icv = maps["icv_mask"] > 0.5
    if not icv.any():  # a session whose ICV could not be estimated (its volumes say why): brain + a CSF rim
        icv = near(brain, tuple(float(z) for z in img.header.get_zooms()[:3]), ICV_STANDIN_MM)
    return Scan(
        image=image,
        affine=img.affine,
        brain=brain,
        icv=icv,
        brain_fraction=np.clip(maps["probseg_gm"] + maps["probseg_wm"], 0.0, 1.0),
    )


def annualised(pbvc: float, interval_days: float | None) -> float | None:
    """PBVC per year (linear, as SIENA's annualised rate), or None without a positive interval."""
    if interval_days is None or interval_days <= 0:
        return None
    return pbvc * DAYS_PER_YEAR / interval_days


def pbvc_record(method: str, pbvc: float, ids: Mapping[str, Any], **figures: Any) -> dict[str, Any]:
    """The JSON of one pair and method: the pbvc.tsv columns first (with the pair's QC flag,
    :func:`msqmri.atrophy.qc.qc_flag`), then the method's figures."""
    return {
        "participant_id": ids["participant_id"],
        "session_from": ids["session_from"],
        "session_to": ids["session_to"],
        "interval_days": ids.get("interval_days"),
        "pbvc": pbvc,
        "pbvc_per_year": annualised(pbvc, ids.get("interval_days")),
        "method": method,
        "qc_flag": qc_flag(figures),
        **figures,
    }


def _registration_record(reg: Registration) -> dict[str, Any]:
    return {
        "from_to_matrix": np.linalg.inv(reg.b_to_a).tolist(),  # session_from -> session_to points (RAS mm)
        "halfway_to_from": reg.halfway_a.tolist(),
        "halfway_to_to": reg.halfway_b.tolist(),
        "skull_scale_skew": np.linalg.inv(reg.skull_scale).tolist(),
        "skull_volume_scaling_percent": -reg.scale_percent,
        "inverse_consistency_mm": reg.inverse_consistency_mm,
    }


def _registration(record: Mapping[str, Any]) -> Registration:
    return Registration(
        b_to_a=np.linalg.inv(np.asarray(record["from_to_matrix"])),
        skull_scale=np.linalg.inv(np.asarray(record["skull_scale_skew"])),
        inverse_consistency_mm=float(record["inverse_consistency_mm"]),
    )


def pair_sides(inputs: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A pair step's inputs ``from_<key>`` / ``to_<key>`` as one dict per session (the earlier, the later)."""
    sides: dict[str, dict[str, str]] = {"from": {}, "to": {}}
    for name, path in inputs.items():
        side, _, key = name.partition("_")
        if side in sides and key:
            sides[side][key] = path
    return sides["from"], sides["to"]


def run_halfway(inputs: Mapping[str, str], outputs: Mapping[str, str], seed: int = 1) -> None:
    """Register the pair (step ``halfway``; ``inputs``: each session's structural outputs ``layout.SCAN_KEYS``
    as ``from_<key>`` / ``to_<key>``); write the transform JSON and the halfway images."""
    paths_from, paths_to = pair_sides(inputs)
    a, b = load_scan(paths_from), load_scan(paths_to)
    with tempfile.TemporaryDirectory() as tmp:
        reg = register_pair(a, b, seed, tmp)
    grid, half = halfway_images(a, b, reg)
    save_array(half["a"], grid.affine, outputs["image_from"], np.float32)
    save_array(half["b"], grid.affine, outputs["image_to"], np.float32)
    save_array(half["brain_a"], grid.affine, outputs["brain_from"], np.float32)
    save_array(half["brain_b"], grid.affine, outputs["brain_to"], np.float32)
    save_json(
        {
            **_registration_record(reg),
            "Sources": [os.path.basename(paths_from["preproc"]), os.path.basename(paths_to["preproc"])],
            "Method": "skull-constrained two-way rigid registration, halfway space by matrix square root (SIENA)",
            "RegistrationVoxelSize_mm": REGISTRATION_VOXEL_MM,
            "SkullBand_mm": list(SKULL_BAND_MM),
            "HalfwayVoxelSize_mm": HALFWAY_VOXEL_MM,
            "Seed": seed,
            "SourceVoxelSizes_mm": [nib.affines.voxel_sizes(s.affine).tolist() for s in (a, b)],
        },
        outputs["transform"],
    )


def run_siena(inputs: Mapping[str, str], outputs: Mapping[str, str], ids: Mapping[str, Any]) -> None:
    """The edge method (step ``siena``; ``inputs`` as :func:`run_halfway`'s and its ``transform``): the flow map
    and the pair's JSON."""
    paths_from, paths_to = pair_sides(inputs)
    record = load_json(inputs["transform"])
    result = siena.siena(load_scan(paths_from), load_scan(paths_to), _registration(record))
    save_array(result.flow_map(), result.grid.affine, outputs["flow"], np.float32)
    save_json(
        pbvc_record(
            "siena",
            result.pbvc,
            ids,
            **result.qc_figures(),
            pbvc_self_calibrated=result.pbvc_self_calibrated,
            mean_edge_displacement_mm=result.forward.mean,
            skull_volume_scaling_percent=record["skull_volume_scaling_percent"],
            inverse_consistency_mm=record["inverse_consistency_mm"],
            parameters={
                "profile_mm": siena.PROFILE_MM,
                "search_mm": siena.SEARCH_MM,
                "window_mm": siena.WINDOW_MM,
                "calibration_scale": siena.CALIBRATION_SCALE,
                "halfway_voxel_mm": HALFWAY_VOXEL_MM,
            },
            Sources=[os.path.basename(paths_from["preproc"]), os.path.basename(paths_to["preproc"])],
        ),
        outputs["pbvc"],
    )


def run_jacobian(inputs: Mapping[str, str], outputs: Mapping[str, str], ids: Mapping[str, Any], seed: int = 1) -> None:
    """Jacobian integration (step ``jacobian``) on the halfway images (and the pair's transform JSON,
    for the acquisitions' voxel sizes): the determinant map and the JSON."""
    voxel_mm = jacobian.syn_voxel_mm(load_json(inputs["transform"])["SourceVoxelSizes_mm"])
    img, image_from = load_nifti(inputs["image_from"])
    _, image_to = load_nifti(inputs["image_to"])
    _, brain_from = load_nifti(inputs["brain_from"], allow_empty=True)
    _, brain_to = load_nifti(inputs["brain_to"], allow_empty=True)
    result = jacobian.jacobian_pbvc(
        ants_image(image_from, img.affine),
        ants_image(image_to, img.affine),
        brain_from,
        brain_to,
        seed,
        voxel_mm=voxel_mm,
    )
    save_array(result.determinant, ras_affine(result.grid), outputs["jacobian"], np.float32)
    save_json(
        pbvc_record(
            "jacobian",
            result.pbvc,
            ids,
            pbvc_forward=result.pbvc_forward,
            pbvc_backward=result.pbvc_backward,
            calibration_check_pbvc=result.calibration_check,
            shared_brain_fraction=result.shared_brain,
            calibration_check_expected=jacobian.CALIBRATION_EXPECTED,
            parameters={
                **{key: list(v) if isinstance(v, tuple) else v for key, v in jacobian.SYN.items()},
                "voxel_mm": voxel_mm,
            },
            Sources=[os.path.basename(inputs["image_from"]), os.path.basename(inputs["image_to"])],
        ),
        outputs["pbvc"],
    )
