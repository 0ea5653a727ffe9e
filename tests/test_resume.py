"""Resuming after an interrupted run: the lock of a killed run is released, a live run's is not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from msqmri.cli.locks import RUN_RECORD, release_stale_lock
from msqmri.core.io import MsqmriError, save_json


def _locked(out: Path, pid: int | None, host: str | None = None, started: float | None = None) -> list[str]:
    (out / ".snakemake" / "locks").mkdir(parents=True)
    (out / ".snakemake" / "locks" / "0.output.lock").write_text("x")
    if pid is not None:
        record = {"pid": pid, "host": host or socket.gethostname(), "stage": "participant", "started": started}
        save_json(record, out / RUN_RECORD)
    # stands in for Snakemake: with --unlock it removes the locks, as Snakemake does
    script = (
        f"import shutil, sys; assert sys.argv[-1] == '--unlock'; shutil.rmtree({str(out / '.snakemake' / 'locks')!r})"
    )
    return [sys.executable, "-c", script]


def test_lock_of_a_killed_run_is_released(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Gone, a zombie (killed, its parent killed too, not yet reaped), or the pid reused by another process."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; never waited for
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    for name, pid, started in (("gone", dead.pid, None), ("zombie", zombie.pid, None), ("reused", os.getpid(), 1.0)):
        command = _locked(tmp_path / name, pid, started=started)
        release_stale_lock(tmp_path / name, command)
        assert not (tmp_path / name / ".snakemake" / "locks").exists(), name
        assert f"removed the lock of an interrupted run (pid {pid})" in capsys.readouterr().err
    zombie.wait()


def test_lock_of_a_live_or_unknown_run_is_kept(tmp_path: Path) -> None:
    for name, pid, host, words in (
        ("live", None, None, "in use by msqmri pid"),
        ("unknown", None, None, "--unlock"),
        ("remote", 1, "elsewhere", "msqmri on elsewhere"),
    ):
        out = tmp_path / name
        command = _locked(out, os.getpid() if name == "live" else pid, host)
        with pytest.raises(MsqmriError, match=words):
            release_stale_lock(out, command)
        assert (out / ".snakemake" / "locks" / "0.output.lock").is_file()
    release_stale_lock(tmp_path / "none", ["false"])  # no lock: nothing to do
