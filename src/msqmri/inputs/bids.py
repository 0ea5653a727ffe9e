"""A small, fast parser for the raw BIDS inputs msqmri reads (no pybids at run time).

:func:`discover` walks ``sub-*/[ses-*/]{anat,dwi}`` once and returns frozen dataclasses: the
dataset holds subjects, each subject its usable sessions in time order, each session the paths
of the modalities it has. Sessions that cannot be processed (no usable T1w, candidates the rules
cannot tell apart) are listed in :attr:`Dataset.unusable` with a one-line reason instead of raising;
what was read in a documented way (a DWI series without gradients skipped, a binned age) is in
:attr:`Dataset.warnings`.

Selection (pybids' entities, fMRIPrep's choices): each role takes the files of its suffix whose
entities match the config's filters (``inputs: {t1w: {acq: mprage}}``) and that carry no entity of
another role (``ce`` is the post-contrast T1w, never the atrophy T1w; ``part`` must be ``mag``; ``mt``,
``echo``, ``inv``, ``flip``, ``space``, ``label`` belong to other images). Among several the rule is, in
order: the plain suffix before MP2RAGE's ``UNIT1``; 3D before 2D (``MRAcquisitionType`` in the sidecar,
else ``3D``/``2D`` in the ``acq`` label); the smallest voxel; the last ``run``. Candidates still tied
are reported, not guessed. DWI takes the series with diffusion weighting (most volumes first), merges
b=0-only series of the same phase encoding (``PhaseEncodingDirection``, else the ``dir`` label) and
records another series of the session (e.g. the reverse phase-encoded ``dir-PA`` b=0) for distortion
correction. A ``UNIT1`` comes with its second inversion (``inv-2_MP2RAGE``, magnitude, the UNIT1's other
entities) when the session has one: its dark air gives the head mask the UNIT1's noisy background cannot.
Sidecars and gradient tables follow the BIDS inheritance principle: the nearest file, from
the image's folder up to the dataset root, whose entities are a subset of the image's. The session date
is ``acq_time`` in ``sub-<s>_sessions.tsv``, else the T1w's row of the session's ``scans.tsv``, else
``AcquisitionDateTime`` in the T1w sidecar; the source is recorded.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nibabel as nib

from msqmri.core.io import MsqmriInputError

LABEL_RE = re.compile(r"[a-zA-Z0-9]+")
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
_ENTITY_RE = re.compile(r"([a-zA-Z0-9]+)-([a-zA-Z0-9]+)")
_MISSING = {"", "n/a", "na", "nan"}
#: the reference scan of a treatment start: the first session at least this long after it (MAGNIMS: about 6 months)
REBASELINE_MONTHS = 6.0
DAYS_PER_MONTH = 365.25 / 12
#: roles of the images a session may have, as the config's ``inputs`` filters name them
ROLES = ("t1w", "t1w_ce", "flair", "dwi")
#: entities that make an image something other than a role's plain image
_FOREIGN = frozenset({"ce", "mt", "echo", "inv", "flip", "space", "label", "part"})
#: smallest b-value (s/mm^2) of a diffusion-weighted volume
_MIN_B = 50.0
_AGE_BIN_RE = re.compile(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)")
_AGE_TOP_RE = re.compile(r"(\d+(?:\.\d+)?)\s*\+")


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
    #: another DWI series of the session (e.g. the reverse phase-encoded b=0), kept for distortion correction
    reverse: Path | None = None
    #: b=0-only series stored separately with the same phase encoding: merged into the series
    b0_series: tuple[Path, ...] = ()


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
    #: clinical columns of sessions.tsv: relapses since the previous session, EDSS, the current treatment
    relapses: int | None = None
    edss: float | None = None
    treatment: str | None = None
    #: the reference (rebaseline) scan of a treatment start: the first session at least ``rebaseline_months`` after it
    rebaseline: bool = False
    #: the post-contrast T1w (``ce-<agent>``), never used for atrophy
    t1w_ce: Path | None = None
    #: where ``acq_time`` came from: "sessions.tsv", "scans.tsv", "sidecar" (None without a date)
    acq_time_source: str | None = None
    #: (image, JSON sidecar) of every image with one, found by the inheritance principle
    sidecars: tuple[tuple[Path, Path], ...] = ()
    #: (role, file name, the rule that chose it among the candidates)
    selection: tuple[tuple[str, str, str], ...] = ()
    #: MP2RAGE's second-inversion magnitude (``inv-2_MP2RAGE``) beside a ``UNIT1`` T1w, for its head mask
    t1w_inv2: Path | None = None

    def sidecar(self, image: Path) -> Path | None:
        """The JSON sidecar that applies to ``image`` (None when there is none at any level)."""
        return dict(self.sidecars).get(image)

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
            candidates += [self.dwi.image, self.dwi.bval, self.dwi.bvec, *self.dwi.b0_series]
        candidates += [self.t1w_ce, self.t1w_inv2]
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
    #: how a participants.tsv age that was not a plain number was read (e.g. "top-coded 89+"), else None
    age_note: str | None = None

    @property
    def participant_id(self) -> str:
        return f"sub-{self.label}"

    def demographics(self) -> dict[str, float | str | None]:
        """participants.tsv fields: age, sex, site (None when not given) and the age's reading note."""
        return {"age": self.age, "sex": self.sex, "site": self.site, "age_note": self.age_note}


