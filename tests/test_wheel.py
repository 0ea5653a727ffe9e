"""The wheel users install: built from the repository, installed without the source tree, it runs the command
and its bundled workflow (``msqmri --help`` and a dry run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_installed_wheel_runs_help_and_a_dry_run(tiny_bids: Path, tmp_path: Path) -> None:
    dist, site = tmp_path / "dist", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("msqmri-*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    # the wheel's package before the editable install's, run from outside the repository
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    where = run("-c", "import msqmri.cli.run as r; print(r.__file__); print(r.find_snakefile())")
    module, snakefile = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(snakefile) == site / "msqmri" / "_workflow" / "Snakefile"
    shown = run("-m", "msqmri", "--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: msqmri BIDS_DIR OUTPUT_DIR")
    dry = run("-m", "msqmri", str(tiny_bids), str(tmp_path / "out"), "participant", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    planned = dry.stdout + dry.stderr
    assert "structural" in planned and "siena" in planned and "Traceback" not in planned
