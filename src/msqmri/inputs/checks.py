"""Validation of every input image of a session before any processing.

:func:`check_session` loads each modality the session has and verifies what later stages rely
on: dimensionality, matching grids, echo times and gradient tables. It returns a JSON-able
report, or raises :class:`MsqmriInputError` with a one-line message naming the offending file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from msqmri.core.io import MsqmriInputError, load_json, load_nifti, save_json
from msqmri.dwi.preprocessing import read_gradients
from msqmri.inputs.bids import Dwi, Echo, Session, sibling
from msqmri.qc.summary import geometry
from msqmri.qmri.mtr import mt_state_problem

MAX_ECHO_TIME_S = 1.0  # larger values are almost certainly milliseconds
MIN_ECHOES = 3  # an R2* fit with a fit-quality measure needs three echoes


def check_session(session: Session) -> dict[str, Any]:
    """Validate every modality present in ``session``; return a JSON-able description of them."""
    t1w, _ = load_nifti(session.t1w, ndim=(3, 4))  # 4D: repeats, averaged by the structural step
    report: dict[str, Any] = {
        "participant_id": session.participant_id,
        "session_id": session.session_id,
        "acq_time": session.acq_time.isoformat() if session.acq_time else None,
        "treatment_start": session.treatment_start.isoformat() if session.treatment_start else None,
        "relapses": session.relapses,
        "edss": session.edss,
        "treatment": session.treatment,
        "rebaseline": session.rebaseline,
        "acq_time_source": session.acq_time_source,
        "selection": {role: {"file": name, "rule": rule} for role, name, rule in session.selection},
        "T1w": _describe(session.t1w, t1w),
    }
    references = {"T1w": (session.t1w, t1w)}
    if session.flair is not None:
        flair, _ = load_nifti(session.flair)
        report["FLAIR"] = _describe(session.flair, flair)
        references["FLAIR"] = (session.flair, flair)
    if session.mt_on is not None or session.mt_off is not None:
        report["MTR"] = check_mt_pair(session.mt_on, session.mt_off, dict(session.sidecars))
    if session.megre:
        report["MEGRE"] = check_echoes(session.megre)
    if session.dwi is not None:
        report["dwi"] = check_dwi(session.dwi)
    if session.t1w_ce is not None:
        report["T1w_ce"] = _describe(session.t1w_ce, load_nifti(session.t1w_ce)[0])
    masks = {"T1w": session.lesion_mask_t1w, "FLAIR": session.lesion_mask_flair}
    report["lesion_masks"] = {
        space: check_lesion_mask(path, references.get(space), space)
        for space, path in masks.items()
        if path is not None
    }
    report["modalities"] = [name for name in ("T1w", "FLAIR", "MTR", "MEGRE", "dwi") if name in report]
    return report


def _describe(path: Path, img: nib.Nifti1Image) -> dict[str, Any]:
    return {
        "file": path.name,
        "dtype": str(img.get_data_dtype()),
        **geometry(img.affine, img.shape, img.header.get_zooms()),
    }


def require_same_grid(path: Path, img: nib.Nifti1Image, ref_path: Path, ref: nib.Nifti1Image) -> None:
    """Raise naming ``path`` unless ``img`` has the shape and affine of ``ref``."""
    if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-4):
        raise MsqmriInputError(
            path, f"grid {img.shape[:3]} with its affine differs from {ref_path.name} {ref.shape[:3]}"
        )


def check_mt_pair(
    mt_on: Path | None, mt_off: Path | None, sidecars: Mapping[Path, Path] | None = None
) -> dict[str, Any]:
    """Both MT images must exist, be 3D, share a grid and carry no contradicting ``MTState``."""
    on, off = require_mt_pair(mt_on, mt_off)
    img, _, _ = load_mt_pair(on, off, sidecars)
    return {"on": on.name, **_describe(off, img)}


def require_mt_pair(mt_on: Path | None, mt_off: Path | None) -> tuple[Path, Path]:
    """Both images of an MT pair (a one-line error names the one whose partner is missing)."""
    if mt_on is None or mt_off is None:
        present = mt_on or mt_off
        missing = "mt-off" if mt_off is None else "mt-on"
        raise MsqmriInputError(present or "MT pair", f"the {missing} partner of this MT image is missing")
    return mt_on, mt_off


def load_mt_pair(
    mt_on: Path, mt_off: Path, sidecars: Mapping[Path, Path] | None = None
) -> tuple[nib.Nifti1Image, np.ndarray, np.ndarray]:
    """The validated MT-off image and the MT-on and MT-off data (one-line errors name the file); ``sidecars``:
    image -> its inherited JSON sidecar (default: the JSON beside the image)."""
    for path, expected in ((mt_on, True), (mt_off, False)):
        sidecar = sidecars.get(path) if sidecars is not None else sibling(path, ".json")
        if sidecar is not None and sidecar.is_file():
            problem = mt_state_problem(load_json(sidecar).get("MTState"), expected)
            if problem:
                raise MsqmriInputError(sidecar, problem)
    off_img, off = load_nifti(mt_off)
    on_img, on = load_nifti(mt_on)
    require_same_grid(mt_on, on_img, mt_off, off_img)
    return off_img, on, off


def check_echoes(echoes: tuple[Echo, ...]) -> dict[str, Any]:
    """At least :data:`MIN_ECHOES` echo images on one 3D grid, sidecars giving EchoTime (s) increasing
    with echo index."""
    img, _, times = load_echoes(echoes)
    return {
        "files": [echo.image.name for echo in echoes],
        "echo_times_s": times.tolist(),
        **_describe(echoes[0].image, img),
    }


def load_echoes(echoes: tuple[Echo, ...]) -> tuple[nib.Nifti1Image, np.ndarray, np.ndarray]:
    """The first echo's image, the (x, y, z, echo) magnitude data and the echo times (s), validated
    as :func:`check_echoes` describes (one-line errors name the file)."""
    if len(echoes) < MIN_ECHOES:
        raise MsqmriInputError(echoes[0].image, f"{len(echoes)} MEGRE echo(es) found; R2* needs at least {MIN_ECHOES}")
    first_img, first = load_nifti(echoes[0].image)
    data = np.empty((*first.shape, len(echoes)), dtype=np.float32)
    times: list[float] = []
    for k, echo in enumerate(echoes):
        img, volume = (first_img, first) if k == 0 else load_nifti(echo.image)
        require_same_grid(echo.image, img, echoes[0].image, first_img)
        data[..., k] = volume
        times.append(echo_time(echo))
        if k and times[-1] <= times[-2]:
            raise MsqmriInputError(
                echo.sidecar, f"EchoTime {times[-1]:g} s is not larger than the previous echo's {times[-2]:g} s"
            )
    return first_img, data, np.asarray(times)


def echo_time(echo: Echo) -> float:
    """EchoTime in seconds from the echo's sidecar."""
    if echo.sidecar is None:
        raise MsqmriInputError(echo.image, "no JSON sidecar (EchoTime is needed for R2*)")
    value = load_json(echo.sidecar).get("EchoTime")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise MsqmriInputError(echo.sidecar, f"EchoTime missing or not a positive number (got {value!r})")
    if value > MAX_ECHO_TIME_S:
        raise MsqmriInputError(echo.sidecar, f"EchoTime {value:g} looks like milliseconds; BIDS uses seconds")
    return float(value)


