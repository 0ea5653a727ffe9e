"""Template-based brain extraction of a T1w head image, with no download at run time.

1. Head mask (Otsu-like, ``ants.get_mask``) cut :data:`FIELD_OF_VIEW_MM` below the top of the head (the
   neck and shoulders of a long field of view, as FSL's ``robustfov`` crops them), N4 bias correction inside it.
2. A rough brain by morphology: tissue-bright voxels, opened with a 4 mm ball so the dark CSF/skull
   gap cuts the brain from the scalp, largest component, hole-filled (as in BET's initial estimate,
   Smith 2002, and ANTs' brain extraction, Avants et al. 2010).
3. The MNI template brain registered to the rough-masked subject (rigid, affine, then SyN;
   Avants et al. 2008), its brain mask and tissue priors warped back.
4. Refinement: Atropos 3-class segmentation with the warped priors in a band around the prior mask,
   then partial-volume fractions from the class means (CSF from the ventricles); the brain is the largest
   component of voxels at least half GM + WM (within one voxel of the Atropos brain and, for both backends, where
   the registered template brain reaches :data:`MIN_TEMPLATE_BRAIN`: dura and venous sinuses at the level of GM
   lie beyond it), without the WM-bright voxels of its outer shell where the template has no WM (sinuses, marrow,
   optic nerves, the cord below the template's medulla), closed by :data:`CLOSING_MM` (the sulcal CSF opening at
   the surface, as BET's mask takes it in), joined with the template's warped ventricles, holes filled (lesions).
5. The registered template bounds the brain: where its brain lies on the subject's brain tissue (the
   registration is right), nothing of the rough brain, the refinement band or the final mask lies more than
   :data:`BOUND_MM` outside its intracranial mask, so a scalp touching the brain through a thin dark layer, or
   tissue below the skull base, is cut where the template says skull (the atlas constraint of ROBEX and BEaST:
   Iglesias et al., IEEE TMI 2011; Eskildsen et al., NeuroImage 2012). A final mask still larger than the
   registered template brain by :data:`MAX_EXCESS` is repaired to within :data:`REPAIR_MM` of it, and says so.
   A registration that failed bounds nothing and is reported (:attr:`BrainExtraction.registration_failure`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from msqmri.anat import template
from msqmri.anat.bias import n4
from msqmri.anat.segmentation import class_means, partial_volumes, segment
from msqmri.core.intensity import white_matter_level
from msqmri.core.io import MsqmriError
from msqmri.core.morphology import ball, filled, largest_component, near
from msqmri.core.registration import ras_affine, register

#: resolution (mm) of the template used for registration: enough for a brain mask, and fast
REGISTRATION_RESOLUTION = 2.0
#: outer brain shell (mm) where WM-bright voxels without template WM are rejected, and that prior's level
SURFACE_MM = 3.0
NO_WM_PRIOR = 0.05
#: the head is kept this far (mm) below its top: a brain ends 150-180 mm below the vertex of the scalp (FSL's
#: robustfov keeps 170 mm)
FIELD_OF_VIEW_MM = 190.0
#: the registered template brain lies at least this much on the rough brain when the registration is right
#: (a rough brain that leaks still holds the whole brain; a registration that failed puts the template elsewhere)
MIN_REGISTRATION_SHARE = 0.85
#: how far (mm) outside the registered template's intracranial mask the brain may reach
BOUND_MM = 4.0
#: the brain (either backend's) lies where the registered template brain (its mask, interpolated) is at least
#: this: about one template voxel (2 mm) beyond its edge
MIN_TEMPLATE_BRAIN = 0.05
#: a mask larger than the registered template brain by this fraction is repaired to within REPAIR_MM of it
MAX_EXCESS = 0.15
REPAIR_MM = 2.0
#: gaps closed in the brain mask (mm): the CSF of sulci opening at the surface, which BET's mask also takes in
CLOSING_MM = 2.5


@dataclass
class BrainExtraction:
    """Everything brain extraction computes that later steps reuse (all on the T1w grid)."""

    mask: np.ndarray  # bool
    head: np.ndarray  # bool
    corrected: ants.ANTsImage  # N4 bias-corrected T1w
    priors: dict[str, ants.ANTsImage]  # template csf/gm/wm/icv warped to the subject
    posteriors: dict[str, np.ndarray]  # Atropos csf/gm/wm posteriors in the refinement band
    fractions: dict[str, np.ndarray]  # csf/gm/wm partial-volume fractions in the refinement band
    means: dict[str, float]  # csf/gm/wm pure-tissue intensities of ``corrected`` (CSF: the ventricles')
    ventricles: np.ndarray  # bool: the template's ventricles warped to the subject
    transforms: list[str]  # template -> subject (one composite .h5)
    inverse_transforms: list[str]  # subject -> template (one composite .h5)
    registration_failure: str | None = None  # why the template registration is not to be trusted, if it is not
    repair: str | None = None  # what the volume check against the registered template brain repaired, or why
    # the mask could not be checked

    @property
    def template_icv(self) -> np.ndarray:
        """The template's intracranial mask as registered to the subject."""
        return self.priors["icv"].numpy() >= 0.5


