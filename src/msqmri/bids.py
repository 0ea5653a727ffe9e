"""A small, fast parser for the raw BIDS inputs msqmri reads (no pybids at run time).

:func:`discover` walks ``sub-*/[ses-*/]{anat,dwi}`` once and returns frozen dataclasses: the
dataset holds subjects, each subject its usable sessions in time order, each session the paths
of the modalities it has. Sessions that cannot be processed (no T1w, ambiguous files) are listed
in :attr:`Dataset.unusable` with a one-line reason instead of raising.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from msqmri.io import MsqmriInputError

LABEL_RE = re.compile(r"[a-zA-Z0-9]+")
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
_ENTITY_RE = re.compile(r"([a-zA-Z0-9]+)-([a-zA-Z0-9]+)")
_MISSING = {"", "n/a", "na", "nan"}


@dataclass(frozen=True)
class Echo:
    """One MEGRE echo: its 1-based index, image and JSON sidecar (None when absent)."""

    index: int
    image: Path
    sidecar: Path | None


@dataclass(frozen=True)
class Dwi:
    """A diffusion series with its gradient tables (None when a table is absent)."""

    image: Path
    bval: Path | None
    bvec: Path | None


@dataclass(frozen=True)
class Session:
    """One imaging session of one subject; ``session`` is None for a sessionless subject."""

    subject: str
    session: str | None
    t1w: Path
    flair: Path | None = None
    mt_on: Path | None = None
    mt_off: Path | None = None
    megre: tuple[Echo, ...] = ()
    dwi: Dwi | None = None
    lesion_mask_t1w: Path | None = None
    lesion_mask_flair: Path | None = None
    acq_time: datetime | None = None
    #: start of a disease-modifying treatment (sessions.tsv ``treatment_start``), for pseudo-atrophy cautions
    treatment_start: datetime | None = None

    @property
    def participant_id(self) -> str:
        return f"sub-{self.subject}"

    @property
    def session_id(self) -> str | None:
        return None if self.session is None else f"ses-{self.session}"

    @property
    def label(self) -> str:
        """``sub-01 ses-02`` (or ``sub-01`` when sessionless), for messages."""
        return describe(self.subject, self.session)

    def files(self) -> tuple[Path, ...]:
        """Every input file of the session: images, echo sidecars, gradient tables, lesion masks."""
        candidates = [self.t1w, self.flair, self.mt_on, self.mt_off, self.lesion_mask_t1w, self.lesion_mask_flair]
        for echo in self.megre:
            candidates += [echo.image, echo.sidecar]
        if self.dwi is not None:
            candidates += [self.dwi.image, self.dwi.bval, self.dwi.bvec]
        return tuple(path for path in candidates if path is not None)


@dataclass(frozen=True)
class UnusableSession:
    """A session that discovery skipped, with a one-line reason."""

    subject: str
    session: str | None
    reason: str

    def __str__(self) -> str:
        return f"{describe(self.subject, self.session)}: {self.reason}"


@dataclass(frozen=True)
class Subject:
    """A participant: usable sessions in time order plus optional demographics."""

    label: str
    sessions: tuple[Session, ...]
    age: float | None = None
    sex: str | None = None
    site: str | None = None

    @property
    def participant_id(self) -> str:
        return f"sub-{self.label}"

    def demographics(self) -> dict[str, float | str | None]:
        """participants.tsv fields: age, sex, site (None when not given)."""
        return {"age": self.age, "sex": self.sex, "site": self.site}


@dataclass(frozen=True)
class Dataset:
    """A discovered BIDS dataset: subjects with at least one usable session."""

    root: Path
    subjects: tuple[Subject, ...]
    unusable: tuple[UnusableSession, ...] = ()

    def sessions(self) -> Iterator[Session]:
        """All usable sessions, subject by subject, each subject's in time order."""
        for subject in self.subjects:
            yield from subject.sessions


def describe(subject: str, session: str | None) -> str:
    """``sub-<s> ses-<t>`` or ``sub-<s>`` for messages."""
    return f"sub-{subject}" if session is None else f"sub-{subject} ses-{session}"


def session_dir(subject: str, session: str | None) -> str:
    """``sub-01/ses-01``, or ``sub-01`` when sessionless."""
    return f"sub-{subject}" if session is None else f"sub-{subject}/ses-{session}"


def entity_prefix(subject: str, session: str | None) -> str:
    """``sub-01_ses-01``, or ``sub-01`` when sessionless: the start of every file name."""
    return f"sub-{subject}" if session is None else f"sub-{subject}_ses-{session}"


