"""The output directory's lock: who holds it, and releasing the lock of a run that was killed.

Snakemake locks OUTPUT_DIR while it runs and leaves the lock behind when it is killed. msqmri records the
Snakemake process of its run (:data:`RUN_RECORD`: pid, start time, host, stage) while it runs, so that a rerun
can tell a killed run (its process gone from this host) from a live one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil

from msqmri.core.io import MsqmriError, load_json, save_json

RUN_RECORD = "logs/msqmri_run.json"  # pid and host of the msqmri run using OUTPUT_DIR


def record_run(output_dir: Path, pid: int, stage: str) -> None:
    """Record the Snakemake process ``pid`` that holds OUTPUT_DIR's lock."""
    started = psutil.Process(pid).create_time()
    save_json({"pid": pid, "started": started, "host": socket.gethostname(), "stage": stage}, output_dir / RUN_RECORD)


def release_stale_lock(output_dir: Path, command: list[str]) -> None:
    """Unlock OUTPUT_DIR when the Snakemake process of the msqmri run that locked it was killed (it is gone
    from this host), so that a rerun resumes; refuse, in one line, when the lock belongs to a live or
    unknown run."""
    if not any((output_dir / ".snakemake" / "locks").glob("*")):
        return
    record = output_dir / RUN_RECORD
    owner = load_json(record) if record.is_file() else {}
    if owner.get("host") != socket.gethostname():
        where = f"msqmri on {owner['host']}" if owner.get("host") else "another Snakemake run"
        raise MsqmriError(f"{output_dir} is locked by {where}; if that run is no longer running, rerun with --unlock")
    if not _alive(int(owner["pid"]), owner.get("started")):
        subprocess.run([*command, "--unlock"], capture_output=True, check=False)
        print(f"msqmri: notice: removed the lock of an interrupted run (pid {owner['pid']}); resuming", file=sys.stderr)
        return
    raise MsqmriError(f"{output_dir} is in use by msqmri pid {owner['pid']} ({owner.get('stage')} stage)")


def _alive(pid: int, started: float | None) -> bool:
    """Whether the recorded process still runs: same pid and start time (not a reused pid), not a zombie."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and (started is None or process.create_time() == started)
    except psutil.NoSuchProcess:
        return False
