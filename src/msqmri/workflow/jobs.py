"""What a job of the workflow refers to, found from its wildcards: a session, a session pair, a subject or the
dataset, with the run's settings and output paths. The steps' input functions (their ``wiring``) and job
parameters are functions of a :class:`Job`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from msqmri.core.io import MsqmriError
from msqmri.inputs.bids import Dataset, Session, Subject, session_pairs
from msqmri.workflow import layout


@dataclass(frozen=True)
class Run:
    """One workflow run: the discovered dataset, the validated config and the output directory."""

    dataset: Dataset
    config: Mapping[str, Any]
    output_dir: str

    @cached_property
    def sessions(self) -> dict[tuple[str, ...], Session]:
        return {tuple(layout.session_wildcards(s).values()): s for s in self.dataset.sessions()}

    @cached_property
    def pairs(self) -> dict[tuple[str, ...], tuple[Session, Session]]:
        return {
            tuple(layout.pair_wildcards(a, b).values()): (a, b)
            for subject in self.dataset.subjects
            for a, b in session_pairs(subject.sessions)
        }

    @property
    def pbvc_methods(self) -> tuple[str, ...]:
        return tuple(self.config["pbvc_methods"])

    def out(self, path: str) -> str:
        """A path under the output directory."""
        return os.path.join(self.output_dir, path)

    def job(self, scope: str, wildcards: Mapping[str, str]) -> Job:
        """The job of a step of ``scope`` with these wildcards (one-line :class:`MsqmriError` when the dataset
        has no such session, pair or subject)."""
        where = self.config["bids_dir"]
        if scope == "session":
            key = (wildcards["sesdir"], wildcards["stem"])
            if key not in self.sessions:
                raise MsqmriError(f"no usable session {wildcards['sesdir']} in {where}")
            return Job(self, dict(wildcards), session=self.sessions[key])
        if scope == "pair":
            key = (wildcards["subject"], wildcards["pair"])
            if key not in self.pairs:
                raise MsqmriError(f"no session pair {wildcards['pair']} in {where}")
            return Job(self, dict(wildcards), pair=self.pairs[key])
        if scope == "subject":
            for subject in self.dataset.subjects:
                if subject.participant_id == wildcards["subject"]:
                    return Job(self, dict(wildcards), subject=subject)
            raise MsqmriError(f"no usable subject {wildcards['subject']} in {where}")
        return Job(self, {})


@dataclass(frozen=True)
class Job:
    """One job: its run, wildcards and the session, session pair or subject they name."""

    run: Run
    wildcards: Mapping[str, str]
    session: Session | None = None
    pair: tuple[Session, Session] | None = None
    subject: Subject | None = None

    @property
    def config(self) -> Mapping[str, Any]:
        return self.run.config

    def out(self, pattern: str) -> str:
        """An output path of this job's session, pair or subject (``pattern`` from :mod:`msqmri.workflow.layout`)."""
        return self.run.out(pattern.format(**self.wildcards))

    def outs(self, patterns: Mapping[str, str]) -> dict[str, str]:
        """:meth:`out` of every pattern, by key."""
        return {key: self.out(pattern) for key, pattern in patterns.items()}

    def sides(self, patterns: Mapping[str, str]) -> dict[str, str]:
        """Session outputs (``patterns``: key -> pattern) of both sessions of a pair, as ``from_<key>`` /
        ``to_<key>`` (the earlier and the later session)."""
        paths = {}
        for side, session in zip(("from", "to"), self.pair, strict=True):
            wildcards = layout.session_wildcards(session)
            paths |= {f"{side}_{key}": self.run.out(p.format(**wildcards)) for key, p in patterns.items()}
        return paths

    def every_session(self, pattern: str, where: Callable[[Session], bool] | None = None) -> list[str]:
        """``pattern`` for every usable session of the dataset (or of this job's subject), or every one ``where``
        holds for."""
        sessions = self.subject.sessions if self.subject is not None else self.run.dataset.sessions()
        chosen = [s for s in sessions if where is None or where(s)]
        return [self.run.out(pattern.format(**layout.session_wildcards(s))) for s in chosen]

    def every_pair(self, pattern: str) -> list[str]:
        """``pattern`` for every session pair of the dataset."""
        return [self.run.out(pattern.format(**layout.pair_wildcards(a, b))) for a, b in self.run.pairs.values()]

    def every_subject(self, pattern: str) -> list[str]:
        """``pattern`` for every subject."""
        return [self.run.out(pattern.format(subject=s.participant_id)) for s in self.run.dataset.subjects]

    @property
    def label(self) -> str:
        """``sub-01 ses-01``, ``sub-01 ses-01 -> ses-02``, ``sub-01`` or ``dataset-level``, for messages."""
        if self.session is not None:
            return self.session.label
        if self.pair is not None:
            return f"{self.pair[0].label} -> {self.pair[1].session_id}"
        return self.subject.participant_id if self.subject is not None else "dataset-level"

    @property
    def ids(self) -> dict[str, Any]:
        """Table ids: a session's participant and session ids, or a pair's and its interval in days (None
        without dates)."""
        if self.session is not None:
            return {"participant_id": self.session.participant_id, "session_id": self.session.session_id}
        first, second = self.pair
        interval = None
        if first.acq_time is not None and second.acq_time is not None:
            interval = (second.acq_time - first.acq_time).total_seconds() / 86400.0
        return {
            "participant_id": first.participant_id,
            "session_from": first.session_id,
            "session_to": second.session_id,
            "interval_days": interval,
        }


def session_days(sessions: Sequence[Session]) -> list[float | None]:
    """Each session's day since the first one (None without acq_time)."""
    first = sessions[0].acq_time
    return [
        None if s.acq_time is None or first is None else (s.acq_time - first).total_seconds() / 86400.0
        for s in sessions
    ]