def bids_prefix(subject: str, session: str | None, datatype: str | None = "anat") -> str:
    """Path prefix of a session's files, e.g. ``sub-01/ses-01/anat/sub-01_ses-01``.

    With ``datatype=None`` the prefix is at session level (``sub-01/ses-01/sub-01_ses-01``).
    """
    parts = [session_dir(subject, session)]
    if datatype:
        parts.append(datatype)
    parts.append(entity_prefix(subject, session))
    return "/".join(parts)


def session_pairs(sessions: Sequence[Session]) -> list[tuple[Session, Session]]:
    """Pairs of one subject's sessions to compare: each consecutive pair and baseline -> each later.

    ``sessions`` must be in time order (as :attr:`Subject.sessions` is). Pairs are unique and
    ordered by (earlier, later) position.
    """
    n = len(sessions)
    indices = {(i, i + 1) for i in range(n - 1)} | {(0, j) for j in range(1, n)}
    return [(sessions[i], sessions[j]) for i, j in sorted(indices)]


def discover(bids_dir: str | os.PathLike[str], participant_label: Sequence[str] | None = None) -> Dataset:
    """Parse a raw BIDS dataset into a :class:`Dataset`.

    ``participant_label`` restricts discovery to these subjects (with or without ``sub-``);
    a label that is not in the dataset raises :class:`MsqmriInputError`.
    """
    root = Path(bids_dir)
    if not root.is_dir():
        raise MsqmriInputError(root, "BIDS directory not found")
    subject_dirs = {_label(path, "sub"): path for path in sorted(root.glob("sub-*")) if path.is_dir()}
    if participant_label:
        wanted = [label.removeprefix("sub-") for label in participant_label]
        missing = [label for label in wanted if label not in subject_dirs]
        if missing:
            raise MsqmriInputError(root, f"no subject directory for participant label(s) {', '.join(missing)}")
        subject_dirs = {label: subject_dirs[label] for label in wanted}
    if not subject_dirs:
        raise MsqmriInputError(root, "no sub-<label> directories found; is this a BIDS dataset?")
    demographics = _read_participants(root / "participants.tsv")
    subjects, unusable = [], []
    for label, path in subject_dirs.items():
        sessions, skipped = _discover_subject(root, label, path)
        unusable.extend(skipped)
        if sessions:
            subjects.append(Subject(label, sessions, **demographics.get(label, {})))
    return Dataset(root, tuple(subjects), tuple(unusable))


def _label(path: Path, entity: str) -> str:
    label = path.name[len(entity) + 1 :]
    if not LABEL_RE.fullmatch(label):
        raise MsqmriInputError(
            path, f"invalid {entity}- label {label!r}: BIDS labels may contain only letters and digits"
        )
    return label


def _discover_subject(root: Path, subject: str, path: Path) -> tuple[tuple[Session, ...], list[UnusableSession]]:
    session_dirs = [p for p in sorted(path.glob("ses-*")) if p.is_dir()]
    labels: list[str | None] = [_label(p, "ses") for p in session_dirs] or [None]
    dates = _read_session_dates(path / f"sub-{subject}_sessions.tsv")
    sessions, unusable = [], []
    for session in labels:
        try:
            sessions.append(_discover_session(root, subject, session, dates.get(session, {})))
        except _Unusable as exc:
            unusable.append(UnusableSession(subject, session, str(exc)))
    return tuple(_time_order(sessions)), unusable


class _Unusable(Exception):
    """A session cannot be processed; the message is the reason."""


def _discover_session(
    root: Path, subject: str, session: str | None, dates: dict[str, datetime | None]
) -> Session:
    base = root / session_dir(subject, session)
    anat = _parse_dir(base / "anat", subject, session)
    lesions = _parse_dir(root / "derivatives" / "lesions" / session_dir(subject, session) / "anat", subject, session)
    t1w = _one(anat, "T1w", {})
    if t1w is None:
        raise _Unusable(f"no T1w image in {base / 'anat'}; session skipped")
    return Session(
        subject=subject,
        session=session,
        t1w=t1w,
        flair=_one(anat, "FLAIR", {}),
        mt_on=_one(anat, "MTR", {"mt": "on"}),
        mt_off=_one(anat, "MTR", {"mt": "off"}),
        megre=_echoes(anat),
        dwi=_dwi(_parse_dir(base / "dwi", subject, session)),
        lesion_mask_t1w=_one(lesions, "mask", {"space": "T1w", "label": "lesion"}),
        lesion_mask_flair=_one(lesions, "mask", {"space": "FLAIR", "label": "lesion"}),
        acq_time=dates.get("acq_time"),
        treatment_start=dates.get("treatment_start"),
    )


@dataclass(frozen=True)
class _File:
    path: Path
    entities: dict[str, str]
    suffix: str


