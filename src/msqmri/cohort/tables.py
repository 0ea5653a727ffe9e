"""Group tables assembled from per-session JSON reports and TSVs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from msqmri.cohort import prognosis, response
from msqmri.core.io import MsqmriInputError, load_json, save_tsv
from msqmri.lesions.enhancement import CEL_COLUMNS

SESSION_COLUMNS = (
    "participant_id",
    "session_id",
    "acq_time",
    "treatment_start",
    "age",
    "sex",
    "site",
    "modalities",
    "n_echoes",
    "n_dwi_volumes",
    "lesion_mask_spaces",
    "t1w_shape",
    "t1w_voxel_size_mm",
    "t1w_orientation",
    "t1w_oblique",
    "t1w_obliquity_deg",
    "t1w_intensity_p01",
    "t1w_intensity_p05",
    "t1w_intensity_p50",
    "t1w_intensity_p95",
    "t1w_intensity_p99",
    "t1w_foreground_volume_ml",
    "acq_time_source",
    "age_note",
    "t1w_file",
    "t1w_ce_file",
    "selection",
    "relapses",
    "edss",
    "treatment",
    "rebaseline",
)


#: the PBVC method the monitoring flags and scores use when both ran (SIENA-like edge displacement first)
METHOD_ORDER = ("siena", "jacobian")


def session_row(check: Mapping[str, Any], t1w: Mapping[str, Any], demographics: Mapping[str, Any]) -> dict[str, Any]:
    """One sessions.tsv row from a session's input check, T1w summary and demographics."""
    return {
        "participant_id": check["participant_id"],
        "session_id": check["session_id"],
        "acq_time": check["acq_time"],
        "treatment_start": check.get("treatment_start"),
        "age": demographics.get("age"),
        "sex": demographics.get("sex"),
        "site": demographics.get("site"),
        "modalities": ",".join(check["modalities"]),
        "n_echoes": len(check["MEGRE"]["files"]) if "MEGRE" in check else 0,
        "n_dwi_volumes": check["dwi"]["n_volumes"] if "dwi" in check else 0,
        "lesion_mask_spaces": ",".join(check["lesion_masks"]) or None,
        "t1w_shape": "x".join(str(n) for n in t1w["shape"]),
        "t1w_voxel_size_mm": "x".join(f"{z:g}" for z in t1w["voxel_size_mm"]),
        "t1w_orientation": t1w["orientation"],
        "t1w_oblique": t1w["oblique"],
        "t1w_obliquity_deg": t1w["obliquity_deg"],
        **{f"t1w_{key}": t1w[key] for key in t1w if key.startswith("intensity_p")},
        "t1w_foreground_volume_ml": t1w["foreground_volume_ml"],
        "acq_time_source": check.get("acq_time_source"),
        "age_note": demographics.get("age_note"),
        "t1w_file": check["T1w"]["file"],
        "t1w_ce_file": check["T1w_ce"]["file"] if "T1w_ce" in check else None,
        "selection": "; ".join(f"{role}={c['file']} ({c['rule']})" for role, c in check.get("selection", {}).items())
        or None,
        **{key: check.get(key) for key in ("relapses", "edss", "treatment", "rebaseline")},
    }


def sessions_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """sessions.tsv: one row per subject-session (in the given order) with a fixed column order."""
    return pd.DataFrame(list(rows), columns=list(SESSION_COLUMNS))


