"""Lesion measurement at 1 mm against the phantom's planned lesions, beside a published baseline.

    python benchmarks/lesions.py [--workdir DIR] [--cores 2] [--subjects 10] [--active-subjects 4]
                                 [--cohorts lesion-free scan-rescan active [2d-flair]] [--seed 0]
                                 [--also EARLIER_WORKDIR ...]

Three 1 mm phantom cohorts (T1w + FLAIR; FLAIR cortex/WM contrast drawn per subject in 1.05-1.3 with the
deep GM and brainstem as bright as cortex, lesion/WM in 1.7-2.2, bias fields up to +-30 %, the FLAIR
confounders: bright ependyma, septum, choroid plexus, CSF flow, mildly hyperintense cortex):

- *lesion-free*: ``--subjects`` subjects, two sessions each (repositioned, new noise, no change);
- *scan-rescan*: ``--subjects`` subjects with lesions that do not change, two sessions each;
- *active*: ``--active-subjects`` subjects, three sessions with new, enlarging, shrinking and resolved lesions;
- *2d-flair* (only when asked for): the active cohort's design with a 2D FLAIR of 1 x 1 x 3 mm slices, the
  clinical protocol MAGNIMS accepts when a 3D FLAIR is not available (other subjects than *active*'s).

Each cohort goes through msqmri's workflow (Snakemake, the lesion targets: structural preprocessing,
FLAIR -> T1w, normalisation, segmentation, metrics, halfway registration, activity, tracking), with the
lesions found in the images (no truth mask is given). The outlier-model baseline
(``benchmarks/lesion_baseline.py``, Van Leemput et al. 2001) runs on the same sessions' preprocessed
T1w, FLAIR and priors. ``--cohorts`` runs some of the cohorts; ``--seed`` draws other subjects (100 x it
added to each cohort's seed), and ``--also`` pools the cohorts of earlier runs (other seeds, other
workdirs) into the tables. Everything is scored against the plan (:mod:`msqmri.validation.scoring`); prints one
table per part and the time per session of each segmentation. Cohorts and workflow outputs are kept in
``--workdir``, so a rerun only recomputes what changed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lesion_baseline
from workflow_run import run_targets

from msqmri.anat import template
from msqmri.anat.bias import n4
from msqmri.core.registration import ants_image
from msqmri.lesions.components import label_lesions
from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.validation.scoring import score_cohort
from msqmri.workflow import layout

COMMON = {
    "resolution": 1.0,
    "modalities": ("T1w", "FLAIR"),
    "bias_amplitude": 0.3,
    "orientations": ("RAS", "LAS", "oblique"),
}
TARGETS = (layout.LESIONS_TABLE, layout.LESION_COUNTS_TABLE, layout.LESION_ACTIVITY_TABLE, layout.LESION_CHANGES_TABLE)


def cohorts(subjects: int, active: int, seed: int = 0) -> dict[str, CohortSpec]:
    return {
        "lesion-free": CohortSpec(
            n_subjects=subjects, n_sessions=2, lesions=False, pbvc=(0.0, 0.0), seed=101 + 100 * seed, **COMMON
        ),
        "scan-rescan": CohortSpec(
            n_subjects=subjects, n_sessions=2, lesion_activity=False, pbvc=(0.0, 0.0), seed=102 + 100 * seed, **COMMON
        ),
        "active": (spec := CohortSpec(n_subjects=active, n_sessions=3, seed=103 + 100 * seed, **COMMON)),
        "2d-flair": replace(spec, seed=104 + 100 * seed, flair_voxel=(1.0, 1.0, 3.0)),
    }


#: the cohorts run when ``--cohorts`` is not given
DEFAULT_COHORTS = ("lesion-free", "scan-rescan", "active")


#: the workflow's lesion rules, rerun with ``--rerun-lesions`` after a change to the lesion algorithms
LESION_RULES = (
    "flair_normalization",
    "lesion_mask",
    "session_metrics",
    "lesion_activity",
    "lesion_tracking",
    "lesion_identities",
)


def baseline_masks(bids: Path, out: Path) -> tuple[dict[str, Path], list[float]]:
    """The baseline's lesion labels of every session (cached beside the workflow's outputs) and its times."""
    paths, seconds = {}, []
    for t1w in sorted(out.glob("sub-*/ses-*/anat/*_desc-preproc_T1w.nii.gz")):
        stem = t1w.name.removesuffix("_desc-preproc_T1w.nii.gz")
        anat = t1w.parent
        path = anat / f"{stem}_desc-baseline_dseg.nii.gz"
        paths[stem] = path
        if path.is_file():
            continue
        start = time.perf_counter()
        img = nib.load(str(t1w))
        like = ants_image(np.zeros(img.shape, np.float32), img.affine)
        brain = np.asarray(nib.load(str(anat / f"{stem}_desc-brain_mask.nii.gz")).dataobj) > 0
        flair = ants_image(
            np.asarray(nib.load(str(anat / f"{stem}_space-T1w_desc-preproc_FLAIR.nii.gz")).dataobj), img.affine
        )
        flair = n4(flair, flair.new_image_like(brain.astype(np.float32))).numpy()
        priors = {
            c: template.warped(c, like, str(anat / f"{stem}_from-MNI152NLin2009aSym_to-T1w_mode-image_xfm.h5"))
            for c in lesion_baseline.CLASSES
        }
        voxel_mm3 = float(np.prod(nib.affines.voxel_sizes(img.affine)))
        mask = lesion_baseline.segment(np.asarray(img.dataobj, dtype=np.float32), flair, brain, priors, voxel_mm3)
        nib.save(nib.Nifti1Image(label_lesions(mask)[0].astype(np.int16), img.affine), str(path))
        seconds.append(time.perf_counter() - start)
    return paths, seconds


def segmentation_time(out: Path) -> list[float]:
    """Wall seconds per session of msqmri's FLAIR normalisation + segmentation (Snakemake's benchmark records)."""
    times: dict[str, float] = {}
    for rule in ("flair_normalization", "lesion_mask"):
        for record in (out / "logs" / rule).rglob("*.benchmark.tsv"):
            times[record.name] = times.get(record.name, 0.0) + float(pd.read_csv(record, sep="\t").s.iloc[0])
    return list(times.values())


def summary(name: str, sessions: pd.DataFrame, method: str, seconds: list[float]) -> dict:
    total = sessions[["planned", "found", "detections", "false"]].sum()
    recall = total.found / total.planned if total.planned else float("nan")
    precision = (total.detections - total["false"]) / total.detections if total.detections else float("nan")
    subjects = sessions.groupby("subject")["false"].max()
    return {
        "cohort": name,
        "method": method,
        "subjects": len(subjects),
        "sessions": len(sessions),
        "planned lesions": int(total.planned),
        "recall": recall,
        "precision": precision,
        "F1": 2 * recall * precision / (recall + precision) if recall + precision else 0.0,
        "Dice (median)": sessions.dice.median(),
        "false lesions / session": total["false"] / len(sessions),
        "sessions with <= 1 false": int((sessions["false"] <= 1).sum()),
        "subjects with <= 1 false in every session": int((subjects <= 1).sum()),
        "s / session": float(np.median(seconds)) if seconds else float("nan"),
    }


def finished(workdir: Path, cohort: str) -> bool:
    """Whether ``workdir`` holds a finished run of ``cohort`` (every lesion table the benchmark reads)."""
    return all((workdir / cohort / "derivatives" / t).is_file() for t in TARGETS)


def tagged(scores: pd.DataFrame, cohort: str, run: int) -> pd.DataFrame:
    """``scores`` with their cohort and a subject key that keeps each run's subjects apart."""
    return scores.assign(cohort=cohort, subject=f"{run}/" + scores.participant_id)