def _parse_dir(directory: Path, subject: str, session: str | None) -> list[_File]:
    """The NIfTI files of one datatype directory that belong to this subject/session."""
    if not directory.is_dir():
        return []
    files = []
    for path in sorted(directory.iterdir()):
        ext = next((e for e in NIFTI_EXTENSIONS if path.name.endswith(e)), None)
        if ext is None:
            continue
        *pairs, suffix = path.name[: -len(ext)].split("_")
        matches = [_ENTITY_RE.fullmatch(p) for p in pairs]
        if not all(matches):
            continue
        entities = dict(m.groups() for m in matches if m)
        if entities.get("sub") == subject and entities.get("ses") == session:
            files.append(_File(path, entities, suffix))
    return files


def _one(files: list[_File], suffix: str, required: dict[str, str]) -> Path | None:
    """The single file with ``suffix`` whose entities include ``required``; ambiguity is unusable."""
    others = {"mt", "echo", "space", "label", "part"} - required.keys()
    found = [
        f.path
        for f in files
        if f.suffix == suffix
        and all(f.entities.get(k) == v for k, v in required.items())
        and not others & f.entities.keys()
    ]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise _Unusable(f"{len(found)} candidate {suffix} images ({names}); msqmri needs exactly one")
    return found[0] if found else None


def _echoes(files: list[_File]) -> tuple[Echo, ...]:
    echoes: dict[int, Echo] = {}
    for f in files:
        if f.suffix != "MEGRE" or f.entities.get("part", "mag") != "mag" or "echo" not in f.entities:
            continue
        if not f.entities["echo"].isdigit():
            raise _Unusable(f"{f.path.name}: echo index {f.entities['echo']!r} is not a number")
        index = int(f.entities["echo"])
        if index in echoes:
            raise _Unusable(f"two MEGRE images for echo {index} ({echoes[index].image.name}, {f.path.name})")
        sidecar = sibling(f.path, ".json")
        echoes[index] = Echo(index, f.path, sidecar if sidecar.is_file() else None)
    return tuple(echoes[i] for i in sorted(echoes))


def _dwi(files: list[_File]) -> Dwi | None:
    image = _one(files, "dwi", {})
    if image is None:
        return None
    bval, bvec = sibling(image, ".bval"), sibling(image, ".bvec")
    return Dwi(image, bval if bval.is_file() else None, bvec if bvec.is_file() else None)


def sibling(image: Path, extension: str) -> Path:
    """The file beside a NIfTI ``image`` with its extension replaced (a sidecar or gradient table)."""
    stem = image.name.removesuffix(".gz").removesuffix(".nii")
    return image.with_name(stem + extension)


def _time_order(sessions: list[Session]) -> list[Session]:
    """By acquisition time when every session has one, else by label (numbers compared as numbers)."""
    if sessions and all(s.acq_time is not None for s in sessions):
        return sorted(sessions, key=lambda s: (s.acq_time, _natural_key(s.session or "")))
    return sorted(sessions, key=lambda s: _natural_key(s.session or ""))


def _natural_key(label: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", label))


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _read_session_dates(path: Path) -> dict[str | None, dict[str, datetime | None]]:
    """session label -> {acq_time, treatment_start} from ``sub-<s>_sessions.tsv`` (empty when absent)."""
    if not path.is_file():
        return {}
    rows = _read_tsv(path)
    if rows and "session_id" not in rows[0]:
        raise MsqmriInputError(path, "missing the session_id column")
    times: dict[str | None, dict[str, datetime | None]] = {}
    for number, row in enumerate(rows, start=2):
        label = (row["session_id"] or "").strip().removeprefix("ses-")
        times[label] = {
            column: _parse_time(path, number, column, (row.get(column) or "").strip())
            for column in ("acq_time", "treatment_start")
        }
    return times


def _parse_time(path: Path, line: int, column: str, value: str) -> datetime | None:
    if value.lower() in _MISSING:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MsqmriInputError(path, f"line {line}: {column} {value!r} is not an ISO 8601 date") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _read_participants(path: Path) -> dict[str, dict[str, float | str | None]]:
    """participant label -> {age, sex, site} from participants.tsv (empty when absent)."""
    if not path.is_file():
        return {}
    table = {}
    for number, row in enumerate(_read_tsv(path), start=2):
        label = (row.get("participant_id") or "").strip().removeprefix("sub-")
        table[label] = {
            "age": _parse_age(path, number, row.get("age")),
            "sex": _text(row.get("sex")),
            "site": _text(row.get("site")),
        }
    return table


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value.lower() in _MISSING else value


def _parse_age(path: Path, line: int, value: str | None) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise MsqmriInputError(path, f"line {line}: age {text!r} is not a number") from None
