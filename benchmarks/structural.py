"""Structural preprocessing on 1 mm phantom sessions: time and peak memory per stage, accuracy, backends.

    python benchmarks/structural.py [--workdir DIR] [--backends template deepbet]

Builds (or reuses) 1 mm phantom sessions: an isotropic RAS one and a 1x1x1.2 mm one stored LAS (skull and
scalp only), and three whole heads (neck and shoulders, face and orbits, dura and venous sinuses, fatty
skull-base marrow, a head coil's receive profile): oblique MPRAGE, 1x1x1.3 mm LAS FLASH, RAS MPRAGE.
For each it prints the wall time and peak resident memory of every stage (measured by polling the
process RSS), then brain-mask Dice, brain-volume error, GM/WM Dice, the ICV estimate's error and vscale
against the ground truth, and the brain-extraction backends side by side (Dice, brain-volume error, time).
vscale has two approximate references: ``head_scale^-3`` (the phantom brain is the template scaled by
``head_scale``, then warped by a few mm) and ``template_icv/true_icv`` (the scaling that gives the true
intracranial volume, brain + CSF rim + dura, the template's; the phantom's CSF rim lies outside the
template's skull-stripped extent, so the two differ by about 8 %).

Then a real head as clinics scan it: Colin27 at 1 mm (Debian's mricron-data; skipped with a note where it is
missing) in each of the 12 ``CLINICAL_SCANS`` of msqmri.validation.real_heads (poses up to 15 degrees, oblique
slabs, fields of view from a cut vertex to the shoulders, LAS/LPS/PIR storage, thick slices, bias, noise),
against BET's brain mask (which takes in the subarachnoid CSF) and the 0.5 mm better extraction, both taken
through the same scan: Dice, what lies beyond 2 mm of each, the mask's volume over BET's, the brain volume,
the ICV, vscale and the session's qc_flag, for each backend, then the worst of each per backend and vscale's
spread over the poses; the whole-head QC mosaic of each session is written to the workdir. Each ICV is set
against the skull-bounded reference, SAMSEG's intracranial volume of Colin27 (``SAMSEG_ICV_ML``; ``--samseg
PATH/run_samseg``, installed in its own environment, measures it again).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")

import nibabel as nib
import numpy as np
import pandas as pd
import psutil

from msqmri.phantom import CohortSpec, generate_cohort

SPEC = CohortSpec(n_subjects=1, n_sessions=1, resolution=1.0, modalities=("T1w",), seed=21, orientations=("RAS",))
WHOLE = replace(SPEC, head="whole", coil=0.3)  # neck, face, dura, sinuses; a multichannel coil's profile
CASES = {
    "1mm-RAS": SPEC,
    "1x1x1.2mm-LAS": replace(SPEC, t1w_voxel=(1.0, 1.0, 1.2), orientations=("LAS",), seed=22),
    "whole-head-oblique-MPRAGE": replace(WHOLE, orientations=("oblique",), seed=23),
    "whole-head-1x1x1.3mm-LAS-FLASH": replace(
        WHOLE, t1w_voxel=(1.0, 1.0, 1.3), orientations=("LAS",), t1w_sequences=("FLASH",), seed=24
    ),
    "whole-head-RAS-MPRAGE": replace(WHOLE, seed=25),
}


class PeakRSS:
    """Peak resident set size of this process while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakRSS:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        self.start = time.perf_counter()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(rows: list[dict[str, Any]], case: str, stage: str, fn: Callable[[], Any]) -> Any:
    with PeakRSS() as m:
        result = fn()
    rows.append({"case": case, "stage": stage, "seconds": round(m.seconds, 1), "peak_rss_gb": round(m.peak / 1e9, 2)})
    return result


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def run_case(case: str, root: Path, backends: list[str], rows: list, accuracy: list, side: list) -> None:
    from msqmri.anat import brain_extraction as be
    from msqmri.anat import template
    from msqmri.anat.bias import n4
    from msqmri.anat.segmentation import hard_labels
    from msqmri.anat.stage import intracranial, load_t1w, measured_fractions
    from msqmri.atrophy.sienax import tissue_volumes, volume_scaling

    t1_path = root / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz"
    truth_dir = root / "sourcedata/ground_truth/sub-01/ses-01"
    t1w = timed(rows, case, "load + validate", lambda: load_t1w(t1_path))
    head = timed(rows, case, "head mask", lambda: be.head_mask(t1w))
    corrected = timed(rows, case, "N4", lambda: n4(t1w, t1w.new_image_like(head.astype(np.float32))))
    data = corrected.numpy()
    timed(rows, case, "rough brain (morphology)", lambda: be.rough_brain(data, head, corrected.spacing))
    start = time.perf_counter()
    extraction = timed(rows, case, "brain extraction: N4 + registration + Atropos + PV", lambda: be.extract_brain(t1w))
    side.append(
        {"case": case, "backend": "template (antspyx)", "seconds": round(time.perf_counter() - start, 1), "dice": None}
    )
    icv, _ = timed(rows, case, "ICV estimate", lambda: intracranial(extraction, t1w.spacing))
    vscale = timed(
        rows, case, "vscale (ICV affine)", lambda: volume_scaling(t1w.new_image_like(icv.astype(np.float32)))
    )
    truth = np.asarray(nib.load(str(truth_dir / "sub-01_ses-01_space-T1w_desc-brain_mask.nii.gz")).dataobj) > 0
    pv = {
        t: np.asarray(nib.load(str(truth_dir / f"sub-01_ses-01_space-T1w_label-{t}_probseg.nii.gz")).dataobj)
        for t in ("CSF", "GM", "WM")
    }
    voxel_ml = float(np.prod(t1w.spacing)) / 1000
    fractions = measured_fractions(extraction.fractions, extraction.mask, icv)
    volumes = tissue_volumes(fractions, None, voxel_ml)
    true_brain = float((pv["GM"] + pv["WM"]).sum()) * voxel_ml
    hard = np.argmax(np.stack([pv["CSF"], pv["GM"], pv["WM"]]), axis=0) + 1
    dseg = hard_labels(fractions, extraction.mask)
    head_scale = pd.read_csv(root / "sourcedata/ground_truth/sessions.tsv", sep="\t").head_scale.iloc[0]
    true_icv = float(pd.read_csv(root / "sourcedata/ground_truth/volumes.tsv", sep="\t").icv_ml.iloc[0])
    template_icv_ml = float(template.array("icv").sum()) / 1000  # 1 mm grid
    side[-1]["dice"] = round(dice(extraction.mask, truth), 4)
    accuracy.append(
        {
            "case": case,
            "brain_dice": round(dice(extraction.mask, truth), 4),
            "brain_ml": round(volumes["brain_volume_ml"], 1),
            "true_brain_ml": round(true_brain, 1),
            "brain_error_pct": round(100 * (volumes["brain_volume_ml"] / true_brain - 1), 2),
            "gm_dice": round(dice(dseg == 2, (hard == 2) & truth), 4),
            "wm_dice": round(dice(dseg == 3, (hard == 3) & truth), 4),
            "icv_error_pct": round(100 * (float(icv.sum()) * voxel_ml / true_icv - 1), 2),
            "vscale": round(vscale, 4),
            "head_scale^-3": round(float(head_scale) ** -3, 4),
            "template_icv/true_icv": round(template_icv_ml / true_icv, 4),
        }
    )
    side[-1]["brain_error_pct"] = accuracy[-1]["brain_error_pct"]
    for backend in backends:
        if backend == "deepbet":
            start = time.perf_counter()
            cnn_run = timed(
                rows,
                case,
                "brain extraction, deepbet backend",
                lambda: be.extract_brain(t1w, backend="deepbet", t1w_path=t1_path),
            )
            seconds = time.perf_counter() - start
            raw = timed(rows, case, "deepbet CNN mask alone", lambda: be.deepbet_mask(t1_path))
            # the volume as the pipeline measures it with this backend (its own registration and fractions)
            icv_cnn, _ = intracranial(cnn_run, t1w.spacing)
            cnn = tissue_volumes(measured_fractions(cnn_run.fractions, cnn_run.mask, icv_cnn), None, voxel_ml)
            side.append(
                {
                    "case": case,
                    "backend": "deepbet (CNN, CPU)",
                    "seconds": round(seconds, 1),
                    "dice": round(dice(cnn_run.mask, truth), 4),
                    "cnn_mask_dice": round(dice(raw, truth), 4),
                    "brain_error_pct": round(100 * (cnn["brain_volume_ml"] / true_brain - 1), 2),
                }
            )


