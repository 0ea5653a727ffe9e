"""File I/O at the edges of the pipeline: validated NIfTI loading and atomic writes.

Every reader here turns a broken input into a :class:`MsqmriInputError` whose message is one
line naming the file and the reason; every writer writes to a temporary file beside the target
and renames it into place, so an interrupted run never leaves a partial output behind.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np


class MsqmriError(Exception):
    """An error the user can act on; its message is a single line."""


class MsqmriInputError(MsqmriError):
    """An input file is missing, unreadable or holds data that cannot be processed."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_nifti(
    path: str | os.PathLike[str],
    *,
    ndim: int | tuple[int, ...] = 3,
    allow_nonfinite: bool = False,
    allow_empty: bool = False,
) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Load a NIfTI image and its data as float32, validating it.

    Trailing singleton dimensions are dropped before checking ``ndim``. Raises
    :class:`MsqmriInputError` for a missing, truncated or corrupt file, the wrong number of
    dimensions, NaN/Inf voxels and (unless ``allow_empty``) an image whose voxels are all equal.
    """
    path = Path(path)
    if not path.is_file():
        raise MsqmriInputError(path, "file not found")
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise MsqmriInputError(path, f"truncated or corrupt compressed file ({exc})") from None
    except nib.filebasedimages.ImageFileError:
        if path.name.endswith(".gz") and not _gzip_complete(path):
            raise MsqmriInputError(path, "truncated or corrupt compressed file") from None
        raise MsqmriInputError(path, "not a NIfTI image (no valid NIfTI-1/2 header)") from None
    except (OSError, ValueError) as exc:
        raise MsqmriInputError(path, f"cannot read image data ({_first_line(exc)})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    wanted = (ndim,) if isinstance(ndim, int) else ndim
    if data.ndim not in wanted:
        raise MsqmriInputError(path, f"expected a {' or '.join(f'{n}D' for n in wanted)} image, got shape {data.shape}")
    if min(data.shape[:3]) < 2:
        raise MsqmriInputError(path, f"image has a degenerate spatial shape {data.shape[:3]}")
    if not allow_nonfinite:
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise MsqmriInputError(path, f"{bad} voxels are NaN or Inf")
    if not allow_empty and float(np.nanmax(data)) == float(np.nanmin(data)):
        raise MsqmriInputError(path, f"image is empty (every voxel equals {float(np.nanmin(data)):g})")
    affine = img.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise MsqmriInputError(path, "header has an invalid (singular or non-finite) affine")
    return img, data


def _gzip_complete(path: Path) -> bool:
    """Whether a gzip file decompresses to its end (a cut-off download does not)."""
    try:
        with gzip.open(path) as fh:
            while fh.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error):
        return False
    return True


def load_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object, raising a one-line :class:`MsqmriInputError` if it is not valid."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            value = json.load(fh)
    except FileNotFoundError:
        raise MsqmriInputError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MsqmriInputError(path, f"invalid JSON ({_first_line(exc)})") from None
    if not isinstance(value, dict):
        raise MsqmriInputError(path, "expected a JSON object")
    return value


def read_table(path: Path) -> np.ndarray:
    """A whitespace-separated numeric table (a .bval or .bvec file) as a 2D float array."""
    try:
        rows = [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MsqmriInputError(path, f"not a numeric table ({exc})") from None
    if not rows or len({len(row) for row in rows}) != 1:
        raise MsqmriInputError(path, "empty or ragged table (rows of different lengths)")
    return np.array(rows, dtype=np.float64)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps the final suffixes (``.nii.gz``, ``.tsv``) so writers that infer
    the format from the name work unchanged. On error the temporary file is removed; a partial one
    left by a killed earlier attempt at the same output (SIGKILL allows no clean-up) is removed when
    the output is written again.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp{suffix}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600: give the output the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def private_tempdir() -> Iterator[str]:
    """Point :mod:`tempfile` at a fresh directory, removed on exit. antspyx names the files it hands to ANTs
    (registration transforms, Atropos priors and posteriors) with ``tempfile.mktemp`` and never deletes
    them: a session's registrations left tens of MB in the system temporary directory, which fills the
    node's /tmp over a cohort."""
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="msqmri-") as path:
        tempfile.tempdir = path
        try:
            yield path
        finally:
            tempfile.tempdir = previous


def save_nifti(img: nib.Nifti1Image, path: str | os.PathLike[str]) -> None:
    """Write a NIfTI image atomically."""
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def save_array(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike[str], dtype: Any) -> None:
    """Write ``array`` as ``dtype`` on the grid ``affine`` (qform and sform set, mm units), atomically."""
    img = nib.Nifti1Image(np.asarray(array, dtype=dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    save_nifti(img, path)


def save_json(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a JSON object atomically, pretty-printed with sorted keys."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def save_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_tsv(frame: Any, path: str | os.PathLike[str]) -> None:
    """Write a pandas DataFrame as a BIDS TSV (tab-separated, ``n/a`` for missing) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
