"""Measure each cluster rule's wall time and peak memory on a 1 mm subject, and derive its SLURM request.

    python benchmarks/resources.py [--workdir DIR] [--cores 2] [--write workflow/resources.yaml]

Builds (or reuses) a 1 mm phantom subject with two sessions and every modality (T1w, FLAIR, MT pair,
8-echo GRE, 2 mm DWI), runs the participant and group stages through ``msqmri`` (both PBVC methods), and
reads the ``benchmark:`` record Snakemake writes for every job (``logs/<rule>/...benchmark.tsv``: wall
seconds, peak RSS of the job's process tree). Prints one row per rule: jobs, slowest job, largest peak,
and the request derived from them (memory 1.5 x peak + 300 MB, time 3 x the slowest job, at least
5 min; both times ``attempt`` on a retry). ``--write`` saves the requests where the workflow reads them.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

HEADER = """\
# Cluster resources of each rule, measured by benchmarks/resources.py on a 1 mm phantom subject
# (2 sessions, every modality, both PBVC methods, {cores} cores, ITK threads 1): memory = 1.5 x the
# largest peak RSS + 300 MB, runtime (minutes) = 3 x the slowest job, at least 5. The rules ask for
# `attempt` times these on a retry (--retries), so a job killed for memory or time gets room.
# Regenerate after changing an algorithm: python benchmarks/resources.py --write workflow/resources.yaml
"""


def build(workdir: Path) -> Path:
    root = workdir / "bids"
    if not (root / "sourcedata" / "ground_truth" / "pbvc.tsv").is_file():
        from msqmri.phantom import CohortSpec, generate_cohort

        generate_cohort(root, CohortSpec(n_subjects=1, n_sessions=2, resolution=1.0, orientations=("RAS",), seed=3))
    return root


def run(bids: Path, out: Path, cores: int) -> None:
    for stage in ("participant", "group"):
        command = [
            sys.executable,
            "-m",
            "msqmri",
            str(bids),
            str(out),
            stage,
            "--cores",
            str(cores),
            "--config",
            "pbvc_methods=[siena,jacobian]",
        ]
        subprocess.run(command, check=True)


def records(out: Path) -> pd.DataFrame:
    """One row per job: rule, wall seconds, peak RSS (MB)."""
    rows = []
    for path in sorted((out / "logs").rglob("*.benchmark.tsv")):
        record = pd.read_csv(path, sep="\t").iloc[-1]
        rule = path.relative_to(out / "logs").parts[0]
        rows.append({"rule": rule, "s": float(record["s"]), "max_rss_mb": float(record["max_rss"])})
    if not rows:
        raise SystemExit(f"no benchmark records under {out / 'logs'}")
    return pd.DataFrame(rows)


def requests(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, slowest job, largest peak, and the derived mem_mb and runtime (minutes)."""
    table = jobs.groupby("rule").agg(jobs=("s", "size"), max_s=("s", "max"), max_rss_mb=("max_rss_mb", "max"))
    table["mem_mb"] = [100 * math.ceil((1.5 * rss + 300) / 100) for rss in table.max_rss_mb]
    table["runtime"] = [max(5, math.ceil(3 * s / 60)) for s in table.max_s]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("bench-resources"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--write", type=Path, help="save the requests (workflow/resources.yaml)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bids = build(args.workdir)
    print(f"phantom ready in {time.perf_counter() - start:.0f} s")
    out = args.workdir / "derivatives"
    start = time.perf_counter()
    run(bids, out, args.cores)
    print(f"participant + group stages: {time.perf_counter() - start:.0f} s on {args.cores} cores")
    table = requests(records(out))
    print(table.to_markdown(floatfmt=".0f"))
    if args.write:
        rules = {rule: {"mem_mb": int(row.mem_mb), "runtime": int(row.runtime)} for rule, row in table.iterrows()}
        args.write.write_text(HEADER.format(cores=args.cores) + yaml.safe_dump({"rules": rules}, sort_keys=True))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