@dataclass(frozen=True)
class Dataset:
    """A discovered BIDS dataset: subjects with at least one usable session."""

    root: Path
    subjects: tuple[Subject, ...]
    unusable: tuple[UnusableSession, ...] = ()
    #: one line each: inputs read in a documented way rather than refused
    warnings: tuple[str, ...] = ()

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
    """Pairs of one subject's sessions to compare: each consecutive pair, baseline -> each later, and each
    reference (rebaseline) scan of a treatment -> each later.

    ``sessions`` must be in time order (as :attr:`Subject.sessions` is). Pairs are unique and
    ordered by (earlier, later) position.
    """
    n = len(sessions)
    references = [i for i, s in enumerate(sessions) if s.rebaseline]
    indices = {(i, i + 1) for i in range(n - 1)} | {(i, j) for i in (0, *references) for j in range(i + 1, n)}
    return [(sessions[i], sessions[j]) for i, j in sorted(indices)]


def discover(
    bids_dir: str | os.PathLike[str],
    participant_label: Sequence[str] | None = None,
    filters: Mapping[str, Mapping[str, str]] | None = None,
    rebaseline_months: float = REBASELINE_MONTHS,
) -> Dataset:
    """Parse a raw BIDS dataset into a :class:`Dataset`.

    ``participant_label`` restricts discovery to these subjects (with or without ``sub-``);
    a label that is not in the dataset raises :class:`MsqmriInputError`. ``filters``: role (one of
    :data:`ROLES`) -> entity -> value every chosen image of that role must carry. The first session at least
    ``rebaseline_months`` after a treatment start is its reference scan.
    """
    root = Path(bids_dir)
    if not root.is_dir():
        raise MsqmriInputError(root, "BIDS directory not found")
    filters = {role: {k: str(v) for k, v in (wanted or {}).items()} for role, wanted in (filters or {}).items()}
    unknown = sorted(set(filters) - set(ROLES))
    if unknown:
        raise MsqmriInputError(root, f"config inputs: unknown role(s) {', '.join(unknown)} (known: {', '.join(ROLES)})")
    subject_dirs = {_label(path, "sub"): path for path in sorted(root.glob("sub-*")) if path.is_dir()}
    if participant_label:
        wanted = [label.removeprefix("sub-") for label in participant_label]
        missing = [label for label in wanted if label not in subject_dirs]
        if missing:
            raise MsqmriInputError(root, f"no subject directory for participant label(s) {', '.join(missing)}")
        subject_dirs = {label: subject_dirs[label] for label in wanted}
    if not subject_dirs:
        raise MsqmriInputError(root, "no sub-<label> directories found; is this a BIDS dataset?")
    _listing.cache_clear()  # a cache for one discovery: the dataset may have changed since the last
    warnings: list[str] = []
    demographics = _read_participants(root / "participants.tsv", warnings)
    subjects, unusable = [], []
    for label, path in subject_dirs.items():
        sessions, skipped = _discover_subject(root, label, path, filters, warnings, rebaseline_months)
        unusable.extend(skipped)
        if sessions:
            subjects.append(Subject(label, sessions, **demographics.get(label, {})))
    return Dataset(root, tuple(subjects), tuple(unusable), tuple(warnings))


