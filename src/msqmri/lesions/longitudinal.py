"""New, enlarging, shrinking and resolved lesions of a session pair, from its subtraction image.

Comparing two independently segmented masks turns segmentation noise into activity (the same image
segmented twice by LST-AI overlaps with a Dice of only 0.86; Wiltgen et al., NeuroImage Clin 2024).
Activity is therefore read, as a neuroradiologist reads it and as automated subtraction methods do
(Moraal et al., Eur Radiol 2010; Battaglini et al., Hum Brain Mapp 2014; Sweeney et al., AJNR 2013;
the MAGNIMS guidelines, Wattjes et al., Lancet Neurol 2021), from the *change* between the two
FLAIRs, in the pair's halfway space (SIENA's registration: both images interpolated once, equally),
each normalised to its local NAWM (:mod:`msqmri.lesions.normalization`), together with the baseline
lesion map:

1. **Noise model**: the subtraction D = FLAIR_to - FLAIR_from has, in NAWM, a robust SD sigma (noise of
   both scans, interpolation and residual misregistration) and a spatial correlation kappa (the
   variance of 2x2x2 block sums over 8 sigma^2), so that a sum of D over m voxels has the SD
   sigma sqrt(m kappa).
2. **Significant change**: voxels with D beyond ``K_CHANGE`` sigma where the brighter image is
   hyperintense (at least ``MIN_CONTRAST`` above NAWM), near a lesion of either session; connected
   voxels of at least the minimum size.
3. **Clusters**: lesions of both sessions and change regions joined when they overlap or touch, so
   that merging and splitting lesions, and a lesion's growth, are counted once.
4. **Volumes**: each cluster's lesion volume in both images over the same territory (the cluster and
   a voxel around it, not the grey matter), as partial-volume sums (fraction (I - 1) / (L - 1), L the
   cluster's pure-lesion level); the change dV and its SD from the noise model.
5. **Status** of a cluster (V_from, V_to, dV):
   - *new*: no baseline lesion, a significant increase (dV > ``Z_VOLUME`` SD, hyperintensity appeared)
     to at least the minimum size;
   - *enlarging*: a baseline lesion whose volume grew beyond the measurement noise (dV > ``Z_VOLUME`` SD)
     *and* by more than the relative band of its size: ``enlarging`` (default 50 %) for lesions under
     ``LARGE_MM3``, half of it for larger ones. These are the bands of Goodkin et al. (Arch Neurol
     1992): a lesion's size must change by more than 45 % when small, 24 % when large, to exceed the
     measurement variability;
   - *shrinking* / *resolved*: the same in the other direction; resolved when what remains is below the
     minimum size or a fifth of the baseline volume and no later lesion is there;
   - *stable* otherwise, including a lesion one session's segmentation missed but both images show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msqmri.lesions.components import CONNECTIVITY, MIN_INTERIOR, NOISE_Z, label_lesions, remove_small, robust_stats

STATUSES = ("new", "enlarging", "shrinking", "resolved", "stable")
#: default relative volume change of an enlarging (or shrinking) lesion under LARGE_MM3, half of it above
ENLARGING = 0.5
LARGE_MM3 = 400.0
#: a voxel changed when |D| exceeds this many noise SDs; a volume changed beyond this many SDs
K_CHANGE, Z_VOLUME = 3.5, 3.0
#: hyperintensity (over NAWM = 1) of the image a change voxel is bright in
MIN_CONTRAST = 0.2
#: change is looked for this far (mm) from a lesion of either session
SUPPORT_MM = 3.0
#: a lesion is resolved when what remains is less than this share of its baseline volume
RESOLVED_SHARE = 0.2


@dataclass(frozen=True)
class Noise:
    """Noise of the subtraction image in NAWM: robust SD and spatial correlation factor (>= 1)."""

    sd: float
    correlation: float

    def sum_sd(self, n_voxels: np.ndarray | float) -> np.ndarray:
        """SD of the sum of D over ``n_voxels`` voxels."""
        return self.sd * np.sqrt(np.asarray(n_voxels, dtype=np.float64) * self.correlation)


def noise_model(difference: np.ndarray, nawm: np.ndarray) -> Noise:
    """The subtraction's noise in ``nawm`` (module docstring, step 1)."""
    values = difference[nawm]
    if values.size < 100:
        raise ValueError("too little normal-appearing white matter in both sessions for a noise model")
    sd = robust_stats(values)[1]
    shape = tuple(n // 2 * 2 for n in difference.shape)
    crop = tuple(slice(0, n) for n in shape)
    blocks = [(n // 2, 2) for n in shape]
    inside = nawm[crop].reshape(*(d for b in blocks for d in b)).all(axis=(1, 3, 5))
    sums = difference[crop].reshape(*(d for b in blocks for d in b)).sum(axis=(1, 3, 5))[inside]
    correlation = robust_stats(sums)[1] ** 2 / (8 * sd**2) if sums.size >= 50 and sd > 0 else 1.0
    return Noise(float(sd), float(max(1.0, correlation)))


@dataclass(frozen=True)
class Change:
    """One cluster of the pair: its status, the lesions of each session it holds (their labels in each
    session's lesion map), its volumes in both images (ml) and the change's SD (ml)."""

    cluster_id: int
    status: str
    from_ids: tuple[int, ...]
    to_ids: tuple[int, ...]
    volume_from_ml: float
    volume_to_ml: float
    change_sd_ml: float


def relative_band(volume_mm3: float, enlarging: float = ENLARGING) -> float:
    """The relative volume change a lesion of ``volume_mm3`` must exceed (Goodkin et al. 1992 bands)."""
    return enlarging if volume_mm3 < LARGE_MM3 else enlarging / 2.0


def classify(
    volume_from: float,
    volume_to: float,
    change_sd: float,
    has_from: bool,
    has_to: bool,
    increased: bool,
    decreased: bool,
    min_size: float,
    enlarging: float = ENLARGING,
) -> str:
    """The status of a cluster from its volumes and change (module docstring, step 5); volumes in one unit
    (mm^3), ``increased``/``decreased``: the cluster holds a region of significant change."""
    grew = increased and volume_to - volume_from > Z_VOLUME * change_sd
    shrank = decreased and volume_from - volume_to > Z_VOLUME * change_sd
    if not has_from:
        return "new" if grew and volume_to >= min_size and volume_to > (1 + enlarging) * volume_from else "stable"
    band = relative_band(volume_from, enlarging)
    if grew and volume_to > (1 + band) * volume_from:
        return "enlarging"
    if shrank and not has_to and volume_to < max(min_size, RESOLVED_SHARE * volume_from):
        return "resolved"
    if shrank and volume_to < volume_from / (1 + band):
        return "shrinking"
    return "stable"


class _Clusters:
    """Union-find over the nodes of a pair: lesions of each session and regions of change."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.offset, total = {}, 0
        for kind, n in sizes.items():
            self.offset[kind], total = total, total + n
        self.sizes = sizes
        self.parent = list(range(total))

    def node(self, kind: str, label: int) -> int:
        return self.offset[kind] + label - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, kind_a: str, labels_a: np.ndarray, kind_b: str, labels_b: np.ndarray) -> None:
        """Join every pair of nodes whose label maps share a voxel."""
        both = (labels_a > 0) & (labels_b > 0)
        for a, b in np.unique(np.stack([labels_a[both], labels_b[both]], axis=1), axis=0):
            self.parent[self.find(self.node(kind_a, int(a)))] = self.find(self.node(kind_b, int(b)))

    def groups(self) -> list[dict[str, list[int]]]:
        """The clusters, each as its labels per kind, ordered by their first later, then earlier, lesion."""
        found: dict[int, dict[str, list[int]]] = {}
        for kind, n in self.sizes.items():
            for label in range(1, n + 1):
                found.setdefault(self.find(self.node(kind, label)), {k: [] for k in self.sizes})[kind].append(label)
        return sorted(found.values(), key=lambda g: (g["to"] or [10**9], g["from"] or [10**9], g["up"], g["down"]))


def detect(
    flair_from: np.ndarray,
    flair_to: np.ndarray,
    labels_from: np.ndarray,
    labels_to: np.ndarray,
    nawm: np.ndarray,
    grey_matter: np.ndarray,
    voxel_size: tuple[float, ...],
    min_size_mm3: float,
    enlarging: float = ENLARGING,
) -> tuple[list[Change], np.ndarray, Noise]:
    """The clusters of a pair (module docstring) and their voxels (cluster ids) on the halfway grid.

    ``flair_*`` are the NAWM-normalised FLAIRs, ``labels_*`` each session's lesion labels, ``nawm`` the
    normal WM of both sessions and ``grey_matter`` the GM of both (left out of the territories).
    """
    voxel_mm3 = float(np.prod(voxel_size))
    difference = flair_to - flair_from
    noise = noise_model(difference, nawm)
    near = ndimage.distance_transform_edt((labels_from == 0) & (labels_to == 0), sampling=voxel_size) <= SUPPORT_MM
    threshold = K_CHANGE * noise.sd
    up = remove_small(near & (difference > threshold) & (flair_to > 1 + MIN_CONTRAST), voxel_mm3, min_size_mm3)
    down = remove_small(near & (difference < -threshold) & (flair_from > 1 + MIN_CONTRAST), voxel_mm3, min_size_mm3)
    maps = {"from": labels_from, "to": labels_to, "up": label_lesions(up)[0], "down": label_lesions(down)[0]}
    clusters = _Clusters({kind: int(m.max(initial=0)) for kind, m in maps.items()})
    clusters.join("from", labels_from, "to", labels_to)
    for kind in ("up", "down"):  # a change region belongs to the lesions it overlaps or touches
        touching = ndimage.grey_dilation(maps[kind], footprint=CONNECTIVITY)
        for session in ("from", "to"):
            clusters.join(kind, touching, session, maps[session])
    groups = clusters.groups()
    core = np.zeros(flair_from.shape, dtype=np.int32)
    for kind, labels in maps.items():
        lookup = np.zeros(clusters.sizes[kind] + 1, dtype=np.int32)
        for k, group in enumerate(groups, start=1):
            lookup[group[kind]] = k
        core = np.maximum(core, lookup[labels])
    territory = np.where(core > 0, core, np.where(grey_matter, 0, ndimage.grey_dilation(core, footprint=CONNECTIVITY)))
    levels = _levels(np.maximum(flair_from, flair_to), core, len(groups))
    volumes = {
        side: _partial_volumes(image, territory, levels, nawm) * voxel_mm3
        for side, image in (("from", flair_from), ("to", flair_to))
    }
    sizes = np.bincount(territory.ravel(), minlength=len(groups) + 1)[1:]
    change_sd = noise.sum_sd(sizes) / np.maximum(levels[1:] - 1.0, 1e-3) * voxel_mm3
    changes = []
    for k, group in enumerate(groups):
        status = classify(
            volumes["from"][k],
            volumes["to"][k],
            change_sd[k],
            bool(group["from"]),
            bool(group["to"]),
            bool(group["up"]),
            bool(group["down"]),
            min_size_mm3,
            enlarging,
        )
        changes.append(
            Change(
                k + 1,
                status,
                tuple(group["from"]),
                tuple(group["to"]),
                volumes["from"][k] / 1000.0,
                volumes["to"][k] / 1000.0,
                float(change_sd[k]) / 1000.0,
            )
        )
    return changes, core, noise


def _levels(image: np.ndarray, core: np.ndarray, n: int) -> np.ndarray:
    """Pure-lesion level of each cluster (index 1..n): the median of ``image`` over its interior, or over all
    clusters' interiors when it has fewer than MIN_INTERIOR interior voxels (small lesions are all partial
    volume), or the 90th percentile of all cluster voxels when no cluster has an interior."""
    levels = np.zeros(n + 1)
    if n == 0:
        return levels
    interior = np.where(ndimage.grey_erosion(core, footprint=CONNECTIVITY) == core, core, 0)
    counts = np.bincount(interior.ravel(), minlength=n + 1)
    pooled = (
        float(np.median(image[interior > 0]))
        if counts[1:].sum() >= MIN_INTERIOR
        else float(np.percentile(image[core > 0], 90.0))
    )
    levels[1:] = pooled
    own = np.flatnonzero(counts[1:] >= MIN_INTERIOR) + 1
    if own.size:
        levels[own] = ndimage.median(image, interior, own)
    return np.maximum(levels, 1.0 + MIN_CONTRAST)


def _partial_volumes(image: np.ndarray, territory: np.ndarray, levels: np.ndarray, nawm: np.ndarray) -> np.ndarray:
    """Sum over each territory of the voxels' lesion fractions (I - 1) / (L - 1), those within NOISE_Z noise
    SDs of 0 or 1 set to 0 or 1 (:mod:`msqmri.lesions.components`)."""
    level = levels[territory]
    fraction = np.where(territory > 0, (image - 1.0) / np.maximum(level - 1.0, 1e-3), 0.0)
    noise = NOISE_Z * robust_stats(image[nawm])[1] / np.maximum(level - 1.0, 1e-3)
    fraction = np.where(fraction < noise, 0.0, np.where(fraction > 1.0 - noise, 1.0, fraction))
    return np.bincount(territory.ravel(), weights=fraction.ravel(), minlength=len(levels))[1:]
