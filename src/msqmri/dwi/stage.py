"""The diffusion stage of one session, with I/O at the edges: preprocessing (:mod:`msqmri.dwi.preprocessing`),
b=0 -> T1w registration, tensor fit (:mod:`msqmri.dwi.tensor`) and the maps brought to T1w space.

Every map is written with a JSON sidecar holding Sources, EstimationAlgorithm and Units.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from msqmri.core.io import MsqmriInputError, atomic_path, load_nifti, save_array, save_json, save_text, save_tsv
from msqmri.core.registration import ants_image, map_to_t1w, register, resample_mask
from msqmri.dwi import preprocessing, tensor

Paths = Mapping[str, str]
MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: the b=0 -> T1w transform: ANTs transform type of each configuration choice
REGISTRATIONS = {"rigid": "Rigid", "affine": "Affine"}


def load_dwi(
    image: str | os.PathLike[str], bval: str | os.PathLike[str] | None, bvec: str | os.PathLike[str] | None
) -> tuple[np.ndarray, np.ndarray, preprocessing.Gradients]:
    """A validated 4D DWI series (data, affine) and its gradients (one-line errors name the file)."""
    img, data = load_nifti(image, ndim=4)
    if bval is None or bvec is None:
        raise MsqmriInputError(image, f"no matching {'.bval' if bval is None else '.bvec'} file")
    if float(np.percentile(data[..., 0], 99)) <= 0:
        raise MsqmriInputError(image, "first volume has no positive signal")
    return data, img.affine, preprocessing.read_gradients(bval, bvec, data.shape[3], img.affine)


def load_b0_series(
    paths: Sequence[str | os.PathLike[str]], shape: tuple[int, ...], affine: np.ndarray
) -> list[np.ndarray]:
    """b=0 series stored apart from the DWI series, each (x, y, z, n), validated to lie on its grid."""
    series = []
    for path in paths:
        img, data = load_nifti(path, ndim=(3, 4))
        if data.shape[:3] != shape[:3] or not np.allclose(img.affine, affine, atol=1e-3):
            raise MsqmriInputError(
                path, f"b=0 series grid {data.shape[:3]} with its affine differs from the DWI series' {shape[:3]}"
            )
        series.append(data.reshape(*shape[:3], -1))
    return series


def preprocess(inputs: Paths, outputs: Paths, denoise: str = "none", motion_correction: bool = True) -> None:
    """Merge b=0 series stored apart (``b0_series``), denoise, correct motion (rotating b-vectors), average
    the b=0 volumes and mask the brain."""
    data, affine, gradients = load_dwi(inputs["dwi"], inputs.get("bval"), inputs.get("bvec"))
    extra = list(inputs.get("b0_series") or [])
    if extra:
        data, gradients = preprocessing.with_b0_volumes(data, gradients, load_b0_series(extra, data.shape, affine))
    data = preprocessing.denoise(data, denoise)
    parameters = np.zeros((data.shape[3], 6))
    if motion_correction:
        corrected = preprocessing.motion_correct(data, affine, gradients)
        data, gradients, parameters = corrected.data, corrected.gradients, corrected.parameters()
    b0 = preprocessing.mean_b0(data, gradients)
    mask = preprocessing.b0_brain_mask(b0)
    if not mask.any():
        raise MsqmriInputError(inputs["dwi"], "no brain found on the mean b=0 image")
    save_array(data, affine, outputs["dwi"], np.float32)
    save_text(" ".join(f"{b:g}" for b in gradients.bvals) + "\n", outputs["bval"])
    fsl = preprocessing.to_fsl(gradients.bvecs, affine).T
    save_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in fsl) + "\n", outputs["bvec"])
    save_array(b0, affine, outputs["b0"], np.float32)
    save_array(mask, affine, outputs["mask"], np.uint8)
    motion = pd.DataFrame(parameters, columns=list(MOTION_COLUMNS))
    motion["framewise_displacement"] = preprocessing.framewise_displacement(parameters)
    save_tsv(motion, outputs["motion"])
    save_json(
        {
            "Sources": [Path(p).name for p in (inputs["dwi"], inputs["bval"], inputs["bvec"], *extra)],
            "Denoising": denoise,
            "MotionCorrection": "rigid to the mean b=0, b-vectors rotated" if motion_correction else "none",
            "MeanFramewiseDisplacement": float(motion["framewise_displacement"].mean()),
            "BvecFrame": "FSL convention (voxel axes of this image)",
        },
        outputs["sidecar"],
    )


def register_b0_to_t1w(inputs: Paths, outputs: Paths, kind: str = "rigid", seed: int = 1) -> None:
    """Register the brain-masked mean b=0 to the brain-masked T1w (mutual information; Mattes et al. 2003)."""
    b0_img, b0 = load_nifti(inputs["b0"])
    _, b0_mask = load_nifti(inputs["mask"], allow_empty=True)
    t1w_img, t1w = load_nifti(inputs["t1w"])
    _, t1w_mask = load_nifti(inputs["t1w_mask"], allow_empty=True)
    for key, mask in (("mask", b0_mask), ("t1w_mask", t1w_mask)):
        if not mask.any():
            raise MsqmriInputError(inputs[key], "mask is empty")
    reg = register(
        ants_image(t1w * (t1w_mask > 0), t1w_img.affine),
        ants_image(b0 * (b0_mask > 0), b0_img.affine),
        seed,
        type_of_transform=REGISTRATIONS[kind],
        aff_metric="mattes",
    )
    with atomic_path(outputs["transform"]) as tmp:
        shutil.copyfile(reg["fwdtransforms"][0], tmp)


def fit(
    inputs: Paths,
    outputs: Paths,
    method: str = "WLS",
    mask_source: str = "b0",
    threads: int = 1,
    max_b: float = tensor.TENSOR_MAX_B,
) -> None:
    """Fit the tensor on the shells up to ``max_b`` (:func:`msqmri.dwi.tensor.tensor_volumes`) in the brain (the b=0
    mask, or the T1w brain mask brought across) and write the maps."""
    if mask_source == "t1w" and not {"t1w_mask", "transform"} <= inputs.keys():
        raise ValueError("the tensor fit in the T1w brain mask (mask_source='t1w') needs t1w_mask and transform")
    data, affine, gradients = load_dwi(inputs["dwi"], inputs["bval"], inputs["bvec"])
    keep = tensor.tensor_volumes(gradients, max_b)
    if not keep.all():
        data, gradients = data[..., keep], preprocessing.Gradients(gradients.bvals[keep], gradients.bvecs[keep])
    problem = tensor.scheme_problem(gradients, method)
    if problem:
        raise MsqmriInputError(inputs["bvec"], problem)
    if mask_source == "t1w":
        like = ants_image(data[..., 0], affine)
        brain = resample_mask(inputs["t1w_mask"], like, inputs["transform"], invert=True)
    else:
        _, brain = load_nifti(inputs["mask"], allow_empty=True)
        brain = brain > 0
    if not brain.any():
        raise MsqmriInputError(inputs.get("t1w_mask", inputs["mask"]), "brain mask is empty on the DWI grid")
    sigma = tensor.noise_sigma(data, gradients, brain) if method.upper() == "RESTORE" else None
    maps = tensor.fit_tensor(data, gradients, brain, method=method, sigma=sigma, threads=threads)
    images = {**maps.scalars(), "v1": maps.v1, "colorfa": maps.colour_fa()}
    algorithm = f"dipy TensorModel {method.upper()} (Basser et al. 1994)"
    sources = [Path(inputs[k]).name for k in ("dwi", "bval", "bvec")]
    shells = sorted({round(float(b)) for b in gradients.bvals[~gradients.b0]})
    for name, array in images.items():
        save_array(array, affine, outputs[name], np.float32)
        save_json(
            {
                **_sidecar(name, sources, algorithm),
                "TensorBValues": shells,
                "TensorVolumes": int(keep.sum()),
                "ExcludedVolumes": int((~keep).sum()),
            },
            outputs[f"{name}_json"],
        )


def to_t1w(inputs: Paths, outputs: Paths) -> None:
    """Bring the scalar tensor maps onto the T1w grid through the b=0 -> T1w transform (linear interpolation)."""
    t1w_img = nib.load(inputs["t1w"])
    for name in tensor.SCALARS:
        img, data = load_nifti(inputs[name], allow_empty=True)
        moved = map_to_t1w(data, img.affine, t1w_img, inputs["transform"])
        save_array(np.clip(moved, 0.0, None), t1w_img.affine, outputs[name], np.float32)
        record = _sidecar(
            name,
            [Path(inputs[name]).name, Path(inputs["transform"]).name],
            "tensor map resampled to T1w space (linear interpolation)",
        )
        save_json(record, outputs[f"{name}_json"])


def _sidecar(name: str, sources: list[str], algorithm: str) -> dict[str, Any]:
    units = tensor.SCALARS.get(name, "unitless")
    description = {
        "v1": "principal eigenvector, world RAS components",
        "colorfa": "direction-encoded colour FA: |V1| x FA as RGB (world x, y, z)",
    }
    record: dict[str, Any] = {"Sources": sources, "EstimationAlgorithm": algorithm, "Units": units}
    if name in description:
        record["Description"] = description[name]
    return record