def run_real_head(workdir: Path, backends: list[str], variants: list[str], real: list, reference_icv: float) -> None:
    """Colin27 scanned as clinics scan it (``CLINICAL_SCANS``, 1 mm) through structural preprocessing, each
    backend against BET's mask and the 0.5 mm better extraction taken through the same scan, its ICV against
    ``reference_icv`` (module docstring)."""
    from msqmri.anat.stage import load_t1w, preprocess
    from msqmri.core.io import MsqmriError
    from msqmri.core.morphology import near
    from msqmri.qc.plots import mosaic
    from msqmri.validation.real_heads import CLINICAL_SCANS, colin27_dir, scan_colin27

    folder = colin27_dir()
    if folder is None:
        print("\nColin27 (the real head) needs Debian's mricron-data: skipped")
        return
    workdir.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        path, references = scan_colin27(folder, CLINICAL_SCANS[variant], workdir / f"colin27-{variant}_T1w.nii.gz")
        spacing = tuple(float(z) for z in nib.load(str(path)).header.get_zooms())
        voxel_ml = float(np.prod(spacing)) / 1000
        for backend in ["template", *backends]:
            start = time.perf_counter()
            try:
                result = preprocess(load_t1w(path), backend=backend, t1w_path=path)
            except MsqmriError as error:  # a session that stops is a result of the benchmark, not its end
                real.append({"variant": variant, "backend": backend, "failed": str(error)})
                continue
            brain, volumes = result.brain, result.volumes
            row = {"variant": variant, "backend": backend, "seconds": round(time.perf_counter() - start, 1)}
            for name, ref in references.items():
                row[f"dice_{name}"] = round(dice(brain, ref), 4)
                row[f"beyond_2mm_{name}_ml"] = round(float((brain & ~near(ref, spacing, 2.0)).sum()) * voxel_ml, 1)
            row.update(
                {
                    "mask/bet": round(float(brain.sum() / references["bet"].sum()), 3),
                    "brain_ml": round(volumes["brain_volume_ml"], 1),
                    "icv_ml": volumes["icv_volume_ml"] and round(volumes["icv_volume_ml"], 1),
                    "icv_vs_samseg_pct": volumes["icv_volume_ml"]
                    and round(100 * (volumes["icv_volume_ml"] / reference_icv - 1), 1),
                    "vscale": volumes["vscale"] and round(volumes["vscale"], 4),
                    "qc_flag": volumes["qc_flag"],
                }
            )
            real.append(row)
            print(pd.DataFrame([row]).to_string(index=False, header=len(real) == 1), flush=True)
            png = mosaic(result.corrected.numpy(), brain, contours=[(brain, "cyan")])
            (workdir / f"colin27-{variant}_{backend}_mask.png").write_bytes(png)


