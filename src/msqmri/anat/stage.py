"""Structural preprocessing of one session's T1w: the steps chained, with I/O at the edges.

N4 and template-based brain extraction (:mod:`msqmri.anat.brain_extraction`), partial-volume tissue
maps with lesions filled as WM (:mod:`msqmri.anat.segmentation`), intracranial estimate
(:mod:`msqmri.anat.skull`) and SIENAX-like volumes (:mod:`msqmri.atrophy.sienax`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from msqmri.anat import template
from msqmri.anat.brain_extraction import BrainExtraction, extract_brain
from msqmri.anat.mp2rage import head_from_inv2
from msqmri.anat.segmentation import CLASSES, fill_lesions, hard_labels
from msqmri.anat.skull import IntracranialFailure, intracranial_mask
from msqmri.atrophy.qc import PASS as QC_PASS  # a session's qc_flag when every check passes, as a pair's
from msqmri.atrophy.sienax import tissue_volumes, volume_scaling
from msqmri.core.io import MsqmriInputError, atomic_path, save_array, save_json
from msqmri.core.registration import ras_affine, register_to_t1w, resample_mask, to_ants, to_ants_averaged


@dataclass
class Structural:
    """The products of structural preprocessing, on the raw T1w grid."""

    corrected: ants.ANTsImage
    brain: np.ndarray
    icv: np.ndarray | None  # None where the ICV could not be estimated (volumes then say why)
    fractions: dict[str, np.ndarray]
    dseg: np.ndarray
    volumes: dict[str, float]
    to_template: str  # composite transform file, T1w -> template
    from_template: str  # composite transform file, template -> T1w


def load_t1w(
    path: str | os.PathLike[str], inv2_path: str | os.PathLike[str] | None = None, seed: int = 1
) -> ants.ANTsImage:
    """A validated T1w as an ANTs image (one-line :class:`MsqmriInputError` otherwise); a 4D series of
    repeats is realigned and averaged (:func:`msqmri.core.registration.to_ants_averaged`).

    An MP2RAGE ``UNIT1`` (Marques et al., NeuroImage 2010) comes with ``inv2_path``, its second-inversion
    magnitude: the UNIT1 is set to 0 outside the head masked on INV2 (:mod:`msqmri.anat.mp2rage`).
    """
    image = to_ants_averaged(path, seed)
    if float(np.percentile(image.numpy(), 99)) <= 0:
        raise MsqmriInputError(path, "image has no positive signal")
    if inv2_path is not None:
        inv2 = to_ants(inv2_path)
        if inv2.shape != image.shape or not np.allclose(ras_affine(inv2), ras_affine(image), atol=1e-3):
            raise MsqmriInputError(
                inv2_path, f"INV2 grid {inv2.shape} differs from the UNIT1's ({Path(path).name}, {image.shape})"
            )
        image = image * image.new_image_like(head_from_inv2(inv2.numpy(), inv2.spacing).astype(np.float32))
    return image


def load_lesion_mask(
    path: str | os.PathLike[str] | None, like: ants.ANTsImage, transform: str | os.PathLike[str] | None = None
) -> np.ndarray | None:
    """A lesion mask on the T1w grid (through the FLAIR -> T1w ``transform`` for FLAIR-space masks), or None."""
    return None if path is None else resample_mask(path, like, transform)


def measured_fractions(
    fractions: dict[str, np.ndarray], brain: np.ndarray, icv: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The partial-volume fractions that volumes are summed from: CSF in the intracranial mask, GM and WM
    in the brain mask and its one-voxel partial-volume shell (SIENAX segments the extracted brain); beyond
    it a voxel between CSF and GM in intensity is dura or a sinus wall, not cortex. Without an ICV every
    class is kept in that shell."""
    shell = ndimage.binary_dilation(brain)
    if icv is not None:
        shell &= icv
    csf = shell if icv is None else icv
    return {c: np.where(csf if c == "csf" else shell, f, 0.0).astype(np.float32) for c, f in fractions.items()}


def intracranial(extraction: BrainExtraction, spacing: tuple[float, ...]) -> tuple[np.ndarray | None, str | None]:
    """The session's intracranial mask, or None and why it cannot be estimated (:mod:`msqmri.anat.skull`)."""
    if extraction.registration_failure is not None:
        return None, extraction.registration_failure
    try:
        icv = intracranial_mask(
            extraction.corrected.numpy(),
            extraction.mask,
            extraction.head,
            spacing,
            extraction.template_icv,
            extraction.means["csf"],
        )
    except IntracranialFailure as failure:
        return None, str(failure)
    return icv, None


