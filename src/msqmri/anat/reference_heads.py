"""Real heads available offline, for tests and benchmarks beside the phantom.

Colin27 (Holmes et al., J Comput Assist Tomogr 1998: 27 averaged 1 mm T1w scans of one man, skull,
scalp, face and the top of the neck, in MNI space) as Debian's ``mricron-data`` package ships it
(``apt-get install mricron-data``), with the brain mask BET made of it (``ch2bet``, Smith 2002), an
independent reference: BET's mask takes in the subarachnoid CSF that a GM + WM brain mask leaves out.
"""

from __future__ import annotations

import os
from pathlib import Path

import ants
import numpy as np

#: where mricron-data puts its templates (``MSQMRI_MRICRON_TEMPLATES`` overrides it)
MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")


def colin27_dir() -> Path | None:
    """The directory holding ``ch2.nii.gz`` and ``ch2bet.nii.gz``, or None where mricron-data is missing."""
    folder = Path(os.environ.get("MSQMRI_MRICRON_TEMPLATES", MRICRON_TEMPLATES))
    return folder if (folder / "ch2.nii.gz").is_file() and (folder / "ch2bet.nii.gz").is_file() else None


def write_colin27(folder: Path, out: Path, resolution: float) -> tuple[Path, np.ndarray]:
    """Colin27 resampled (B-spline) to ``resolution`` mm isotropic at ``out``, and BET's brain mask on that
    grid (linear interpolation of the binary mask, kept at >= 0.5)."""
    head = ants.image_read(str(folder / "ch2.nii.gz")).clone("float")
    if resolution != 1.0:
        head = ants.resample_image(head, (resolution,) * 3, use_voxels=False, interp_type=4)
    ants.image_write(head, str(out))
    bet = ants.image_read(str(folder / "ch2bet.nii.gz"))
    bet = bet.new_image_like((bet.numpy() > 0).astype(np.float32))
    mask = ants.resample_image_to_target(bet, head, interp_type="linear").numpy() >= 0.5
    return out, mask
