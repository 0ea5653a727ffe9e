"""Running a step's library call from its Snakemake rule (``scripts/step.py``, the one script every rule runs).

:func:`run_step` finds the rule's :class:`~msqmri.workflow.step.Step` and calls its library function with
the job's inputs, outputs and parameters, inside :func:`report_errors`: an :class:`MsqmriError` becomes ONE
line ``msqmri: error: sub-<s> ses-<t>: <file>: <reason>`` on stderr and in the job's log, and the job exits 1
without a traceback; an unexpected exception is reported the same way, with its traceback kept in the log only.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from msqmri.core.io import MsqmriError, private_tempdir

ERROR_PREFIX = "msqmri: error:"


@contextmanager
def report_errors(snakemake: Any) -> Iterator[None]:
    """Run the body of a script (its temporary files in a private directory, removed at the end); turn
    failures into one-line messages and exit status 1."""
    label = getattr(snakemake.params, "label", None) or snakemake.rule
    log = Path(snakemake.log[0]) if snakemake.log else None
    try:
        with private_tempdir():
            yield
    except MsqmriError as exc:
        _fail(f"{ERROR_PREFIX} {label}: {exc}", log)
    except Exception as exc:
        detail = traceback.format_exc()
        where = f"traceback in {log}" if log else "no log configured"
        _fail(f"{ERROR_PREFIX} {label}: internal error {type(exc).__name__}: {exc} ({where})", log, detail)
    else:
        if log:
            log.write_text(f"msqmri: {snakemake.rule} done for {label}\n")


def _fail(line: str, log: Path | None, detail: str = "") -> None:
    line = " ".join(line.split())
    print(line, file=sys.stderr)
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(detail + line + "\n")
    sys.exit(1)


def set_itk_threads(snakemake: Any) -> None:
    """ANTs/ITK threads of the job from the config (``itk_threads``; 1 gives the same numbers on every
    run). Call it before anything imports ants: ITK reads the setting once, at import."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(snakemake.config["itk_threads"])


def run_step(snakemake: Any) -> None:
    """Run the job of the rule ``snakemake.rule``: its step's library call with the job's files and parameters
    (a step's ``threads`` parameter is the job's thread count)."""
    from msqmri.workflow.steps import STEPS

    step = STEPS[snakemake.rule]
    if step.itk:
        set_itk_threads(snakemake)
    inputs = {key: list(value) if step.inputs[key].many else str(value) for key, value in snakemake.input.items()}
    params = {name: snakemake.threads if name == "threads" else snakemake.params[name] for name in step.params}
    with report_errors(snakemake):
        step.run(inputs, dict(snakemake.output.items()), params)
