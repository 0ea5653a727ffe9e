"""Persistent lesion identities across a subject's sessions, and the per-session counts they allow.

A lesion keeps its number from the session it first appears in to the last (so that lesion 7 can be
followed from baseline to year 5). Session by session, the lesions of the later session inherit the
identity of the earlier lesions their cluster of the consecutive pair holds
(:mod:`msqmri.lesions.longitudinal`): one to one, it is the same lesion; when several earlier lesions
merged, the merged lesion keeps the oldest (smallest) identity and records the others in
``merged_from``; when a lesion split, its largest part keeps the identity and the others get new ones
that record ``split_from``. A lesion with no earlier lesion gets the next free identity. Chronic black
holes are black holes that were already black holes 6 months or more earlier (Sahraian et al.,
Neurology 2010).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: a black hole seen this many days earlier too is chronic
CHRONIC_DAYS = 182.0


@dataclass(frozen=True)
class Identity:
    """The persistent identity of one lesion (a component of a session's lesion labels)."""

    session: str
    component: int
    lesion_id: int
    status: str  # "baseline" at the first session, else the lesion's status in the consecutive pair
    merged_from: tuple[int, ...] = ()
    split_from: int | None = None


@dataclass(frozen=True)
class PairCluster:
    """What tracking needs of a cluster of a consecutive pair: its lesions in each session and status."""

    status: str
    from_ids: tuple[int, ...]
    to_ids: tuple[int, ...]


def track(
    sessions: Sequence[str], volumes: Mapping[str, Mapping[int, float]], pairs: Sequence[Sequence[PairCluster]]
) -> list[Identity]:
    """Identities of every lesion of ``sessions`` (in time order). ``volumes[s]`` maps each component of
    session ``s`` to its volume; ``pairs[k]`` are the clusters of the pair (sessions[k], sessions[k + 1])."""
    identities = [Identity(sessions[0], c, k, "baseline") for k, c in enumerate(sorted(volumes[sessions[0]]), start=1)]
    next_id = len(identities) + 1
    for k, clusters in enumerate(pairs):
        previous = {i.component: i.lesion_id for i in identities if i.session == sessions[k]}
        session = sessions[k + 1]
        assigned: dict[int, Identity] = {}
        for cluster in clusters:
            parents = sorted({previous[c] for c in cluster.from_ids if c in previous})
            parts = sorted(cluster.to_ids, key=lambda c: (-volumes[session].get(c, 0.0), c))
            for j, component in enumerate(parts):
                if parents and j == 0:
                    assigned[component] = Identity(session, component, parents[0], cluster.status, tuple(parents[1:]))
                else:
                    assigned[component] = Identity(
                        session, component, next_id, cluster.status, split_from=parents[0] if parents else None
                    )
                    next_id += 1
        for component in sorted(set(volumes[session]) - set(assigned)):  # not in any cluster: a new lesion
            assigned[component] = Identity(session, component, next_id, "new")
            next_id += 1
        identities.extend(assigned[c] for c in sorted(assigned))
    return identities


def chronic_black_holes(
    identities: Sequence[Identity], black_hole: Mapping[tuple[str, int], bool], days: Mapping[str, float | None]
) -> dict[tuple[str, int], bool | None]:
    """For every (session, component): whether it is a black hole that was a black hole, under the same
    identity, at a session :data:`CHRONIC_DAYS` or more earlier (None where a date is missing)."""
    seen: dict[int, list[str]] = {}
    out: dict[tuple[str, int], bool | None] = {}
    for identity in identities:
        key = (identity.session, identity.component)
        earlier = seen.setdefault(identity.lesion_id, [])
        when = days.get(identity.session)
        if not black_hole.get(key, False):
            out[key] = False
        elif when is None or any(days.get(s) is None for s in earlier):
            out[key] = None
        else:
            out[key] = any(when - days[s] >= CHRONIC_DAYS for s in earlier)  # type: ignore[operator]
        if black_hole.get(key, False):
            earlier.append(identity.session)
    return out