def preprocess(
    t1w: ants.ANTsImage,
    lesion: np.ndarray | None = None,
    seed: int = 1,
    backend: str = "template",
    t1w_path: str | os.PathLike[str] | None = None,
) -> Structural:
    """Brain mask, tissue maps, ICV and volumes of a T1w (``lesion``: optional mask on its grid)."""
    extraction = extract_brain(t1w, seed=seed, backend=backend, t1w_path=t1w_path)
    icv, icv_failure = intracranial(extraction, t1w.spacing)
    fractions = measured_fractions(extraction.fractions, extraction.mask, icv)
    if lesion is not None:
        lesion = lesion & extraction.mask
    fractions = fill_lesions(fractions, lesion)
    voxel_ml = float(np.prod(t1w.spacing)) / 1000.0
    volumes = tissue_volumes(fractions, lesion, voxel_ml)
    vscale = None if icv is None else volume_scaling(t1w.new_image_like(icv.astype(np.float32)), seed=seed)
    volumes.update(
        vscale=vscale,
        normalized_brain_volume_ml=None if vscale is None else volumes["brain_volume_ml"] * vscale,
        icv_volume_ml=None if icv is None else float(icv.sum()) * voxel_ml,
        csf_volume_ml=None if icv is None else volumes["csf_volume_ml"],
        **qc_fields({"brain_mask": extraction.repair, "icv": icv_failure and f"ICV n/a: {icv_failure}"}),
    )
    to_template, from_template = extraction.inverse_transforms, extraction.transforms
    return Structural(
        corrected=extraction.corrected,
        brain=extraction.mask,
        icv=icv,
        fractions=fractions,
        dseg=hard_labels(fractions, extraction.mask),
        volumes=volumes,
        to_template=to_template[0],
        from_template=from_template[0],
    )


def qc_fields(problems: Mapping[str, str | None]) -> dict[str, str]:
    """``qc_flag`` (``ok``, or the names of the failed checks joined by ``;``) and ``qc_note`` (their reasons)."""
    failed = {name: reason for name, reason in problems.items() if reason}
    return {"qc_flag": ";".join(failed) or QC_PASS, "qc_note": "; ".join(failed.values())}


def write(result: Structural, t1w_path: str | os.PathLike[str], outputs: Mapping[str, str]) -> None:
    """Write every product next to each other, on the raw T1w grid (keys: those of ``layout.STRUCTURAL``)."""
    affine = nib.load(str(t1w_path)).affine

    def save(array: np.ndarray, key: str, dtype: type) -> None:
        save_array(array, affine, outputs[key], dtype)

    save(result.corrected.numpy(), "preproc", np.float32)
    save(result.brain, "brain_mask", np.uint8)
    save(np.zeros_like(result.brain) if result.icv is None else result.icv, "icv_mask", np.uint8)
    save(result.dseg, "dseg", np.uint8)
    for c in CLASSES:
        save(result.fractions[c], f"probseg_{c}", np.float32)
    for key, source in (("to_template", result.to_template), ("from_template", result.from_template)):
        with atomic_path(outputs[key]) as tmp:
            shutil.copyfile(source, tmp)
    save_json(
        {**result.volumes, "Sources": [str(Path(t1w_path).name)], "TemplateSpace": template.SPACE}, outputs["volumes"]
    )


def run_structural(
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    ids: dict[str, str | None],
    seed: int = 1,
    backend: str = "template",
) -> None:
    """Load, preprocess and write one session (the ``structural`` step); ``ids`` are its BIDS ids.

    ``inputs``: ``t1w``; optional ``lesion`` (a mask in T1w space, or in FLAIR space with ``lesion_transform``,
    FLAIR -> T1w) and ``inv2`` (a UNIT1's INV2 magnitude, see :func:`load_t1w`).
    """
    t1w_path, inv2_path = inputs["t1w"], inputs.get("inv2")
    t1w = load_t1w(t1w_path, inv2_path, seed)
    lesion = load_lesion_mask(inputs.get("lesion"), t1w, inputs.get("lesion_transform"))
    with tempfile.TemporaryDirectory() as tmp:
        read_by_cnn = t1w_path
        if backend == "deepbet" and (inv2_path is not None or nib.load(t1w_path).ndim > 3):
            # the CNN reads a file: the T1w as loaded (masked on INV2, or its repeats averaged)
            read_by_cnn = os.path.join(tmp, "t1w_as_loaded.nii.gz")
            ants.image_write(t1w, read_by_cnn)
        result = preprocess(t1w, lesion, seed=seed, backend=backend, t1w_path=read_by_cnn)
    result.volumes.update(ids)
    write(result, t1w_path, outputs)


def run_flair_to_t1w(inputs: Mapping[str, str], outputs: Mapping[str, str], seed: int = 1) -> None:
    """The ``flair_to_t1w`` step: rigid FLAIR -> T1w registration and the FLAIR resampled onto the T1w grid."""
    register_to_t1w(inputs["flair"], inputs["t1w"], outputs["transform"], outputs["flair"], seed=seed)
