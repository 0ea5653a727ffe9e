"""Lesions found in the phantom's images by the workflow (no truth mask given), against its plan: a
scan-rescan pair with lesions that do not change (repositioned, new noise), under the hardest FLAIR
contrast for a threshold. Activity against a planned history, on the demo cohort, is checked by
test_demo; lesion-free brains and the 1 mm figures come from benchmarks/lesions.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import snakemake

from msqmri.phantom import CohortSpec, generate_cohort
from msqmri.validation.scoring import CohortScore, score_cohort
from msqmri.workflow import layout

pytestmark = pytest.mark.slow

#: the hardest contrast for a FLAIR threshold (cortex, deep GM and brainstem all 1.3 x WM), +-30 % bias
#: fields, an oblique prescription; the lesions do not change between the two sessions, so on the post-contrast
#: T1w only the normal structures enhance (sinuses, surface veins, choroid plexus, dura)
RESCAN = CohortSpec(
    n_subjects=1,
    n_sessions=2,
    resolution=2.0,
    lesion_activity=False,
    pbvc=(0.0, 0.0),
    flair_gm_wm=(1.3, 1.3),
    bias_amplitude=0.3,
    modalities=("T1w", "FLAIR", "T1w_ce"),
    orientations=("oblique",),
    seed=32,
)


@pytest.fixture(scope="module")
def rescan(tmp_path_factory: pytest.TempPathFactory) -> tuple[CohortScore, Path]:
    """The cohort through the workflow's lesion targets, scored against its plan."""
    root = tmp_path_factory.mktemp("rescan")
    bids, out = generate_cohort(root / "bids", RESCAN), root / "derivatives"
    tables = (
        layout.LESIONS_TABLE,
        layout.LESION_COUNTS_TABLE,
        layout.LESION_ACTIVITY_TABLE,
        layout.ENHANCING_LESIONS_TABLE,
    )
    targets = [out / t for t in tables]
    result = snakemake(
        *targets, "--cores", "2", "--config", f"bids_dir={bids}", f"output_dir={out}", "pbvc_methods=[siena]", cwd=root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return score_cohort(bids, out), out


def test_scan_rescan_with_lesions(rescan: tuple[CohortScore, Path]) -> None:
    """Lesions that do not change, rescanned (repositioned, new noise), cortex, deep GM and brainstem as
    bright as 1.3 x WM on FLAIR, +-30 % bias fields: no new or enlarging lesion, every lesion keeps its
    identity. Lesions of 10 mm^3 or more at 2 mm: lesion-wise F1 >= 0.8, voxel Dice >= 0.6
    and at most one false lesion per session (1 mm: see the benchmark), location class right for >= 0.8 of
    the detected lesions, black holes exact; the counts table agrees with the lesion table."""
    score, out = rescan
    assert (score.pairs.false_new == 0).all() and (score.pairs.false_enlarging == 0).all(), score.pairs
    activity = pd.read_csv(out / layout.LESION_ACTIVITY_TABLE, sep="\t")
    assert (activity.n_new == 0).all() and (activity.n_enlarging == 0).all(), activity
    assert (score.subjects.with_one_identity == score.subjects.planned_lesions_seen).all(), score.subjects
    sessions = score.sessions
    assert (sessions.f1 >= 0.8).all() and (sessions.dice >= 0.6).all() and (sessions["false"] <= 1).all(), sessions
    assert sessions.located.sum() >= 0.8 * sessions.location_scored.sum(), sessions
    assert (sessions.black_holes == sessions.black_holes_planned).all() and sessions.black_holes.sum() >= 1, sessions
    counts = pd.read_csv(out / layout.LESION_COUNTS_TABLE, sep="\t")
    lesions = pd.read_csv(out / layout.LESIONS_TABLE, sep="\t")
    assert counts.n_lesions.tolist() == lesions.groupby("session_id").size().tolist()
    assert (
        counts[[f"n_{c}" for c in ("periventricular", "juxtacortical", "infratentorial", "deep_wm")]].sum(axis=1)
        == counts.n_lesions
    ).all()


def test_no_cel_where_only_the_normal_structures_enhance(rescan: tuple[CohortScore, Path]) -> None:
    """Post-contrast T1w of both sessions with the sinuses, surface veins, choroid plexus and dura enhancing and no
    active lesion (black holes among the lesions): no CEL is reported."""
    _, out = rescan
    counts = pd.read_csv(out / layout.LESION_COUNTS_TABLE, sep="\t")
    assert (counts.n_cel == 0).all() and (counts.cel_volume_ml == 0).all(), counts
    assert pd.read_csv(out / layout.ENHANCING_LESIONS_TABLE, sep="\t").empty
