"""Shared fixtures: a tiny BIDS dataset written with nibabel (T1w from a 4 mm phantom head)."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from msqmri.core.io import private_tempdir

# ANTs/ITK single-threaded, before anything imports ants: the workflow's default (itk_threads: 1),
# under which registrations give the same numbers on every run
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")

SHAPE = (16, 16, 12)
N_DWI = 7


#: the longest test files (minutes each), started first under ``-n 2 --dist loadfile`` so that the two
#: workers finish together; the rest fill in behind them
LONGEST_FILES = ("test_demo.py", "test_lesion_detection.py", "test_workflow_plain.py", "test_workflow.py")


def pytest_configure(config: pytest.Config) -> None:
    """Keep the collection order when distributing files (xdist would start the files with the most tests first)."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.fixture(autouse=True, scope="session")
def _private_tempdir() -> Iterator[str]:
    """The library's in-process ANTs calls (registrations, Atropos) write their files into a directory removed
    at the end of the session, as each workflow job's do (antspyx never deletes them)."""
    with private_tempdir() as path:
        yield path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, the others in their usual order."""
    items.sort(
        key=lambda item: LONGEST_FILES.index(item.path.name) if item.path.name in LONGEST_FILES else len(LONGEST_FILES)
    )


def write_image(path: Path, shape: tuple[int, ...] = SHAPE, *, seed: int = 0, affine: np.ndarray | None = None) -> Path:
    """A random image with a bright ellipsoid 'head' (so a foreground exists) at ``path``."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape[:3]).astype(float)
    centre = (np.array(shape[:3]) - 1) / 2
    radius = np.array(shape[:3]) / 3
    head = (((grid - centre[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(0) < 1
    data = rng.normal(10, 3, size=shape) + 100 * (head if len(shape) == 3 else head[..., None])
    affine = np.diag([2.0, 2.0, 2.5, 1.0]) if affine is None else affine
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    return path


@functools.lru_cache(maxsize=1)
def phantom_head() -> np.ndarray:
    """T1w voxels of a 4 mm synthetic head (RAS order), built once per test process."""
    from msqmri.phantom import CohortSpec, generate_cohort

    spec = CohortSpec(
        n_subjects=1, n_sessions=1, resolution=4.0, modalities=("T1w",), lesions=False, orientations=("RAS",), seed=2
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_cohort(tmp, spec)
        return np.asarray(nib.load(str(root / "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz")).dataobj, np.float32)


def write_t1w(path: Path, *, flip_x: bool = False) -> Path:
    """A realistic T1w head at ``path`` (4 mm; stored LAS when ``flip_x``), so structural stages can run."""
    data = phantom_head()
    affine = np.diag([-4.0 if flip_x else 4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -np.diag(affine)[:3] * (np.array(data.shape) - 1) / 2
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def write_lesion(path: Path, centre_mm: tuple[float, float, float] = (16.0, 6.0, -4.0), radius_mm: float = 4.5) -> Path:
    """A small spherical lesion (about 9 voxels of 4 mm) in the white matter of the 4 mm head's grid."""
    shape = phantom_head().shape
    affine = head_affine(shape)
    world = np.indices(shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3]
    inside = (np.linalg.norm(world - np.array(centre_mm), axis=1) <= radius_mm).reshape(shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(inside.astype(np.uint8), affine), str(path))
    return path


def write_dwi(stem: Path, n_volumes: int = N_DWI, head: nib.Nifti1Image | None = None) -> Path:
    """A small DWI series of the 4 mm phantom head (or of ``head``, e.g. a T1w: one b=0, then b=1000 along
    random directions, an anisotropic tensor along x) with its .bval/.bvec, at ``stem``_dwi.*."""
    rng = np.random.default_rng(5)
    b0 = phantom_head() if head is None else np.asarray(head.dataobj, np.float32)
    vectors = rng.normal(size=(3, n_volumes))
    vectors /= np.linalg.norm(vectors, axis=0)
    bvals = np.r_[0.0, np.full(n_volumes - 1, 1000.0)]
    adc = 0.4e-3 + 1.2e-3 * vectors[0] ** 2  # FSL x is world -x on this RAS grid; x^2 is the same
    data = b0[..., None] * np.exp(-bvals * adc) + rng.normal(0, 0.01 * b0.max(), (*b0.shape, n_volumes))
    affine = head_affine(b0.shape) if head is None else head.affine
    stem.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.abs(data).astype(np.float32), affine), f"{stem}_dwi.nii.gz")
    Path(f"{stem}_dwi.bval").write_text(" ".join(f"{b:g}" for b in bvals) + "\n")
    Path(f"{stem}_dwi.bvec").write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in vectors) + "\n")
    return Path(f"{stem}_dwi.nii.gz")


def head_affine(shape: tuple[int, ...]) -> np.ndarray:
    """The 4 mm RAS grid centred on the origin that the phantom head is written on."""
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -2.0 * (np.array(shape[:3]) - 1)
    return affine


def write_mt_pair(stem: Path, mtr: float = 40.0) -> None:
    """MT-off (the phantom head) and MT-on (MTR ``mtr`` pu everywhere) at ``stem``_mt-{on,off}_MTR.*."""
    off = phantom_head()
    stem.parent.mkdir(parents=True, exist_ok=True)
    for state, data in (("on", off * (1 - mtr / 100)), ("off", off)):
        nib.save(nib.Nifti1Image(data.astype(np.float32), head_affine(off.shape)), f"{stem}_mt-{state}_MTR.nii.gz")
        write_json(Path(f"{stem}_mt-{state}_MTR.json"), {"MTState": state == "on"})


def write_megre(stem: Path, echo_times: tuple[float, ...] = (0.005, 0.010, 0.015), r2star: float = 20.0) -> None:
    """Echo images of the phantom head decaying at ``r2star`` (1/s), with EchoTime sidecars."""
    s0 = phantom_head()
    for echo, te in enumerate(echo_times, start=1):
        path = Path(f"{stem}_echo-{echo}_MEGRE.nii.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image((s0 * np.exp(-r2star * te)).astype(np.float32), head_affine(s0.shape)), str(path))
        write_json(path.with_name(path.name.replace(".nii.gz", ".json")), {"EchoTime": te})


def write_json(path: Path, value: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    return path


def make_tiny_bids(root: Path) -> Path:
    """sub-01 with two sessions (ses-01 has every modality), sub-02 sessionless with a T1w only."""
    write_json(root / "dataset_description.json", {"Name": "tiny", "BIDSVersion": "1.10.0"})
    write_tsv(
        root / "participants.tsv",
        ["participant_id", "age", "sex", "site"],
        [["sub-01", "34", "F", "A"], ["sub-02", "n/a", "M", "B"]],
    )
    write_tsv(
        root / "sub-01" / "sub-01_sessions.tsv",
        ["session_id", "acq_time"],
        [["ses-01", "2020-01-15T09:00:00"], ["ses-02", "2021-01-20T09:00:00"]],
    )
    anat = root / "sub-01" / "ses-01" / "anat"
    write_t1w(anat / "sub-01_ses-01_T1w.nii.gz")
    write_t1w(anat / "sub-01_ses-01_FLAIR.nii.gz")  # a head image on the FLAIR's own grid
    write_mt_pair(anat / "sub-01_ses-01")
    write_megre(anat / "sub-01_ses-01")
    write_dwi(root / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01")
    lesions = root / "derivatives" / "lesions" / "sub-01" / "ses-01" / "anat"
    write_lesion(lesions / "sub-01_ses-01_space-FLAIR_label-lesion_mask.nii.gz")
    write_t1w(root / "sub-01" / "ses-02" / "anat" / "sub-01_ses-02_T1w.nii.gz")
    write_t1w(root / "sub-02" / "anat" / "sub-02_T1w.nii", flip_x=True)
    return root


@pytest.fixture
def tiny_bids(tmp_path: Path) -> Path:
    """A fresh tiny BIDS dataset (see :func:`make_tiny_bids`) in a temporary directory."""
    return make_tiny_bids(tmp_path / "bids")
