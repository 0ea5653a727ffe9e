"""Scoring the workflow's lesion outputs against the phantom's planned lesions (tests and benchmarks).

Everything is compared with what the phantom *planned* (its lesion table: each lesion's status at each
session, location class, black hole), never with msqmri's own classifiers. Lesions are matched on each
session's T1w grid, where the truth lesion labels (voxels at least half lesion) and the lesion fraction
map are written, so no registration of the pipeline's enters the scoring:

- a planned lesion is *visible* in a session when the truth labels hold at least one of its voxels;
- it is *detected* when a detected lesion covers at least ``MIN_OVERLAP`` of its truth voxels (the
  MSSEG-2 convention of Commowick et al. 2021: 10 %);
- a detected lesion is *false* when it does not touch any planned lesion's partial volume
  (lesion fraction above ``PV_TOUCH``): a detection of a lesion smaller than a voxel is not false.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from msqmri.lesions.stage import parse_ids
from msqmri.phantom.cohort import session_pairs

#: share of a planned lesion's truth voxels a detection must cover
MIN_OVERLAP = 0.1
#: a detection touching a planned lesion's fraction above this is not false
PV_TOUCH = 0.1


def planned_status(history: Sequence[str]) -> str:
    """A planned lesion's status between two sessions, from its planned statuses at each session from the
    earlier to the later one (the phantom's words: absent, present, new, stable, enlarging, shrinking,
    resolved)."""
    first, last, between = history[0], history[-1], history[1:]
    if first == "absent":
        return "absent" if last == "absent" else "new"
    if last == "absent" or "resolved" in between:
        return "resolved"
    for change in ("enlarging", "shrinking"):
        if change in between:
            return change
    return "stable"


@dataclass
class Matches:
    """Planned and detected lesions of one session, matched (module docstring)."""

    detected_by_truth: dict[int, set[int]]  # visible planned lesion id -> detected labels covering it
    truth_by_detected: dict[int, set[int]]  # detected label -> planned lesions it touches (empty: false)


def match(
    detected: np.ndarray, truth_labels: np.ndarray, lesion_fraction: np.ndarray, truth_ids: np.ndarray
) -> Matches:
    """Match a session's detected lesion labels with its planned lesions. ``truth_ids`` is the planned
    lesion id of every voxel where any lesion's fraction is above zero (the phantom's id map of the
    partial volume, approximated by the nearest truth label)."""
    detected_by_truth: dict[int, set[int]] = {}
    for lesion_id in np.unique(truth_labels[truth_labels > 0]):
        voxels = truth_labels == lesion_id
        labels, counts = np.unique(detected[voxels], return_counts=True)
        covered = counts[labels > 0].sum() / voxels.sum()
        detected_by_truth[int(lesion_id)] = {int(x) for x in labels[labels > 0]} if covered >= MIN_OVERLAP else set()
    touched = (lesion_fraction > PV_TOUCH) & (truth_ids > 0)
    truth_by_detected = {}
    for label in np.unique(detected[detected > 0]):
        where = (detected == label) & touched
        truth_by_detected[int(label)] = {int(x) for x in np.unique(truth_ids[where])}
    return Matches(detected_by_truth, truth_by_detected)


def segmentation_scores(
    matches: Matches, detected: np.ndarray, truth_labels: np.ndarray, included: set[int]
) -> dict[str, float]:
    """Lesion-wise recall, precision, F1 and voxel Dice over the planned lesions in ``included`` (e.g. those
    of 10 mm^3 or more) and the detections that touch them or no planned lesion at all."""
    truth = [i for i in matches.detected_by_truth if i in included]
    found = sum(bool(matches.detected_by_truth[i]) for i in truth)
    scored = [d for d, ids in matches.truth_by_detected.items() if not ids or ids & included]
    true_detections = sum(bool(matches.truth_by_detected[d]) for d in scored)
    recall = found / len(truth) if truth else float("nan")
    precision = true_detections / len(scored) if scored else float("nan")
    f1 = 2 * recall * precision / (recall + precision) if truth and scored and recall + precision else 0.0
    truth_mask = np.isin(truth_labels, sorted(included))
    detected_mask = np.isin(detected, scored)
    denominator = truth_mask.sum() + detected_mask.sum()
    dice = 2 * (truth_mask & detected_mask).sum() / denominator if denominator else float("nan")
    return {
        "planned": len(truth),
        "found": found,
        "detections": len(scored),
        "false": len(scored) - true_detections,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "dice": float(dice),
    }


@dataclass
class PairScore:
    """Activity of one pair against the plan: planned new/enlarging lesions (visible in the later session),
    those found with that status, and the false new and false enlarging clusters."""

    new: int
    new_found: int
    enlarging: int
    enlarging_found: int
    false_new: int
    false_enlarging: int


def activity_scores(
    changes: Sequence[Mapping], matches_from: Matches, matches_to: Matches, planned: Mapping[int, str]
) -> PairScore:
    """Score a pair's clusters (rows with ``status``, ``from_lesions``, ``to_lesions``: labels of each
    session's lesion map) against the planned status of each lesion between the two sessions."""

    def truth_of(row: Mapping) -> set[int]:
        ids: set[int] = set()
        for key, matches in (("from_ids", matches_from), ("to_ids", matches_to)):
            for label in row[key]:
                ids |= matches.truth_by_detected.get(label, set())
        return ids

    clusters = [(row["status"], truth_of(row), set(row["to_ids"])) for row in changes]
    score = PairScore(0, 0, 0, 0, 0, 0)
    for lesion_id, status in planned.items():
        if status not in ("new", "enlarging") or lesion_id not in matches_to.detected_by_truth:
            continue
        hit = any(s == status and lesion_id in ids for s, ids, _ in clusters)
        if status == "new":
            score.new, score.new_found = score.new + 1, score.new_found + hit
        else:
            score.enlarging, score.enlarging_found = score.enlarging + 1, score.enlarging_found + hit
    for status, ids, _ in clusters:
        if status == "new" and not any(planned.get(i) == "new" for i in ids):
            score.false_new += 1
        if status == "enlarging" and not any(planned.get(i) == "enlarging" for i in ids):
            score.false_enlarging += 1
    return score


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


