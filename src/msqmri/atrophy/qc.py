"""Quality control of a session pair's PBVC: is the number a measurement of the same anatomy in both sessions?

SIENA's estimate is trustworthy when both sessions' brain edges are the same anatomy (Smith et al.,
NeuroImage 2002; Smith et al., J Comput Assist Tomogr 2001): the forward (edges of A) and backward
(edges of B) estimates then agree in magnitude, the two sessions' self-calibration factors are alike, and
nearly every edge point is a brain/CSF border. When one session's mask takes in dura, a venous sinus or
neck tissue, or cuts the brainstem elsewhere, these checks fail while the PBVC itself looks plausible.
Thresholds sit beyond what phantom pairs show (2 mm pairs, skull-only and whole heads: |forward +
backward| up to 0.12 points, calibration factors within 2 %, at most 4.3 % of edges not brain/CSF borders)
and below what real heads with leaking masks showed (0.5-2.8 points, factors up to 6x).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: |forward + backward| (PBVC points: backward reads the negative of forward when consistent)
FORWARD_BACKWARD_POINTS = 0.3
#: largest / smallest self-calibration factor of the two sessions
CALIBRATION_RATIO = 1.2
#: fraction of edge points whose outside is not markedly darker than their inside on the T1w
NON_BORDER_FRACTION = 0.10
#: an edge is a brain/CSF border when the mean T1w 1-3 mm outside is below this fraction of 1-3 mm inside
BORDER_CONTRAST = 0.7
#: fraction of both sessions' edge points that lie within SAME_ANATOMY_MM of the other session's mask boundary
SHARED_EDGE_FRACTION = 0.9
#: the value of ``qc_flag`` for a pair that passes every check
PASS = "ok"


def non_border_fraction(profiles: np.ndarray, centre: int, samples_per_mm: int) -> float:
    """Fraction of edge profiles (N, S; sampled outward, ``centre`` the edge point) that are not a
    bright-to-dark brain/CSF border: mean 1-3 mm outside at least :data:`BORDER_CONTRAST` of 1-3 mm inside."""
    if len(profiles) == 0:
        return float("nan")
    near, far = samples_per_mm, 3 * samples_per_mm + 1
    inside = profiles[:, centre - far + 1 : centre - near + 1].mean(1)
    outside = profiles[:, centre + near : centre + far].mean(1)
    return float(np.mean(outside >= BORDER_CONTRAST * inside))


def qc_flag(figures: Mapping[str, Any]) -> str:
    """``ok``, or the failed checks joined by ``;`` (``forward_backward``, ``calibration``, ``edges``,
    ``masks``), from a pair's PBVC figures (the siena or jacobian JSON: absent figures are not checked)."""
    failed = []
    if abs(figures["pbvc_forward"] + figures["pbvc_backward"]) > FORWARD_BACKWARD_POINTS:
        failed.append("forward_backward")
    factors = [figures.get(k) for k in ("self_calibration_from", "self_calibration_to")]
    if all(f is not None for f in factors) and max(factors) > CALIBRATION_RATIO * min(factors):
        failed.append("calibration")
    if (figures.get("non_border_edge_fraction") or 0.0) > NON_BORDER_FRACTION:
        failed.append("edges")
    if figures.get("shared_edge_fraction") is not None and figures["shared_edge_fraction"] < SHARED_EDGE_FRACTION:
        failed.append("masks")
    return ";".join(failed) or PASS
