"""PBVC on 1 mm phantom pairs: accuracy of the edge (SIENA-like) and Jacobian methods, time and memory.

    python benchmarks/pbvc.py [--workdir DIR] [--cases iso drift aniso ...] [--jacobian-cases iso ...]

Cases (one subject, four sessions with cumulative PBVC 0, 0, -0.6, -2.0 %, noise, bias field,
head repositioning, lesions): ``iso`` 1 mm RAS; ``drift`` the same subject with a whole-head scale
drift of +-0.6 % in the follow-ups; ``aniso`` another subject at 1x1x1.2 mm stored LAS. Whole heads
(neck and shoulders, face, dura, falx and sinuses, a head coil's receive profile; three sessions):
``whole-oblique`` an obliquely prescribed MPRAGE with PBVC 0, 0, -0.8 %; ``whole-aniso`` a 1x1x1.3 mm
LAS FLASH with PBVC 0, -0.4, -1.0 % and a +-0.5 % scale drift. Each
session is preprocessed (structural), then every consecutive and baseline->later pair is measured.
A real head (``colin27``, Debian's mricron-data): Colin27 scanned five times as clinics scan it (each session
another pose, grid and field of view from msqmri.validation.real_heads.CLINICAL_SCANS) with its brain shrunk
by a known amount (PBVC 0, 0, -0.3, -0.6, -1.0 %; ``shrunk_brain``: the true PBVC from BET's brain
through the same deformation), every baseline->later and consecutive pair measured.
Prints per-pair truth, both methods' PBVC and error, time and peak RSS per step, then the summary
figures the issue asks for (MAE, worst pair, scan-rescan, drift effect, swap antisymmetry, forward/backward).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
import pandas as pd
from structural import PeakRSS

from msqmri.anat.stage import run_structural
from msqmri.atrophy import jacobian, siena
from msqmri.atrophy.halfway import halfway_images, register_pair
from msqmri.atrophy.qc import qc_flag
from msqmri.atrophy.stage import load_scan
from msqmri.core.registration import ants_image
from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.phantom.cohort import session_pairs
from msqmri.workflow import layout

#: the true lesion masks are given as a user's, so that the lesions are filled as WM (SIENAX -lm)
SPEC = CohortSpec(
    n_subjects=1,
    n_sessions=4,
    resolution=1.0,
    modalities=("T1w",),
    seed=31,
    orientations=("RAS",),
    pbvc=(0.0, 0.0, -0.6, -2.0),
    user_lesion_masks=True,
)
CASES = {
    "iso": SPEC,
    "drift": replace(SPEC, drift=(0.0, 0.006, -0.006, 0.006)),
    "aniso": replace(SPEC, t1w_voxel=(1.0, 1.0, 1.2), orientations=("LAS",), seed=32),
    "whole-oblique": replace(
        SPEC, n_sessions=3, pbvc=(0.0, 0.0, -0.8), head="whole", coil=0.3, orientations=("oblique",), seed=33
    ),
    "whole-aniso": replace(
        SPEC,
        n_sessions=3,
        pbvc=(0.0, -0.4, -1.0),
        head="whole",
        coil=0.3,
        t1w_voxel=(1.0, 1.0, 1.3),
        orientations=("LAS",),
        t1w_sequences=("FLASH",),
        drift=(0.0, 0.005, -0.005),
        seed=34,
    ),
}


#: the Colin27 case: each session's scan (CLINICAL_SCANS) and requested PBVC from the first
COLIN27_SESSIONS = (
    ("tilted-15-to-the-shoulders", 0.0),
    ("LAS-1x1x1.3-strong-bias", 0.0),
    ("oblique-slab-vertex-cut", -0.3),
    ("chin-down-12", -0.6),
    ("yawed-15", -1.0),
)


def scan_colin27_sessions(root: Path) -> None:
    """The ``colin27`` case's raw T1w scans and its truth table (module docstring), as the phantom cases have."""
    from msqmri.validation.real_heads import CLINICAL_SCANS, colin27_dir, scan_colin27, shrunk_brain

    folder = colin27_dir()
    if folder is None:
        raise SystemExit("the colin27 case needs Debian's mricron-data")
    truth = []
    for k, (variant, requested) in enumerate(COLIN27_SESSIONS, start=1):
        warp, true = shrunk_brain(folder, requested) if requested else (None, 0.0)
        t1w = root / f"sub-01/ses-{k:02d}/anat/sub-01_ses-{k:02d}_T1w.nii.gz"
        t1w.parent.mkdir(parents=True, exist_ok=True)
        scan_colin27(folder, CLINICAL_SCANS[variant], t1w, warp=warp)
        truth.append(true)
    rows = [
        {
            "session_from": f"ses-{i + 1:02d}",
            "session_to": f"ses-{j + 1:02d}",
            "pbvc": ((1 + truth[j] / 100) / (1 + truth[i] / 100) - 1) * 100,
        }
        for i, j in session_pairs(len(truth))
    ]
    (root / "sourcedata/ground_truth").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "sourcedata/ground_truth/pbvc.tsv", sep="\t", index=False)