@dataclass
class CohortScore:
    """A cohort's lesion outputs scored against the plan: one row per session (segmentation, false lesions,
    location classes, black holes), one per pair (activity) and one per subject (identities)."""

    sessions: pd.DataFrame
    pairs: pd.DataFrame
    subjects: pd.DataFrame


def score_cohort(
    bids: Path, derivatives: Path, min_volume_mm3: float = 10.0, detections: Mapping[str, Path] | None = None
) -> CohortScore:
    """Score the workflow's outputs in ``derivatives`` for the phantom cohort ``bids`` (module docstring):
    segmentation of the planned lesions of at least ``min_volume_mm3``, location class of every detected
    planned lesion, black holes, each pair's new and enlarging lesions, each subject's identities.
    ``detections`` replaces the workflow's lesion labels of a session (stem -> label map on its T1w grid),
    e.g. to score another method's segmentation; its location, pair and identity scores are then n/a."""
    truth = bids / "sourcedata" / "ground_truth"
    plan = pd.read_csv(truth / "lesions.tsv", sep="\t")
    sessions = pd.read_csv(truth / "sessions.tsv", sep="\t")
    session_rows, pair_rows, subject_rows, matches = [], [], [], {}
    for participant, rows in sessions.groupby("participant_id", sort=True):
        labels = list(rows.session_id)
        tracked = pd.read_csv(derivatives / participant / f"{participant}_desc-lesions_tracking.tsv", sep="\t")
        identities: dict[int, set[int]] = {}
        for session in labels:
            stem = f"{participant}_{session}"
            gt = truth / participant / session / stem
            own = derivatives / participant / session / "anat" / stem
            detected = _load(detections[stem] if detections else Path(f"{own}_desc-lesions_dseg.nii.gz")).astype(int)
            truth_labels = _load(Path(f"{gt}_space-T1w_desc-lesions_dseg.nii.gz")).astype(int)
            m = match(
                detected,
                truth_labels,
                _load(Path(f"{gt}_space-T1w_label-lesion_probseg.nii.gz")),
                _load(Path(f"{gt}_space-T1w_desc-lesionextent_dseg.nii.gz")).astype(int),
            )
            matches[stem] = m
            planned = plan[(plan.participant_id == participant) & (plan.session_id == session)].set_index("lesion_id")
            included = {
                int(i) for i, r in planned.iterrows() if r.status != "absent" and r.volume_ml * 1000 >= min_volume_mm3
            }
            row = {
                "participant_id": participant,
                "session_id": session,
                **segmentation_scores(m, detected, truth_labels, included),
            }
            if detections is None:
                table = pd.read_csv(f"{own}_desc-lesions_metrics.tsv", sep="\t").set_index("lesion_id")
                found = {i: d for i, d in m.detected_by_truth.items() if d}
                row["located"] = sum(
                    planned.loc[i, "location"] in set(table.loc[sorted(d), "location"]) for i, d in found.items()
                )
                row["location_scored"] = len(found)
                row["black_holes"] = int(table.black_hole.astype(str).eq("True").sum())
                row["black_holes_planned"] = int(sum(bool(planned.loc[i, "black_hole"]) for i in m.detected_by_truth))
                ids = dict(
                    zip(
                        tracked[tracked.session_id == session].component,
                        tracked[tracked.session_id == session].lesion_id,
                        strict=True,
                    )
                )
                for lesion_id, d in found.items():
                    identities.setdefault(lesion_id, set()).update(ids[c] for c in d)
            session_rows.append(row)
        if detections is None:
            subject_rows.append(
                {
                    "participant_id": participant,
                    "planned_lesions_seen": len(identities),
                    "with_one_identity": sum(len(v) == 1 for v in identities.values()),
                }
            )
            history = plan[plan.participant_id == participant].pivot(
                index="lesion_id", columns="session_id", values="status"
            )
            for a, b in session_pairs(len(labels)):
                first, second = labels[a], labels[b]
                pair = f"{participant}_{first}to{second.removeprefix('ses-')}"
                changes = pd.read_csv(derivatives / participant / "anat" / f"{pair}_desc-lesions_changes.tsv", sep="\t")
                clusters = [
                    {"status": r.status, "from_ids": parse_ids(r.from_lesions), "to_ids": parse_ids(r.to_lesions)}
                    for r in changes.itertuples()
                ]
                statuses = {int(i): planned_status(list(history.loc[i, labels[a : b + 1]])) for i in history.index}
                score = activity_scores(
                    clusters, matches[f"{participant}_{first}"], matches[f"{participant}_{second}"], statuses
                )
                pair_rows.append(
                    {"participant_id": participant, "session_from": first, "session_to": second, **vars(score)}
                )
    return CohortScore(pd.DataFrame(session_rows), pd.DataFrame(pair_rows), pd.DataFrame(subject_rows))


