"""Running a BIDS-App stage through Snakemake: the command, the run with its progress, and the outcome.

Progress and failed jobs come from Snakemake's own logger interface (msqmri's logger plugin,
:mod:`snakemake_logger_plugin_msqmri`, writes them as JSON lines); Snakemake's output goes whole to
``OUTPUT_DIR/logs/snakemake_<stage>.log``. A failed job's one-line error is read from its own log, where the
job wrote it whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml
from snakemake.cli import parse_config
from snakemake.logging import format_percentage

from msqmri.cli.locks import RUN_RECORD, record_run, release_stale_lock
from msqmri.core.io import MsqmriError
from msqmri.inputs.bids import Dataset, discover
from msqmri.workflow import layout
from msqmri.workflow.adapter import ERROR_PREFIX

STAGES = ("participant", "group")
# Snakemake flags that only inspect the workflow: their output is shown as is and no outputs are expected.
INSPECTION_FLAGS = {
    "-n",
    "--dry-run",
    "--dryrun",
    "--lint",
    "--dag",
    "--rulegraph",
    "--filegraph",
    "--summary",
    "-S",
    "--detailed-summary",
    "-D",
    "--list-rules",
    "--list",
    "-l",
    "--list-target-rules",
    "--lt",
    "--unlock",
}
#: seconds between two looks at the run's progress
POLL_S = 0.5


def run_stage(
    bids_dir: Path,
    output_dir: Path,
    stage: str,
    *,
    participant_label: Sequence[str] | None = None,
    cores: str = "1",
    config: Sequence[str] = (),
    snakemake_flags: Sequence[str] = (),
    verbose: bool = False,
) -> int:
    """Run one BIDS-App stage through Snakemake and report; returns the exit status."""
    bids_dir, output_dir = bids_dir.resolve(), output_dir.resolve()
    try:
        snakefile = find_snakefile()
        settings = run_config(snakefile, config)
        dataset = discover(bids_dir, participant_label, settings.get("inputs"), settings["rebaseline_months"])
    except (MsqmriError, ValueError) as exc:
        return error(str(exc))
    for warning in (*map(str, dataset.unusable), *dataset.warnings):
        print(f"msqmri: warning: {warning}", file=sys.stderr)
    if not dataset.subjects:
        return error(f"{bids_dir}: no session with a usable T1w image")
    entries = [*config, f"bids_dir={bids_dir}", f"output_dir={output_dir}"]
    if participant_label:
        entries.append(f"participant_label=[{','.join(participant_label)}]")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        stage,
        "--snakefile",
        str(snakefile),
        "--directory",
        str(output_dir),
        "--cores",
        str(cores),
        "--rerun-incomplete",
        "--keep-going",
        *bundled_profile(snakemake_flags, snakefile),
        "--config",
        *entries,
    ]
    if INSPECTION_FLAGS & set(snakemake_flags):
        return subprocess.call(command)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        release_stale_lock(output_dir, command)
    except MsqmriError as exc:
        return error(str(exc))
    log = output_dir / "logs" / f"snakemake_{stage}.log"
    events = log.with_suffix(".events.jsonl")
    started = time.time()
    try:
        status = _run(
            [*command, "--logger", "msqmri", "--logger-msqmri-events", str(events)],
            log,
            events,
            stage,
            verbose,
            output_dir,
        )
    finally:
        (output_dir / RUN_RECORD).unlink(missing_ok=True)
    elapsed = time.time() - started
    targets = layout.stage_targets(stage, dataset, tuple(settings["pbvc_methods"]))
    missing = [path for path in targets if not (output_dir / path).exists()]
    if status == 0 and not missing:
        print(
            f"msqmri: {stage} stage done for {counts(dataset)} in {elapsed:.1f} s; outputs in {output_dir}",
            file=sys.stderr,
        )
        return 0
    for line in collect_errors(failed_job_logs(events)) or _tail(log):
        print(line, file=sys.stderr)
    print(
        f"msqmri: {stage} stage failed for {counts(dataset)}: {len(missing)} output(s) missing; Snakemake log: {log}",
        file=sys.stderr,
    )
    return status or 1


def run_config(snakefile: Path, entries: Sequence[str]) -> dict:
    """The workflow's settings: its config file with the ``--config KEY=VALUE`` entries over it, read by
    Snakemake's own parser."""
    with open(snakefile.parent / "config" / "config.yaml", encoding="utf-8") as fh:
        return {**yaml.safe_load(fh), **parse_config(list(entries))}


