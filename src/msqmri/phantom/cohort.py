"""Write a synthetic longitudinal MS cohort as a raw BIDS dataset, with its ground truth.

Per subject: a warped, rescaled template brain in a head (see :mod:`msqmri.phantom.subject`),
lesions placed by location class with a planned history (:mod:`msqmri.phantom.lesions`), a FLAIR
contrast of its own (:class:`msqmri.phantom.tissues.FlairContrast`, with the FLAIR confounders) and an
atrophy rate. Per session: T1w, FLAIR, MT-on/off, multi-echo GRE and DWI, each on its own grid, with the
head repositioned, a bias field, Rician noise and optional scanner scale drift. ``sourcedata/ground_truth``
holds tissue properties, volumes, PBVC per session pair, the lesion table (status, volume, location
class, black hole) and, per session, partial-volume maps, lesion labels and pure-tissue labels on the
acquisition grids. The true lesion masks are also written as a user's would be (``derivatives/lesions``)
only when asked (``user_lesion_masks``): otherwise the workflow finds the lesions in the images.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from msqmri import __version__
from msqmri.core.io import save_array, save_json, save_text, save_tsv
from msqmri.phantom import tissues
from msqmri.phantom.acquisition import (
    Pose,
    bias_field,
    coil_sensitivity,
    make_grid,
    random_pose,
    render,
    rician,
    store,
)
from msqmri.phantom.anatomy import REGIONS, Sampled, SubjectAnatomy, grid_points
from msqmri.phantom.enhancement import (
    CHOROID_GAIN,
    DURA_GAIN,
    GM_UPTAKE,
    VESSEL_GAIN,
    WM_UPTAKE,
    EnhancementPlan,
    lesion_gain,
    plan_enhancement,
    vessel_fraction,
)
from msqmri.phantom.head import make_head
from msqmri.phantom.subject import make_subject
from msqmri.phantom.tissues import FlairContrast

STORAGE_TYPES = ("int16", "float32", "uint16")
#: the phantom's heads: brain, skull and scalp only, or with neck, face, dura and sinuses (phantom.head)
HEADS = ("skull", "whole")
#: columns of the truth tables that may have no rows (a lesion-free cohort, a single session)
TRUTH_COLUMNS = {
    "lesions": ["participant_id", "session_id", "lesion_id", "status", "volume_ml", "location", "black_hole"],
    "pbvc": ["participant_id", "session_from", "session_to", "interval_days", "pbvc_requested", "pbvc"],
    "enhancing": ["participant_id", "session_id", "lesion_id", "pattern", "gain"],
}
#: per-session images that share the head position also move slightly between series (deg, mm)
SERIES_MOTION = (0.5, 0.5)
#: a voxel is "pure" when one tissue fills this much of it
PURE_FRACTION = 0.99995


@dataclass(frozen=True)
class CohortSpec:
    """What to simulate. Resolutions in mm, SNRs relative to the WM signal, times in seconds."""

    n_subjects: int = 2
    n_sessions: int = 2
    resolution: float = 2.0
    seed: int = 0
    noise: bool = True
    snr: float = 40.0
    snr_mt: float = 40.0
    snr_gre: float = 50.0
    snr_dwi: float = 25.0
    bias_amplitude: float = 0.2
    max_rotation_deg: float = 6.0
    max_translation_mm: float = 8.0
    scale_drift: float = 0.0  # largest |linear scale error| of a follow-up session, e.g. 0.006
    drift: tuple[float, ...] | None = None  # linear scale error of each session (overrides scale_drift)
    atrophy_per_year: tuple[float, float] = (-1.2, -0.2)  # PBVC %/y range, drawn per subject
    pbvc: tuple[float, ...] | None = None  # cumulative PBVC of each session vs baseline (overrides the rate)
    interval_months: tuple[float, float] = (6.0, 12.0)
    t1w_voxel: tuple[float, float, float] | None = None  # default: isotropic ``resolution``
    flair_voxel: tuple[float, float, float] | None = None  # default: isotropic; e.g. (1, 1, 3): a 2D FLAIR's slices
    orientations: tuple[str, ...] = ("RAS", "LAS", "LPS", "oblique")
    modalities: tuple[str, ...] = ("T1w", "FLAIR", "MTR", "MEGRE", "dwi")  # and "T1w_ce": post-contrast T1w
    echo_times: tuple[float, ...] = (0.004, 0.0085, 0.013, 0.0175, 0.022, 0.0265, 0.031, 0.0355)
    dwi_voxel: float | None = None  # default: ``resolution``, at least 2 mm
    bval: float = 1000.0
    n_directions: int = 30
    n_b0: int = 2
    dwi_motion_deg: float = 0.0  # per-volume random head rotation of the DWI series
    mt_misalignment_mm: float = 0.0  # translation of MT-on relative to MT-off
    lesions: bool = True
    lesion_activity: bool = True  # new/enlarging/shrinking/resolved lesions; False: unchanged (scan-rescan)
    user_lesion_masks: bool = False  # also write the true lesion masks under derivatives/lesions
    flair_gm_wm: tuple[float, float] = (1.05, 1.3)  # cortex (and deep GM, brainstem) / WM on FLAIR, per subject
    flair_lesion_wm: tuple[float, float] = (1.7, 2.2)  # lesion / WM on FLAIR, per subject
    confounders: bool = True  # bright ependyma, septum, choroid plexus, CSF flow, cortical patches
    truth_step: float | None = None  # anatomy grid (mm); default: half the resolution, within 1-1.5 mm
    head: str = "skull"  # "skull": brain, skull and scalp; "whole": with neck, face, dura, sinuses (phantom.head)
    t1w_sequences: tuple[str, ...] = ("MPRAGE",)  # one per subject in turn, of tissues.T1W_SEQUENCES
    coil: float = 0.0  # multichannel head coil: receive gain at the head's surface over its centre, minus one
    clinical: bool = False  # sessions.tsv with a treatment start, relapses, EDSS and the treatment (clinical_history)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"CohortSpec head must be one of {', '.join(HEADS)}, not {self.head!r}")
        if unknown := sorted(set(self.t1w_sequences) - set(tissues.T1W_SEQUENCES)):
            raise ValueError(
                f"CohortSpec t1w_sequences: unknown {', '.join(unknown)} (known: {', '.join(tissues.T1W_SEQUENCES)})"
            )

    @property
    def step(self) -> float:
        return self.truth_step or min(max(1.0, self.resolution / 2.0), 1.5)


def generate_cohort(out_dir: str | Path, spec: CohortSpec = CohortSpec()) -> Path:
    """Write the cohort described by ``spec`` under ``out_dir`` and return that path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_json(
        {
            "Name": "msqmri synthetic MS cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "msqmri.phantom", "Version": __version__}],
        },
        out / "dataset_description.json",
    )
    truth = out / "sourcedata" / "ground_truth"
    tables: dict[str, list[dict]] = {
        "participants": [],
        "volumes": [],
        "pbvc": [],
        "lesions": [],
        "sessions": [],
        "enhancing": [],
    }
    for index in range(spec.n_subjects):
        _write_subject(out, truth, spec, index, tables)
    save_tsv(pd.DataFrame(tables["participants"]), out / "participants.tsv")
    save_tsv(pd.DataFrame([t.as_row() for t in tissues.TISSUES]), truth / "tissues.tsv")
    for name in ("volumes", "pbvc", "lesions", "sessions"):
        save_tsv(pd.DataFrame(tables[name], columns=TRUTH_COLUMNS.get(name)), truth / f"{name}.tsv")
    if "T1w_ce" in spec.modalities:
        save_tsv(pd.DataFrame(tables["enhancing"], columns=TRUTH_COLUMNS["enhancing"]), truth / "enhancing_lesions.tsv")
    save_json({**asdict(spec), "truth_step": spec.step}, truth / "spec.json")
    if spec.lesions and spec.user_lesion_masks:
        save_json(
            {
                "Name": "Lesion masks (phantom truth)",
                "BIDSVersion": "1.9.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "msqmri.phantom", "Version": __version__}],
            },
            out / "derivatives" / "lesions" / "dataset_description.json",
        )
    return out