def score_enhancing(bids: Path, derivatives: Path, min_volume_mm3: float = 20.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contrast-enhancing lesions found on every post-contrast session of the phantom cohort ``bids`` against the
    planned ones (``enhancing_lesions.tsv`` and the CEL labels of the ground truth), matched as :func:`match` does:
    per session the planned CELs of at least ``min_volume_mm3`` and those found, every planned CEL's presence (for
    patient-level detection) and the detections touching no enhancing lesion (false); per found CEL its detected
    and true volume (the lesion's volume in that session, outlined whole)."""
    truth = bids / "sourcedata" / "ground_truth"
    plan = pd.read_csv(truth / "lesions.tsv", sep="\t")
    sessions, cels = [], []
    for path in sorted(bids.glob("sub-*/ses-*/anat/*_ce-*_T1w.nii.gz")):
        participant, session = path.parts[-4], path.parts[-3]
        stem = f"{participant}_{session}"
        truth_cel = _load(truth / participant / session / f"{stem}_space-T1w_label-CEL_dseg.nii.gz").astype(int)
        extent = _load(truth / participant / session / f"{stem}_space-T1w_desc-lesionextent_dseg.nii.gz").astype(int)
        fraction = _load(truth / participant / session / f"{stem}_space-T1w_label-lesion_probseg.nii.gz")
        detected = _load(derivatives / participant / session / "anat" / f"{stem}_label-CEL_dseg.nii.gz").astype(int)
        enhancing = {int(i) for i in np.unique(truth_cel[truth_cel > 0])}
        m = match(detected, truth_cel, fraction, np.where(np.isin(extent, sorted(enhancing)), extent, 0))
        volumes = plan[(plan.participant_id == participant) & (plan.session_id == session)].set_index("lesion_id")
        voxel_mm3 = float(np.prod(nib.load(path).header.get_zooms()[:3]))
        included = {i for i in enhancing if volumes.loc[i, "volume_ml"] * 1000 >= min_volume_mm3}
        sessions.append(
            {
                "participant_id": participant,
                "session_id": session,
                "planned_any": len(enhancing),
                "planned": len(included),
                "found": sum(bool(m.detected_by_truth.get(i)) for i in included),
                "detections": len(m.truth_by_detected),
                "false": sum(not ids for ids in m.truth_by_detected.values()),
            }
        )
        for lesion_id, labels in m.detected_by_truth.items():
            if labels:
                cels.append(
                    {
                        "participant_id": participant,
                        "session_id": session,
                        "lesion_id": lesion_id,
                        "true_volume_ml": float(volumes.loc[lesion_id, "volume_ml"]),
                        "detected_volume_ml": float(np.isin(detected, sorted(labels)).sum()) * voxel_mm3 / 1000.0,
                    }
                )
    return pd.DataFrame(sessions), pd.DataFrame(cels)
