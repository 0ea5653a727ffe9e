"""Treatment response scores: published definitions over a treatment year's relapses, EDSS and MRI activity.

The MAGNIMS guidelines on monitoring (Wattjes et al., Lancet Neurol 2021) take activity as new or enlarging T2
lesions and contrast-enhancing lesions (CEL) against a reference scan acquired once the treatment has taken
effect, and list these scores, each computed here exactly as published, ``None`` (``n/a``) where an input it
needs is missing, never guessed:

- **Rio score** (Rio et al., Mult Scler 2009;15:848-853), after the first year of treatment: one point each for
  more than 2 active lesions (new T2 or CEL), at least one relapse, and an EDSS increase of at least 1 point
  confirmed 6 months later; 0-3.
- **modified Rio score** (Sormani et al., Mult Scler 2013;19:605-612): one point for more than 4 new T2 lesions
  (the paper's scoring table; its abstract writes ">5"), and relapses scored 0 (none), 1 (one), 2 (two or more);
  0-3.
- **MAGNIMS score** (Sormani et al., Neurology 2016;87:134-140; validated by Kunchok et al., Mult Scler 2021): 0 = no
  relapse and at most 2 new T2 lesions; 1 = no relapse and at least 3 new T2 lesions, or one relapse and at most 2;
  2 = one relapse and at least 3 new T2 lesions, or two or more relapses.
- **NEDA-3** (Havrdova et al., Lancet Neurol 2009; Giovannoni et al., Mult Scler Relat Disord 2015): no relapse,
  no confirmed EDSS progression, no new or enlarging T2 lesion and no CEL. **NEDA-4** (Kappos et al., Mult Scler
  2016;22:1297-1305) adds annualised brain volume loss below 0.4 %.
- **3 or more active lesions in a year**: the MAGNIMS monitoring criterion of a suboptimal response.

EDSS progression for NEDA (the usual trial definition): an increase of at least 1.5 points from a baseline of 0,
1.0 from 1.0-5.5, 0.5 above 5.5, confirmed 3 months later; for the Rio score, as published, an increase of at
least 1 point confirmed 6 months later. Confirmed means a visit at least that interval later still meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: new + enlarging T2 lesions and CEL (counted once) that make a year "active" in the MAGNIMS sense
ACTIVE_LESIONS = 3
#: annualised PBVC at or below this (percent per year) fails NEDA-4 (Kappos et al. 2016)
NEDA4_PBVC_PER_YEAR = -0.4
#: confirmation interval of EDSS progression (days): 3 months for NEDA, 6 months for the Rio score
CONFIRM_NEDA_DAYS, CONFIRM_RIO_DAYS = 91.0, 182.0


@dataclass(frozen=True)
class Visit:
    """An EDSS assessment: days since the treatment start and the score."""

    day: float
    edss: float


def edss_step(baseline: float) -> float:
    """The EDSS increase that counts as progression from ``baseline`` (NEDA's definition)."""
    if baseline == 0:
        return 1.5
    return 1.0 if baseline <= 5.5 else 0.5


def rio_step(baseline: float) -> float:
    """The Rio score's EDSS increase: 1 point, whatever the baseline."""
    return 1.0


def confirmed_progression(
    baseline: float | None,
    visits: Sequence[Visit],
    confirm_days: float,
    step_of: Callable[[float], float] = edss_step,
    candidates: Sequence[Visit] | None = None,
) -> bool | None:
    """Whether the EDSS rose by ``step_of(baseline)`` at one of ``candidates`` (default: every visit) and still did
    at the first of ``visits`` at least ``confirm_days`` later; None without a baseline EDSS, or when a rise has no
    visit late enough to confirm it and no other rise is confirmed."""
    if baseline is None:
        return None
    step = step_of(baseline)
    unconfirmed = False
    for visit in visits if candidates is None else candidates:
        if visit.edss - baseline < step:
            continue
        later = [v for v in visits if v.day - visit.day >= confirm_days]
        if later:
            if later[0].edss - baseline >= step:
                return True
        else:
            unconfirmed = True
    return None if unconfirmed else False


def rio_score(active_lesions: int | None, relapses: int | None, progression: bool | None) -> int | None:
    """Rio et al. 2009: >2 active lesions, >=1 relapse, confirmed EDSS progression, a point each (0-3)."""
    if active_lesions is None or relapses is None or progression is None:
        return None
    return int(active_lesions > 2) + int(relapses >= 1) + int(progression)


def modified_rio_score(new_t2: int | None, relapses: int | None) -> int | None:
    """Sormani et al. 2013: >4 new T2 lesions one point; relapses 0, 1, >=2 scored 0, 1, 2 (0-3)."""
    if new_t2 is None or relapses is None:
        return None
    return int(new_t2 > 4) + min(relapses, 2)


def magnims_score(new_t2: int | None, relapses: int | None) -> int | None:
    """Sormani et al. 2016: 0, 1 or 2 from relapses and new T2 lesions (see the module docstring)."""
    if new_t2 is None or relapses is None:
        return None
    if relapses >= 2 or (relapses == 1 and new_t2 >= 3):
        return 2
    if relapses == 1 or new_t2 >= 3:
        return 1
    return 0


def neda3(relapses: int | None, progression: bool | None, active_lesions: int | None) -> bool | None:
    """No evident disease activity: no relapse, no confirmed progression, no new/enlarging T2 lesion or CEL. A
    criterion already failed decides it whatever is missing."""
    failed = (relapses or 0) > 0 or progression is True or (active_lesions or 0) > 0
    if failed:
        return False
    return None if None in (relapses, progression, active_lesions) else True


def neda4(neda_3: bool | None, pbvc_per_year: float | None) -> bool | None:
    """NEDA-3 and annualised brain volume loss below 0.4 % (Kappos et al. 2016)."""
    if neda_3 is False or (pbvc_per_year is not None and pbvc_per_year <= NEDA4_PBVC_PER_YEAR):
        return False
    return None if neda_3 is None or pbvc_per_year is None else True


DAYS_PER_YEAR = 365.25
#: a visit up to this many days after a treatment year's end still closes that year (a clinic's scheduling)
YEAR_TOLERANCE_DAYS = 31.0
#: without an EDSS on or before the treatment start, the first one this soon after it is the baseline
EDSS_BASELINE_AFTER_DAYS = 92.0
TREATMENT_RESPONSE_COLUMNS = (
    "participant_id",
    "treatment",
    "treatment_start",
    "treatment_year",
    "mri_reference",
    "mri_reference_type",
    "mri_end",
    "relapses",
    "edss_baseline",
    "edss_progression",
    "new_t2",
    "enlarging_t2",
    "cel_scans",
    "n_cel",
    "active_lesions",
    "active_3_or_more",
    "rio_score",
    "modified_rio_score",
    "magnims_score",
    "pbvc_per_year",
    "neda3",
    "neda4",
)


@dataclass(frozen=True)
class Activity:
    """A subject's MRI activity inputs (group tables, restricted to the subject): lesion activity and changes of
    its pairs, its tracked lesions, its CELs, the sessions with a post-contrast scan, and its PBVC of each pair
    (one method)."""

    counts: pd.DataFrame
    changes: pd.DataFrame
    lesions: pd.DataFrame
    cels: pd.DataFrame
    contrast_sessions: frozenset[str]
    pbvc: pd.DataFrame


def treatment_years(sessions: pd.DataFrame, activity: Activity) -> list[dict[str, Any]]:
    """One row per treatment start and year of one subject's ``sessions`` (time order; columns of sessions.tsv).

    Year ``y`` runs from ``(y - 1)`` to ``y`` years after the start (visits up to :data:`YEAR_TOLERANCE_DAYS`
    later close it). Its MRI interval runs from a reference scan to the year's last scan: in year 1 the
    rebaseline scan when it comes before that, else the last scan before the start (``mri_reference_type``), in
    later years the previous year's last scan. Relapses are those reported at the year's sessions (each since the
    previous session); EDSS progression is from the EDSS at the start (:data:`EDSS_BASELINE_AFTER_DAYS`),
    confirmed as :func:`confirmed_progression` says, at a visit of the year.
    """
    rows = []
    dates = pd.to_datetime(sessions["acq_time"])
    for start_text, treated in sessions.dropna(subset=["treatment_start"]).groupby("treatment_start", sort=True):
        start = pd.Timestamp(start_text)
        day = ((dates - start).dt.total_seconds() / 86400.0).to_numpy()
        edss = sessions["edss"].to_numpy(dtype=float)
        baseline_edss = _baseline_edss(day, edss)
        visits = [Visit(d, e) for d, e in zip(day, edss, strict=True) if d > 0 and np.isfinite(e)]
        previous_end: int | None = None
        for year in range(1, int(np.nanmax(day) // DAYS_PER_YEAR) + 2):
            window = np.flatnonzero(_in_year(day, year))
            if not window.size:
                continue
            end = int(window[-1])
            reference, kind = _reference(sessions, day, end, year, previous_end)
            previous_end = end
            in_year = [v for v in visits if _in_year(np.array([v.day]), year)[0]]
            later = [v for v in visits if v.day > year * DAYS_PER_YEAR + YEAR_TOLERANCE_DAYS]
            rows.append(
                {
                    "participant_id": sessions["participant_id"].iloc[0],
                    "treatment": treated["treatment"].dropna().iloc[0] if treated["treatment"].notna().any() else None,
                    "treatment_start": start.date().isoformat(),
                    "treatment_year": year,
                    "relapses": _total(sessions["relapses"].iloc[window]),
                    "edss_baseline": baseline_edss,
                    **_progressions(baseline_edss, in_year, later),
                    **_mri(sessions, activity, reference, end, kind),
                }
            )
    return [_scores(row) for row in rows]


def _in_year(day: np.ndarray, year: int) -> np.ndarray:
    """Which ``day`` (since the treatment start) falls in treatment ``year``: after the previous year's end
    (and its tolerance), up to this year's end plus :data:`YEAR_TOLERANCE_DAYS`."""
    after = (year - 1) * DAYS_PER_YEAR + (YEAR_TOLERANCE_DAYS if year > 1 else 0.0)
    return (day > after) & (day <= year * DAYS_PER_YEAR + YEAR_TOLERANCE_DAYS)


def _baseline_edss(day: np.ndarray, edss: np.ndarray) -> float | None:
    before = np.flatnonzero((day <= 0) & np.isfinite(edss))
    if before.size:
        return float(edss[before[-1]])
    soon = np.flatnonzero((day > 0) & (day <= EDSS_BASELINE_AFTER_DAYS) & np.isfinite(edss))
    return float(edss[soon[0]]) if soon.size else None


def _progressions(baseline: float | None, in_year: list[Visit], later: list[Visit]) -> dict[str, bool | None]:
    """Confirmed EDSS progression at a visit of the year, by NEDA's and by the Rio score's definitions (a visit
    after the year may confirm it)."""
    if not in_year:
        return {"edss_progression": None, "rio_progression": None}
    return {
        "edss_progression": confirmed_progression(baseline, [*in_year, *later], CONFIRM_NEDA_DAYS, edss_step, in_year),
        "rio_progression": confirmed_progression(baseline, [*in_year, *later], CONFIRM_RIO_DAYS, rio_step, in_year),
    }


def _reference(
    sessions: pd.DataFrame, day: np.ndarray, end: int, year: int, previous_end: int | None
) -> tuple[int | None, str | None]:
    """The MRI reference scan of a year and its kind (see :func:`treatment_years`)."""
    if year > 1:
        return (previous_end, "previous_year") if previous_end is not None and previous_end < end else (None, None)
    rebaseline = np.flatnonzero(sessions["rebaseline"].fillna(False).astype(bool).to_numpy())
    rebaseline = rebaseline[(day[rebaseline] > 0) & (rebaseline < end)]
    if rebaseline.size:
        return int(rebaseline[0]), "rebaseline"
    before = np.flatnonzero(day <= 0)
    return (int(before[-1]), "baseline") if before.size and before[-1] < end else (None, None)


def _mri(
    sessions: pd.DataFrame, activity: Activity, reference: int | None, end: int, kind: str | None
) -> dict[str, Any]:
    """New and enlarging T2 lesions from the reference to the end scan, CELs on the post-contrast scans after the
    reference, and the active lesions: new or enlarging T2 lesions and CELs, each lesion counted once."""
    empty = {
        "mri_reference": None,
        "mri_reference_type": None,
        "mri_end": sessions["session_id"].iloc[end],
        "new_t2": None,
        "enlarging_t2": None,
        "cel_scans": 0,
        "n_cel": None,
        "active_lesions": None,
        "pbvc_per_year": None,
    }
    if reference is None:
        return empty
    ids = sessions["session_id"].to_numpy()
    pair = {"session_from": ids[reference], "session_to": ids[end]}
    out = {**empty, "mri_reference": ids[reference], "mri_reference_type": kind}
    counts = _rows(activity.counts, pair)
    if len(counts):
        out["new_t2"], out["enlarging_t2"] = int(counts["n_new"].iloc[0]), int(counts["n_enlarging"].iloc[0])
    pbvc = _rows(activity.pbvc, pair)
    if len(pbvc) and pd.notna(pbvc["pbvc_per_year"].iloc[0]):
        out["pbvc_per_year"] = float(pbvc["pbvc_per_year"].iloc[0])
    window = set(ids[reference + 1 : end + 1])
    scanned = window & activity.contrast_sessions
    out["cel_scans"] = len(scanned)
    if not scanned:
        return out
    cels = activity.cels[activity.cels["session_id"].isin(window)]
    out["n_cel"] = len(cels)
    if out["new_t2"] is None:
        return out
    changes = _rows(activity.changes, pair)
    changes = changes[changes["status"].isin(["new", "enlarging"])]
    active = {_persistent(activity.lesions, ids[end], c) for text in changes["to_lesions"] for c in _components(text)}
    loose = 0
    for session, component in zip(cels["session_id"], cels["lesion_component"], strict=True):
        if pd.isna(component):
            loose += 1
        else:
            active.add(_persistent(activity.lesions, session, int(component)))
    out["active_lesions"] = len(active) + loose
    return out


def _rows(table: pd.DataFrame, pair: dict[str, str]) -> pd.DataFrame:
    if table.empty:
        return table
    return table[(table["session_from"] == pair["session_from"]) & (table["session_to"] == pair["session_to"])]


def _components(text: Any) -> list[int]:
    return [] if pd.isna(text) else [int(float(c)) for c in str(text).split(";") if c]


def _persistent(lesions: pd.DataFrame, session: str, component: int) -> Any:
    """The persistent identity of a session's lesion component (the component itself when untracked)."""
    row = lesions[(lesions["session_id"] == session) & (lesions["component"] == component)]
    return int(row["lesion_id"].iloc[0]) if len(row) else (session, component)


def _total(values: pd.Series) -> int | None:
    return None if values.isna().any() else int(values.sum())


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    """The published scores of a year's row (see the module docstring)."""
    active = row["active_lesions"]
    row["active_3_or_more"] = None if active is None else active >= ACTIVE_LESIONS
    row["rio_score"] = rio_score(active, row["relapses"], row.pop("rio_progression"))
    row["modified_rio_score"] = modified_rio_score(row["new_t2"], row["relapses"])
    row["magnims_score"] = magnims_score(row["new_t2"], row["relapses"])
    row["neda3"] = neda3(row["relapses"], row["edss_progression"], active)
    row["neda4"] = neda4(row["neda3"], row["pbvc_per_year"])
    return row