def _write_subject(out: Path, truth: Path, spec: CohortSpec, index: int, tables: dict[str, list[dict]]) -> None:
    rng = np.random.default_rng([spec.seed, index])
    sub = f"{index + 1:02d}"
    sessions = [f"{k + 1:02d}" for k in range(spec.n_sessions)]
    days = np.concatenate([[0.0], np.cumsum(rng.uniform(*spec.interval_months, spec.n_sessions - 1) * 30.44)])
    days = np.rint(days)
    baseline = dt.datetime(2021, 1, 4, 9, 0) + dt.timedelta(days=int(rng.integers(0, 700)))
    if spec.pbvc is not None:
        cumulative = np.asarray(spec.pbvc[: spec.n_sessions], dtype=float)
    else:
        rate = rng.uniform(*spec.atrophy_per_year)
        cumulative = ((1.0 + rate / 100.0) ** (days / 365.25) - 1.0) * 100.0
    scales = (1.0 + cumulative / 100.0) ** (1.0 / 3.0)
    anatomy, head_scale = make_subject(rng, spec.step, spec.n_sessions, spec.lesions, spec.lesion_activity)
    if spec.head == "whole":  # its own random stream: the skull-only subjects stay as they were
        anatomy.head = make_head(np.random.default_rng([spec.seed, index, 1000]), head_scale)
    enhancement = None
    if "T1w_ce" in spec.modalities:  # its own stream too
        enhancement = plan_enhancement(np.random.default_rng([spec.seed, index, 2000]), anatomy.lesions)
        for (lesion_index, k), (pattern, gain) in sorted(enhancement.lesions.items(), key=lambda item: item[0][::-1]):
            tables["enhancing"].append(
                {
                    "participant_id": f"sub-{sub}",
                    "session_id": f"ses-{sessions[k]}",
                    "lesion_id": lesion_index + 1,
                    "pattern": pattern,
                    "gain": gain,
                }
            )
    sequence = spec.t1w_sequences[index % len(spec.t1w_sequences)]
    contrast = draw_contrast(rng, spec)
    orientation = spec.orientations[index % len(spec.orientations)]
    dtype = STORAGE_TYPES[index % len(STORAGE_TYPES)] if spec.noise else "float32"
    intensity = float(rng.uniform(300.0, 1500.0))
    tables["participants"].append(
        {
            "participant_id": f"sub-{sub}",
            "age": int(rng.integers(22, 60)),
            "sex": str(rng.choice(["F", "M"])),
            "site": "site1",
        }
    )
    acq_rows = []
    volumes = []
    for k, ses in enumerate(sessions):
        rng_k = np.random.default_rng([spec.seed, index, k + 1])
        drift = 1.0 + (rng_k.uniform(-spec.scale_drift, spec.scale_drift) if k else 0.0)
        if spec.drift is not None:
            drift = 1.0 + spec.drift[k]
        pose = random_pose(rng_k, spec.max_rotation_deg, spec.max_translation_mm, drift)
        session = _Session(
            out,
            truth,
            spec,
            anatomy,
            sub,
            ses,
            k,
            float(scales[k]),
            pose,
            orientation,
            dtype,
            intensity,
            rng_k,
            contrast,
            sequence,
            enhancement,
            np.random.default_rng([spec.seed, index, k + 1, 2000]),
        )
        for modality in spec.modalities:
            session.write(modality)
        vol = tissue_volumes(anatomy, k, float(scales[k]))
        volumes.append(vol)
        tables["volumes"].append({"participant_id": f"sub-{sub}", "session_id": f"ses-{ses}", **vol["tissue"]})
        for lesion_id, (lesion, volume) in enumerate(zip(anatomy.lesions, vol["lesions"], strict=True), start=1):
            tables["lesions"].append(
                {
                    "participant_id": f"sub-{sub}",
                    "session_id": f"ses-{ses}",
                    "lesion_id": lesion_id,
                    "status": lesion.status[k],
                    "volume_ml": volume,
                    "location": lesion.location,
                    "black_hole": lesion.tissue == "blackhole",
                }
            )
        acq_time = baseline + dt.timedelta(days=float(days[k]))
        acq_rows.append({"session_id": f"ses-{ses}", "acq_time": acq_time.isoformat()})
        rotation_deg = np.degrees(np.arccos(np.clip((np.trace(pose.rotation) - 1) / 2, -1, 1)))
        tables["sessions"].append(
            {
                "participant_id": f"sub-{sub}",
                "session_id": f"ses-{ses}",
                "days": days[k],
                "pbvc_from_baseline_requested": cumulative[k],
                "atrophy_scale": scales[k],
                "head_scale": head_scale,
                "scale_drift": drift - 1.0,
                "rotation_deg": rotation_deg,
                "translation_mm": float(np.linalg.norm(pose.translation)),
                "orientation": orientation,
                "storage": dtype,
                "t1w_sequence": sequence,
                **{f"flair_{name}_wm": value for name, value in asdict(contrast).items()},
            }
        )
    if spec.clinical:  # its own stream: the images stay as they were
        history = clinical_history(np.random.default_rng([spec.seed, index, 3000]), baseline, days)
        acq_rows = [{**row, **visit} for row, visit in zip(acq_rows, history, strict=True)]
    save_tsv(pd.DataFrame(acq_rows), out / f"sub-{sub}" / f"sub-{sub}_sessions.tsv")
    for a, b in session_pairs(len(sessions)):
        v0, v1 = volumes[a]["tissue"]["brain_ml"], volumes[b]["tissue"]["brain_ml"]
        requested = ((1 + cumulative[b] / 100) / (1 + cumulative[a] / 100) - 1) * 100
        tables["pbvc"].append(
            {
                "participant_id": f"sub-{sub}",
                "session_from": f"ses-{sessions[a]}",
                "session_to": f"ses-{sessions[b]}",
                "interval_days": days[b] - days[a],
                "pbvc_requested": requested,
                "pbvc": (v1 / v0 - 1) * 100,
            }
        )