def check_dwi(dwi: Dwi) -> dict[str, Any]:
    """The series is 4D and its .bval/.bvec tables are valid for it (see
    :func:`msqmri.dwi.preprocessing.read_gradients`)."""
    img, _ = load_nifti(dwi.image, ndim=4)
    n_volumes = img.shape[3]
    if dwi.bval is None or dwi.bvec is None:
        missing = ".bval" if dwi.bval is None else ".bvec"
        raise MsqmriInputError(dwi.image, f"no matching {missing} file")
    gradients = read_gradients(dwi.bval, dwi.bvec, n_volumes, img.affine)
    return {
        "file": dwi.image.name,
        "n_volumes": n_volumes,
        "b_values": sorted({round(float(b)) for b in gradients.bvals}),
        **geometry(img.affine, img.shape, img.header.get_zooms()),
    }


def check_lesion_mask(path: Path, reference: tuple[Path, nib.Nifti1Image] | None, space: str) -> dict[str, Any]:
    """A 3D lesion mask on the grid of the image it was drawn on (may be empty)."""
    if reference is None:
        raise MsqmriInputError(path, f"mask is in space-{space} but the session has no {space} image")
    img, data = load_nifti(path, allow_empty=True)
    require_same_grid(path, img, *reference)
    return {"file": path.name, "n_voxels": int(np.count_nonzero(data))}


def write_check(inputs: Mapping[str, Any], outputs: Mapping[str, str], session: Session) -> None:
    """The ``check_inputs`` step: :func:`check_session` as the session's input QC JSON (``inputs``: its raw
    files, listed so that changing one reruns the check)."""
    save_json(check_session(session), outputs["check"])
