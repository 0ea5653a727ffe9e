"""The Snakemake script of every msqmri rule: runs the library call its step declares (msqmri.workflow.steps)."""

from msqmri.workflow.adapter import run_step

run_step(globals()["snakemake"])  # injected by Snakemake's script directive