def _label(path: Path, entity: str) -> str:
    label = path.name[len(entity) + 1 :]
    if not LABEL_RE.fullmatch(label):
        raise MsqmriInputError(
            path, f"invalid {entity}- label {label!r}: BIDS labels may contain only letters and digits"
        )
    return label


def _discover_subject(
    root: Path,
    subject: str,
    path: Path,
    filters: Mapping[str, Mapping[str, str]],
    warnings: list[str],
    rebaseline_months: float = REBASELINE_MONTHS,
) -> tuple[tuple[Session, ...], list[UnusableSession]]:
    session_dirs = [p for p in sorted(path.glob("ses-*")) if p.is_dir()]
    labels: list[str | None] = [_label(p, "ses") for p in session_dirs] or [None]
    table = path / f"sub-{subject}_sessions.tsv"
    rows = _read_sessions_tsv(table)
    sessions, unusable = [], []
    for session in labels:
        try:
            sessions.append(_discover_session(root, subject, session, rows.get(session, {}), filters, warnings))
        except _Unusable as exc:
            unusable.append(UnusableSession(subject, session, str(exc)))
    return _with_references(_time_order(sessions), rows, table, rebaseline_months), unusable


def _with_references(
    sessions: list[Session], rows: Mapping[str | None, Mapping[str, Any]], table: Path, rebaseline_months: float
) -> tuple[Session, ...]:
    """The sessions with each treatment start's reference scan marked; a treatment start after every dated
    session is a one-line error naming sessions.tsv and its line."""
    dated = [s.acq_time for s in sessions if s.acq_time is not None]
    starts = {(row["treatment_start"], row["line"]) for row in rows.values() if row.get("treatment_start")}
    marked = list(sessions)
    for start, line in sorted(starts):
        if dated and start > max(dated):
            last = max(dated).date()
            raise MsqmriInputError(
                table, f"line {line}: treatment_start {start.date()} is after every session ({last})"
            )
        wait = rebaseline_months * DAYS_PER_MONTH
        after = [k for k, s in enumerate(marked) if s.acq_time and (s.acq_time - start).total_seconds() >= wait * 86400]
        if after:
            marked[after[0]] = replace(marked[after[0]], rebaseline=True)
    return tuple(marked)


class _Unusable(Exception):
    """A session cannot be processed; the message is the reason."""


def _discover_session(
    root: Path,
    subject: str,
    session: str | None,
    row: Mapping[str, Any],
    filters: Mapping[str, Mapping[str, str]],
    warnings: list[str],
) -> Session:
    base = root / session_dir(subject, session)
    anat = _parse_dir(base / "anat", subject, session)
    lesions = _parse_dir(root / "derivatives" / "lesions" / session_dir(subject, session) / "anat", subject, session)
    sidecars = {f.path: found for f in anat if (found := inherited(root, f, ".json")) is not None}
    choose = functools.partial(_choose, sidecars=sidecars, label=describe(subject, session), warnings=warnings)
    selection: list[tuple[str, str, str]] = []
    t1w = choose(anat, ("T1w", "UNIT1"), filters.get("t1w", {}), selection, "t1w")
    t1w_ce = choose(
        [f for f in anat if "ce" in f.entities],
        ("T1w",),
        filters.get("t1w_ce", {}),
        selection,
        "t1w_ce",
        allowed={"ce"},
    )
    if t1w is None:
        where = base / "anat"
        if t1w_ce is not None:
            raise _Unusable(
                f"only a post-contrast T1w ({t1w_ce.name}) in {where}, never used for atrophy; session skipped"
            )
        wanted = filters.get("t1w", {})
        present = [f.path.name for f in anat if f.suffix in ("T1w", "UNIT1") and "ce" not in f.entities]
        if wanted and present:
            pins = " ".join(f"{k}-{v}" for k, v in wanted.items())
            raise _Unusable(
                f"no T1w image matching the config's inputs t1w {pins} in {where} "
                f"(found {', '.join(present)}); session skipped"
            )
        raise _Unusable(f"no T1w image in {where}; session skipped")
    acq_time, source = _session_date(base, subject, session, t1w, sidecars.get(t1w), row.get("acq_time"))
    inv2 = _second_inversion(anat, t1w)
    if inv2 is not None:
        selection.append(("t1w_inv2", inv2.name, "INV2 of the UNIT1"))
    dwi_files = _parse_dir(base / "dwi", subject, session)
    dwi = _dwi(root, dwi_files, filters.get("dwi", {}), selection, describe(subject, session), warnings)
    echoes = _echoes(root, anat)
    for echo in echoes:
        if echo.sidecar is not None:
            sidecars[echo.image] = echo.sidecar
    return Session(
        subject=subject,
        session=session,
        t1w=t1w,
        flair=choose(anat, ("FLAIR",), filters.get("flair", {}), selection, "flair"),
        mt_on=_one(anat, "MTR", {"mt": "on"}),
        mt_off=_one(anat, "MTR", {"mt": "off"}),
        megre=echoes,
        dwi=dwi,
        lesion_mask_t1w=_one(lesions, "mask", {"space": "T1w", "label": "lesion"}),
        lesion_mask_flair=_one(lesions, "mask", {"space": "FLAIR", "label": "lesion"}),
        acq_time=acq_time,
        treatment_start=row.get("treatment_start"),
        relapses=row.get("relapses"),
        edss=row.get("edss"),
        treatment=row.get("treatment"),
        t1w_ce=t1w_ce,
        acq_time_source=source,
        sidecars=tuple(sidecars.items()),
        selection=tuple(selection),
        t1w_inv2=inv2,
    )


