"""Skull and intracranial estimates from a bias-corrected T1w and its brain mask.

On a T1w the CSF around the brain and the skull tables are both dark; the dark layer connected to the
brain surface (within 15 mm) is CSF + inner table. Its CSF is the part brighter than halfway from the table's
level (the mode of the layer below the CSF's) to pure CSF's (the ventricles'), and the ICV is the brain with that
CSF, holes filled: it ends at the inner table, as a skull-bounded ICV does (on Colin27 at 1 mm, 1.0-1.7 % below
SAMSEG's; the layer's outer surface, the ICV before, lay 11 % above it). Where the head mask holds the skull (a
scalp of real thickness) the ICV does not change with atrophy, so it normalises head size (the role of BET's
skull estimate in SIENAX, Smith et al. 2002); a thin scalp that breaks the head mask cuts the layer a voxel
outside the brain, and the ICV then follows the brain. Below and in front of the brain the dark layer
runs on into what is not intracranial: the vitreous of the eyes, the air of the paranasal sinuses and
the pharynx, the spinal canal; the layer is kept within a few mm of the template's intracranial mask as
registered to the subject (the atlas constraint of ROBEX and BEaST: Iglesias et al., IEEE TMI 2011;
Eskildsen et al., NeuroImage 2012), which a CSF rim and the inner table fill and an orbit or the neck
does not.

An ICV that cannot be estimated (a template registration that failed, a brain mask the registered template
does not hold) raises :class:`IntracranialFailure`: the session's ICV, vscale and normalised volumes are then
``n/a`` with the reason in its QC flag, and everything else of the session is still produced.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from msqmri.core.intensity import histogram_mode, white_matter_level
from msqmri.core.io import MsqmriError
from msqmri.core.morphology import near

#: intensities below this fraction of WM count as CSF or bone
DARK_FRACTION = 0.35
#: the dark layer is searched this far outside the brain (mm)
SEARCH_MM = 15.0
#: and kept within this distance (mm) of the template's intracranial mask registered to the subject
TEMPLATE_MARGIN_MM = 5.0
#: the dark layer is taken where it joins voxels within this distance (mm) of the brain (beyond its partial-volume
#: edge voxels)
SEED_MM = 3.0
#: the registered template's intracranial mask holds at least this fraction of the brain mask (0.97-0.99 on phantom
#: heads at 1 mm; a registration that failed holds far less)
MIN_TEMPLATE_OVERLAP = 0.8


class IntracranialFailure(MsqmriError):
    """The intracranial volume cannot be estimated; the message says why."""


def intracranial_mask(
    data: np.ndarray,
    brain: np.ndarray,
    head: np.ndarray,
    spacing: tuple[float, ...],
    template_icv: np.ndarray,
    csf_level: float,
) -> np.ndarray:
    """The intracranial mask (brain + the CSF of the surrounding dark layer);
    ``template_icv``: the template's intracranial mask on the subject's grid (bool); ``csf_level``: the intensity
    of pure CSF (the ventricles'). One that misses the brain (a failed registration, a mask that leaks beyond the
    skull) is an :class:`IntracranialFailure` that names the volumes, not an ICV of the brain alone."""
    share = (template_icv & brain).sum() / max(int(brain.sum()), 1)
    if share < MIN_TEMPLATE_OVERLAP:
        voxel_ml = float(np.prod(spacing)) / 1000.0
        raise IntracranialFailure(
            f"brain mask {brain.sum() * voxel_ml / 1000:.2f} L, {1 - share:.0%} of it beyond the registered "
            f"template's intracranial mask ({template_icv.sum() * voxel_ml / 1000:.2f} L)"
        )
    dark = data < DARK_FRACTION * white_matter_level(data, head)
    distance = ndimage.distance_transform_edt(~brain, sampling=spacing)  # mm outside the brain
    near_template = near(template_icv, spacing, TEMPLATE_MARGIN_MM)
    dark_shell = joined(dark & head & near_template & (distance > 0) & (distance <= SEARCH_MM), distance)
    # the CSF of the layer: brighter than halfway from the inner table's level to the CSF's
    csf = joined(dark_shell & (data >= (bone_level(data[dark_shell], csf_level) + csf_level) / 2.0), distance)
    return ndimage.binary_fill_holes(brain | csf)


def joined(mask: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """The part of ``mask`` connected to its voxels within :data:`SEED_MM` of the brain (``distance``: mm
    outside it)."""
    return ndimage.binary_propagation(mask & (distance <= SEED_MM), mask=mask)


def bone_level(shell_values: np.ndarray, csf_level: float) -> float:
    """Intensity of the skull's inner table: the mode of the dark layer's values below the CSF's (0 with none). At
    2 mm, where the table is thinner than a voxel, the mode lies near the CSF's, and the cut then also takes
    partial-volume CSF out (the demo's skull-only phantoms' ICVs read 1-1.2 points lower than before)."""
    below = shell_values[shell_values < csf_level]
    return histogram_mode(below) if below.size else 0.0
