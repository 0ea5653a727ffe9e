"""MAGNIMS monitoring flags and protocol compliance on small known tables."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from msqmri.cohort.monitoring import pair_flags
from msqmri.cohort.protocol import acquisition, compliance_from_files, compliance_table, issues
from msqmri.core.io import save_json


def _sessions(times, treatment=None):
    rows = [
        {
            "participant_id": "sub-01",
            "session_id": f"ses-0{k + 1}",
            "acq_time": t,
            "treatment_start": treatment if k == 0 else None,
        }
        for k, t in enumerate(times)
    ]
    return pd.DataFrame(rows)


def _pair(a, b, pbvc_per_year, n_new=0, n_enlarging=0, method="siena"):
    keys = {"participant_id": "sub-01", "session_from": f"ses-0{a}", "session_to": f"ses-0{b}"}
    return (
        {**keys, "interval_days": 1.0, "pbvc": pbvc_per_year, "pbvc_per_year": pbvc_per_year, "method": method},
        {
            **keys,
            "n_new": n_new,
            "n_enlarging": n_enlarging,
            "n_shrinking": 0,
            "n_resolved": 0,
            "n_stable": 2,
            "new_volume_ml": 0.0,
        },
    )


def test_flags_follow_the_guideline():
    sessions = _sessions(["2021-01-01", "2021-02-15", "2022-06-01"])  # 1.5 and 15.5 months apart
    made = [_pair(1, 2, -0.2), _pair(2, 3, -0.5, n_enlarging=1), _pair(1, 3, -0.45, n_new=2)]
    pbvc = pd.DataFrame([p for p, _ in made] + [{**made[0][0], "method": "jacobian", "pbvc_per_year": -0.9}])
    flags = pair_flags(pbvc, pd.DataFrame([a for _, a in made]), sessions).set_index(["session_from", "session_to"])
    first, second, baseline = (
        flags.loc[("ses-01", "ses-02")],
        flags.loc[("ses-02", "ses-03")],
        flags.loc[("ses-01", "ses-03")],
    )
    assert first["pbvc_method"] == "siena" and not first["atrophy_beyond_cutoff"]  # siena preferred over jacobian
    assert first["interval_outside_3_12_months"] and second["interval_outside_3_12_months"]
    assert (
        second["new_or_enlarging_lesions"] and second["atrophy_beyond_cutoff"] and not second["pseudo_atrophy_caution"]
    )
    assert baseline["pair_type"] == "baseline" and pd.isna(baseline["interval_outside_3_12_months"])
    assert baseline["new_or_enlarging_lesions"] and "PBVC beyond -0.37 %/y" in baseline["flags"]
    assert not first["new_or_enlarging_lesions"] and "new/enlarging" not in (first["flags"] or "")


def test_pseudo_atrophy_caution_within_12_months_of_treatment_start():
    made = [_pair(1, 2, -0.8)]
    pbvc, activity = pd.DataFrame([made[0][0]]), pd.DataFrame([made[0][1]])
    for treatment, expected in (("2020-09-01", True), ("2021-03-01", True), ("2019-06-01", False), (None, False)):
        sessions = _sessions(["2021-01-01", "2021-09-01"], treatment)
        row = pair_flags(pbvc, activity, sessions).iloc[0]
        assert row["pseudo_atrophy_caution"] == expected, treatment
        assert row["atrophy_beyond_cutoff"] and ("pseudo-atrophy" in row["flags"]) == expected


def test_protocol_change_flags_the_pair():
    sessions = _sessions(["2021-01-01", "2021-07-01"])
    made = [_pair(1, 2, -0.1)]
    compliance = pd.DataFrame(
        [
            {
                "participant_id": "sub-01",
                "session_id": "ses-01",
                "modality": "T1w",
                "scanner_changed": False,
                "protocol_changed": False,
            },
            {
                "participant_id": "sub-01",
                "session_id": "ses-02",
                "modality": "T1w",
                "scanner_changed": True,
                "protocol_changed": False,
            },
        ]
    )
    row = pair_flags(pd.DataFrame([made[0][0]]), pd.DataFrame([made[0][1]]), sessions, compliance).iloc[0]
    assert row["protocol_changed"] and "unreliable" in row["flags"]


def _image(path, zooms):
    affine = np.diag([*zooms, 1.0])
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), affine), path)
    return path


def test_protocol_requirements(tmp_path):
    iso = _image(tmp_path / "a_T1w.nii.gz", (1.0, 1.0, 1.0))
    thick = _image(tmp_path / "b_FLAIR.nii.gz", (0.9, 0.9, 5.0))
    coarse = _image(tmp_path / "c_T1w.nii.gz", (1.2, 1.2, 1.2))
    assert issues(acquisition(iso, {"MagneticFieldStrength": 3, "MRAcquisitionType": "3D"})) == ("pass", [])
    status, reasons = issues(acquisition(thick, {"MagneticFieldStrength": 1.0}))
    assert (
        status == "fail" and any("1 T < 1.5" in r for r in reasons) and any("slice thickness 5" in r for r in reasons)
    )
    assert any("taken as 2D" in r for r in reasons)  # inferred from the voxel shape
    status, reasons = issues(acquisition(coarse, {"MagneticFieldStrength": 3, "MRAcquisitionType": "3D"}))
    assert status == "fail" and "not 1 mm isotropic" in reasons[0]
    assert issues(acquisition(iso, {}))[0] == "unknown"


def test_compliance_table_flags_scanner_and_protocol_changes(tmp_path):
    image = _image(tmp_path / "t1.nii.gz", (1.0, 1.0, 1.0))
    scanners = [("A", 3.0, 2.3), ("A", 3.0, 2.3), ("A", 3.0, 2.0), ("B", 1.5, 2.0)]
    items = []
    for k, (maker, field, tr) in enumerate(scanners, start=1):
        sidecar = tmp_path / f"s{k}.json"
        save_json(
            {"Manufacturer": maker, "MagneticFieldStrength": field, "RepetitionTime": tr, "MRAcquisitionType": "3D"},
            sidecar,
        )
        items.append(
            {
                "participant_id": "sub-01",
                "session_id": f"ses-0{k}",
                "modality": "T1w",
                "image": image,
                "sidecar": sidecar,
            }
        )
    items.append(
        {"participant_id": "sub-02", "session_id": "ses-01", "modality": "T1w", "image": image, "sidecar": None}
    )
    table = compliance_from_files(items)
    assert table["scanner_changed"].tolist() == [False, False, False, True, False]
    assert table["protocol_changed"].tolist() == [False, False, True, False, False]
    assert "Manufacturer A -> B" in table["changes"][3] and table["status"].tolist()[-1] == "unknown"
    assert compliance_table([]).empty


def test_interval_tolerance_rebaseline_pairs_and_enhancing_lesions():
    """An annual follow-up at 371 days is on schedule (31 days of tolerance), at 400 it is not; a pair from a
    treatment's reference scan to a later one is a rebaseline pair; CELs on the later scan are flagged."""
    times = ["2021-01-01", "2022-01-07", "2023-02-11", "2023-08-01"]
    sessions = _sessions(times).assign(rebaseline=[False, True, False, False])
    made = [_pair(1, 2, -0.2), _pair(2, 3, -0.2), _pair(1, 3, -0.2), _pair(2, 4, -0.2)]
    counts = pd.DataFrame(
        {
            "participant_id": "sub-01",
            "session_id": ["ses-01", "ses-02", "ses-03", "ses-04"],
            "n_cel": [None, 0, 2, None],
        }
    )
    pbvc, activity = pd.DataFrame([p for p, _ in made]), pd.DataFrame([a for _, a in made])
    flags = pair_flags(pbvc, activity, sessions, counts=counts).set_index(["session_from", "session_to"])
    assert not flags.loc[("ses-01", "ses-02"), "interval_outside_3_12_months"]  # 371 days
    assert flags.loc[("ses-02", "ses-03"), "interval_outside_3_12_months"]  # 400 days
    strict = pair_flags(pbvc, activity, sessions, tolerance_days=0).set_index(["session_from", "session_to"])
    assert strict.loc[("ses-01", "ses-02"), "interval_outside_3_12_months"]
    types = flags["pair_type"].to_dict()
    assert types[("ses-01", "ses-03")] == "baseline" and types[("ses-02", "ses-04")] == "rebaseline"
    assert types[("ses-02", "ses-03")] == "consecutive"
    cel = flags.loc[("ses-02", "ses-03")]
    assert cel["n_cel"] == 2 and "contrast-enhancing lesions" in cel["flags"]
    quiet = flags.loc[("ses-01", "ses-02")]
    assert quiet["n_cel"] == 0 and "contrast" not in (quiet["flags"] or "")