def samseg_icv(run_samseg: str, workdir: Path) -> float:
    """SAMSEG's intracranial volume (ml, its sbTIV) of Colin27 as shipped, run in SAMSEG's own environment."""
    from msqmri.validation.real_heads import colin27_dir

    out = workdir / "samseg-colin27"
    if not (out / "sbtiv.stats").is_file():
        if colin27_dir() is None:
            raise SystemExit("--samseg needs Colin27 from Debian's mricron-data")
        t1w = str(colin27_dir() / "ch2.nii.gz")
        subprocess.run([run_samseg, "-i", t1w, "-o", str(out), "--threads", "2"], check=True, capture_output=True)
    line = (out / "sbtiv.stats").read_text().splitlines()[0]  # "# Measure Intra-Cranial, <mm^3>, mm^3"
    return float(line.split(",")[1]) / 1000.0


def real_head_summary(real: list[dict]) -> pd.DataFrame:
    """Per backend: sessions that stopped, the worst Dice and leak beyond 2 mm, and vscale's spread over poses."""
    frame = pd.DataFrame(real)
    if "failed" not in frame:
        frame["failed"] = None
    rows = []
    for backend, group in frame.groupby("backend", sort=False):
        ok = group[group["failed"].isna()]
        rows.append(
            {
                "backend": backend,
                "variants": len(group),
                "stopped": int(group["failed"].notna().sum()),
                "min_dice_bet": ok["dice_bet"].min(),
                "min_dice_better": ok["dice_better"].min(),
                "max_beyond_2mm_bet_ml": ok["beyond_2mm_bet_ml"].max(),
                "max_beyond_2mm_better_ml": ok["beyond_2mm_better_ml"].max(),
                "vscale_spread_pct": round(100 * (ok["vscale"].max() / ok["vscale"].min() - 1), 2),
                "icv_vs_samseg_pct": f"{ok['icv_vs_samseg_pct'].min():+.1f} .. {ok['icv_vs_samseg_pct'].max():+.1f}",
                "not_ok": int((ok["qc_flag"] != "ok").sum()),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("benchmark-data"))
    parser.add_argument("--backends", nargs="*", default=[], help="extra brain-extraction backends: deepbet")
    parser.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    parser.add_argument("--no-real-head", action="store_true", help="leave out Colin27")
    parser.add_argument(
        "--real-head-variants", nargs="*", default=None, help="Colin27 scans to run (default: all CLINICAL_SCANS)"
    )
    parser.add_argument("--samseg", help="SAMSEG's run_samseg (its own environment): measure Colin27's ICV again")
    args = parser.parse_args()
    rows: list[dict] = []
    accuracy: list[dict] = []
    side: list[dict] = []
    real: list[dict] = []
    for case, spec in ((case, CASES[case]) for case in args.cases):
        root = args.workdir / f"structural-{case}"
        if not (root / "dataset_description.json").is_file():
            timed(rows, case, "phantom generation", lambda root=root, spec=spec: generate_cohort(root, spec))
        run_case(case, root, args.backends, rows, accuracy, side)
    if not args.no_real_head:
        from msqmri.validation.real_heads import CLINICAL_SCANS, SAMSEG_ICV_ML

        reference = samseg_icv(args.samseg, args.workdir) if args.samseg else SAMSEG_ICV_ML
        print(f"Colin27's ICV by SAMSEG: {reference:.1f} ml" + ("" if args.samseg else " (SAMSEG_ICV_ML)"))
        run_real_head(args.workdir, args.backends, args.real_head_variants or list(CLINICAL_SCANS), real, reference)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nTime and peak memory per stage (2 cores)\n")
        print(pd.DataFrame(rows).to_string(index=False))
        print("\nAccuracy against the phantom ground truth\n")
        print(pd.DataFrame(accuracy).to_string(index=False))
        print("\nBrain-extraction backends side by side\n")
        print(pd.DataFrame(side).to_string(index=False))
        if real:
            print(
                "\nA real head as scanned: Colin27 at 1 mm in every CLINICAL_SCANS variant, against BET's brain mask "
                "(which takes in the subarachnoid CSF) and the 0.5 mm better extraction, both through the same scan\n"
            )
            print(pd.DataFrame(real).to_string(index=False))
            print("\nSummary per backend\n")
            print(real_head_summary(real).to_string(index=False))


if __name__ == "__main__":
    main()
