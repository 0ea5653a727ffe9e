"""Protocol compliance of structural acquisitions, from BIDS JSON sidecars and NIfTI headers.

Requirements of the MAGNIMS-CMSC-NAIMS consensus on MRI in MS (Wattjes et al. 2021, Lancet Neurol
20:653): field strength >= 1.5 T; 2D acquisitions with slices <= 3 mm and in-plane resolution
<= 1 x 1 mm; 3D acquisitions at 1 mm isotropic. A change of scanner (manufacturer, model, field
strength) or of protocol (sequence timing, acquisition type, voxel size) between a subject's
sessions makes brain volume change unreliable (Durand-Dubief 2012; Lee 2019), so it is flagged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from msqmri.core.io import MsqmriInputError, load_json, save_tsv

MIN_FIELD_T = 1.5
MAX_SLICE_2D_MM = 3.0
MAX_INPLANE_MM = 1.0
MAX_VOXEL_3D_MM = 1.0
TOLERANCE_MM = 0.05  # voxel sizes such as 1.05 mm (rounded headers) still count as 1 mm
SCANNER_KEYS = ("Manufacturer", "ManufacturersModelName", "MagneticFieldStrength")
PROTOCOL_KEYS = ("MRAcquisitionType", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "voxel_size_mm")
COLUMNS = (
    "participant_id",
    "session_id",
    "modality",
    "file",
    "manufacturer",
    "model",
    "field_strength_t",
    "acquisition_type",
    "voxel_size_mm",
    "slice_thickness_mm",
    "status",
    "issues",
    "scanner_changed",
    "protocol_changed",
    "changes",
)


def acquisition(image: str | os.PathLike[str], sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """Scanner and protocol parameters of one acquisition: sidecar fields and the header's voxel size.
    The acquisition type is MRAcquisitionType, else inferred (2D when the slices are over 1.5x thicker
    than the in-plane voxels)."""
    try:
        zooms = tuple(float(z) for z in nib.load(str(image)).header.get_zooms()[:3])
    except Exception as exc:
        raise MsqmriInputError(image, f"cannot read the NIfTI header ({exc})") from None
    inplane, through = sorted(zooms)[:2], max(zooms)
    kind = sidecar.get("MRAcquisitionType")
    inferred = kind not in ("2D", "3D")
    if inferred:
        kind = "2D" if through > 1.5 * max(inplane) else "3D"
    return {
        **{key: sidecar.get(key) for key in SCANNER_KEYS + PROTOCOL_KEYS[:-1]},
        "MRAcquisitionType": kind,
        "acquisition_type_inferred": inferred,
        "voxel_size_mm": tuple(round(z, 3) for z in zooms),
        "slice_thickness_mm": float(sidecar.get("SliceThickness") or through),
        "inplane_mm": tuple(inplane),
    }


def issues(acq: Mapping[str, Any]) -> tuple[str, list[str]]:
    """("pass" | "fail" | "unknown", reasons) of one acquisition against the consensus requirements."""
    problems, unknown = [], []
    field = acq.get("MagneticFieldStrength")
    if field is None:
        unknown.append("MagneticFieldStrength not in sidecar")
    elif float(field) < MIN_FIELD_T:
        problems.append(f"field strength {float(field):g} T < {MIN_FIELD_T} T")
    if acq["MRAcquisitionType"] == "2D":
        if acq["slice_thickness_mm"] > MAX_SLICE_2D_MM + TOLERANCE_MM:
            problems.append(f"2D slice thickness {acq['slice_thickness_mm']:g} mm > {MAX_SLICE_2D_MM:g} mm")
        if max(acq["inplane_mm"]) > MAX_INPLANE_MM + TOLERANCE_MM:
            problems.append("2D in-plane resolution " + "x".join(f"{z:g}" for z in acq["inplane_mm"]) + " mm > 1x1 mm")
    elif max(acq["voxel_size_mm"]) > MAX_VOXEL_3D_MM + TOLERANCE_MM:
        problems.append("3D voxel " + "x".join(f"{z:g}" for z in acq["voxel_size_mm"]) + " mm is not 1 mm isotropic")
    if acq.get("acquisition_type_inferred"):
        unknown.append(f"MRAcquisitionType not in sidecar (taken as {acq['MRAcquisitionType']})")
    status = "fail" if problems else "unknown" if any("MagneticField" in u for u in unknown) else "pass"
    return status, problems + unknown


def _differences(previous: Mapping[str, Any], current: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    changed = []
    for key in keys:
        a, b = previous.get(key), current.get(key)
        same = a == b or (isinstance(a, float | int) and isinstance(b, float | int) and np.isclose(a, b, rtol=1e-3))
        if not same:
            changed.append(f"{key} {a} -> {b}")
    return changed


def compliance_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """protocol_compliance.tsv from records (participant_id, session_id, modality, file and
    :func:`acquisition` fields), each subject's sessions in time order: one row per acquisition, with
    its status and any scanner/protocol change since the subject's previous session (same modality)."""
    rows, last = [], {}
    for record in records:
        status, reasons = issues(record)
        key = (record["participant_id"], record["modality"])
        previous = last.get(key)
        scanner = _differences(previous, record, SCANNER_KEYS) if previous else []
        protocol = _differences(previous, record, PROTOCOL_KEYS) if previous else []
        last[key] = record
        rows.append(
            {
                "participant_id": record["participant_id"],
                "session_id": record["session_id"],
                "modality": record["modality"],
                "file": record["file"],
                "manufacturer": record.get("Manufacturer"),
                "model": record.get("ManufacturersModelName"),
                "field_strength_t": record.get("MagneticFieldStrength"),
                "acquisition_type": record["MRAcquisitionType"],
                "voxel_size_mm": "x".join(f"{z:g}" for z in record["voxel_size_mm"]),
                "slice_thickness_mm": record["slice_thickness_mm"],
                "status": status,
                "issues": "; ".join(reasons) or None,
                "scanner_changed": bool(scanner),
                "protocol_changed": bool(protocol),
                "changes": "; ".join(scanner + protocol) or None,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compliance_from_files(acquisitions: Sequence[Mapping[str, str | None]]) -> pd.DataFrame:
    """:func:`compliance_table` from (participant_id, session_id, modality, image, sidecar) records;
    the sidecar may be None (then every sidecar field is unknown)."""
    records = []
    for item in acquisitions:
        sidecar = load_json(item["sidecar"]) if item.get("sidecar") else {}
        records.append(
            {
                "participant_id": item["participant_id"],
                "session_id": item["session_id"],
                "modality": item["modality"],
                "file": Path(str(item["image"])).name,
                **acquisition(str(item["image"]), sidecar),
            }
        )
    return compliance_table(records)


def write_compliance(
    inputs: Mapping[str, Any], outputs: Mapping[str, str], acquisitions: Sequence[Mapping[str, str | None]]
) -> None:
    """The ``protocol_compliance`` step: :func:`compliance_from_files` as group/protocol_compliance.tsv."""
    save_tsv(compliance_from_files(acquisitions), outputs["table"])