#: disease-modifying treatments a phantom subject may start
TREATMENTS = ("interferon beta-1a", "glatiramer acetate", "dimethyl fumarate", "teriflunomide")


def clinical_history(rng: np.random.Generator, baseline: dt.datetime, days: np.ndarray) -> list[dict[str, object]]:
    """A subject's clinical columns of sessions.tsv, one dict per session: a treatment started 2-8 weeks after the
    baseline scan, relapses since the previous session (none reported at baseline: ``n/a``), an EDSS at every
    session (baseline 1.0-3.5, rising by 1.0 at a follow-up now and then) and the treatment taken then."""
    start = baseline + dt.timedelta(days=int(rng.integers(14, 57)))
    treatment = str(rng.choice(TREATMENTS))
    edss = float(rng.choice([1.0, 1.5, 2.0, 2.5, 3.0, 3.5]))
    visits = []
    for k, day in enumerate(days):
        if k and rng.random() < 0.3:
            edss += 1.0
        visits.append(
            {
                "treatment_start": start.date().isoformat(),
                "relapses": "n/a" if k == 0 else int(rng.poisson(0.5)),
                "edss": edss,
                "treatment": treatment if baseline + dt.timedelta(days=float(day)) >= start else "n/a",
            }
        )
    return visits


def draw_contrast(rng: np.random.Generator, spec: CohortSpec) -> FlairContrast:
    """A subject's FLAIR contrast: cortex, deep GM and brainstem equally bright (the hardest case for a
    FLAIR threshold) within ``spec.flair_gm_wm``, lesions within ``spec.flair_lesion_wm``, the confounders
    within realistic ranges."""
    gm = float(rng.uniform(*spec.flair_gm_wm))
    return FlairContrast(
        gm=gm,
        dgm=gm,
        brainstem=gm,
        lesion=float(rng.uniform(*spec.flair_lesion_wm)),
        ependyma=float(rng.uniform(1.5, 1.9)),
        septum=float(rng.uniform(1.4, 1.8)),
        choroid=float(rng.uniform(1.3, 1.8)),
        flow=float(rng.uniform(1.5, 2.5)),
        cortical_patch=float(rng.uniform(1.08, 1.15)),
    )


