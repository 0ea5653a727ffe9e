"""Discovery and the DAG on the public bids-examples corpus (tests/data/bids-examples, names and sidecars only).

Every session that holds an anatomical T1w or UNIT1 gets a structural job (``--dry-run``), and no dataset
ends in a traceback or a Snakemake exception. The sessions expected are read from the file names here,
independently of :mod:`msqmri.inputs.bids`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from workflow_helpers import msqmri

CORPUS = Path(__file__).parent / "data" / "bids-examples"
DATASETS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
_T1W = re.compile(r"sub-([a-zA-Z0-9]+)(?:_ses-([a-zA-Z0-9]+))?_(?:[a-zA-Z0-9]+-[a-zA-Z0-9]+_)*(T1w|UNIT1)\.nii(\.gz)?")


def sessions_with_a_t1w(dataset: Path) -> set[tuple[str, str | None]]:
    """(subject, session) of every anat/ folder holding a T1w or UNIT1 image that is not post-contrast, a phase
    image or a derivative (``space-``)."""
    found = set()
    for path in dataset.glob("sub-*/**/anat/*"):
        match = _T1W.fullmatch(path.name)
        if match and not re.search(r"_(ce|space)-|_part-phase", path.name):
            found.add((match.group(1), match.group(2)))
    return found


def test_the_corpus_is_the_one_the_readme_names() -> None:
    assert len(DATASETS) == 43
    assert sum(len(sessions_with_a_t1w(CORPUS / d)) for d in DATASETS) == 443


@pytest.mark.parametrize("name", DATASETS)
def test_every_t1w_session_gets_a_structural_job(name: str, tmp_path: Path) -> None:
    expected = sessions_with_a_t1w(CORPUS / name)
    dry = msqmri(CORPUS / name, tmp_path / "out", "participant", "--dry-run", cwd=tmp_path)
    text = dry.stdout + dry.stderr
    assert "Traceback" not in text and "Exception" not in text, text[-2000:]
    if not expected:  # nothing msqmri can use: one line saying so
        assert dry.returncode != 0 and len(dry.stderr.strip().splitlines()) <= 3, dry.stderr
        return
    assert dry.returncode == 0, text[-2000:]
    jobs = re.search(r"^structural\s+(\d+)$", dry.stdout, re.M)
    assert jobs is not None and int(jobs.group(1)) == len(expected), text[-2000:]
    for subject, session in expected:
        prefix = (
            f"sub-{subject}/anat/sub-{subject}"
            if session is None
            else (f"sub-{subject}/ses-{session}/anat/sub-{subject}_ses-{session}")
        )
        assert f"{prefix}_desc-brain_mask.nii.gz" in dry.stdout, (subject, session)
