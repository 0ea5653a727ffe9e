"""Contrast-enhancing lesions at 1 mm against the phantom's planned ones.

    python benchmarks/enhancement.py [--workdir DIR] [--cores 2] [--subjects 6] [--resolution 1.0]

Two phantom cohorts with a post-contrast T1w at every session (T1w + FLAIR + ``ce-gadolinium`` T1w; the dural
sinuses, surface veins, choroid plexus and dura enhance in every head, :mod:`msqmri.phantom.enhancement`):

- *active*: ``--subjects`` subjects, two sessions: the baseline with no enhancing lesion, the follow-up with its
  new lesions enhancing (solid or ring);
- *stable*: ``--subjects`` subjects whose lesions do not change: both sessions show only the normal enhancing
  structures.

Each cohort goes through msqmri's workflow to the CEL outputs (structural preprocessing, lesion mask and labels,
post-contrast registration, enhancement map, CEL), and is scored against the plan
(:func:`msqmri.validation.scoring.score_enhancing`): patient-level (session-level) recall and specificity, lesion-wise
sensitivity for CEL of at least 20 mm^3, false CEL per session and the CEL volume's error; with the time of the
``enhancing_lesions`` step per session. Outputs are kept in ``--workdir``, so a rerun only recomputes what changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow_run import run_targets

from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.validation.scoring import score_enhancing
from msqmri.workflow import layout

MODALITIES = ("T1w", "FLAIR", "T1w_ce")


def cohorts(subjects: int, resolution: float) -> dict[str, CohortSpec]:
    common = {"resolution": resolution, "modalities": MODALITIES, "n_sessions": 2, "orientations": ("RAS", "LAS")}
    return {
        "active": CohortSpec(n_subjects=subjects, seed=301, **common),
        "stable": CohortSpec(n_subjects=subjects, lesion_activity=False, pbvc=(0.0, 0.0), seed=302, **common),
    }


def run(name: str, spec: CohortSpec, workdir: Path, cores: int) -> tuple[Path, Path]:
    """Generate the cohort (once) and run the workflow to every session's CEL labels."""
    bids, out = workdir / name / "bids", workdir / name / "derivatives"
    if not (bids / "dataset_description.json").is_file():
        generate_cohort(bids, spec)
    sessions = [path.parts[-4:-2] for path in sorted(bids.glob("sub-*/ses-*/anat/*_ce-*_T1w.nii.gz"))]
    targets = [out / layout.CEL["labels"].format(sesdir=f"{sub}/{ses}", stem=f"{sub}_{ses}") for sub, ses in sessions]
    run_targets(bids, out, targets, cores)
    return bids, out


def records(out: Path) -> pd.DataFrame:
    """Run time (``s``) and peak RSS (``max_rss``, MB) of every ``enhancing_lesions`` job (Snakemake's benchmark
    records)."""
    paths = sorted(out.glob("logs/enhancing_lesions/**/*.benchmark.tsv"))
    return pd.concat([pd.read_csv(p, sep="\t")[["s", "max_rss"]] for p in paths], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("benchmark-data/enhancement"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--resolution", type=float, default=1.0)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sessions, cels, jobs = [], [], []
    for name, spec in cohorts(args.subjects, args.resolution).items():
        bids, out = run(name, spec, args.workdir, args.cores)
        scored, found = score_enhancing(bids, out)
        sessions.append(scored.assign(cohort=name))
        cels.append(found.assign(cohort=name))
        jobs.append(records(out))
    sessions, cels = pd.concat(sessions, ignore_index=True), pd.concat(cels, ignore_index=True)
    jobs = pd.concat(jobs, ignore_index=True)
    positive, flagged = sessions.planned_any > 0, sessions.detections > sessions["false"]
    clean = (sessions.detections == 0) & ~positive
    error = (cels.detected_volume_ml / cels.true_volume_ml - 1) * 100 if len(cels) else pd.Series(dtype=float)
    rows = {
        "sessions (with CEL / without)": f"{int(positive.sum())} / {int((~positive).sum())}",
        "patient-level recall": f"{(flagged & positive).sum() / max(positive.sum(), 1):.3f}",
        "patient-level specificity": f"{clean.sum() / max((~positive).sum(), 1):.3f}",
        "CEL >= 20 mm^3: planned / found": f"{int(sessions.planned.sum())} / {int(sessions.found.sum())}",
        "lesion-wise sensitivity (>= 20 mm^3)": f"{sessions.found.sum() / max(sessions.planned.sum(), 1):.3f}",
        "false CEL per session": f"{sessions['false'].mean():.2f} (max {int(sessions['false'].max())})",
        "CEL volume error, median |%| (max)": f"{np.median(np.abs(error)):.1f} ({np.max(np.abs(error)):.1f})"
        if len(error)
        else "n/a",
        "enhancing_lesions step, s per session (median, max)": f"{jobs.s.median():.0f}, {jobs.s.max():.0f}",
        "enhancing_lesions step, peak RSS MB (max)": f"{jobs.max_rss.max():.0f}",
    }
    print(f"\nContrast-enhancing lesions, {args.resolution:g} mm, {args.subjects} subjects per cohort")
    for key, value in rows.items():
        print(f"  {key:<48} {value}")
    print("\nPer session:")
    print(sessions.to_string(index=False))
    if len(cels):
        print("\nPer found CEL:")
        print(cels.assign(volume_error_pct=error.round(1)).to_string(index=False))


if __name__ == "__main__":
    main()