def flair_signal(frac: np.ndarray, regions: np.ndarray, contrast: FlairContrast) -> np.ndarray:
    """FLAIR signal of voxels with tissue fractions ``frac`` (..., T) and :data:`REGIONS` weights (..., R):
    the brainstem's WM (and, half as much, its lesions) and the hyperintense cortical patches brighter, the
    ependymal lining, septum, choroid plexus and CSF flow blended towards their own signal."""
    idx, weight = tissues.INDEX, dict(zip(REGIONS, np.moveaxis(regions, -1, 0), strict=True))
    values = contrast.column()
    wm = values[idx["wm"]]
    signal = frac @ values
    lesion = sum(frac[..., idx[t]] for t in tissues.LESIONS) * values[idx["lesion"]]
    signal += weight["brainstem"] * (contrast.brainstem - 1.0) * (frac[..., idx["wm"]] * wm + 0.5 * lesion)
    signal += weight["cortical_patch"] * (contrast.cortical_patch - 1.0) * frac[..., idx["gm"]] * values[idx["gm"]]
    for name in ("ependyma", "septum", "choroid", "flow"):
        signal += weight[name] * (getattr(contrast, name) * wm - signal)
    return signal


#: T1w signal of the septum pellucidum and the choroid plexus (tissue where the template has ventricle)
SEPTUM_T1W, CHOROID_T1W = 0.8, 0.5


def t1w_signal(frac: np.ndarray, regions: np.ndarray, sequence: str = "MPRAGE") -> np.ndarray:
    """T1w signal (one of :data:`tissues.T1W_SEQUENCES`) of voxels with tissue fractions ``frac`` and
    :data:`REGIONS` weights ``regions``."""
    weight = dict(zip(REGIONS, np.moveaxis(regions, -1, 0), strict=True))
    signal = frac @ tissues.t1w_column(sequence)
    for name, value in (("septum", SEPTUM_T1W), ("choroid", CHOROID_T1W)):
        signal += weight[name] * (value - signal)
    return signal


