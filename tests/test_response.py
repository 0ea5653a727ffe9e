"""Treatment response scores, each published definition reproduced on hand-made clinical tables, edge cases at
every threshold (msqmri.cohort.response)."""

from __future__ import annotations

import pandas as pd
import pytest

from msqmri.cohort.prognosis import PROGNOSIS_COLUMNS, baseline_profiles
from msqmri.cohort.response import (
    Activity,
    Visit,
    confirmed_progression,
    edss_step,
    magnims_score,
    modified_rio_score,
    neda3,
    neda4,
    rio_score,
    rio_step,
    treatment_years,
)


@pytest.mark.parametrize(
    ("active", "relapses", "progression", "score"),
    [(2, 0, False, 0), (3, 0, False, 1), (0, 1, False, 1), (0, 0, True, 1), (3, 2, True, 3), (None, 0, False, None),
     (0, None, False, None), (0, 0, None, None)],
)  # fmt: skip
def test_rio_score_more_than_2_active_lesions_a_relapse_and_confirmed_progression(active, relapses, progression, score):
    assert rio_score(active, relapses, progression) == score


@pytest.mark.parametrize(
    ("new_t2", "relapses", "score"),
    [(4, 0, 0), (5, 0, 1), (0, 1, 1), (0, 2, 2), (0, 3, 2), (5, 2, 3), (None, 0, None), (4, None, None)],
)
def test_modified_rio_score_more_than_4_new_t2_and_relapses_0_1_2(new_t2, relapses, score):
    assert modified_rio_score(new_t2, relapses) == score


@pytest.mark.parametrize(
    ("new_t2", "relapses", "score"),
    [(0, 0, 0), (2, 0, 0), (3, 0, 1), (2, 1, 1), (3, 1, 2), (0, 2, 2), (9, 0, 1), (None, 0, None), (0, None, None)],
)
def test_magnims_score(new_t2, relapses, score):
    assert magnims_score(new_t2, relapses) == score


@pytest.mark.parametrize(
    ("relapses", "progression", "active", "expected"),
    [(0, False, 0, True), (1, False, 0, False), (0, True, 0, False), (0, False, 1, False), (None, False, 0, None),
     (1, None, None, False), (0, None, 0, None), (0, False, None, None)],
)  # fmt: skip
def test_neda3_fails_on_any_activity_and_is_unknown_only_when_nothing_failed(relapses, progression, active, expected):
    assert neda3(relapses, progression, active) is expected


@pytest.mark.parametrize(
    ("neda_3", "pbvc", "expected"),
    [(True, -0.39, True), (True, -0.40, False), (True, -1.2, False), (False, 0.0, False), (None, -0.5, False),
     (None, 0.1, None), (True, None, None)],
)  # fmt: skip
def test_neda4_adds_brain_volume_loss_below_0_4_percent_a_year(neda_3, pbvc, expected):
    assert neda4(neda_3, pbvc) is expected


def test_edss_progression_steps_and_confirmation() -> None:
    assert [edss_step(b) for b in (0.0, 1.0, 5.5, 6.0)] == [1.5, 1.0, 1.0, 0.5]
    rise = [Visit(100, 3.0), Visit(200, 3.0)]
    assert confirmed_progression(2.0, rise, 91) is True  # +1.0 from 2.0, still there 100 days later
    assert confirmed_progression(2.0, [Visit(100, 3.0), Visit(150, 3.0)], 91) is None  # not yet confirmable
    assert confirmed_progression(2.0, [Visit(100, 3.0), Visit(200, 2.5)], 91) is False  # did not hold
    assert confirmed_progression(0.0, [Visit(100, 1.0), Visit(200, 1.0)], 91) is False  # from 0 it takes 1.5
    assert confirmed_progression(6.0, [Visit(100, 6.5), Visit(300, 6.5)], 91) is True  # above 5.5: 0.5
    assert confirmed_progression(2.0, rise, 182) is None  # 6-month confirmation (Rio): too soon
    assert confirmed_progression(0.0, [Visit(100, 1.0), Visit(300, 1.0)], 182, rio_step) is True  # Rio: 1 point
    assert confirmed_progression(None, rise, 91) is None


