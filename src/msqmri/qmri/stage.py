"""The MTR and R2* stages of one session, with I/O at the edges (algorithms in :mod:`msqmri.qmri.mtr` and
:mod:`msqmri.qmri.r2star`).

Each stage registers its reference image (MT-off; the first echo) rigidly to the session's
bias-corrected T1w, brings the T1w brain mask back onto the acquisition grid (dilated by one voxel
so that resampling to T1w space sees no zeros at the brain edge), computes the map on the native
grid and resamples it to T1w space. Every map has a JSON sidecar with Sources,
EstimationAlgorithm and Units.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from msqmri.core.io import MsqmriInputError, atomic_path, load_nifti, save_array, save_json
from msqmri.core.registration import (
    ants_image,
    map_to_t1w,
    realign,
    resample_mask,
    rigid,
    rigid_matrix,
    rigid_parameters,
)
from msqmri.inputs.bids import Echo, sibling
from msqmri.inputs.checks import load_echoes, load_mt_pair
from msqmri.qmri import mtr as mtr_method
from msqmri.qmri import r2star as r2star_method

Paths = Mapping[str, str]


def mtr(inputs: Paths, outputs: Paths, seed: int = 1) -> None:
    """MTR in MT-off space and in T1w space, after rigid MT-on -> MT-off registration."""
    on_path, off_path = Path(inputs["mt_on"]), Path(inputs["mt_off"])
    off_img, on, off = load_mt_pair(on_path, off_path)
    affine = off_img.affine
    off_ants = ants_image(off, affine)
    on_to_off = rigid_matrix(ants_image(on, affine), off_ants, seed)
    on = realign(on, affine, on_to_off, order=3)  # cubic: less blurring of tissue borders than trilinear
    brain = _native_brain(off_ants, inputs, outputs["transform"], seed)
    if mtr_method.swapped_by_contrast(on, off, brain):
        raise MsqmriInputError(on_path, f"brighter than {off_path.name} in the brain: MT-on and MT-off look swapped")
    native = mtr_method.mtr_map(on, off, brain)
    translation, rotation = np.split(rigid_parameters(on_to_off[None])[0], 2)
    sidecar = {
        "Sources": [on_path.name, off_path.name],
        "MTState": {on_path.name: True, off_path.name: False},
        "EstimationAlgorithm": "MTR = 100 (M_off - M_on) / M_off in float64 after rigid MT-on -> MT-off "
        "registration (antspyx, Mattes MI) and cubic B-spline resampling of MT-on; no smoothing",
        "Units": "percent",
        "ClipRange": list(mtr_method.MTR_RANGE),
        "MTonToMToffTranslationMm": float(np.linalg.norm(translation)),
        "MTonToMToffRotationDeg": float(np.degrees(np.linalg.norm(rotation))),
    }
    _write_maps({"mtr": native}, affine, outputs, {"mtr": sidecar}, inputs, ("mtr",))


def r2star(
    inputs: Mapping[str, Any],
    outputs: Paths,
    method: str = "wls",
    floor_snr: float = r2star_method.DEFAULT_FLOOR_SNR,
    seed: int = 1,
    threads: int = 1,
) -> None:
    """R2*, T2*, S0 and the fit's normalised residual in MEGRE space; R2* in T1w space (``inputs``: the
    ``echoes`` in echo order, their sidecars beside them, and the T1w and its brain mask)."""
    echoes = tuple(Echo(k, Path(p), _existing(sibling(Path(p), ".json"))) for k, p in enumerate(inputs["echoes"], 1))
    first_img, data, times = load_echoes(echoes)
    if method == "arlo" and (problem := r2star_method.spacing_problem(times)):
        raise MsqmriInputError(echoes[-1].sidecar or echoes[-1].image, problem)
    affine = first_img.affine
    brain = _native_brain(ants_image(data[..., 0], affine), inputs, outputs["transform"], seed)
    sigma = r2star_method.background_sigma(data[..., 0])
    maps = r2star_method.fit_r2star(data, times, brain, method, sigma, floor_snr, threads)
    dropped = int(np.count_nonzero((maps.n_echoes > 0) & (maps.n_echoes < len(times))))
    common = {
        "Sources": [e.image.name for e in echoes],
        "EchoTime": times.tolist(),
        "EstimationAlgorithm": {
            "wls": "weighted log-linear least squares (weights: squared predicted signal, 2 reweightings)",
            "arlo": "ARLO, auto-regression on linear operations (Pei et al. 2015)",
            "nlls": "nonlinear least squares (Levenberg-Marquardt) started from the weighted log-linear fit",
        }[method],
        "NoiseSigma": sigma,
        "NoiseFloor": f"echoes where the fitted signal is below {floor_snr:g} x NoiseSigma dropped and the voxel "
        "refitted at each reweighting (first two echoes kept)"
        if sigma and floor_snr > 0
        else "none (no background to estimate the noise from, or disabled)",
        "VoxelsWithEchoesDropped": dropped,
    }
    sidecars = {
        "r2star": {**common, "Units": "1/s", "ClipRange": list(r2star_method.R2STAR_RANGE)},
        "t2star": {**common, "Units": "s", "Description": f"1/R2*, at most {r2star_method.T2STAR_MAX:g} s"},
        "s0": {**common, "Units": "arbitrary", "Description": "signal extrapolated to TE = 0"},
        "nrmse": {
            **common,
            "Units": "unitless",
            "Description": "RMS residual of the fit over the echoes used, divided by their mean signal",
        },
    }
    native = {"r2star": maps.r2star, "t2star": maps.t2star, "s0": maps.s0, "nrmse": maps.nrmse}
    _write_maps(native, affine, outputs, sidecars, inputs, ("r2star",))


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _native_brain(reference: ants.ANTsImage, inputs: Paths, transform_out: str, seed: int) -> np.ndarray:
    """Register ``reference`` rigidly to the T1w, save the transform and return the T1w brain mask
    on the reference grid (dilated by one voxel)."""
    t1w_img, t1w = load_nifti(inputs["t1w"])
    transform = rigid(reference, ants_image(t1w, t1w_img.affine), seed)
    with atomic_path(transform_out) as tmp:
        shutil.copyfile(transform, tmp)
    brain = resample_mask(inputs["t1w_mask"], reference, transform_out, invert=True)
    if not brain.any():
        raise MsqmriInputError(inputs["t1w_mask"], "brain mask is empty on the acquisition grid")
    return ndimage.binary_dilation(brain)


def _write_maps(
    maps: Mapping[str, np.ndarray],
    affine: np.ndarray,
    outputs: Paths,
    sidecars: Mapping[str, dict[str, Any]],
    inputs: Paths,
    in_t1w: tuple[str, ...],
) -> None:
    """Native maps with sidecars, and the ``in_t1w`` ones resampled to T1w space inside the T1w brain mask."""
    for name, data in maps.items():
        save_array(data, affine, outputs[name], np.float32)
        save_json(sidecars[name], outputs[f"{name}_json"])
    t1w_img = nib.load(inputs["t1w"])
    _, t1w_brain = load_nifti(inputs["t1w_mask"], allow_empty=True)
    for name in in_t1w:
        moved = map_to_t1w(maps[name], affine, t1w_img, outputs["transform"]) * (t1w_brain > 0)
        save_array(moved, t1w_img.affine, outputs[f"{name}_t1w"], np.float32)
        record = {
            **sidecars[name],
            "Sources": [Path(outputs[name]).name, Path(outputs["transform"]).name],
            "Resampling": "linear interpolation onto the T1w grid, T1w brain mask applied",
        }
        save_json(record, outputs[f"{name}_t1w_json"])