def structural_paths(root: Path, ses: str) -> dict[str, str]:
    wildcards = {"sesdir": f"sub-01/ses-{ses}", "stem": f"sub-01_ses-{ses}"}
    return {k: str(root / "derivatives/msqmri" / v.format(**wildcards)) for k, v in layout.STRUCTURAL.items()}


def prepare(root: Path, spec: CohortSpec | None) -> list[str]:
    """Generate a case (``spec`` None: the colin27 case) and preprocess its sessions, unless done before."""
    if not (root / "sourcedata/ground_truth/pbvc.tsv").exists() and spec is None:
        scan_colin27_sessions(root)
    elif not (root / "sourcedata/ground_truth/pbvc.tsv").exists():
        generate_cohort(root, spec)
    sessions = [f"{k + 1:02d}" for k in range(len(COLIN27_SESSIONS) if spec is None else spec.n_sessions)]
    for ses in sessions:
        outputs = structural_paths(root, ses)
        if not Path(outputs["volumes"]).exists():
            t1w = root / f"sub-01/ses-{ses}/anat/sub-01_ses-{ses}_T1w.nii.gz"
            lesion = (
                root / f"derivatives/lesions/sub-01/ses-{ses}/anat/sub-01_ses-{ses}_space-T1w_label-lesion_mask.nii.gz"
            )
            inputs = {"t1w": str(t1w), **({"lesion": str(lesion)} if lesion.exists() else {})}
            run_structural(inputs, outputs, {"participant_id": "sub-01", "session_id": f"ses-{ses}"})
    return sessions


