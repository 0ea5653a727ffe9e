"""Resuming after an interrupted run: the lock of a killed run is released, a live run's is not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from msqmri.cli import RUN_RECORD, release_stale_lock
from msqmri.io import MsqmriError, save_json


def _locked(out: Path, pid: int | None, host: str | None = None) -> list[str]:
    (out / ".snakemake" / "locks").mkdir(parents=True)
    (out / ".snakemake" / "locks" / "0.output.lock").write_text("x")
    if pid is not None:
        save_json({"pid": pid, "host": host or socket.gethostname(), "stage": "participant"}, out / RUN_RECORD)
    # stands in for Snakemake: with --unlock it removes the locks, as Snakemake does
    script = f"import shutil, sys; assert sys.argv[-1] == '--unlock'; shutil.rmtree({str(out / '.snakemake' / 'locks')!r})"
    return [sys.executable, "-c", script]


def test_lock_of_a_killed_run_is_released(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    command = _locked(tmp_path, dead.pid)
    release_stale_lock(tmp_path, command)
    assert not (tmp_path / ".snakemake" / "locks").exists()
    assert f"removed the lock of an interrupted run (pid {dead.pid})" in capsys.readouterr().err


def test_lock_of_a_live_or_unknown_run_is_kept(tmp_path: Path) -> None:
    for name, pid, host, words in (("live", None, None, "in use by msqmri pid"), ("unknown", None, None, "--unlock"),
                                   ("remote", 1, "elsewhere", "msqmri on elsewhere")):  # fmt: skip
        out = tmp_path / name
        command = _locked(out, os.getpid() if name == "live" else pid, host)
        with pytest.raises(MsqmriError, match=words):
            release_stale_lock(out, command)
        assert (out / ".snakemake" / "locks" / "0.output.lock").is_file()
    release_stale_lock(tmp_path / "none", ["false"])  # no lock: nothing to do