def session_pairs(n: int) -> list[tuple[int, int]]:
    """Every consecutive pair and baseline to each later session, in order, without repeats."""
    pairs = [(k, k + 1) for k in range(n - 1)] + [(0, k) for k in range(2, n)]
    return sorted(set(pairs))


def tissue_volumes(anatomy: SubjectAnatomy, session: int, atrophy_scale: float, chunk: int = 2_000_000) -> dict:
    """True tissue volumes (ml) and each lesion's volume (ml), integrated over the anatomy grid."""
    inside = np.flatnonzero(anatomy.distance.ravel() < anatomy.layers.csf + 1.0)
    shape = anatomy.distance.shape
    sums = np.zeros(len(tissues.NAMES))
    lesion_sums = np.zeros(len(anatomy.lesions) + 1)
    for start in range(0, len(inside), chunk):
        ijk = np.stack(np.unravel_index(inside[start : start + chunk], shape), axis=1).astype(np.float32)
        points = ijk @ anatomy.affine[:3, :3].T.astype(np.float32) + anatomy.affine[:3, 3].astype(np.float32)
        sampled = anatomy.fractions(points, session, atrophy_scale)
        sums += sampled.frac.sum(0, dtype=np.float64)
        lesion = sum(sampled.frac[:, tissues.INDEX[t]] for t in tissues.LESIONS)
        lesion_sums += np.bincount(sampled.lesion_id, weights=lesion, minlength=len(lesion_sums))
    ml = anatomy.step**3 / 1000.0
    v = {name: sums[i] * ml for i, name in enumerate(tissues.NAMES)}
    tissue = {
        "brain_ml": sum(v[t] for t in tissues.BRAIN),
        "gm_ml": v["gm"] + v["dgm"],
        "cortical_gm_ml": v["gm"],
        "dgm_ml": v["dgm"],
        "wm_ml": v["wm"],
        "lesion_ml": v["lesion"] + v["blackhole"],
        "csf_ml": v["csf"],
        "icv_ml": sum(v[t] for t in tissues.BRAIN + tissues.INTRACRANIAL),
    }
    return {"tissue": tissue, "lesions": list(lesion_sums[1:] * ml)}