def head_mask(image: ants.ANTsImage) -> np.ndarray:
    """Head (everything above the background noise), holes filled (:func:`msqmri.core.morphology.filled`: the dark
    CSF and skull around the brain are head even where the spinal canal opens them to a cut field of view), without
    what lies more than :data:`FIELD_OF_VIEW_MM` below its top."""
    head = filled(ants.get_mask(image, cleanup=2).numpy() > 0)
    return head & below_top(head, ras_affine(image), FIELD_OF_VIEW_MM)


def below_top(mask: np.ndarray, affine: np.ndarray, mm: float) -> np.ndarray:
    """Voxels at most ``mm`` below the highest voxel of ``mask`` along the world's superior axis (RAS z)."""
    index = np.ogrid[tuple(slice(0, n) for n in mask.shape)]
    height = sum(np.float32(affine[2, a]) * index[a] for a in range(3)) + np.float32(affine[2, 3])
    return height >= (height[mask].max() if mask.any() else height.max()) - mm


def registration_failure(prior_brain: np.ndarray, rough: np.ndarray) -> str | None:
    """Why the template registration failed, or None: the registered template brain must lie on the rough
    brain (:data:`MIN_REGISTRATION_SHARE`)."""
    share = float((prior_brain & rough).sum() / max(int(prior_brain.sum()), 1))
    if share >= MIN_REGISTRATION_SHARE:
        return None
    return f"template registration failed: only {share:.0%} of the registered template brain lies on brain tissue"


def repaired(mask: np.ndarray, prior_brain: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, str | None]:
    """``mask`` kept within :data:`REPAIR_MM` of the registered template brain when it exceeds that brain by more
    than :data:`MAX_EXCESS`, and what was done (None when nothing was)."""
    excess = mask.sum() / max(int(prior_brain.sum()), 1) - 1.0
    if excess <= MAX_EXCESS:
        return mask, None
    voxel_ml = float(np.prod(spacing)) / 1000.0
    fixed = largest_component(mask & near(prior_brain, spacing, REPAIR_MM))
    return fixed, (
        f"brain mask {mask.sum() * voxel_ml / 1000:.2f} L, {excess:.0%} beyond the registered template brain: "
        f"cut to within {REPAIR_MM:g} mm of it ({fixed.sum() * voxel_ml / 1000:.2f} L)"
    )


