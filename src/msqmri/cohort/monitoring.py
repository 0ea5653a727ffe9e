"""MAGNIMS monitoring flags per subject and session pair.

Follows the MAGNIMS-CMSC-NAIMS consensus on MRI monitoring in MS (Wattjes et al. 2021, Lancet
Neurol 20:653): new or enlarging T2 lesions since the reference scan mark disease activity; follow-up
scans every 3-12 months; brain volume loss beyond the -0.37 %/y cut-off that separates MS from
healthy ageing (De Stefano et al. 2016, JNNP 87:93) marks neurodegeneration, except that the first
6-12 months of anti-inflammatory treatment show pseudo-atrophy (resolution of oedema), so loss in
an interval beginning within 12 months of a treatment start is flagged with a caution, not
trusted. A scanner or protocol change within the interval makes PBVC unreliable (Lee et al. 2019).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from msqmri.atrophy.qc import PASS as PBVC_QC_PASS
from msqmri.cohort.tables import preferred_pbvc, read_group_table
from msqmri.core.io import save_tsv

PBVC_CUTOFF_PER_YEAR = -0.37  # %/y
INTERVAL_MONTHS = (3.0, 12.0)
#: a clinic's scheduling tolerance of that interval (days): an annual scan at 371 days is on schedule
INTERVAL_TOLERANCE_DAYS = 31.0
PSEUDO_ATROPHY_DAYS = 365.25
DAYS_PER_MONTH = 365.25 / 12
COLUMNS = (
    "participant_id",
    "session_from",
    "session_to",
    "pair_type",
    "interval_days",
    "interval_months",
    "n_new",
    "n_enlarging",
    "new_or_enlarging_lesions",
    "pbvc_method",
    "pbvc",
    "pbvc_per_year",
    "atrophy_beyond_cutoff",
    "pseudo_atrophy_caution",
    "interval_outside_3_12_months",
    "protocol_changed",
    "flags",
    "n_cel",
)


def pair_flags(
    pbvc: pd.DataFrame,
    activity: pd.DataFrame,
    sessions: pd.DataFrame,
    compliance: pd.DataFrame | None = None,
    counts: pd.DataFrame | None = None,
    tolerance_days: float = INTERVAL_TOLERANCE_DAYS,
) -> pd.DataFrame:
    """Flags of every session pair in ``activity`` and ``pbvc`` (group tables): new/enlarging lesions,
    contrast-enhancing lesions on the later scan (``counts``: lesion_counts.tsv), annualised PBVC beyond the
    cut-off (with the pseudo-atrophy caution when sessions.tsv gives a treatment start in the 12 months before the
    interval or within it), interval outside 3-12 months give or take ``tolerance_days`` (consecutive pairs), a
    scanner/protocol change of the T1w within the interval, and a PBVC that failed the pair's QC
    (:mod:`msqmri.atrophy.qc`). ``pair_type`` is consecutive, rebaseline (from a treatment's reference scan) or
    baseline."""
    keys = ["participant_id", "session_from", "session_to"]
    pairs = pd.concat([activity[keys], pbvc[keys]]).drop_duplicates()
    pbvc = pbvc if "qc_flag" in pbvc else pbvc.assign(qc_flag=None)  # tables written before the QC had none
    table = pairs.merge(activity, on=keys, how="left").merge(
        preferred_pbvc(pbvc)[[*keys, "interval_days", "pbvc", "pbvc_per_year", "method", "qc_flag"]],
        on=keys,
        how="left",
    )
    dates = sessions.assign(
        acq_time=pd.to_datetime(sessions["acq_time"]), treatment_start=pd.to_datetime(sessions.get("treatment_start"))
    ).set_index(["participant_id", "session_id"])
    changed = set()
    if compliance is not None and not compliance.empty:
        t1w = compliance[(compliance["modality"] == "T1w")]
        changed = {
            (p, s)
            for p, s, a, b in t1w[["participant_id", "session_id", "scanner_changed", "protocol_changed"]].itertuples(
                index=False
            )
            if a or b
        }
    order = {key: i for i, key in enumerate(dates.index)}
    references = set(dates.index[dates["rebaseline"].fillna(False).astype(bool)]) if "rebaseline" in dates else set()
    cel = {}
    if counts is not None and "n_cel" in counts:
        cel = {(p, s): n for p, s, n in counts[["participant_id", "session_id", "n_cel"]].itertuples(index=False)}
    tolerance = tolerance_days / DAYS_PER_MONTH
    rows = []
    for row in table.itertuples(index=False):
        start, end = dates.loc[(row.participant_id, row.session_from)], dates.loc[(row.participant_id, row.session_to)]
        i, j = order[(row.participant_id, row.session_from)], order[(row.participant_id, row.session_to)]
        dated = pd.notna(start["acq_time"]) and pd.notna(end["acq_time"])
        interval = (end["acq_time"] - start["acq_time"]).total_seconds() / 86400 if dated else None
        consecutive = j == i + 1
        treatments = dates.loc[row.participant_id, "treatment_start"].dropna()
        caution = (
            bool(
                (
                    (treatments <= end["acq_time"])
                    & (treatments > start["acq_time"] - pd.Timedelta(days=PSEUDO_ATROPHY_DAYS))
                ).any()
            )
            if interval is not None
            else False
        )
        in_between = [s for (p, s), k in order.items() if p == row.participant_id and i < k <= j]
        new_or_enlarging = (row.n_new or 0) + (row.n_enlarging or 0) > 0 if pd.notna(row.n_new) else None
        atrophy = bool(row.pbvc_per_year < PBVC_CUTOFF_PER_YEAR) if pd.notna(row.pbvc_per_year) else None
        months = interval / DAYS_PER_MONTH if interval is not None else None
        lo, hi = INTERVAL_MONTHS[0] - tolerance, INTERVAL_MONTHS[1] + tolerance
        outside = (not lo <= months <= hi) if months is not None and consecutive else None
        n_cel = cel.get((row.participant_id, row.session_to))
        n_cel = None if n_cel is None or pd.isna(n_cel) else int(n_cel)
        protocol = any((row.participant_id, s) in changed for s in in_between)
        failed_qc = isinstance(row.qc_flag, str) and row.qc_flag != PBVC_QC_PASS
        flags = [
            name
            for name, on in (
                ("new/enlarging T2 lesions", new_or_enlarging),
                ("contrast-enhancing lesions", bool(n_cel)),
                ("PBVC beyond -0.37 %/y", atrophy and not caution),
                ("PBVC beyond -0.37 %/y (possible pseudo-atrophy: treatment start)", atrophy and caution),
                ("interval outside 3-12 months", outside),
                ("scanner/protocol change: PBVC unreliable", protocol),
                (f"PBVC failed QC ({row.qc_flag}): check the masks", failed_qc),
            )
            if on
        ]
        rows.append(
            {
                "participant_id": row.participant_id,
                "session_from": row.session_from,
                "session_to": row.session_to,
                "pair_type": "consecutive"
                if consecutive
                else "rebaseline"
                if (row.participant_id, row.session_from) in references
                else "baseline",
                "interval_days": round(interval, 2) if interval is not None else None,
                "interval_months": round(months, 2) if months is not None else None,
                "n_new": row.n_new,
                "n_enlarging": row.n_enlarging,
                "new_or_enlarging_lesions": new_or_enlarging,
                "pbvc_method": row.method,
                "pbvc": row.pbvc,
                "pbvc_per_year": row.pbvc_per_year,
                "atrophy_beyond_cutoff": atrophy,
                "pseudo_atrophy_caution": caution,
                "interval_outside_3_12_months": outside,
                "protocol_changed": protocol,
                "flags": "; ".join(flags) or None,
                "n_cel": n_cel,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(keys, kind="stable")


def write_flags(
    inputs: Mapping[str, str], outputs: Mapping[str, str], tolerance_days: float = INTERVAL_TOLERANCE_DAYS
) -> None:
    """The ``monitoring_flags`` step: :func:`pair_flags` of the group tables (pbvc, lesion activity, sessions,
    protocol compliance, lesion counts) as group/monitoring_flags.tsv."""
    tables = {name: read_group_table(inputs[name]) for name in ("pbvc", "activity", "sessions", "compliance", "counts")}
    save_tsv(pair_flags(**tables, tolerance_days=tolerance_days), outputs["table"])
