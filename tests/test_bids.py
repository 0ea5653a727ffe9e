"""discover(): sessions, modalities, ordering, pairs and one-line errors."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
from conftest import write_image, write_tsv

from msqmri.core.io import MsqmriInputError
from msqmri.inputs.bids import bids_prefix, discover, session_pairs


def test_discovers_sessions_and_modalities(tiny_bids: Path) -> None:
    dataset = discover(tiny_bids)
    assert [s.label for s in dataset.subjects] == ["01", "02"]
    sub01, sub02 = dataset.subjects
    assert [s.session for s in sub01.sessions] == ["01", "02"]
    full = sub01.sessions[0]
    assert full.flair and full.mt_on and full.mt_off and full.dwi and full.dwi.bval and full.dwi.bvec
    assert [echo.index for echo in full.megre] == [1, 2, 3]
    assert all(echo.sidecar is not None for echo in full.megre)
    assert full.lesion_mask_flair is not None and full.lesion_mask_t1w is None
    assert full.acq_time == datetime(2020, 1, 15, 9)
    assert len(full.files()) == 14
    assert (sub01.age, sub01.sex, sub01.site) == (34.0, "F", "A")
    assert sub02.age is None and sub02.sex == "M"
    assert dataset.unusable == ()


def test_sessionless_subject(tiny_bids: Path) -> None:
    (session,) = discover(tiny_bids, ["02"]).subjects[0].sessions
    assert session.session is None and session.session_id is None
    assert session.t1w.name == "sub-02_T1w.nii"
    assert session.label == "sub-02"


def test_participant_label_filter(tiny_bids: Path) -> None:
    assert [s.label for s in discover(tiny_bids, ["sub-01"]).subjects] == ["01"]
    with pytest.raises(MsqmriInputError, match="participant label"):
        discover(tiny_bids, ["03"])


def test_bids_prefix() -> None:
    assert bids_prefix("01", "01") == "sub-01/ses-01/anat/sub-01_ses-01"
    assert bids_prefix("01", None) == "sub-01/anat/sub-01"
    assert bids_prefix("01", "02", "dwi") == "sub-01/ses-02/dwi/sub-01_ses-02"
    assert bids_prefix("01", "02", None) == "sub-01/ses-02/sub-01_ses-02"


def _three_sessions(root: Path, times: list[str] | None) -> Path:
    for label in ("a", "b", "c"):
        write_image(root / "sub-01" / f"ses-{label}" / "anat" / f"sub-01_ses-{label}_T1w.nii.gz")
    if times is not None:
        rows = [[f"ses-{label}", t] for label, t in zip("abc", times, strict=True)]
        write_tsv(root / "sub-01" / "sub-01_sessions.tsv", ["session_id", "acq_time"], rows)
    return root


def test_sessions_ordered_by_acq_time(tmp_path: Path) -> None:
    root = _three_sessions(tmp_path, ["2021-05-01", "2019-05-01T08:00:00Z", "2020-05-01T10:00:00+02:00"])
    sessions = discover(root).subjects[0].sessions
    assert [s.session for s in sessions] == ["b", "c", "a"]
    pairs = [(a.session, b.session) for a, b in session_pairs(sessions)]
    assert pairs == [("b", "c"), ("b", "a"), ("c", "a")]


def test_sessions_ordered_by_label_without_times(tmp_path: Path) -> None:
    for label in ("10", "2", "1"):
        write_image(tmp_path / "sub-01" / f"ses-{label}" / "anat" / f"sub-01_ses-{label}_T1w.nii")
    sessions = discover(tmp_path).subjects[0].sessions
    assert [s.session for s in sessions] == ["1", "2", "10"]


def test_session_pairs_deduplicated(tmp_path: Path) -> None:
    sessions = discover(_three_sessions(tmp_path, None)).subjects[0].sessions
    assert len(session_pairs(sessions)) == 3
    assert session_pairs(sessions[:1]) == []
    four = (*sessions, sessions[-1])
    assert len(session_pairs(four)) == 5  # (0,1) (0,2) (0,3) (1,2) (2,3)


def test_bad_date_names_the_file(tmp_path: Path) -> None:
    root = _three_sessions(tmp_path, ["2021-05-01", "yesterday", "n/a"])
    with pytest.raises(MsqmriInputError) as info:
        discover(root)
    message = str(info.value)
    assert "sub-01_sessions.tsv" in message and "'yesterday'" in message and "\n" not in message


@pytest.mark.parametrize("name", ["sub-a b", "sub-01;rm", "sub-x_y"])
def test_bad_subject_label_names_the_path(tiny_bids: Path, name: str) -> None:
    (tiny_bids / name).mkdir()
    with pytest.raises(MsqmriInputError) as info:
        discover(tiny_bids)
    assert name in str(info.value) and "letters and digits" in str(info.value)


def test_missing_t1w_marks_session_unusable(tiny_bids: Path) -> None:
    (tiny_bids / "sub-01" / "ses-02" / "anat" / "sub-01_ses-02_T1w.nii.gz").unlink()
    dataset = discover(tiny_bids)
    assert [s.session for s in dataset.subjects[0].sessions] == ["01"]
    (unusable,) = dataset.unusable
    assert str(unusable).startswith("sub-01 ses-02: no T1w image")


def test_ambiguous_t1w_marks_session_unusable(tiny_bids: Path) -> None:
    write_image(tiny_bids / "sub-02" / "anat" / "sub-02_T1w.nii.gz")
    dataset = discover(tiny_bids)
    assert [s.label for s in dataset.subjects] == ["01"]
    assert "2 candidate T1w images" in str(dataset.unusable[0])


def test_treatment_start_is_read_and_checked(tmp_path: Path) -> None:
    root = _three_sessions(tmp_path, None)
    table = root / "sub-01" / "sub-01_sessions.tsv"
    rows = [["ses-a", "2021-01-01", "2020-11-01"], ["ses-b", "2021-06-01", "n/a"], ["ses-c", "2022-01-01", ""]]
    write_tsv(table, ["session_id", "acq_time", "treatment_start"], rows)
    sessions = discover(root).subjects[0].sessions
    assert [s.treatment_start.date().isoformat() if s.treatment_start else None for s in sessions] == [
        "2020-11-01",
        None,
        None,
    ]
    write_tsv(table, ["session_id", "acq_time", "treatment_start"], [["ses-a", "2021-01-01", "soon"]])
    with pytest.raises(MsqmriInputError, match="treatment_start 'soon'"):
        discover(root)


def test_outputs_are_written_atomically_with_usual_permissions(tmp_path: Path) -> None:
    from msqmri.core.io import save_text

    target = tmp_path / "out.txt"
    (tmp_path / ".out.txt.k2j4_x9a.tmp.txt").write_text("partial")  # left by an attempt that was SIGKILLed
    save_text("x", target)
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.read_text() == "x" and target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind
