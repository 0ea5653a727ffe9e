"""Lesion measures at 1 mm against the phantom's truth: per-lesion volumes, the built-in FLAIR
segmentation and lesion activity.

    python benchmarks/lesions.py [--workdir DIR] [--sessions 3]

Builds (or reuses) a 1 mm phantom subject (T1w + FLAIR, ``--sessions`` sessions, seed 11). Per
session: the true lesion mask (as a user would supply it) through the lesion stage and the built-in
segmentation (FLAIR registered to the T1w, the true WM + lesion fraction as the WM prior); for both, per-lesion
volumes (voxel count and the partial-volume sum from the FLAIR) against the true (continuous) volumes
for lesions >= 30 mm^3; for the segmentation, Dice against the true mask, lesions found and false
components. Per pair (consecutive and baseline ->
later; the true head positions as the pair's transform): new and enlarging lesions found with
their status, false new/enlarging lesions. Prints one table per part and the times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from msqmri import layout, lesions, metrics, regions
from msqmri.phantom.scoring import activity_detection
from msqmri.registration import register_to_t1w


def build(workdir: Path, n_sessions: int) -> Path:
    root = workdir / "bids"
    if not (root / "sourcedata" / "ground_truth" / "lesions.tsv").is_file():
        from msqmri.phantom import CohortSpec, generate_cohort

        generate_cohort(root, CohortSpec(n_subjects=1, n_sessions=n_sessions, resolution=1.0,
                                         modalities=("T1w", "FLAIR"), orientations=("RAS",), seed=11))  # fmt: skip
    return root


def matched_truth(found: np.ndarray, true_labels: np.ndarray) -> dict[int, list[int]]:
    """For each found lesion, the true lesion ids it overlaps."""
    labels, n = lesions.label_lesions(found)
    return {k: sorted(set(np.unique(true_labels[labels == k])) - {0}) for k in range(1, n + 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("bench-lesions"))
    parser.add_argument("--sessions", type=int, default=3)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    root = build(args.workdir, args.sessions)
    print(f"phantom ready in {time.perf_counter() - start:.0f} s")
    gt = root / "sourcedata" / "ground_truth"
    history = pd.read_csv(gt / "lesions.tsv", sep="\t")
    volumes = history.pivot(index="lesion_id", columns="session_id", values="volume_ml") * 1000  # mm^3
    sessions = [f"{k + 1:02d}" for k in range(args.sessions)]
    anat = {s: root / "sub-01" / f"ses-{s}" / "anat" / f"sub-01_ses-{s}" for s in sessions}
    truth = {s: gt / "sub-01" / f"ses-{s}" / f"sub-01_ses-{s}" for s in sessions}

    def true_map(s: str, name: str) -> np.ndarray:
        return np.asarray(nib.load(f"{truth[s]}_{name}.nii.gz").dataobj)

    volume_rows, seg_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for s in sessions:
            t1w = nib.load(f"{anat[s]}_T1w.nii.gz")
            true_labels = true_map(s, "space-T1w_desc-lesions_dseg").astype(int)
            brain = true_map(s, "space-T1w_desc-brain_mask") > 0
            fractions = [true_map(s, f"space-T1w_label-{t}_probseg") for t in ("CSF", "GM", "WM")]
            dseg = np.where(brain, 1 + np.argmax(fractions, axis=0), 0)
            zooms = tuple(float(z) for z in t1w.header.get_zooms()[:3])
            voxel_mm3 = float(np.prod(zooms))
            t = time.perf_counter()
            register_to_t1w(f"{anat[s]}_FLAIR.nii.gz", f"{anat[s]}_T1w.nii.gz", tmpdir / "f.mat", tmpdir / "f.nii.gz")
            flair = np.asarray(nib.load(str(tmpdir / "f.nii.gz")).dataobj)
            seg = lesions.segment_flair(flair, brain, fractions[2] + true_map(s, "space-T1w_label-lesion_probseg"),
                                        fractions[1], voxel_mm3)  # fmt: skip
            seconds = time.perf_counter() - t
            user = root / "derivatives" / "lesions" / "sub-01" / f"ses-{s}" / "anat" / f"sub-01_ses-{s}_space-T1w_label-lesion_mask.nii.gz"
            outs = {k: str(tmpdir / f"{s}_{k}") for k in layout.LESION_MASK}
            outs = {k: v + (".json" if k.endswith("json") else ".nii.gz") for k, v in outs.items()}
            metrics.lesion_mask({"t1w": f"{anat[s]}_T1w.nii.gz", "brain_mask": f"{truth[s]}_space-T1w_desc-brain_mask.nii.gz",
                                 "lesion": str(user)}, outs)  # fmt: skip
            for source, mask in (("user (true) mask", np.asarray(nib.load(outs["mask"]).dataobj) > 0), ("built-in", seg.mask)):
                labels, n = lesions.label_lesions(mask)
                nawm = regions.region_masks(brain, dseg, mask, zooms)["nawm"]
                sizes = lesions.partial_volumes(flair, labels, n, nawm)
                for k, ids in matched_truth(mask, true_labels).items():
                    if len(ids) == 1 and volumes.loc[ids[0], f"ses-{s}"] >= 30:
                        volume_rows.append({"mask": source, "session": s, "lesion": ids[0],
                                            "true_mm3": volumes.loc[ids[0], f"ses-{s}"],
                                            "binary_mm3": float((labels == k).sum()) * voxel_mm3,
                                            "partial_volume_mm3": sizes[k - 1] * voxel_mm3})  # fmt: skip
            true_mask = true_labels > 0
            matches = matched_truth(seg.mask, true_labels)
            seg_rows.append({
                "session": s, "dice": 2 * (seg.mask & true_mask).sum() / (seg.mask.sum() + true_mask.sum()),
                "true_lesions": len(set(np.unique(true_labels)) - {0}),
                "found": len({i for ids in matches.values() for i in ids}),
                "false_components": sum(not ids for ids in matches.values()),
                "time_s (registration + segmentation)": seconds,
            })  # fmt: skip

        pose = {s: np.asarray(json.loads(Path(f"{truth[s]}_desc-pose_xfm.json").read_text())["subject_to_scanner"]) for s in sessions}
        pairs = [(sessions[k], sessions[k + 1]) for k in range(len(sessions) - 1)]
        pairs += [(sessions[0], s) for s in sessions[2:]]
        activity_rows = []
        for a, b in pairs:
            t1w = nib.load(f"{anat[a]}_T1w.nii.gz")
            transform = tmpdir / "halfway.json"
            transform.write_text(json.dumps({"halfway_to_from": np.eye(4).tolist(),
                                             "halfway_to_to": (pose[b] @ np.linalg.inv(pose[a])).tolist()}))  # fmt: skip
            inputs = {"transform": str(transform), "grid": f"{anat[a]}_T1w.nii.gz",
                      "from_image": f"{anat[a]}_T1w.nii.gz", "to_image": f"{anat[a]}_T1w.nii.gz"}  # fmt: skip
            for side, s in (("from", a), ("to", b)):
                inputs[f"{side}_lesion_mask"] = str(root / "derivatives" / "lesions" / "sub-01" / f"ses-{s}" / "anat" /
                                                    f"sub-01_ses-{s}_space-T1w_label-lesion_mask.nii.gz")  # fmt: skip
                inputs[f"{side}_dseg"] = f"{truth[s]}_space-T1w_desc-pure_dseg.nii.gz"
            outs = {k: str(tmpdir / f"pair_{k}" ) + (".json" if k == "counts" else ".tsv" if k == "changes" else ".nii.gz")
                    for k in layout.LESION_ACTIVITY}  # fmt: skip
            ids = {"participant_id": "sub-01", "session_from": f"ses-{a}", "session_to": f"ses-{b}", "interval_days": 200.0}
            t = time.perf_counter()
            metrics.lesion_activity(inputs, outs, ids)
            seconds = time.perf_counter() - t
            status = np.asarray(nib.load(outs["status"]).dataobj)
            true_to = np.rint(metrics.halfway_sampler({**inputs, "to_dseg": f"{truth[b]}_space-T1w_desc-lesions_dseg.nii.gz"})("to", "dseg", order=0)).astype(int)  # fmt: skip
            found, missed, false_positive = activity_detection(status, true_to, volumes, f"ses-{a}", f"ses-{b}")
            activity_rows.append({"pair": f"{a}->{b}", "new+enlarging (truth)": found + missed, "found": found,
                                  "false new/enlarging": false_positive,
                                  **{k: v for k, v in json.loads(Path(outs["counts"]).read_text()).items() if k.startswith("n_")},
                                  "time_s": seconds})  # fmt: skip

    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        table = pd.DataFrame(volume_rows)
        for column in ("binary", "partial_volume"):
            table[f"{column}_error_%"] = 100 * (table[f"{column}_mm3"] / table.true_mm3 - 1)
        print("\nLesion volumes at 1 mm, lesions >= 30 mm^3, against the continuous truth")
        print(table.to_string(index=False))
        for (source, column), errors in table.melt(id_vars="mask", value_vars=["binary_error_%", "partial_volume_error_%"]).groupby(["mask", "variable"]).value:
            print(f"{source:17s} {column:24s} median |error| {errors.abs().median():4.1f} %, max {errors.abs().max():4.1f} %, "
                  f"within 10 %: {int((errors.abs() <= 10).sum())} of {len(errors)}")  # fmt: skip
        print("\nBuilt-in FLAIR segmentation at 1 mm")
        print(pd.DataFrame(seg_rows).to_string(index=False))
        print("\nLesion activity (true masks, true head positions)")
        print(pd.DataFrame(activity_rows).to_string(index=False))


if __name__ == "__main__":
    main()