def measure_pair(root: Path, a: str, b: str, with_jacobian: bool, with_siena: bool = True) -> dict:
    row: dict = {}
    with PeakRSS() as m:
        scan_a, scan_b = load_scan(structural_paths(root, a)), load_scan(structural_paths(root, b))
        with tempfile.TemporaryDirectory() as tmp:
            reg = register_pair(scan_a, scan_b, 1, tmp)
    row.update(register_s=m.seconds, register_gb=m.peak / 1e9, skull_scale_pct=-reg.scale_percent)
    if with_siena:
        with PeakRSS() as m:
            result = siena.siena(scan_a, scan_b, reg)
        row.update(
            siena=result.pbvc,
            fwd=result.pbvc_forward,
            bwd=-result.pbvc_backward,
            self_calibrated=result.pbvc_self_calibrated,
            siena_s=m.seconds,
            siena_gb=m.peak / 1e9,
            shared_edges=result.shared_edges,
            qc=qc_flag(result.qc_figures()),
        )
    if with_jacobian:
        with PeakRSS() as m:
            grid, half = halfway_images(scan_a, scan_b, reg)
            jac = jacobian.jacobian_pbvc(
                ants_image(half["a"], grid.affine), ants_image(half["b"], grid.affine), half["brain_a"], half["brain_b"]
            )
        row.update(jacobian=jac.pbvc, jacobian_s=m.seconds, jacobian_gb=m.peak / 1e9)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="pbvc-bench")
    parser.add_argument("--cases", nargs="+", choices=[*CASES, "colin27"], default=list(CASES))
    parser.add_argument("--jacobian-cases", nargs="*", default=["iso"])
    parser.add_argument("--no-siena", action="store_true", help="measure only the Jacobian method")
    args = parser.parse_args()
    rows = []
    for case in args.cases:
        root = Path(args.workdir) / case
        sessions = prepare(root, CASES.get(case))
        truth = pd.read_csv(root / "sourcedata/ground_truth/pbvc.tsv", sep="\t")
        pairs = [(sessions[i], sessions[j]) for i, j in session_pairs(len(sessions))]
        if case == "iso":
            pairs.append((sessions[-1], sessions[0]))  # the swap of baseline -> last
        for a, b in pairs:
            hit = truth[(truth.session_from == f"ses-{a}") & (truth.session_to == f"ses-{b}")]
            true = float(hit.pbvc.iloc[0]) if len(hit) else None
            if true is None:  # the swapped pair
                back = truth[(truth.session_from == f"ses-{b}") & (truth.session_to == f"ses-{a}")].pbvc.iloc[0]
                true = ((1 / (1 + back / 100)) - 1) * 100
            row = {
                "case": case,
                "pair": f"{a}->{b}",
                "truth": true,
                **measure_pair(root, a, b, case in args.jacobian_cases, not args.no_siena),
            }
            rows.append(row)
            print(pd.DataFrame([row]).round(3).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    if args.no_siena:
        table["jacobian_err"] = table.jacobian - table.truth
        print("\nPer pair\n" + table.round(3).to_string(index=False))
        print(
            f"Jacobian MAE {table.jacobian_err.abs().mean():.3f} %, max {table.jacobian_err.abs().max():.3f} %, "
            f"time per pair {table.jacobian_s.mean():.0f} s, peak {table.jacobian_gb.max():.2f} GB"
        )
        return
    table["siena_err"] = table.siena - table.truth
    table["self_calibrated_err"] = table.self_calibrated - table.truth
    if "jacobian" in table:
        table["jacobian_err"] = table.jacobian - table.truth
    print("\nPer pair\n" + table.round(3).to_string(index=False))
    print("\nSummary (edge method unless noted)")
    for case, group in table.groupby("case", sort=False):
        forward = group[~group.pair.isin(["04->01"])]
        rescan = forward[forward.truth.abs() < 1e-3]
        line = (
            f"{case}: MAE {forward.siena_err.abs().mean():.3f} %, max |err| {forward.siena_err.abs().max():.3f} %,"
            f" scan-rescan |PBVC| {rescan.siena.abs().max():.3f} %"
        )
        line += f", SIENA self-calibration alone MAE {forward.self_calibrated_err.abs().mean():.3f} %"
        if "jacobian_err" in group and group.jacobian_err.notna().any():
            line += (
                f", Jacobian MAE {forward.jacobian_err.abs().mean():.3f} % (max {forward.jacobian_err.abs().max():.3f})"
            )
        line += (
            f", time per pair {(forward.register_s + forward.siena_s).mean():.0f} s (+ Jacobian "
            f"{forward.get('jacobian_s', pd.Series([np.nan])).mean():.0f} s), peak "
            f"{forward[['register_gb', 'siena_gb']].max().max():.2f} GB"
        )
        print(line)
    real = table[table.case == "colin27"]
    if len(real):
        gap = (real.fwd - real.bwd).abs()
        print(f"colin27 (a real head): forward/backward gap mean {gap.mean():.3f}, max {gap.max():.3f} points")
    whole = table[table.case.str.startswith("whole")]
    for method in ("siena", "jacobian"):
        errors = whole.get(f"{method}_err", pd.Series(dtype=float)).dropna().abs()
        if len(errors):
            print(f"whole heads, {method}: {len(errors)} pairs, MAE {errors.mean():.3f} %, worst {errors.max():.3f} %")
    if {"iso", "drift"} <= set(table.case):
        both = table[table.case == "iso"].merge(table[table.case == "drift"], on="pair", suffixes=("", "_drift"))
        print(f"drift 0.6 %: largest PBVC change {(both.siena_drift - both.siena).abs().max():.3f} %")
    iso = table[table.case == "iso"].set_index("pair")
    if {"01->04", "04->01"} <= set(iso.index):
        print(f"swap: |PBVC(01->04) + PBVC(04->01)| = {abs(iso.siena['01->04'] + iso.siena['04->01']):.4f} %")


if __name__ == "__main__":
    main()