def activity_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per cohort: planned and found new and enlarging lesions, false ones per pair, and the pairs and
    subjects without a false new or enlarging lesion."""
    by = pairs.groupby("cohort")[
        ["new", "new_found", "enlarging", "enlarging_found", "false_new", "false_enlarging"]
    ].sum()
    by["pairs"] = pairs.groupby("cohort").size()
    by["new sensitivity"] = by.new_found / by.new.where(by.new > 0)
    by["enlarging sensitivity"] = by.enlarging_found / by.enlarging.where(by.enlarging > 0)
    by["false new / pair"] = by.false_new / by.pairs
    clean = pairs.assign(clean=(pairs.false_new == 0) & (pairs.false_enlarging == 0))
    by["pairs without false new/enlarging"] = clean.groupby("cohort").clean.sum()
    subjects = clean.groupby(["cohort", "subject"]).clean.all().groupby("cohort")
    by["subjects without false new/enlarging"] = (
        subjects.sum().astype(int).astype(str) + " of " + subjects.size().astype(str)
    )
    return by


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("bench-lesions"))
    parser.add_argument(
        "--also",
        type=Path,
        nargs="+",
        default=[],
        metavar="WORKDIR",
        help="earlier runs' workdirs (other seeds): their cohorts' outputs, as they stand, are scored with this run's",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--active-subjects", type=int, default=4)
    parser.add_argument(
        "--rerun-lesions", action="store_true", help="recompute the lesion steps (not the registrations)"
    )
    parser.add_argument("--cohorts", nargs="+", choices=list(cohorts(1, 1)), default=list(DEFAULT_COHORTS))
    parser.add_argument("--seed", type=int, default=0, help="other subjects: 100 x SEED added to each cohort's seed")
    args = parser.parse_args()
    if missing := [str(w) for w in args.also if not any(finished(w, name) for name in args.cohorts)]:
        raise SystemExit(f"--also: no finished run of {', '.join(args.cohorts)} in {', '.join(missing)}")
    scored: dict[str, list[tuple[pd.DataFrame, ...]]] = {}
    for name, spec in cohorts(args.subjects, args.active_subjects, args.seed).items():
        if name not in args.cohorts:
            continue
        for run, workdir in enumerate([args.workdir, *args.also]):
            bids, out = workdir / name / "bids", workdir / name / "derivatives"
            if run and not finished(workdir, name):
                continue  # an earlier run (scored as it stands) that did not run this cohort
            if not run:
                if not (bids / "sourcedata" / "ground_truth" / "sessions.tsv").is_file():
                    start = time.perf_counter()
                    generate_cohort(bids, spec)
                    print(f"{name}: cohort built in {time.perf_counter() - start:.0f} s", flush=True)
                rerun = ["--forcerun", *LESION_RULES] if args.rerun_lesions else []
                took = run_targets(bids, out, [out / t for t in TARGETS], args.cores, rerun)
                print(f"{name}: workflow {took:.0f} s", flush=True)
            ours = score_cohort(bids, out)
            masks, seconds = baseline_masks(bids, out)
            theirs = score_cohort(bids, out, detections=masks)
            scored.setdefault(name, []).append(
                (
                    tagged(ours.sessions, name, run),
                    tagged(theirs.sessions, name, run),
                    tagged(ours.pairs, name, run),
                    ours.subjects,
                    segmentation_time(out),
                    seconds,
                )
            )
    rows, pairs, located, identities = [], [], [], []
    for name, runs in scored.items():
        ours, theirs, pair, subject, our_seconds, their_seconds = (list(part) for part in zip(*runs, strict=True))
        rows += [
            summary(name, pd.concat(ours), "msqmri", [s for seconds in our_seconds for s in seconds]),
            summary(
                name,
                pd.concat(theirs),
                "outlier GMM (Van Leemput 2001)",
                [s for seconds in their_seconds for s in seconds],
            ),
        ]
        pairs += pair
        if name != "lesion-free":
            located += ours
            identities += subject
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print("\nCross-sectional segmentation (planned lesions >= 10 mm^3; false = touching no planned lesion)")
        print(pd.DataFrame(rows).to_string(index=False))
        print("\nActivity per pair (consecutive and baseline -> later), against the planned history")
        print(activity_table(pd.concat(pairs, ignore_index=True)).to_string())
        if not located:
            return
        sessions = pd.concat(located, ignore_index=True)
        print("\nLocation classes and black holes (sessions of the lesion cohorts)")
        print(
            f"location class right for {sessions.located.sum()} of {sessions.location_scored.sum()} detected planned "
            f"lesions ({sessions.located.sum() / sessions.location_scored.sum():.3f}); black holes exact in "
            f"{(sessions.black_holes == sessions.black_holes_planned).sum()} of {len(sessions)} sessions"
        )
        subjects = pd.concat(identities, ignore_index=True)
        print(
            f"persistent identities: {subjects.with_one_identity.sum()} of {subjects.planned_lesions_seen.sum()} "
            "planned lesions keep one identity across their subject's sessions"
        )


if __name__ == "__main__":
    main()