class _Session:
    """Renders and writes the images of one session."""

    def __init__(
        self,
        out: Path,
        truth: Path,
        spec: CohortSpec,
        anatomy: SubjectAnatomy,
        sub: str,
        ses: str,
        k: int,
        scale: float,
        pose: Pose,
        orientation: str,
        dtype: str,
        intensity: float,
        rng: np.random.Generator,
        contrast: FlairContrast,
        sequence: str = "MPRAGE",
        enhancement: EnhancementPlan | None = None,
        ce_rng: np.random.Generator | None = None,
    ) -> None:
        self.spec, self.anatomy, self.k, self.scale, self.contrast = spec, anatomy, k, scale, contrast
        self.enhancement, self.ce_rng = enhancement, ce_rng
        self.sequence = sequence
        self.pose, self.orientation, self.dtype, self.intensity, self.rng = pose, orientation, dtype, intensity, rng
        self.stem = f"sub-{sub}_ses-{ses}"
        self.raw = out / f"sub-{sub}" / f"ses-{ses}"
        self.truth = truth / f"sub-{sub}" / f"ses-{ses}"
        self.lesion_dir = out / "derivatives" / "lesions" / f"sub-{sub}" / f"ses-{ses}" / "anat"

    def write(self, modality: str) -> None:
        writers: dict[str, Callable[[], None]] = {
            "T1w": self._t1w,
            "FLAIR": self._flair,
            "MTR": self._mtr,
            "MEGRE": self._megre,
            "dwi": self._dwi,
            "T1w_ce": self._t1w_ce,
        }
        writers[modality]()

    # -- helpers -------------------------------------------------------------------------------
    def _series_pose(self) -> Pose:
        deg, mm = SERIES_MOTION
        return self.pose.moved(self.rng.uniform(-deg, deg, 3), self.rng.uniform(-mm, mm, 3), self.anatomy.centroid)

    def _grid(self, voxel: tuple[float, float, float], orientation: str, pose: Pose) -> tuple[tuple, np.ndarray]:
        return make_grid(pose.to_scanner(self.anatomy.head_bbox()), voxel, orientation)

    def _render(
        self, shape: tuple, affine: np.ndarray, pose: Pose, fibre: bool = False, regions: bool = False
    ) -> Sampled:
        n = tuple(max(1, int(round(size / self.spec.step))) for size in np.linalg.norm(affine[:3, :3], axis=0))
        sampled = render(self.anatomy, self.k, self.scale, pose, shape, affine, n, fibre, regions)
        if regions and not self.spec.confounders:
            sampled.regions[..., [REGIONS.index(r) for r in REGIONS if r not in ("ventricle", "infratentorial")]] = 0
        return sampled

    def _bias(self, shape: tuple, affine: np.ndarray) -> np.ndarray:
        """The scanner's smooth bias field, times the head coil's receive profile when ``spec.coil``."""
        bias = bias_field(self.rng, shape, affine, self.spec.bias_amplitude)
        if self.spec.coil > 0:
            bias *= coil_sensitivity(shape, affine, self.pose.to_scanner(self.anatomy.centroid), self.spec.coil)
        return bias

    def _finish(self, signal: np.ndarray, bias: np.ndarray, snr: float, reference: float) -> np.ndarray:
        """Bias, Rician noise (sigma = reference / snr) and the subject's intensity scale."""
        sigma = reference / snr if self.spec.noise else 0.0
        return rician(signal * bias, sigma, self.rng) * self.intensity

    def _save(self, data: np.ndarray, affine: np.ndarray, path: Path, dtype: str | None = None) -> None:
        stored = store(data, dtype or self.dtype)
        save_array(stored, affine, path, stored.dtype)

    def _sidecar(self, path: Path, **fields: object) -> None:
        save_json(
            {
                "MagneticFieldStrength": 3.0,
                "Manufacturer": "msqmri-phantom",
                "ManufacturersModelName": "synthetic",
                **fields,
            },
            path.with_name(path.name.replace(".nii.gz", ".json")),
        )

    def _pure(self, frac: np.ndarray, affine: np.ndarray, space: str) -> None:
        """Label of each voxel holding a single tissue (fraction >= PURE_FRACTION), 0 elsewhere."""
        pure = np.where(frac.max(-1) >= PURE_FRACTION, frac.argmax(-1) + 1, 0).astype(np.uint8)
        self._save(pure, affine, self.truth / f"{self.stem}_space-{space}_desc-pure_dseg.nii.gz", "uint8")

    # -- modalities ----------------------------------------------------------------------------
    def _t1w(self) -> None:
        vox = self.spec.t1w_voxel or (self.spec.resolution,) * 3
        shape, affine = self._grid(vox, self.orientation, self.pose)
        sampled = self._render(shape, affine, self.pose, regions=True)
        frac, lesion_id = sampled.frac, sampled.lesion_id
        signal = t1w_signal(frac, sampled.regions, self.sequence)
        bias = self._bias(shape, affine)
        path = self.raw / "anat" / f"{self.stem}_T1w.nii.gz"
        self._save(self._finish(signal, bias, self.spec.snr, 1.0), affine, path)
        if self.sequence == "FLASH":
            timing = {"RepetitionTime": 0.02, "EchoTime": 0.0045, "FlipAngle": 25}
        else:
            timing = {"RepetitionTime": 2.3, "InversionTime": 0.9, "EchoTime": 0.003, "FlipAngle": 9}
        self._sidecar(
            path, MRAcquisitionType="3D", **timing, SliceThickness=float(vox[2]), PulseSequenceType=self.sequence
        )
        idx = tissues.INDEX
        maps = {
            "GM": frac[..., idx["gm"]] + frac[..., idx["dgm"]],
            "WM": frac[..., idx["wm"]] + frac[..., idx["lesion"]] + frac[..., idx["blackhole"]],
            "CSF": frac[..., idx["csf"]],
            "lesion": frac[..., idx["lesion"]] + frac[..., idx["blackhole"]],
        }
        for label, pv in maps.items():
            self._save(pv, affine, self.truth / f"{self.stem}_space-T1w_label-{label}_probseg.nii.gz", "float32")
        # the brain mask holds the ventricles, as a brain extraction's does
        brain = ndimage.binary_fill_holes(sum(frac[..., idx[t]] for t in tissues.BRAIN) >= 0.5)
        self._save(brain, affine, self.truth / f"{self.stem}_space-T1w_desc-brain_mask.nii.gz", "uint8")
        lesion_mask = maps["lesion"] >= 0.5
        self._save(
            np.where(lesion_mask, lesion_id, 0),
            affine,
            self.truth / f"{self.stem}_space-T1w_desc-lesions_dseg.nii.gz",
            "int16",
        )
        if self.enhancement is not None:  # the lesions enhancing on this session's post-contrast T1w, outlined whole
            enhancing = np.isin(lesion_id, [i + 1 for i in self.enhancement.enhancing(self.k)]) & lesion_mask
            cel_path = self.truth / f"{self.stem}_space-T1w_label-CEL_dseg.nii.gz"
            self._save(np.where(enhancing, lesion_id, 0), affine, cel_path, "int16")
        # every voxel a lesion reaches, however little of it (a detection there is not false)
        self._save(
            np.where(maps["lesion"] > 0, lesion_id, 0),
            affine,
            self.truth / f"{self.stem}_space-T1w_desc-lesionextent_dseg.nii.gz",
            "int16",
        )
        self._pure(frac, affine, "T1w")
        if self.spec.lesions and self.spec.user_lesion_masks:
            self._save(
                lesion_mask, affine, self.lesion_dir / f"{self.stem}_space-T1w_label-lesion_mask.nii.gz", "uint8"
            )
        save_json(
            {"subject_to_scanner": self.pose.matrix(), "scale_drift": self.pose.drift - 1.0},
            self.truth / f"{self.stem}_desc-pose_xfm.json",
        )

    def _t1w_ce(self) -> None:
        """The post-contrast T1w (``ce-gadolinium``): the T1w of the session, in its own head position, with what
        enhances (:mod:`msqmri.phantom.enhancement`), its own bias field and noise."""
        deg, mm = SERIES_MOTION
        pose = self.pose.moved(
            self.ce_rng.uniform(-deg, deg, 3), self.ce_rng.uniform(-mm, mm, 3), self.anatomy.centroid
        )
        vox = self.spec.t1w_voxel or (self.spec.resolution,) * 3
        shape, affine = self._grid(vox, self.orientation, pose)
        sampled = self._render(shape, affine, pose, regions=True)
        frac, idx = sampled.frac, tissues.INDEX
        signal = t1w_signal(frac, sampled.regions, self.sequence)
        uptake = WM_UPTAKE * frac[..., idx["wm"]] + GM_UPTAKE * (frac[..., idx["gm"]] + frac[..., idx["dgm"]])
        signal = signal * (1.0 + uptake)
        points = pose.to_subject(grid_points(shape, affine)).astype(np.float32)
        veins = vessel_fraction(points, self.anatomy, self.enhancement.veins).reshape(shape)
        vessels = np.maximum(veins, frac[..., idx["blood"]])
        signal += VESSEL_GAIN * vessels + DURA_GAIN * frac[..., idx["dura"]]
        signal += CHOROID_GAIN * sampled.regions[..., REGIONS.index("choroid")]
        lesion = sum(frac[..., idx[t]] for t in tissues.LESIONS)
        voxel_mm = np.linalg.norm(affine[:3, :3], axis=0)
        signal += lesion_gain(sampled.lesion_id, lesion, self.enhancement.enhancing(self.k), voxel_mm)
        bias = self._bias(shape, affine)
        path = self.raw / "anat" / f"{self.stem}_ce-gadolinium_T1w.nii.gz"
        noisy = rician(signal * bias, 1.0 / self.spec.snr if self.spec.noise else 0.0, self.ce_rng) * self.intensity
        self._save(noisy, affine, path)
        self._sidecar(
            path, MRAcquisitionType="3D", ContrastBolusIngredient="GADOLINIUM", PulseSequenceType=self.sequence
        )

    def _flair(self) -> None:
        pose = self._series_pose()
        vox = self.spec.flair_voxel or (self.spec.resolution,) * 3
        shape, affine = self._grid(vox, self.orientation, pose)
        sampled = self._render(shape, affine, pose, regions=True)
        bias = self._bias(shape, affine)
        path = self.raw / "anat" / f"{self.stem}_FLAIR.nii.gz"
        signal = flair_signal(sampled.frac, sampled.regions, self.contrast)
        self._save(self._finish(signal, bias, self.spec.snr, tissues.TISSUES[2].flair), affine, path)
        if vox[2] > 1.5 * max(vox[:2]):  # thick slices: a 2D acquisition
            timing = {"MRAcquisitionType": "2D", "RepetitionTime": 9.0, "InversionTime": 2.5, "EchoTime": 0.09}
        else:
            timing = {"MRAcquisitionType": "3D", "RepetitionTime": 5.0, "InversionTime": 1.8, "EchoTime": 0.39}
        self._sidecar(path, **timing, SliceThickness=float(vox[2]))

    def _mtr(self) -> None:
        pose_off = self._series_pose()
        shape, affine = self._grid((self.spec.resolution,) * 3, self.orientation, pose_off)
        frac_off = self._render(shape, affine, pose_off).frac
        frac_on = frac_off
        if self.spec.mt_misalignment_mm > 0:
            direction = self.rng.standard_normal(3)
            shift = self.spec.mt_misalignment_mm * direction / np.linalg.norm(direction)
            frac_on = self._render(shape, affine, pose_off.moved(np.zeros(3), shift, self.anatomy.centroid)).frac
        bias = self._bias(shape, affine)
        pd_ = tissues.column("pd")
        reference = tissues.TISSUES[2].pd
        for state, frac, weights in (("off", frac_off, pd_), ("on", frac_on, pd_ * (1 - tissues.column("mtr") / 100))):
            path = self.raw / "anat" / f"{self.stem}_mt-{state}_MTR.nii.gz"
            self._save(self._finish(frac @ weights, bias, self.spec.snr_mt, reference), affine, path)
            self._sidecar(
                path, MTState=state == "on", MRAcquisitionType="3D", EchoTime=0.004, RepetitionTime=0.03, FlipAngle=10
            )
        self._pure(frac_off, affine, "MTR")

    def _megre(self) -> None:
        pose = self._series_pose()
        shape, affine = self._grid((self.spec.resolution,) * 3, self.orientation, pose)
        frac = self._render(shape, affine, pose).frac
        bias = self._bias(shape, affine)
        reference = tissues.TISSUES[2].pd
        for echo, te in enumerate(self.spec.echo_times, start=1):
            weights = tissues.column("pd") * np.exp(-tissues.column("r2star") * te)
            path = self.raw / "anat" / f"{self.stem}_echo-{echo}_MEGRE.nii.gz"
            self._save(self._finish(frac @ weights, bias, self.spec.snr_gre, reference), affine, path, "float32")
            self._sidecar(path, EchoTime=te, MRAcquisitionType="3D", RepetitionTime=0.05, FlipAngle=15)
        self._pure(frac, affine, "MEGRE")

    def _dwi(self) -> None:
        """DWI in LAS storage, where FSL-convention b-vectors are plain voxel-axis components."""
        pose = self._series_pose()
        vox = (self.spec.dwi_voxel or max(self.spec.resolution, 2.0),) * 3
        shape, affine = self._grid(vox, "LAS", pose)
        bvecs = np.vstack([np.zeros((self.spec.n_b0, 3)), hemisphere_directions(self.spec.n_directions)])
        bvals = np.r_[np.zeros(self.spec.n_b0), np.full(self.spec.n_directions, self.spec.bval)]
        axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        sampled = self._render(shape, affine, pose, fibre=True)
        frac, fibre = sampled.frac, sampled.fibre
        self._pure(frac, affine, "dwi")
        bias = self._bias(shape, affine)
        b0 = tissues.column("b0")
        ad, rd = tissues.column("ad"), tissues.column("rd")
        volumes = np.empty((*shape, len(bvals)), dtype=np.float32)
        motion = np.tile(np.eye(4), (len(bvals), 1, 1))  # world transform: volume 0 -> volume j
        for j, (bval, bvec) in enumerate(zip(bvals, bvecs, strict=True)):
            if self.spec.dwi_motion_deg > 0 and j > 0:
                moved = pose.moved(
                    self.rng.uniform(-1, 1, 3) * self.spec.dwi_motion_deg, np.zeros(3), self.anatomy.centroid
                )
                motion[j] = moved.matrix() @ np.linalg.inv(pose.matrix())
                sampled = self._render(shape, affine, moved, fibre=True)
                frac, fibre = sampled.frac, sampled.fibre
            cos2 = (fibre @ (axes @ bvec))[..., None] ** 2
            attenuation = np.exp(-bval * (rd + (ad - rd) * cos2))
            signal = np.einsum("...t,...t->...", frac, b0 * attenuation)
            volumes[..., j] = self._finish(signal, bias, self.spec.snr_dwi, tissues.TISSUES[2].b0)
        path = self.raw / "dwi" / f"{self.stem}_dwi.nii.gz"
        self._save(volumes, affine, path)
        save_text(" ".join(f"{b:g}" for b in bvals) + "\n", path.with_name(f"{self.stem}_dwi.bval"))
        save_text(
            "\n".join(" ".join(f"{v:.6f}" for v in row) for row in bvecs.T) + "\n",
            path.with_name(f"{self.stem}_dwi.bvec"),
        )
        self._sidecar(path, PhaseEncodingDirection="j-", TotalReadoutTime=0.05, EchoTime=0.08, RepetitionTime=8.0)
        save_json({"reference_to_volume": motion}, self.truth / f"{self.stem}_space-dwi_desc-motion_xfm.json")


def hemisphere_directions(n: int) -> np.ndarray:
    """``n`` near-uniform unit vectors on a hemisphere (Fibonacci lattice), deterministic."""
    k = np.arange(n) + 0.5
    z = 1.0 - k / n  # z in (0, 1]
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
