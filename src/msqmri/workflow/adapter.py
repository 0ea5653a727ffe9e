"""Error reporting for the thin Snakemake script adapters in ``scripts/``.

A script wraps its single library call in :func:`report_errors`. An :class:`MsqmriError`
becomes ONE line ``msqmri: error: sub-<s> ses-<t>: <file>: <reason>`` on stderr and in the
job's log, and the job exits 1 without a traceback; an unexpected exception is reported the
same way, with its traceback kept in the log only.
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
    except Exception as exc:  # noqa: BLE001 - a bug must still produce one readable line
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


def pair_inputs(inputs: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Split a pair job's named inputs ``from_<key>`` / ``to_<key>`` into one dict per session."""
    sides: dict[str, dict[str, str]] = {"from": {}, "to": {}}
    for name in inputs.keys():
        side, _, key = name.partition("_")
        if side in sides and key:
            sides[side][key] = inputs[name]
    return sides["from"], sides["to"]