def bundled_profile(flags: Sequence[str], snakefile: Path) -> list[str]:
    """``--profile NAME`` for a profile msqmri ships (``profiles/NAME`` beside the Snakefile, e.g. ``slurm``)
    points at that profile unless NAME is a directory here; other flags are left as they are."""
    flags = list(flags)
    for k, flag in enumerate(flags[:-1]):
        name = flags[k + 1]
        shipped = snakefile.parent / "profiles" / name
        if flag == "--profile" and not Path(name).is_dir() and (shipped / "profile.yaml").is_file():
            flags[k + 1] = str(shipped)
    return flags


def find_snakefile() -> Path:
    """The workflow's Snakefile: the wheel's bundled copy, else the repository root (editable install)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_workflow" / "Snakefile", package.parents[1] / "Snakefile"):
        if candidate.is_file():
            return candidate
    raise MsqmriError(f"msqmri installation is incomplete: no Snakefile near {package}")


def _run(command: list[str], log: Path, events: Path, stage: str, verbose: bool, output_dir: Path) -> int:
    """Run Snakemake with its output in ``log`` (and on stderr when ``verbose``), showing one progress line per
    finished step; the Snakemake process (which holds OUTPUT_DIR's lock) is recorded while it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    events.unlink(missing_ok=True)
    progress = Progress(events, stage, show=not verbose)
    with (
        open(log, "w", encoding="utf-8") as sink,
        subprocess.Popen(
            command, stdout=subprocess.PIPE if verbose else sink, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        record_run(output_dir, proc.pid, stage)
        if verbose:
            for line in proc.stdout:
                sink.write(line)
                sys.stderr.write(line)
        while proc.poll() is None:
            progress.update()
            time.sleep(POLL_S)
        progress.update()
    return proc.returncode


class Progress:
    """The run's progress lines, from the events file as it grows."""

    def __init__(self, events: Path, stage: str, show: bool = True) -> None:
        self.events, self.stage, self.show, self.offset = events, stage, show, 0

    def update(self) -> None:
        """Print a line for each progress event written since the last look."""
        if not self.events.is_file():
            return
        with open(self.events, encoding="utf-8") as fh:
            fh.seek(self.offset)
            lines = fh.readlines()
        complete = [line for line in lines if line.endswith("\n")]  # a line being written waits for the next look
        self.offset += sum(len(line.encode()) for line in complete)
        for event in map(json.loads, complete):
            if event["event"] == "progress" and self.show:
                done, total = event["done"], event["total"]
                end = "\r" if sys.stderr.isatty() and done != total else "\n"  # on a terminal, in place
                print(
                    f"msqmri: {self.stage}: {done}/{total} steps done ({format_percentage(done, total)})",
                    end=end,
                    file=sys.stderr,
                    flush=True,
                )


def failed_job_logs(events: Path) -> list[Path]:
    """The logs of the jobs the run's events report as failed."""
    if not events.is_file():
        return []
    lines = events.read_text(encoding="utf-8").splitlines()
    logs = [Path(log) for event in map(json.loads, lines) if event["event"] == "job_error" for log in event["logs"]]
    return [log if log.is_absolute() else events.parents[1] / log for log in logs]  # relative: to OUTPUT_DIR


def collect_errors(logs: Iterable[Path]) -> list[str]:
    """Unique ``msqmri: error:`` lines of the given job logs, sorted. Every rule's job log holds its error line
    whole; Snakemake's own log is not read, since there the jobs' stderr interleaves with Snakemake's output
    and lines arrive twice or glued together."""
    lines = set()
    for path in logs:
        if path.is_file():
            lines.update(
                line for line in path.read_text(errors="replace").splitlines() if line.startswith(ERROR_PREFIX)
            )
    return sorted(lines)


def counts(dataset: Dataset) -> str:
    n_sessions = sum(1 for _ in dataset.sessions())
    return f"{len(dataset.subjects)} subjects / {n_sessions} sessions"


def _tail(log: Path, n: int = 15) -> list[str]:
    return log.read_text(errors="replace").splitlines()[-n:] if log.is_file() else []


def error(message: str, status: int = 1) -> int:
    """Print ``msqmri: error: message`` on stderr; return ``status``."""
    print(f"{ERROR_PREFIX} {message}", file=sys.stderr)
    return status
