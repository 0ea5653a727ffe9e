"""The benchmarks' way of running msqmri's workflow: Snakemake on chosen targets of a phantom cohort."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from msqmri.cli.run import find_snakefile


def run_targets(bids: Path, out: Path, targets: Iterable[Path], cores: int, flags: Iterable[str] = ()) -> float:
    """Snakemake on ``targets`` (under ``out``) of the dataset ``bids`` with the SIENA PBVC only, resuming
    incomplete jobs; extra Snakemake ``flags`` go before the config. Seconds taken; a failure ends the
    benchmark with the tail of Snakemake's output."""
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *map(str, targets),
        "--snakefile",
        str(find_snakefile()),
        "--directory",
        str(out),
        "--cores",
        str(cores),
        "--rerun-incomplete",
        *flags,
        "--config",
        f"bids_dir={bids}",
        f"output_dir={out}",
        "pbvc_methods=[siena]",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"workflow failed on {bids}:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start