def _subject(rows: list[tuple]) -> pd.DataFrame:
    columns = [
        "session_id",
        "acq_time",
        "treatment_start",
        "relapses",
        "edss",
        "treatment",
        "rebaseline",
        "t1w_ce_file",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(participant_id="sub-01")


def _activity(
    counts: list[tuple],
    changes: list[tuple],
    cels: list[tuple],
    lesions: list[tuple],
    contrast: set[str],
    pbvc: list[tuple],
) -> Activity:
    pair = ["participant_id", "session_from", "session_to"]
    return Activity(
        counts=pd.DataFrame([("sub-01", *c) for c in counts], columns=[*pair, "n_new", "n_enlarging"]),
        changes=pd.DataFrame([("sub-01", *c) for c in changes], columns=[*pair, "status", "to_lesions"]),
        lesions=pd.DataFrame(
            [("sub-01", *c) for c in lesions], columns=["participant_id", "session_id", "component", "lesion_id"]
        ),
        cels=pd.DataFrame([("sub-01", *c) for c in cels], columns=["participant_id", "session_id", "lesion_component"]),
        contrast_sessions=frozenset(contrast),
        pbvc=pd.DataFrame([("sub-01", *c) for c in pbvc], columns=[*pair, "pbvc_per_year"]),
    )


def test_a_treatment_year_against_the_rebaseline_scan() -> None:
    """Treatment started 2020-01-01; baseline scan before it, rebaseline at 7 months, year-1 scan at 12 months and a
    year-2 scan. Year 1 is read from the rebaseline scan: 2 new + 1 enlarging T2 lesions, a CEL inside one of the new
    ones (counted once) and one outside any T2 lesion: 4 active lesions; one relapse; EDSS 2.0 -> 3.0 at 12 months,
    confirmed at 24: Rio 1 + 1 + 1 = 3, modified Rio 0 + 1 = 1, MAGNIMS (1 relapse, 2 new) = 1, no NEDA."""
    sessions = _subject([
        ("ses-01", "2019-12-01", "2020-01-01", None, 2.0, "dmf", False, "ce.nii.gz"),
        ("ses-02", "2020-08-01", "2020-01-01", 0, 2.0, "dmf", True, "ce.nii.gz"),
        ("ses-03", "2021-01-05", "2020-01-01", 1, 3.0, "dmf", False, "ce.nii.gz"),
        ("ses-04", "2021-12-20", "2020-01-01", 0, 3.0, "dmf", False, None),
    ])  # fmt: skip
    activity = _activity(
        counts=[("ses-02", "ses-03", 2, 1), ("ses-03", "ses-04", 0, 0)],
        changes=[
            ("ses-02", "ses-03", "new", "1"),
            ("ses-02", "ses-03", "new", "2"),
            ("ses-02", "ses-03", "enlarging", "3"),
            ("ses-02", "ses-03", "stable", "4"),
        ],
        cels=[("ses-03", 1), ("ses-03", None), ("ses-01", 5)],
        lesions=[("ses-03", 1, 11), ("ses-03", 2, 12), ("ses-03", 3, 13), ("ses-03", 4, 14)],
        contrast={"ses-01", "ses-02", "ses-03"},
        pbvc=[("ses-02", "ses-03", -0.3), ("ses-03", "ses-04", -0.2)],
    )
    year1, year2 = treatment_years(sessions, activity)
    assert year1["treatment_year"] == 1 and (year1["mri_reference"], year1["mri_reference_type"]) == (
        "ses-02",
        "rebaseline",
    )
    assert (year1["mri_end"], year1["new_t2"], year1["enlarging_t2"], year1["n_cel"]) == ("ses-03", 2, 1, 2)
    assert year1["active_lesions"] == 4 and year1["active_3_or_more"] is True
    assert (year1["relapses"], year1["edss_baseline"], year1["edss_progression"]) == (1, 2.0, True)
    assert (year1["rio_score"], year1["modified_rio_score"], year1["magnims_score"]) == (3, 1, 1)
    assert year1["neda3"] is False and year1["neda4"] is False
    # year 2: from the year-1 scan, no post-contrast scan: CEL and so active lesions, Rio and NEDA-3 unknown
    assert (year2["mri_reference"], year2["mri_reference_type"], year2["mri_end"]) == (
        "ses-03",
        "previous_year",
        "ses-04",
    )
    assert (year2["new_t2"], year2["cel_scans"], year2["n_cel"], year2["active_lesions"]) == (0, 0, None, None)
    assert (year2["relapses"], year2["modified_rio_score"], year2["magnims_score"]) == (0, 0, 0)
    assert year2["rio_score"] is None and year2["neda3"] is None and year2["pbvc_per_year"] == -0.2


def test_year_one_falls_back_to_the_pre_treatment_scan_and_missing_relapses_are_unknown() -> None:
    sessions = _subject([
        ("ses-01", "2019-12-01", "2020-01-01", None, None, None, False, "ce.nii.gz"),
        ("ses-02", "2020-12-15", "2020-01-01", None, None, None, True, "ce.nii.gz"),
    ])  # fmt: skip
    activity = _activity([("ses-01", "ses-02", 0, 0)], [], [], [], {"ses-01", "ses-02"}, [("ses-01", "ses-02", -0.1)])
    (year1,) = treatment_years(sessions, activity)
    assert (year1["mri_reference"], year1["mri_reference_type"]) == ("ses-01", "baseline")  # the rebaseline is the end
    assert year1["active_lesions"] == 0 and year1["n_cel"] == 0
    assert year1["relapses"] is None and year1["edss_baseline"] is None and year1["edss_progression"] is None
    assert year1["rio_score"] is None and year1["magnims_score"] is None and year1["neda3"] is None
    assert year1["neda4"] is None  # nothing failed, but NEDA-3 is unknown


def test_no_treatment_start_no_rows() -> None:
    sessions = _subject([("ses-01", "2019-12-01", None, 0, 2.0, None, False, None)])
    assert treatment_years(sessions, _activity([], [], [], [], set(), [])) == []


def test_the_prognostic_profile_is_the_first_session_with_its_counts_and_normalised_volume() -> None:
    """One row per subject at its first session; the lesion volume is the lesion counts' (brain_volumes.tsv has
    its own column of the same name), a session without a table row is n/a."""
    sessions = pd.DataFrame(
        {
            "participant_id": ["sub-01", "sub-01", "sub-02"],
            "session_id": ["ses-01", "ses-02", "ses-01"],
            "acq_time": ["2020-01-01", "2020-07-01", "2020-02-01"],
        }
    )
    counts = pd.DataFrame(
        {"participant_id": ["sub-01", "sub-01"], "session_id": ["ses-01", "ses-02"], "n_lesions": [4, 6]}
    ).assign(lesion_volume_ml=[1.5, 2.0], n_cel=[1, 0])
    volumes = pd.DataFrame(
        {"participant_id": ["sub-01", "sub-02"], "session_id": ["ses-01", "ses-01"], "lesion_volume_ml": [9.0, 9.0]}
    ).assign(normalized_brain_volume_ml=[1500.0, 1550.0])
    table = baseline_profiles(sessions, counts, volumes)
    assert list(table.columns) == list(PROGNOSIS_COLUMNS) and list(table.session_id) == ["ses-01", "ses-01"]
    first, second = table.itertuples()
    assert (first.n_lesions, first.lesion_volume_ml, first.n_cel, first.normalized_brain_volume_ml) == (4, 1.5, 1, 1500)
    assert pd.isna(second.n_lesions) and pd.isna(second.lesion_volume_ml) and second.normalized_brain_volume_ml == 1550