def sessions_table_from_reports(
    checks: Sequence[str | os.PathLike[str]],
    summaries: Sequence[str | os.PathLike[str]],
    demographics: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """sessions.tsv from the per-session input-check and T1w-summary JSON files (paired in order)."""
    rows = []
    for check_path, summary_path in zip(checks, summaries, strict=True):
        check = load_json(check_path)
        rows.append(session_row(check, load_json(summary_path), demographics.get(check["participant_id"], {})))
    return sessions_table(rows)


BRAIN_VOLUME_COLUMNS = (
    "participant_id",
    "session_id",
    "brain_volume_ml",
    "gm_volume_ml",
    "wm_volume_ml",
    "csf_volume_ml",
    "lesion_volume_ml",
    "vscale",
    "normalized_brain_volume_ml",
    "icv_volume_ml",
    "qc_flag",
    "qc_note",
)


def brain_volumes_table(reports: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """group/brain_volumes.tsv from the per-session SIENAX-like volume JSON files."""
    return pd.DataFrame([load_json(path) for path in reports], columns=list(BRAIN_VOLUME_COLUMNS))


PBVC_COLUMNS = (
    "participant_id",
    "session_from",
    "session_to",
    "interval_days",
    "pbvc",
    "pbvc_per_year",
    "method",
    "qc_flag",
    "edge_points",
    "non_border_edge_fraction",
    "shared_edge_fraction",
    "shared_brain_fraction",
)


def pbvc_table(reports: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """group/pbvc.tsv from the per-pair PBVC JSON files (both methods), sorted by subject, pair, method."""
    table = pd.DataFrame([load_json(path) for path in reports], columns=list(PBVC_COLUMNS))
    return table.sort_values(["participant_id", "session_from", "session_to", "method"], kind="stable")


ID_COLUMNS = ("participant_id", "session_id", "session_from", "session_to")


def read_group_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A group TSV with its id columns as text (``n/a`` kept as the label of a sessionless subject) and
    ``n/a`` elsewhere as missing; an empty file is an empty table."""
    if not Path(path).is_file():
        raise MsqmriInputError(path, "file not found")
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype={c: str for c in ID_COLUMNS}, na_values=["n/a"], keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for column in ID_COLUMNS:
        if column in frame:
            frame[column] = frame[column].fillna("n/a")
    return frame


def concatenate(tables: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Per-session TSVs with one header stacked into one table (the first file's columns, in order)."""
    frames = [pd.read_csv(path, sep="\t", dtype={"participant_id": str, "session_id": str}) for path in tables]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


LESION_ACTIVITY_COLUMNS = (
    "participant_id",
    "session_from",
    "session_to",
    "n_new",
    "n_enlarging",
    "n_shrinking",
    "n_resolved",
    "n_stable",
    "new_volume_ml",
)


def lesion_activity_table(reports: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """group/lesion_activity.tsv from the per-pair lesion activity JSON files."""
    table = pd.DataFrame([load_json(path) for path in reports], columns=list(LESION_ACTIVITY_COLUMNS))
    return table.sort_values(["participant_id", "session_from", "session_to"], kind="stable")


# The group-table steps (msqmri.workflow.steps): inputs and outputs by key, as every step's library call.
Files = Mapping[str, Any]


def write_sessions_table(inputs: Files, outputs: Files, demographics: Mapping[str, Mapping[str, Any]]) -> None:
    """group/sessions.tsv from every session's input check and T1w summary."""
    save_tsv(sessions_table_from_reports(inputs["checks"], inputs["summaries"], demographics), outputs["table"])


def write_brain_volumes_table(inputs: Files, outputs: Files) -> None:
    """group/brain_volumes.tsv from every session's volumes."""
    save_tsv(brain_volumes_table(inputs["volumes"]), outputs["table"])


def write_pbvc_table(inputs: Files, outputs: Files) -> None:
    """group/pbvc.tsv from every pair's PBVC JSON."""
    save_tsv(pbvc_table(inputs["pbvc"]), outputs["table"])


def write_lesion_activity_table(inputs: Files, outputs: Files) -> None:
    """group/lesion_activity.tsv from every pair's lesion activity counts."""
    save_tsv(lesion_activity_table(inputs["counts"]), outputs["table"])


def write_concatenated(inputs: Files, outputs: Files) -> None:
    """A group table stacking the per-session, per-pair or per-subject ``tables``."""
    save_tsv(concatenate(inputs["tables"]), outputs["table"])


#: group/enhancing_lesions.tsv: a session's CEL rows and the persistent identity of the T2 lesion each lies in
CEL_TABLE_COLUMNS = (*CEL_COLUMNS, "lesion_id")


def write_lesion_counts(inputs: Files, outputs: Files) -> None:
    """group/lesion_counts.tsv: every subject's lesion counts per session, with the session's contrast-enhancing
    lesions (``n_cel``, ``cel_volume_ml``; ``n/a`` for a session without a post-contrast scan)."""
    counts = concatenate(inputs["counts"])
    summaries = pd.DataFrame(
        [load_json(path) for path in inputs["cel"]],
        columns=["participant_id", "session_id", "n_cel", "cel_volume_ml"],
    )
    keys = ["participant_id", "session_id"]
    table = counts.merge(summaries[[*keys, "n_cel", "cel_volume_ml"]], on=keys, how="left")
    table["n_cel"] = table["n_cel"].astype("Int64")
    save_tsv(table, outputs["table"])


def write_enhancing_lesions(inputs: Files, outputs: Files) -> None:
    """group/enhancing_lesions.tsv: every session's CELs, with the persistent identity (``lesion_id`` of
    group/lesions.tsv) of the T2 lesion each lies in."""
    cels = concatenate(inputs["tables"])
    lesions = read_group_table(inputs["lesions"])
    keys = ["participant_id", "session_id"]
    if cels.empty:
        save_tsv(pd.DataFrame(columns=list(CEL_TABLE_COLUMNS)), outputs["table"])
        return
    if not lesions.empty:
        identity = lesions[[*keys, "component", "lesion_id"]].rename(columns={"component": "lesion_component"})
        cels = cels.merge(identity, on=[*keys, "lesion_component"], how="left")
    save_tsv(cels.reindex(columns=list(CEL_TABLE_COLUMNS)), outputs["table"])


def preferred_pbvc(pbvc: pd.DataFrame) -> pd.DataFrame:
    """One PBVC row per pair: the first method of :data:`METHOD_ORDER` that gave a value."""
    if pbvc.empty:
        return pbvc
    ranked = pbvc.dropna(subset=["pbvc"]).assign(rank=lambda t: t["method"].map(METHOD_ORDER.index))
    return ranked.sort_values("rank").drop_duplicates(["participant_id", "session_from", "session_to"])


def write_treatment_response(inputs: Files, outputs: Files) -> None:
    """group/treatment_response.tsv (:func:`msqmri.cohort.response.treatment_years` of every subject)."""
    names = ("sessions", "activity", "changes", "lesions", "cels", "pbvc")
    tables = {name: read_group_table(inputs[name]) for name in names}
    rows = []
    for participant, sessions in tables["sessions"].groupby("participant_id", sort=False):
        of = {name: _of(table, participant) for name, table in tables.items()}
        contrast = sessions.loc[sessions["t1w_ce_file"].notna(), "session_id"]
        activity = response.Activity(
            of["activity"], of["changes"], of["lesions"], of["cels"], frozenset(contrast), preferred_pbvc(of["pbvc"])
        )
        rows += response.treatment_years(sessions, activity)
    save_tsv(pd.DataFrame(rows, columns=list(response.TREATMENT_RESPONSE_COLUMNS)), outputs["table"])


def write_prognosis(inputs: Files, outputs: Files) -> None:
    """group/prognosis.tsv (:func:`msqmri.cohort.prognosis.baseline_profiles`)."""
    tables = [read_group_table(inputs[name]) for name in ("sessions", "counts", "volumes")]
    save_tsv(prognosis.baseline_profiles(*tables), outputs["table"])


def _of(table: pd.DataFrame, participant: str) -> pd.DataFrame:
    return table[table["participant_id"] == participant] if "participant_id" in table else table