def template_brain_reach(prior_probability: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Where the registered template brain reaches :data:`MIN_TEMPLATE_BRAIN`, one voxel further out on voxels
    coarser than the registration's (their partial volume blurs its edge by a voxel)."""
    reach = prior_probability >= MIN_TEMPLATE_BRAIN
    coarse = max(spacing)
    return near(reach, spacing, coarse) if coarse > REGISTRATION_RESOLUTION else reach


def rough_brain(data: np.ndarray, head: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Initial brain estimate by thresholding and morphological opening (see module docstring)."""
    wm = white_matter_level(data, head)
    tissue = head & (data > 0.45 * wm) & (data < 1.3 * wm)
    element = ball(4.0, spacing)
    core = largest_component(ndimage.binary_erosion(tissue, element))
    return ndimage.binary_fill_holes(ndimage.binary_dilation(core, element) & tissue)


def uncovered_bright(brain: np.ndarray, wm: np.ndarray, wm_prior: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """WM-bright voxels at the brain's outer surface where the template has no white matter: venous sinuses,
    fatty marrow, optic nerves and the spinal cord below the template's medulla, which a T1w threshold
    takes for WM (cerebral white matter is everywhere covered by cortex). Cutting the cord where the
    template's brainstem ends puts the brainstem cut at the same anatomical level in every session."""
    surface = brain & (ndimage.distance_transform_edt(brain, sampling=spacing) <= SURFACE_MM)
    return surface & (wm >= 0.5) & (wm_prior < NO_WM_PRIOR)


def _deepbet_run_bet() -> Callable[..., Any]:
    """deepbet's entry point, or a one-line error saying how to install it."""
    try:
        from deepbet import run_bet
    except ImportError:
        raise MsqmriError("brain extraction backend deepbet needs `pip install msqmri[cnn]` (deepbet, torch)") from None
    return run_bet


def deepbet_mask(t1w_path: str | os.PathLike[str]) -> np.ndarray:
    """Brain mask from deepbet (Fisch et al., NeuroImage 2024), a CNN whose weights ship in its wheel; CPU only."""
    run_bet = _deepbet_run_bet()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        mask_path = os.path.join(tmp, "mask.nii.gz")
        run_bet([os.fspath(t1w_path)], mask_paths=[mask_path], threshold=0.5, no_gpu=True)
        return np.asarray(nib.load(mask_path).dataobj) > 0.5


def brain_tissue_within(extracted: np.ndarray, fractions: dict[str, np.ndarray]) -> np.ndarray:
    """The brain inside an extracted mask as SIENAX takes it from BET's (Smith et al. 2002): voxels at least
    half GM + WM, largest component, holes (the ventricles) filled. A CNN's brain mask takes in the
    subarachnoid CSF (deepbet's reads 10-12 % above the GM + WM brain on 1 mm phantoms); this is the
    tissue boundary that PBVC and the volumes measure."""
    brain = ndimage.binary_fill_holes(largest_component(extracted & ((fractions["gm"] + fractions["wm"]) >= 0.5)))
    if not brain.any():
        raise MsqmriError("the extracted brain mask holds no grey or white matter (the T1w is not a head?)")
    return brain


BACKENDS = ("template", "deepbet")


def extract_brain(
    t1w: ants.ANTsImage, seed: int = 1, backend: str = "template", t1w_path: str | os.PathLike[str] | None = None
) -> BrainExtraction:
    """Brain mask and the intermediate images of a T1w head image (any orientation and voxel size).

    ``backend`` "deepbet" takes the brain from the CNN (reading ``t1w_path``): its mask, rather than the
    morphological rough brain, restricts the template registration, and the template's own brain estimate is not
    made; the registration still brings the tissue priors, the ventricles and the intracranial mask, and gives the
    MNI transforms, so it runs for both backends.
    """
    cnn = deepbet_mask(t1w_path) if backend == "deepbet" else None
    head = head_mask(t1w)
    corrected = n4(t1w, t1w.new_image_like(head.astype(np.float32)))
    data = corrected.numpy()
    rough = rough_brain(data, head, corrected.spacing) if cnn is None else cnn & head
    fixed = corrected * corrected.new_image_like(rough.astype(np.float32))
    moving = functools.partial(template.image, resolution=REGISTRATION_RESOLUTION)
    reg = register(
        fixed, moving("t1w"), seed, type_of_transform="antsRegistrationSyNQuick[s]", write_composite_transform=True
    )
    priors = {
        name: ants.apply_transforms(fixed=corrected, moving=moving(name), transformlist=reg["fwdtransforms"])
        for name in ("csf", "gm", "wm", "icv", "brain", "ventricles")
    }
    prior_probability = priors.pop("brain").numpy()
    prior_brain = prior_probability >= 0.5
    ventricles = priors.pop("ventricles").numpy() >= 0.5
    failure = registration_failure(prior_brain, rough)
    bound = head if failure else head & near(priors["icv"].numpy() >= 0.5, corrected.spacing, BOUND_MM)
    rough &= bound
    band = ndimage.binary_dilation(prior_brain | rough, ball(3.0, corrected.spacing)) & bound
    band_img = corrected.new_image_like(band.astype(np.float32))
    posteriors = segment(corrected, band_img, priors)
    classified = (posteriors["gm"] + posteriors["wm"]) >= 0.5
    # class means inside the hole-filled brain and the template's ventricles: CSF is taken in the ventricles only,
    # where it is pure (sulcal CSF is mostly partial volume: its mode sat at 0.27 or 0.44 of WM on one head as
    # its pose changed), never in black holes
    means = class_means(data, posteriors, ndimage.binary_fill_holes(classified) | ventricles, ventricles)
    fractions = partial_volumes(data, means, band)
    # dura and venous sinuses at the brain's GM level lie beyond the registered template brain
    reach = bound if failure else bound & template_brain_reach(prior_probability, corrected.spacing)
    if cnn is not None:
        brain = brain_tissue_within(cnn & reach, fractions)
    else:
        brain = ((fractions["gm"] + fractions["wm"]) >= 0.5) & ndimage.binary_dilation(classified) & reach
        brain = largest_component(
            brain & ~uncovered_bright(brain, fractions["wm"], priors["wm"].numpy(), corrected.spacing)
        )
    mask = whole_brain(brain, ventricles, corrected.spacing) & bound
    if failure is None:
        mask, repair = repaired(mask, prior_brain, corrected.spacing)
    else:
        repair = f"brain mask not bounded by the template ({failure}): check it over the whole head"
    return BrainExtraction(
        mask=mask,
        head=head,
        corrected=corrected,
        priors=priors,
        posteriors=posteriors,
        fractions=fractions,
        means=means,
        ventricles=ventricles,
        transforms=_as_list(reg["fwdtransforms"]),
        inverse_transforms=_as_list(reg["invtransforms"]),
        registration_failure=failure,
        repair=repair,
    )


def whole_brain(brain: np.ndarray, ventricles: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """The brain mask from the brain tissue (either backend's): gaps up to :data:`CLOSING_MM` closed, holes filled,
    and the template's ventricles joined where they touch it: a thin gap can open them to the cisterns, and
    hole filling alone then drops them."""
    around = ndimage.binary_dilation(brain, ball(3.0, spacing))
    closed = ndimage.binary_closing(brain, ball(CLOSING_MM, spacing))
    return ndimage.binary_fill_holes(closed | brain | (ventricles & around))


def _as_list(transforms: str | list[str]) -> list[str]:
    """antspyx returns one path for a composite transform, a list otherwise."""
    return [transforms] if isinstance(transforms, str) else list(transforms)