def _second_inversion(files: list[_File], t1w: Path) -> Path | None:
    """The ``inv-2_MP2RAGE`` magnitude (``part-mag`` or no ``part``) whose other entities are the UNIT1's
    (None for a plain T1w, or when there is not exactly one)."""
    unit1 = next(f for f in files if f.path == t1w)
    if unit1.suffix != "UNIT1":
        return None
    found = [
        f.path
        for f in files
        if f.suffix == "MP2RAGE"
        and f.entities.get("inv") == "2"
        and f.entities.get("part", "mag") == "mag"
        and {k: v for k, v in f.entities.items() if k not in ("inv", "part")} == unit1.entities
    ]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class _File:
    path: Path
    entities: dict[str, str]
    suffix: str


def _split_name(name: str) -> tuple[dict[str, str], str] | None:
    """Entities and suffix of a BIDS file name without its extension (None when it is not one)."""
    *pairs, suffix = name.split("_")
    matches = [_ENTITY_RE.fullmatch(p) for p in pairs]
    if not all(matches):
        return None
    return dict(m.groups() for m in matches if m), suffix


def _parse_dir(directory: Path, subject: str, session: str | None) -> list[_File]:
    """The NIfTI files of one datatype directory that belong to this subject/session."""
    if not directory.is_dir():
        return []
    files = []
    for name in sorted(os.listdir(directory)):
        ext = next((e for e in NIFTI_EXTENSIONS if name.endswith(e)), None)
        parsed = None if ext is None else _split_name(name[: -len(ext)])
        if parsed is None:
            continue
        entities, suffix = parsed
        if entities.get("sub") == subject and entities.get("ses") == session:
            files.append(_File(directory / name, entities, suffix))
    return files


