"""Tissue classes of the synthetic head and their MR properties (the phantom's ground truth).

Values are typical of 3 T literature (MTR ~40 pu in NAWM at 1.5-3 T, Tofts 2003; R2* of WM ~20 1/s and
of iron-rich deep grey matter ~40 1/s, Haacke 2005; DTI eigenvalues of adult WM/GM, Pierpaoli 1996).
Every tensor is cylindrically symmetric about the local fibre direction. Lesions are mildly hypointense
on T1w (between WM and cortex, as most T2 lesions on MPRAGE); ``blackhole`` lesions are markedly
hypointense, below cortical GM (Sahraian et al., Neurology 2010; van Walderveen et al., Neurology 1998),
with lower MTR and higher diffusivity. FLAIR values here are defaults: each subject draws its own FLAIR
contrast (:class:`FlairContrast`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Tissue:
    """MR properties of one tissue class (relative signals are unitless, 1.0 = WM on T1w)."""

    name: str
    t1w: float
    flair: float
    pd: float  # proton-density signal of the MT-off and GRE images (S0)
    mtr: float  # percent units
    r2star: float  # 1/s
    b0: float  # T2-weighted signal of the b=0 DWI
    ad: float  # axial diffusivity, mm^2/s
    rd: float  # radial diffusivity, mm^2/s

    @property
    def md(self) -> float:
        return (self.ad + 2.0 * self.rd) / 3.0

    @property
    def fa(self) -> float:
        return fractional_anisotropy(np.array([self.ad, self.rd, self.rd]))

    def as_row(self) -> dict[str, float | str]:
        return {**asdict(self), "md": self.md, "fa": self.fa}


def fractional_anisotropy(evals: np.ndarray) -> float:
    """FA of a tensor from its three eigenvalues (Basser & Pierpaoli 1996)."""
    md = evals.mean()
    return float(np.sqrt(1.5 * np.sum((evals - md) ** 2) / np.sum(evals**2)))


TISSUES: tuple[Tissue, ...] = (
    Tissue("csf", t1w=0.12, flair=0.03, pd=0.95, mtr=2.0, r2star=2.0, b0=1.00, ad=3.0e-3, rd=3.0e-3),
    Tissue("gm", t1w=0.62, flair=0.68, pd=0.80, mtr=33.0, r2star=17.0, b0=0.70, ad=0.95e-3, rd=0.75e-3),
    Tissue("wm", t1w=1.00, flair=0.50, pd=0.66, mtr=42.0, r2star=20.0, b0=0.55, ad=1.60e-3, rd=0.35e-3),
    Tissue("dgm", t1w=0.76, flair=0.60, pd=0.72, mtr=36.0, r2star=40.0, b0=0.62, ad=0.95e-3, rd=0.65e-3),
    Tissue("lesion", t1w=0.78, flair=1.00, pd=0.86, mtr=28.0, r2star=15.0, b0=0.85, ad=1.50e-3, rd=0.80e-3),
    Tissue("bone", t1w=0.03, flair=0.02, pd=0.03, mtr=0.0, r2star=250.0, b0=0.02, ad=0.3e-3, rd=0.3e-3),
    Tissue("marrow", t1w=0.45, flair=0.40, pd=0.50, mtr=30.0, r2star=60.0, b0=0.15, ad=0.5e-3, rd=0.5e-3),
    Tissue("muscle", t1w=0.35, flair=0.30, pd=0.60, mtr=50.0, r2star=35.0, b0=0.20, ad=1.5e-3, rd=0.9e-3),
    Tissue("fat", t1w=0.95, flair=0.70, pd=0.90, mtr=10.0, r2star=30.0, b0=0.10, ad=0.1e-3, rd=0.1e-3),
    Tissue("blackhole", t1w=0.40, flair=1.00, pd=0.90, mtr=20.0, r2star=12.0, b0=0.92, ad=1.90e-3, rd=1.20e-3),
    # the whole head's (msqmri.phantom.head): dura and falx, venous blood (bright on MPRAGE from slow flow),
    # spinal cord and optic nerves, the eyes' vitreous and the spinal canal's fluid, air (pharynx, sinuses)
    Tissue("dura", t1w=0.40, flair=0.30, pd=0.50, mtr=45.0, r2star=30.0, b0=0.20, ad=0.5e-3, rd=0.5e-3),
    Tissue("blood", t1w=0.95, flair=0.08, pd=0.85, mtr=5.0, r2star=25.0, b0=0.30, ad=2.0e-3, rd=2.0e-3),
    Tissue("cord", t1w=0.95, flair=0.55, pd=0.68, mtr=40.0, r2star=20.0, b0=0.55, ad=1.6e-3, rd=0.35e-3),
    Tissue("fluid", t1w=0.10, flair=0.03, pd=0.95, mtr=2.0, r2star=2.0, b0=1.00, ad=3.0e-3, rd=3.0e-3),
    Tissue("air", t1w=0.0, flair=0.0, pd=0.0, mtr=0.0, r2star=0.0, b0=0.0, ad=1.0e-3, rd=1.0e-3),
)
NAMES: tuple[str, ...] = tuple(t.name for t in TISSUES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}
BRAIN: tuple[str, ...] = ("gm", "wm", "dgm", "lesion", "blackhole")
#: what the intracranial volume holds besides the brain (the dura and sinuses of a whole head)
INTRACRANIAL: tuple[str, ...] = ("csf", "dura", "blood")
#: the tissues of a T2 (FLAIR-hyperintense) lesion
LESIONS: tuple[str, ...] = ("lesion", "blackhole")


def column(prop: str) -> np.ndarray:
    """One property of every tissue, in :data:`NAMES` order, as a float64 vector."""
    return np.array([getattr(t, prop) for t in TISSUES], dtype=np.float64)


#: T1w sequences: MPRAGE (the ``t1w`` of :data:`TISSUES`) and a FLASH-like spoiled gradient echo, whose
#: grey/white contrast is lower, CSF less dark, and fat and inflowing blood brighter (Deichmann et al.,
#: NeuroImage 2000: MDEFT/MPRAGE vs FLASH T1 weighting)
T1W_SEQUENCES = ("MPRAGE", "FLASH")
FLASH_T1W = {
    "csf": 0.25,
    "gm": 0.74,
    "dgm": 0.84,
    "lesion": 0.86,
    "blackhole": 0.58,
    "marrow": 0.55,
    "muscle": 0.45,
    "fat": 1.15,
    "blood": 1.30,
    "fluid": 0.22,
}


def t1w_column(sequence: str = "MPRAGE") -> np.ndarray:
    """T1w signal of every tissue for one of :data:`T1W_SEQUENCES`."""
    values = column("t1w")
    if sequence == "FLASH":
        for name, value in FLASH_T1W.items():
            values[INDEX[name]] = value
    return values


@dataclass(frozen=True)
class FlairContrast:
    """A subject's FLAIR signal of each brain tissue relative to WM, and of the FLAIR confounders.

    Realistic ranges (3D FLAIR at 1.5-3 T): cortex 1.05-1.3 x WM, deep GM and brainstem up to as bright
    as cortex, lesions 1.7-2.2 x WM; the ependymal lining, the septum pellucidum and the choroid plexus
    bright, CSF flow in the fourth ventricle and the prepontine cistern unsuppressed, patches of mildly
    hyperintense cortex (the known false positives of FLAIR lesion thresholds).
    """

    gm: float = 1.2
    dgm: float = 1.2
    brainstem: float = 1.2
    lesion: float = 2.0
    ependyma: float = 1.7
    septum: float = 1.6
    choroid: float = 1.5
    flow: float = 1.8
    cortical_patch: float = 1.12

    def column(self) -> np.ndarray:
        """FLAIR of every tissue (:data:`NAMES` order) with this contrast (WM keeps its default)."""
        wm = TISSUES[INDEX["wm"]].flair
        values = column("flair")
        for name, ratio in (("gm", self.gm), ("dgm", self.dgm), ("lesion", self.lesion), ("blackhole", self.lesion)):
            values[INDEX[name]] = ratio * wm
        return values
