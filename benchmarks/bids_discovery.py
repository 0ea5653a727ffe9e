"""Time msqmri.inputs.bids.discover() against pybids' BIDSLayout on a fake BIDS tree.

    python benchmarks/bids_discovery.py [--subjects 300] [--sessions 3] [--repeat 3]

The tree has empty image files with the names of every modality msqmri reads (T1w, FLAIR, MT pair,
three MEGRE echoes with sidecars, DWI with gradient tables, sessions.tsv, participants.tsv).
pybids is optional: when it is not importable only discover() is timed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from msqmri.inputs.bids import discover

ANAT = (
    "T1w.nii.gz",
    "FLAIR.nii.gz",
    "mt-on_MTR.nii.gz",
    "mt-off_MTR.nii.gz",
    *(f"echo-{n}_MEGRE.{ext}" for n in (1, 2, 3) for ext in ("nii.gz", "json")),
)
DWI = ("dwi.nii.gz", "dwi.bval", "dwi.bvec")


def build_tree(root: Path, n_subjects: int, n_sessions: int) -> int:
    """Write the fake dataset; return the number of files."""
    (root / "dataset_description.json").write_text(json.dumps({"Name": "bench", "BIDSVersion": "1.10.0"}))
    participants = ["participant_id\tage\tsex"]
    count = 2
    for s in range(1, n_subjects + 1):
        sub = f"sub-{s:03d}"
        participants.append(f"{sub}\t{30 + s % 40}\t{'FM'[s % 2]}")
        sessions = ["session_id\tacq_time"]
        for t in range(1, n_sessions + 1):
            ses = f"ses-{t:02d}"
            sessions.append(f"{ses}\t{2018 + t}-03-01T10:00:00")
            for datatype, names in (("anat", ANAT), ("dwi", DWI)):
                folder = root / sub / ses / datatype
                folder.mkdir(parents=True)
                for name in names:
                    (folder / f"{sub}_{ses}_{name}").write_text('{"EchoTime": 0.01}' if name.endswith(".json") else "")
                count += len(names)
        (root / sub / f"{sub}_sessions.tsv").write_text("\n".join(sessions) + "\n")
        count += 1
    (root / "participants.tsv").write_text("\n".join(participants) + "\n")
    return count


def best_of(repeat: int, func: Callable[[], object]) -> float:
    """Fastest wall-clock time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n_files = build_tree(root, args.subjects, args.sessions)
        print(f"fake BIDS tree: {args.subjects} subjects x {args.sessions} sessions, {n_files} files")
        ours = best_of(args.repeat, partial(discover, root))
        rows = [("msqmri.inputs.bids.discover", ours)]
        try:
            from bids import BIDSLayout, BIDSLayoutIndexer
        except ImportError:
            print("pybids is not installed: timing msqmri.inputs.bids.discover only")
        else:
            for label, metadata in (("", True), (", no metadata", False)):
                indexer = BIDSLayoutIndexer(validate=False, index_metadata=metadata)
                seconds = best_of(args.repeat, partial(BIDSLayout, root, validate=False, indexer=indexer))
                rows.append((f"pybids BIDSLayout{label}", seconds))
    print(f"{'parser':<34}{'best of ' + str(args.repeat) + ' (s)':>16}{'vs discover':>14}")
    for name, seconds in rows:
        print(f"{name:<34}{seconds:>16.3f}{seconds / ours:>13.1f}x")


if __name__ == "__main__":
    main()