@functools.lru_cache(maxsize=4096)
def _listing(directory: Path, extension: str) -> tuple[tuple[Path, frozenset[tuple[str, str]], str], ...]:
    """The files of ``directory`` with ``extension``: (path, entities, suffix), cached within one
    :func:`discover` (dataset and subject levels are asked once per session)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return ()
    found = []
    for name in names:
        if name.endswith(extension) and (parsed := _split_name(name[: -len(extension)])) is not None:
            found.append((directory / name, frozenset(parsed[0].items()), parsed[1]))
    return tuple(found)


def inherited(root: Path, image: _File, extension: str) -> Path | None:
    """The file with ``extension`` that applies to ``image`` by the BIDS inheritance principle: the nearest one,
    from the image's folder up to the dataset root, with the image's suffix and a subset of its entities (the
    most specific where a level holds several)."""
    entities = frozenset(image.entities.items())
    level = image.path.parent
    for _ in range(len(level.parts) - len(root.parts) + 1):
        best: tuple[int, Path] | None = None
        for path, ents, suffix in _listing(level, extension):
            if suffix == image.suffix and ents <= entities and (best is None or len(ents) > best[0]):
                best = (len(ents), path)
        if best is not None:
            return best[1]
        level = level.parent
    return None


def _acquisition_is_3d(file: _File, sidecar: Path | None) -> float:
    """1 for a 3D acquisition, 0 for 2D, 0.5 when neither the sidecar nor the acq label says."""
    kind = str(_sidecar_fields(sidecar).get("MRAcquisitionType", "")).upper()
    if kind not in ("2D", "3D"):
        acq = file.entities.get("acq", "").upper()
        kind = "3D" if "3D" in acq else "2D" if "2D" in acq else ""
    return {"3D": 1.0, "2D": 0.0}.get(kind, 0.5)


def _voxel_mm3(path: Path) -> float:
    """Voxel volume from the NIfTI header (inf where it cannot be read: checked later, with its message)."""
    try:
        zooms = nib.load(path).header.get_zooms()[:3]
    except Exception:
        return float("inf")
    return float(zooms[0] * zooms[1] * zooms[2]) if len(zooms) == 3 else float("inf")


def _choose(
    files: list[_File],
    suffixes: tuple[str, ...],
    wanted: Mapping[str, str],
    selection: list[tuple[str, str, str]],
    role: str,
    sidecars: Mapping[Path, Path],
    label: str,
    warnings: list[str],
    allowed: frozenset[str] | set[str] = frozenset(),
) -> Path | None:
    """The image of a role (see the module docstring), appended to ``selection`` with the rule that chose it;
    candidates the rules leave tied give the first by file name and a warning naming them."""
    candidates = [
        f
        for f in files
        if f.suffix in suffixes
        and all(f.entities.get(k) == v for k, v in wanted.items())
        and not (_FOREIGN - set(allowed) - set(wanted))
        & (f.entities.keys() - ({"part"} if f.entities.get("part") == "mag" else set()))
    ]
    if not candidates:
        return None
    same = [f for f in candidates if sum(g.entities == f.entities and g.suffix == f.suffix for g in candidates) > 1]
    if same:
        names = ", ".join(f.path.name for f in same)
        raise _Unusable(
            f"{len(same)} candidate {same[0].suffix} images with the same entities ({names}); msqmri needs exactly one"
        )
    if len(candidates) == 1:
        selection.append((role, candidates[0].path.name, "the only candidate"))
        return candidates[0].path

    def rank(f: _File) -> tuple[float, ...]:
        run = f.entities.get("run", "0")
        return (
            -suffixes.index(f.suffix),
            _acquisition_is_3d(f, sidecars.get(f.path)),
            -_voxel_mm3(f.path),
            float(run) if run.isdigit() else 0.0,
        )

    ranked = sorted(candidates, key=lambda f: (tuple(-k for k in rank(f)), f.path.name))
    best, second = rank(ranked[0]), rank(ranked[1])
    if best == second:
        tied = [f.path.name for f in ranked if rank(f) == best]
        warnings.append(
            f"{label}: {role}: {len(tied)} candidates the selection rules cannot tell apart "
            f"({', '.join(tied)}): took the first by name; choose with the config's "
            f"inputs: {{{role}: {{entity: label}}}}"
        )
        selection.append((role, ranked[0].path.name, f"first by name of {len(tied)} tied"))
        return ranked[0].path
    names = ["suffix", "3D before 2D", "smallest voxel", "last run"]
    decided = next(name for name, a, b in zip(names, best, second, strict=True) if a != b)
    selection.append((role, ranked[0].path.name, f"{decided} of {len(candidates)}"))
    return ranked[0].path


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


def _echoes(root: Path, files: list[_File]) -> tuple[Echo, ...]:
    echoes: dict[int, Echo] = {}
    for f in files:
        if f.suffix != "MEGRE" or f.entities.get("part", "mag") != "mag" or "echo" not in f.entities:
            continue
        if not f.entities["echo"].isdigit():
            raise _Unusable(f"{f.path.name}: echo index {f.entities['echo']!r} is not a number")
        index = int(f.entities["echo"])
        if index in echoes:
            raise _Unusable(f"two MEGRE images for echo {index} ({echoes[index].image.name}, {f.path.name})")
        echoes[index] = Echo(index, f.path, inherited(root, f, ".json"))
    return tuple(echoes[i] for i in sorted(echoes))


def _diffusion_volumes(bval: Path | None) -> int:
    """How many volumes of a .bval are diffusion-weighted (0 when absent or unreadable: checked later)."""
    try:
        return sum(float(b) > _MIN_B for b in bval.read_text().split()) if bval is not None else 0
    except (OSError, ValueError):
        return 0


def _dwi(
    root: Path,
    files: list[_File],
    wanted: Mapping[str, str],
    selection: list[tuple[str, str, str]],
    label: str,
    warnings: list[str],
) -> Dwi | None:
    """The session's DWI series with gradients (see the module docstring); a series whose .bval/.bvec is at no
    level of the hierarchy is skipped with a warning, the rest of the session still runs."""
    series = [
        f
        for f in files
        if f.suffix == "dwi"
        and all(f.entities.get(k) == v for k, v in wanted.items())
        and not {"echo", "space", "label"} & f.entities.keys()
    ]
    if not series:
        return None
    tables = {f.path: (inherited(root, f, ".bval"), inherited(root, f, ".bvec")) for f in series}
    weighted = sorted(series, key=lambda f: (-_diffusion_volumes(tables[f.path][0]), f.path.name))
    chosen = weighted[0]
    bval, bvec = tables[chosen.path]
    if bval is None or bvec is None:
        missing = ".bval" if bval is None else ".bvec"
        warnings.append(f"{label}: {chosen.path}: no {missing} at any level of the dataset; DWI skipped")
        return None
    if len(series) > 1:
        if _diffusion_volumes(bval) == _diffusion_volumes(tables[weighted[1].path][0]):
            names = ", ".join(f.path.name for f in weighted[:2])
            warnings.append(
                f"{label}: two DWI series with as many diffusion-weighted volumes ({names}); DWI skipped, "
                "choose one with the config's inputs: {dwi: {entity: label}}"
            )
            return None
        selection.append(("dwi", chosen.path.name, f"most diffusion-weighted volumes of {len(series)}"))
    else:
        selection.append(("dwi", chosen.path.name, "the only candidate"))
    direction = _phase_encoding(root, chosen)
    b0_series = [f for f in weighted[1:] if _only_b0(tables[f.path][0]) and _phase_encoding(root, f) == direction]
    for f in b0_series:
        selection.append(("dwi_b0", f.path.name, "b=0 series with the same phase encoding: merged"))
    reverse = next((f.path for f in weighted[1:] if f not in b0_series), None)
    return Dwi(chosen.path, bval, bvec, reverse, tuple(f.path for f in b0_series))


def _only_b0(bval: Path | None) -> bool:
    """Whether a .bval holds b=0 volumes only (False when absent or unreadable)."""
    try:
        values = [float(b) for b in bval.read_text().split()] if bval is not None else []
    except (OSError, ValueError):
        return False
    return bool(values) and max(values) <= _MIN_B


def _phase_encoding(root: Path, series: _File) -> str | None:
    """A series' phase-encoding direction: ``PhaseEncodingDirection`` of its sidecar, else its ``dir`` label."""
    fields = _sidecar_fields(inherited(root, series, ".json"))
    return str(fields.get("PhaseEncodingDirection") or series.entities.get("dir") or "") or None


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


