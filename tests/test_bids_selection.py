"""Input selection on the layouts MS studies write: several runs and acquisitions, post-contrast T1w,
2D/3D FLAIR, AP/PA DWI, inherited sidecars and gradient tables, dates in scans.tsv or sidecars,
MP2RAGE, part-mag, binned ages; and the cases the rules cannot resolve."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image, write_json, write_tsv

from msqmri.core.io import MsqmriInputError
from msqmri.inputs.bids import discover, read_age

ANAT = "sub-01/ses-01/anat/sub-01_ses-01"
DWI = "sub-01/ses-01/dwi/sub-01_ses-01"


def _images(root: Path, names: dict[str, float]) -> Path:
    """Images named ``ANAT_<name>.nii.gz`` (or full relative paths) with isotropic voxels of the given size (mm)."""
    for name, size in names.items():
        relative = name if "/" in name else f"{ANAT}_{name}.nii.gz"
        write_image(root / relative, (8, 8, 8), affine=np.diag([size, size, size, 1.0]))
    return root


def _only(root: Path, **kwargs):
    dataset = discover(root, **kwargs)
    assert dataset.unusable == (), dataset.unusable
    (session,) = dataset.sessions()
    return session


def test_two_runs_take_the_last_unless_pinned(tmp_path: Path) -> None:
    root = _images(tmp_path, {"run-01_T1w": 1.0, "run-02_T1w": 1.0})
    session = _only(root)
    assert session.t1w.name == "sub-01_ses-01_run-02_T1w.nii.gz"
    assert ("t1w", session.t1w.name, "last run of 2") in session.selection
    assert _only(root, filters={"t1w": {"run": "01"}}).t1w.name == "sub-01_ses-01_run-01_T1w.nii.gz"


def test_acquisitions_choose_3d_then_the_smallest_voxel(tmp_path: Path) -> None:
    root = _images(tmp_path, {"acq-2D_FLAIR": 0.5, "acq-3D_FLAIR": 1.0, "acq-lowres_T1w": 1.3, "acq-mprage_T1w": 1.0})
    session = _only(root)
    assert session.flair.name.endswith("acq-3D_FLAIR.nii.gz") and session.t1w.name.endswith("acq-mprage_T1w.nii.gz")
    rules = {role: rule for role, _, rule in session.selection}
    assert rules == {"flair": "3D before 2D of 2", "t1w": "smallest voxel of 2"}
    # the sidecar's MRAcquisitionType outranks the label
    write_json(root / f"{ANAT}_acq-3D_FLAIR.json", {"MRAcquisitionType": "2D"})
    write_json(root / f"{ANAT}_acq-2D_FLAIR.json", {"MRAcquisitionType": "3D"})
    assert _only(root).flair.name.endswith("acq-2D_FLAIR.nii.gz")


def test_post_contrast_t1w_is_its_own_role(tmp_path: Path) -> None:
    root = _images(tmp_path, {"T1w": 1.0, "ce-gadolinium_T1w": 0.8})
    session = _only(root)
    assert session.t1w.name == "sub-01_ses-01_T1w.nii.gz"  # never the post-contrast one, finer as it is
    assert session.t1w_ce.name == "sub-01_ses-01_ce-gadolinium_T1w.nii.gz"
    assert session.t1w_ce in session.files()


def test_a_post_contrast_only_session_is_dropped_with_its_reason(tmp_path: Path) -> None:
    root = _images(tmp_path, {"ce-gadolinium_T1w": 1.0, "sub-01/ses-02/anat/sub-01_ses-02_T1w.nii.gz": 1.0})
    dataset = discover(root)
    assert [s.session for s in dataset.sessions()] == ["02"]
    (unusable,) = dataset.unusable
    assert str(unusable).startswith("sub-01 ses-01: only a post-contrast T1w (sub-01_ses-01_ce-gadolinium_T1w.nii.gz)")
    assert "\n" not in str(unusable)


def test_mp2rage_unit1_and_part_mag(tmp_path: Path) -> None:
    root = _images(tmp_path, {"UNIT1": 1.0, "inv-1_MP2RAGE": 1.0, "inv-2_MP2RAGE": 1.0})
    assert _only(root).t1w.name == "sub-01_ses-01_UNIT1.nii.gz"
    _images(root, {"part-mag_T1w": 1.0, "part-phase_T1w": 1.0})
    session = _only(root)
    assert session.t1w.name == "sub-01_ses-01_part-mag_T1w.nii.gz"  # the plain suffix before UNIT1; never the phase
    assert ("t1w", session.t1w.name, "suffix of 2") in session.selection


def test_tied_candidates_take_the_first_by_name_with_a_warning(tmp_path: Path) -> None:
    root = _images(tmp_path, {"acq-b_T1w": 1.0, "acq-a_T1w": 1.0})
    dataset = discover(root)
    (session,) = dataset.sessions()
    assert session.t1w.name == "sub-01_ses-01_acq-a_T1w.nii.gz"
    assert ("t1w", session.t1w.name, "first by name of 2 tied") in session.selection
    (warning,) = dataset.warnings
    assert warning.startswith("sub-01 ses-01: t1w: 2 candidates the selection rules cannot tell apart")
    assert "acq-a_T1w" in warning and "acq-b_T1w" in warning and "inputs:" in warning
    assert _only(root, filters={"t1w": {"acq": "b"}}).t1w.name.endswith("acq-b_T1w.nii.gz")


def test_a_filter_no_image_matches_drops_the_session_with_its_reason(tmp_path: Path) -> None:
    root = _images(tmp_path, {"acq-spgr_T1w": 1.0, "sub-01/ses-02/anat/sub-01_ses-02_acq-mprage_T1w.nii.gz": 1.0})
    dataset = discover(root, filters={"t1w": {"acq": "mprage"}})
    assert [s.session for s in dataset.sessions()] == ["02"]
    (unusable,) = dataset.unusable
    assert "no T1w image matching the config's inputs t1w acq-mprage" in str(unusable)
    assert "sub-01_ses-01_acq-spgr_T1w.nii.gz" in str(unusable)


def test_unknown_filter_role_is_one_line(tmp_path: Path) -> None:

    with pytest.raises(MsqmriInputError, match="unknown role"):
        discover(_images(tmp_path, {"T1w": 1.0}), filters={"bold": {"task": "rest"}})


def _dwi(root: Path, direction: str, bvals: list[int] | None) -> None:
    write_image(root / f"{DWI}_dir-{direction}_dwi.nii.gz", (6, 6, 6, max(len(bvals or []), 2)))
    if bvals is not None:
        (root / f"{DWI}_dir-{direction}_dwi.bval").write_text(" ".join(map(str, bvals)) + "\n")
        (root / f"{DWI}_dir-{direction}_dwi.bvec").write_text("\n".join(" ".join(["1"] * len(bvals)) for _ in range(3)))


def test_ap_pa_dwi_takes_the_weighted_series_and_records_the_reverse(tmp_path: Path) -> None:
    root = _images(tmp_path, {"T1w": 1.0})
    _dwi(root, "AP", [0, 1000, 1000, 1000])
    _dwi(root, "PA", [0, 0])
    session = _only(root)
    assert session.dwi.image.name == "sub-01_ses-01_dir-AP_dwi.nii.gz"
    assert session.dwi.reverse.name == "sub-01_ses-01_dir-PA_dwi.nii.gz"
    assert session.dwi.bval.name == "sub-01_ses-01_dir-AP_dwi.bval"


def test_a_b0_series_of_the_same_phase_encoding_is_merged_the_reverse_one_recorded(tmp_path: Path) -> None:
    """Phase encoding from the ``dir`` labels, unless the sidecars say otherwise."""
    root = _images(tmp_path, {"T1w": 1.0})
    _dwi(root, "AP", [0, 1000, 1000, 1000])
    _dwi(root, "PA", [0, 0])
    b0 = root / f"{DWI}_acq-b0_dir-AP_dwi"
    write_image(Path(f"{b0}.nii.gz"), (6, 6, 6, 3))
    Path(f"{b0}.bval").write_text("0 0 5\n")
    Path(f"{b0}.bvec").write_text("0 0 0\n0 0 0\n0 0 0\n")
    session = _only(root)
    assert [p.name for p in session.dwi.b0_series] == ["sub-01_ses-01_acq-b0_dir-AP_dwi.nii.gz"]
    assert session.dwi.reverse.name == "sub-01_ses-01_dir-PA_dwi.nii.gz"
    assert (
        "dwi_b0",
        "sub-01_ses-01_acq-b0_dir-AP_dwi.nii.gz",
        "b=0 series with the same phase encoding: merged",
    ) in session.selection
    assert Path(f"{b0}.nii.gz") in session.files()
    write_json(root / f"{DWI}_dir-AP_dwi.json", {"PhaseEncodingDirection": "j-"})
    write_json(Path(f"{b0}.json"), {"PhaseEncodingDirection": "j"})  # the label was wrong: the scanner says j
    assert _only(root).dwi.b0_series == ()


def test_gradient_tables_and_sidecars_are_inherited(tmp_path: Path) -> None:
    root = _images(tmp_path, {"T1w": 1.0})
    write_image(root / f"{DWI}_dwi.nii.gz", (6, 6, 6, 3))
    (root / "dwi.bval").write_text("0 1000 1000\n")  # dataset level, as in bids-examples ds114
    (root / "dwi.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n")
    write_json(root / "T1w.json", {"MRAcquisitionType": "3D", "AcquisitionDateTime": "2020-01-01T08:00:00"})
    write_json(root / "sub-01" / "sub-01_T1w.json", {"AcquisitionDateTime": "2021-03-04T10:00:00"})  # nearer
    session = _only(root)
    assert session.dwi.bval == root / "dwi.bval" and session.dwi.bvec == root / "dwi.bvec"
    assert session.sidecar(session.t1w) == root / "sub-01" / "sub-01_T1w.json"
    assert (session.acq_time, session.acq_time_source) == (datetime(2021, 3, 4, 10), "sidecar")
    # a sidecar of another acquisition does not apply
    write_json(root / "sub-01" / "sub-01_acq-other_T1w.json", {"AcquisitionDateTime": "1999-01-01T00:00:00"})
    assert _only(root).acq_time == datetime(2021, 3, 4, 10)


def test_dwi_without_gradients_at_any_level_is_skipped_with_one_warning(tmp_path: Path) -> None:
    root = _images(tmp_path, {"T1w": 1.0})
    write_image(root / f"{DWI}_dwi.nii.gz", (6, 6, 6, 3))
    dataset = discover(root)
    (session,) = dataset.sessions()
    assert session.dwi is None
    (warning,) = dataset.warnings
    assert warning.startswith("sub-01 ses-01: ") and "sub-01_ses-01_dwi.nii.gz: no .bval at any level" in warning


def test_dates_from_scans_tsv_then_sessions_tsv(tmp_path: Path) -> None:
    root = _images(tmp_path, {"T1w": 1.0})
    write_tsv(
        root / "sub-01/ses-01/sub-01_ses-01_scans.tsv",
        ["filename", "acq_time"],
        [["anat/sub-01_ses-01_T1w.nii.gz", "2019-06-01T09:30:00"], ["func/sub-01_ses-01_bold.nii.gz", "2000-01-01"]],
    )
    session = _only(root)
    assert (session.acq_time, session.acq_time_source) == (datetime(2019, 6, 1, 9, 30), "scans.tsv")
    write_tsv(root / "sub-01/sub-01_sessions.tsv", ["session_id", "acq_time"], [["ses-01", "2019-06-02"]])
    session = _only(root)
    assert (session.acq_time, session.acq_time_source) == (datetime(2019, 6, 2), "sessions.tsv")


@pytest.mark.parametrize(
    ("value", "age", "note"),
    [
        ("41", 41.0, None),
        ("89+", 89.0, "top-coded 89+"),
        ("35-40", 37.5, "bin 35-40"),
        ("n/a", None, None),
        ("old", None, "not a number: old"),
    ],
)
def test_ages_that_are_not_plain_numbers(value: str, age: float | None, note: str | None) -> None:
    assert read_age(value) == (age, note)


def test_binned_ages_never_stop_discovery(tmp_path: Path) -> None:
    root = _images(tmp_path, {"T1w": 1.0, "sub-02/anat/sub-02_T1w.nii.gz": 1.0, "sub-03/anat/sub-03_T1w.nii.gz": 1.0})
    write_tsv(
        root / "participants.tsv", ["participant_id", "age"], [["sub-01", "89+"], ["sub-02", "35-40"], ["sub-03", "7"]]
    )
    dataset = discover(root)
    assert [(s.age, s.age_note) for s in dataset.subjects] == [
        (89.0, "top-coded 89+"),
        (37.5, "bin 35-40"),
        (7.0, None),
    ]
    (warning,) = dataset.warnings
    assert "participants.tsv: column age: 2 value(s) not plain numbers" in warning


def test_selection_is_recorded_in_the_input_check(tmp_path: Path) -> None:
    from msqmri.inputs.checks import check_session

    root = _images(tmp_path, {"run-1_T1w": 1.0, "run-2_T1w": 1.0, "ce-gadolinium_T1w": 1.0})
    report = check_session(_only(root))
    assert report["selection"]["t1w"] == {"file": "sub-01_ses-01_run-2_T1w.nii.gz", "rule": "last run of 2"}
    assert report["T1w_ce"]["file"] == "sub-01_ses-01_ce-gadolinium_T1w.nii.gz"
    json.dumps(report)


CLINICAL = ["session_id", "acq_time", "treatment_start", "relapses", "edss", "treatment"]


def _sessions(root: Path, rows: list[list[str]]) -> Path:
    for row in rows:
        _images(root, {f"sub-01/{row[0]}/anat/sub-01_{row[0]}_T1w.nii.gz": 1.0})
    write_tsv(root / "sub-01/sub-01_sessions.tsv", CLINICAL, rows)
    return root


def test_clinical_columns_and_the_reference_scan_of_a_treatment(tmp_path: Path) -> None:
    """The reference (rebaseline) scan is the first session at least 6 months after the treatment start; the pairs
    then include it -> every later session."""
    from msqmri.inputs.bids import session_pairs

    root = _sessions(tmp_path, [
        ["ses-01", "2020-01-10", "2020-02-01", "n/a", "2.0", "n/a"],
        ["ses-02", "2020-07-15", "2020-02-01", "0", "2.0", "dimethyl fumarate"],
        ["ses-03", "2020-08-20", "2020-02-01", "1", "2.5", "dimethyl fumarate"],
        ["ses-04", "2021-02-20", "2020-02-01", "0", "2.5", "dimethyl fumarate"],
        ["ses-05", "2021-08-20", "2020-02-01", "0", "3.0", "dimethyl fumarate"],
    ])  # fmt: skip
    sessions = discover(root).subjects[0].sessions
    assert [s.rebaseline for s in sessions] == [False, False, True, False, False]  # 5.5 months is too soon
    assert [(s.relapses, s.edss) for s in sessions][:3] == [(None, 2.0), (0, 2.0), (1, 2.5)]
    assert sessions[1].treatment == "dimethyl fumarate" and sessions[0].treatment is None
    pairs = {(a.session, b.session) for a, b in session_pairs(sessions)}
    assert {("03", "05"), ("01", "05"), ("04", "05")} <= pairs and ("02", "04") not in pairs
    later = discover(root, rebaseline_months=12).subjects[0].sessions
    assert [s.rebaseline for s in later] == [False, False, False, True, False]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [("edss", "4,5", "edss '4,5' is not an EDSS score (0 to 10 in steps of 0.5)"),
     ("edss", "4.3", "edss '4.3' is not an EDSS score"), ("edss", "11", "edss '11' is not an EDSS score"),
     ("relapses", "-1", "relapses '-1' is not a count (a whole number >= 0)"),
     ("relapses", "two", "relapses 'two' is not a count")],
)  # fmt: skip
def test_bad_clinical_values_are_one_line_naming_the_file_and_row(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    row = ["ses-02", "2020-07-15", "2020-02-01", "0", "2.0", "n/a"]
    row[CLINICAL.index(column)] = value
    root = _sessions(tmp_path, [["ses-01", "2020-01-10", "n/a", "n/a", "2.0", "n/a"], row])
    with pytest.raises(MsqmriInputError) as info:
        discover(root)
    message = str(info.value)
    assert message.startswith(f"{root / 'sub-01/sub-01_sessions.tsv'}: line 3: ") and "\n" not in message
    assert reason in message


def test_a_treatment_start_after_every_session_is_one_line(tmp_path: Path) -> None:
    rows = [
        ["ses-01", "2020-01-10", "n/a", "n/a", "n/a", "n/a"],
        ["ses-02", "2020-07-15", "2021-03-01", "0", "2.0", "n/a"],
    ]
    root = _sessions(tmp_path, rows)
    expected = r"sub-01_sessions.tsv: line 3: treatment_start 2021-03-01 is after every session \(2020-07-15\)$"
    with pytest.raises(MsqmriInputError, match=expected):
        discover(root)
