"""The directives of a step's Snakemake rule, derived from its declaration (``workflow/rules/steps.smk`` loops over
:data:`msqmri.workflow.steps.STEPS` and calls these)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snakemake.exceptions import WorkflowError
from snakemake.io import report

from msqmri.core.io import MsqmriError
from msqmri.workflow.jobs import Job, Run
from msqmri.workflow.step import Step

#: where a step's log and benchmark record go, by scope (``logs/<rule>/...``)
LOG_PATTERNS = {
    "session": "logs/{rule}/{{sesdir}}/{{stem}}",
    "pair": "logs/{rule}/{{subject}}/{{pair}}",
    "subject": "logs/{rule}/{{subject}}",
    "dataset": "logs/{rule}",
}
#: the report captions' folder, relative to the rules' folder
CAPTIONS = "../report"


def _job(run: Run, step: Step, wildcards: Mapping[str, str]) -> Job:
    """The job; a wildcard the dataset does not have is a one-line workflow error."""
    try:
        return run.job(step.scope, wildcards)
    except MsqmriError as exc:
        raise WorkflowError(f"msqmri: {exc}") from None


def inputs(run: Run, step: Step) -> Callable[[Mapping[str, str]], dict[str, Any]]:
    """The rule's input function: the step's wiring for the job of these wildcards."""

    def function(wildcards: Mapping[str, str]) -> dict[str, Any]:
        try:
            return dict(step.wiring(_job(run, step, wildcards)))
        except MsqmriError as exc:
            raise WorkflowError(f"msqmri: {exc}") from None

    return function


def outputs(run: Run, step: Step) -> dict[str, Any]:
    """The rule's named outputs under OUTPUT_DIR, those shown in Snakemake's report wrapped for it."""
    shown = {item.key: item for item in step.reports}
    paths: dict[str, Any] = {}
    for key, pattern in step.outputs.items():
        path = run.out(pattern)
        if key in shown:
            item = shown[key]
            path = report(
                path, caption=f"{CAPTIONS}/{item.caption}", category=item.category, subcategory=item.subcategory
            )
        paths[key] = path
    return paths


def params(run: Run, step: Step) -> dict[str, Any]:
    """The rule's parameters: config values, functions of the job, and the job's ``label`` for error lines (a
    ``threads`` parameter is the job's thread count, passed by the adapter)."""
    values: dict[str, Any] = {"label": lambda wildcards: _job(run, step, wildcards).label}
    for name, param in step.params.items():
        if param.config is not None:
            values[name] = run.config[param.config]
        elif param.job is not None:
            values[name] = (lambda p: lambda wildcards: p.job(_job(run, step, wildcards)))(param)
    return values


def threads(run: Run, step: Step) -> int:
    """The step's fixed thread count, else the configured ITK threads for an ITK step, else 1."""
    if step.threads is not None:
        return step.threads
    return int(run.config["itk_threads"]) if step.itk else 1


def resources(step: Step, measured: Mapping[str, Mapping[str, int]]) -> dict[str, Callable[..., int]]:
    """Cluster resources of a non-local step as measured on a 1 mm session or pair (``workflow/resources.yaml``,
    written by benchmarks/resources.py); a retry (``--retries``) asks for ``attempt`` times as much memory and
    time, so a job killed for either is resubmitted with room."""
    if step.local:
        return {}
    need = measured[step.name]
    return {
        "mem_mb": lambda wildcards, attempt: need["mem_mb"] * attempt,
        "runtime": lambda wildcards, attempt: need["runtime"] * attempt,
    }


def log(run: Run, step: Step, suffix: str = "log") -> str:
    """The job's log (or, with ``suffix="benchmark.tsv"``, its time and memory record)."""
    return run.out(f"{LOG_PATTERNS[step.scope].format(rule=step.name)}.{suffix}")