def _read_sessions_tsv(path: Path) -> dict[str | None, dict[str, Any]]:
    """session label -> its row of ``sub-<s>_sessions.tsv`` (empty when absent): ``acq_time``,
    ``treatment_start``, and the clinical columns ``relapses``, ``edss``, ``treatment`` (each None when absent or
    ``n/a``), with the row's ``line``; a value the columns cannot hold is a one-line error naming the line."""
    if not path.is_file():
        return {}
    rows = _read_tsv(path)
    if rows and "session_id" not in rows[0]:
        raise MsqmriInputError(path, "missing the session_id column")
    table: dict[str | None, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=2):
        label = (row["session_id"] or "").strip().removeprefix("ses-")
        columns = ("acq_time", "treatment_start", "relapses", "edss", "treatment")
        cells = {column: (row.get(column) or "").strip() for column in columns}
        table[label] = {
            **{column: _parse_time(path, number, column, cells[column]) for column in ("acq_time", "treatment_start")},
            "relapses": _parse_count(path, number, cells["relapses"]),
            "edss": _parse_edss(path, number, cells["edss"]),
            "treatment": None if cells["treatment"].lower() in _MISSING else cells["treatment"],
            "line": number,
        }
    return table


def _parse_count(path: Path, line: int, value: str) -> int | None:
    """A relapse count: a whole number >= 0 (None when missing)."""
    if value.lower() in _MISSING:
        return None
    try:
        count = float(value)
    except ValueError:
        count = -1.0
    if count < 0 or count != int(count):
        raise MsqmriInputError(path, f"line {line}: relapses {value!r} is not a count (a whole number >= 0)")
    return int(count)


