"""Helpers of the workflow tests: running msqmri and Snakemake, checking the maps of the tiny dataset."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import psutil
import pytest

from msqmri.cli.run import find_snakefile

#: a hang guard, not a speed check: the ms_layouts participant run took 897 s of it in a clean-clone CI run
TIMEOUT_S = 1800


def msqmri(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msqmri", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def snakemake(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Plain Snakemake on msqmri's Snakefile (``env``: variables added to the environment)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", find_snakefile(), "--directory", cwd, *args]
    return subprocess.run(
        list(map(str, command)),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def check_tensor_maps(stem: Path, bids: Path) -> None:
    """The tiny series' tensor (AD 1.6, RD 0.4 um^2/ms: FA 0.71, MD 0.8e-3) in T1w space, with sidecars."""
    fa = nib.load(f"{stem}_space-T1w_model-tensor_param-fa_dwimap.nii.gz")
    md = np.asarray(nib.load(f"{stem}_space-T1w_model-tensor_param-md_dwimap.nii.gz").dataobj)
    t1w = nib.load(str(bids / "sub-01" / "ses-01" / "anat" / "sub-01_ses-01_T1w.nii.gz"))
    assert fa.shape == t1w.shape and np.allclose(fa.affine, t1w.affine)
    brain = np.asarray(fa.dataobj) > 0
    assert 0.6 <= np.median(np.asarray(fa.dataobj)[brain]) <= 0.8
    assert 0.7e-3 <= np.median(md[brain]) <= 0.9e-3
    sidecar = json.loads(Path(f"{stem}_model-tensor_param-md_dwimap.json").read_text())
    assert sidecar["Units"] == "mm^2/s" and sidecar["Sources"] and sidecar["EstimationAlgorithm"]


def check_quantitative_maps(stem: Path, r2star_fit: str) -> None:
    """The tiny dataset's MTR (40 pu) and R2* (20 1/s) in T1w space, on the brain mask's grid, with sidecars."""
    brain_img = nib.load(f"{stem}_desc-brain_mask.nii.gz")
    brain = np.asarray(brain_img.dataobj) > 0
    for suffix, truth, units in (("MTRmap", 40.0, "percent"), ("R2starmap", 20.0, "1/s")):
        img = nib.load(f"{stem}_space-T1w_{suffix}.nii.gz")
        assert img.shape == brain_img.shape and np.allclose(img.affine, brain_img.affine)
        assert np.median(np.asarray(img.dataobj)[brain]) == pytest.approx(truth, rel=0.02), suffix
        assert json.loads(Path(f"{stem}_{suffix}.json").read_text())["Units"] == units
    assert r2star_fit in json.loads(Path(f"{stem}_R2starmap.json").read_text())["EstimationAlgorithm"]


def render_in_chromium(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """Open ``page`` in headless Chromium: (the DOM after the load event, the console messages logged).
    Skips where Chromium is not installed, unless MSQMRI_REQUIRE_CHROMIUM is set (as in CI)."""
    browser = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    if browser is None:
        if os.environ.get("MSQMRI_REQUIRE_CHROMIUM"):
            pytest.fail("Chromium is required (MSQMRI_REQUIRE_CHROMIUM) but not installed")
        pytest.skip("Chromium is not installed")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def check_report_renders(page: Path, tmp_path: Path) -> str:
    """A report opens from disk with no console message, every embedded image decodes and nothing is
    fetched from elsewhere (self-contained); returns its DOM."""
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), f"{page} refers to a remote resource"
    dom, console = render_in_chromium(page, tmp_path)
    assert console == [], console
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ready="yes"' in body, body
    total, decoded = re.search(r'data-images="(\d+)/(\d+)"', body).groups()
    assert total == decoded, f"{page}: only {decoded} of {total} images decode"
    return dom


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` as a read-only directory: a read-only bind mount when root (root ignores permission bits),
    else the tree with its write bits removed; restored afterwards. Where root cannot bind-mount, the test
    skips, unless ``MSQMRI_REQUIRE_READ_ONLY=1`` (set by .ci/run): then it fails."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        try:
            yield path
        finally:
            for p, mode in reversed(modes.items()):
                p.chmod(mode)
        return
    mount = path.with_name(f"{path.name}-ro")
    mount.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(path), str(mount)], check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        if os.environ.get("MSQMRI_REQUIRE_READ_ONLY") == "1":
            pytest.fail(f"MSQMRI_REQUIRE_READ_ONLY=1 but no read-only bind mount here: {exc}")
        pytest.skip(f"cannot make a read-only bind mount here: {exc}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True, capture_output=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, capture_output=True)
        mount.rmdir()


def running_job(pid: int, rule: str, timeout: float = 300.0) -> psutil.Process:
    """The process of the first job of ``rule`` (e.g. "structural") started under process ``pid``: the one
    running Snakemake's copy of scripts/step.py made for that rule's job (its log is under logs/<rule>/)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                scripts = [Path(child.cwd()) / part for part in child.cmdline() if part.endswith("step.py")]
                if any(f"/logs/{rule}/" in script.read_text(errors="replace") for script in scripts):
                    return child
            except (psutil.NoSuchProcess, FileNotFoundError):
                continue
        time.sleep(0.2)
    raise AssertionError(f"no {rule} job started under pid {pid} within {timeout} s")