def _parse_edss(path: Path, line: int, value: str) -> float | None:
    """An EDSS score: 0 to 10 in steps of 0.5 (None when missing)."""
    if value.lower() in _MISSING:
        return None
    try:
        score = float(value)
    except ValueError:
        score = -1.0
    if not 0 <= score <= 10 or score * 2 != int(score * 2):
        raise MsqmriInputError(path, f"line {line}: edss {value!r} is not an EDSS score (0 to 10 in steps of 0.5)")
    return score


def _sidecar_fields(sidecar: Path | None) -> dict:
    """A JSON sidecar's fields (empty when absent or unreadable; the input check reports a bad one)."""
    if sidecar is None:
        return {}
    try:
        fields = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def _session_date(
    base: Path, subject: str, session: str | None, t1w: Path, sidecar: Path | None, listed: datetime | None
) -> tuple[datetime | None, str | None]:
    """The session's date and its source (see the module docstring)."""
    if listed is not None:
        return listed, "sessions.tsv"
    scans = base / f"{entity_prefix(subject, session)}_scans.tsv"
    if scans.is_file():
        for number, row in enumerate(_read_tsv(scans), start=2):
            if (row.get("filename") or "").strip() == f"anat/{t1w.name}":
                when = _parse_time(scans, number, "acq_time", (row.get("acq_time") or "").strip())
                if when is not None:
                    return when, "scans.tsv"
    value = _sidecar_fields(sidecar).get("AcquisitionDateTime")
    if isinstance(value, str) and value.strip():
        return _parse_time(sidecar, 0, "AcquisitionDateTime", value.strip()), "sidecar"
    return None, None


def _parse_time(path: Path, line: int, column: str, value: str) -> datetime | None:
    if value.lower() in _MISSING:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        where = f"line {line}: " if line else ""
        raise MsqmriInputError(path, f"{where}{column} {value!r} is not an ISO 8601 date") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _read_participants(path: Path, warnings: list[str]) -> dict[str, dict[str, float | str | None]]:
    """participant label -> {age, sex, site, age_note} from participants.tsv (empty when absent); ages that are
    not plain numbers are read as :func:`read_age` says, with one warning for the file."""
    if not path.is_file():
        return {}
    table, odd = {}, []
    for row in _read_tsv(path):
        label = (row.get("participant_id") or "").strip().removeprefix("sub-")
        age, note = read_age(row.get("age"))
        if note is not None:
            odd.append((row.get("age") or "").strip())
        table[label] = {"age": age, "sex": _text(row.get("sex")), "site": _text(row.get("site")), "age_note": note}
    if odd:
        examples = ", ".join(repr(v) for v in sorted(set(odd))[:3])
        warnings.append(
            f"{path}: column age: {len(odd)} value(s) not plain numbers ({examples}): a bin read as its "
            "midpoint, a top-coded value as its bound, anything else as n/a (age_note in sessions.tsv)"
        )
    return table


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value.lower() in _MISSING else value


def read_age(value: str | None) -> tuple[float | None, str | None]:
    """An age from participants.tsv and how it was read: a number as it is (note None); a bin ``35-40`` as its
    midpoint (37.5, note "bin 35-40"); a top-coded ``89+`` as its bound (89, note "top-coded 89+"); anything
    else as missing (note "not a number: ...")."""
    text = _text(value)
    if text is None:
        return None, None
    try:
        return float(text), None
    except ValueError:
        pass
    if match := _AGE_BIN_RE.fullmatch(text):
        low, high = (float(g) for g in match.groups())
        return (low + high) / 2.0, f"bin {text}"
    if match := _AGE_TOP_RE.fullmatch(text):
        return float(match.group(1)), f"top-coded {text}"
    return None, f"not a number: {text}"
