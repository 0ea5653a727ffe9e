"""The ``msqmri`` command: a BIDS-App front end to the Snakemake workflow.

msqmri BIDS_DIR OUTPUT_DIR participant|group [options] [snakemake flags]
msqmri demo [OUTPUT_DIR]
msqmri phantom OUT_DIR --subjects N --sessions K --resolution MM [--seed S]
msqmri harmonize MODEL REGIONAL_TSV PARTICIPANTS_TSV OUT_TSV
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from msqmri import __version__
from msqmri.workflow import layout
from msqmri.workflow.adapter import ERROR_PREFIX
from msqmri.inputs.bids import Dataset, discover
from msqmri.core.io import MsqmriError, load_json, save_json

STAGES = ("participant", "group")
PROGRESS = re.compile(r"^(\d+) of (\d+) steps \((\d+%)\) done")
# Snakemake flags that only inspect the workflow: their output is shown as is and no outputs are expected.
INSPECTION_FLAGS = {
    "-n", "--dry-run", "--dryrun", "--lint", "--dag", "--rulegraph", "--filegraph", "--summary",
    "-S", "--detailed-summary", "-D", "--list-rules", "--list", "-l", "--list-target-rules", "--lt", "--unlock",
}  # fmt: skip
RUN_RECORD = "logs/msqmri_run.json"  # pid and host of the msqmri run using OUTPUT_DIR
EXAMPLES = """\
examples:
  msqmri demo                                   synthetic 2 subjects x 2 sessions, all stages, in ./msqmri-demo
  msqmri /data/bids /data/derivatives/msqmri participant --cores 8
  msqmri /data/bids /data/derivatives/msqmri participant --participant-label 01 02
  msqmri /data/bids /data/derivatives/msqmri group
  msqmri /data/bids /data/derivatives/msqmri participant --dry-run     (any snakemake flag passes through)
  msqmri phantom /tmp/cohort --subjects 4 --sessions 3 --resolution 1.5

The participant stage writes per-session outputs under OUTPUT_DIR/sub-<s>/[ses-<t>/]; the group
stage writes tables under OUTPUT_DIR/group/ (building missing participant outputs first).
Logs are in OUTPUT_DIR/logs/. Exit status is 0 only when every requested output exists.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``msqmri`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": _demo, "phantom": _phantom, "harmonize": _harmonize}
    try:
        if args and args[0] in commands:
            return commands[args[0]](args[1:])
        return _bids_app(args)
    except KeyboardInterrupt:
        return _error("interrupted", 130)


def _bids_app(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="msqmri",
        usage="%(prog)s BIDS_DIR OUTPUT_DIR {participant,group} [options] [snakemake flags]\n"
        "       %(prog)s demo [OUTPUT_DIR]\n"
        "       %(prog)s phantom OUT_DIR --subjects N --sessions K --resolution MM [--seed S]\n"
        "       %(prog)s harmonize MODEL REGIONAL_TSV PARTICIPANTS_TSV OUT_TSV",
        description="Longitudinal quantitative MRI of multiple sclerosis (atrophy, lesions, DTI, MTR, R2*) "
        "on a BIDS dataset. Runs the msqmri Snakemake workflow; unknown options are passed to Snakemake.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", metavar="BIDS_DIR", type=Path, help="raw BIDS dataset (read only)")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="where the derivatives are written")
    parser.add_argument("stage", choices=STAGES, help="participant: per-session outputs; group: group tables")
    parser.add_argument(
        "--participant-label", nargs="+", metavar="LABEL", help="process only these subjects (e.g. 01 02)"
    )
    _add_run_options(parser)
    parser.add_argument("--version", action="version", version=f"msqmri {__version__}")
    args, snakemake_flags = parser.parse_known_args(argv)
    return run_stage(
        args.bids_dir,
        args.output_dir,
        args.stage,
        participant_label=args.participant_label,
        cores=args.cores,
        config=args.config,
        snakemake_flags=snakemake_flags,
        verbose=args.verbose,
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cores", default="1", metavar="N", help="CPU cores to use, or 'all' (default: 1)")
    parser.add_argument(
        "--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override workflow settings"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Snakemake's full output")


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
        dataset = discover(bids_dir, participant_label)
    except MsqmriError as exc:
        return _error(str(exc))
    for warning in (*map(str, dataset.unusable), *dataset.warnings):
        print(f"msqmri: warning: {warning}", file=sys.stderr)
    if not dataset.subjects:
        return _error(f"{bids_dir}: no session with a usable T1w image")
    entries = [*config, f"bids_dir={bids_dir}", f"output_dir={output_dir}"]
    if participant_label:
        entries.append(f"participant_label=[{','.join(participant_label)}]")
    command = [
        sys.executable, "-m", "snakemake", stage, "--snakefile", str(snakefile),
        "--directory", str(output_dir), "--cores", str(cores), "--rerun-incomplete", "--keep-going",
        *bundled_profile(snakemake_flags, snakefile), "--config", *entries,
    ]  # fmt: skip
    if INSPECTION_FLAGS & set(snakemake_flags):
        return subprocess.call(command)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        release_stale_lock(output_dir, command)
    except MsqmriError as exc:
        return _error(str(exc))
    log = output_dir / "logs" / f"snakemake_{stage}.log"
    started = time.time()
    try:
        status = _run_with_progress(command, log, stage, verbose, output_dir / RUN_RECORD)
    finally:
        (output_dir / RUN_RECORD).unlink(missing_ok=True)
    elapsed = time.time() - started
    targets = layout.stage_targets(stage, dataset, _pbvc_methods(config))
    missing = [path for path in targets if not (output_dir / path).exists()]
    if status == 0 and not missing:
        print(
            f"msqmri: {stage} stage done for {_counts(dataset)} in {elapsed:.1f} s; outputs in {output_dir}",
            file=sys.stderr,
        )
        return 0
    errors = collect_errors(output_dir / "logs", since=started, exclude=log)
    for line in errors or _tail(log):
        print(line, file=sys.stderr)
    print(
        f"msqmri: {stage} stage failed for {_counts(dataset)}: {len(missing)} output(s) missing; Snakemake log: {log}",
        file=sys.stderr,
    )
    return status or 1


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


def release_stale_lock(output_dir: Path, command: list[str]) -> None:
    """Unlock OUTPUT_DIR when the Snakemake process of the msqmri run that locked it was killed (it is gone
    from this host), so that a rerun resumes; refuse, in one line, when the lock belongs to a live or
    unknown run."""
    if not any((output_dir / ".snakemake" / "locks").glob("*")):
        return
    record = output_dir / RUN_RECORD
    owner = load_json(record) if record.is_file() else {}
    if owner.get("host") != socket.gethostname():
        where = f"msqmri on {owner['host']}" if owner.get("host") else "another Snakemake run"
        raise MsqmriError(f"{output_dir} is locked by {where}; if that run is no longer running, rerun with --unlock")
    if not _alive(int(owner["pid"]), owner.get("started")):
        subprocess.run([*command, "--unlock"], capture_output=True, check=False)
        print(f"msqmri: notice: removed the lock of an interrupted run (pid {owner['pid']}); resuming", file=sys.stderr)
        return
    raise MsqmriError(f"{output_dir} is in use by msqmri pid {owner['pid']} ({owner.get('stage')} stage)")


def _alive(pid: int, started: float | None) -> bool:
    """Whether the recorded process still runs: same pid and start time (not a reused pid), not a zombie."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and (started is None or process.create_time() == started)
    except psutil.NoSuchProcess:
        return False


def _counts(dataset: Dataset) -> str:
    n_sessions = sum(1 for _ in dataset.sessions())
    return f"{len(dataset.subjects)} subjects / {n_sessions} sessions"


def find_snakefile() -> Path:
    """The workflow's Snakefile: the wheel's bundled copy, else the repository root (editable install)."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_workflow" / "Snakefile", package.parents[1] / "Snakefile"):
        if candidate.is_file():
            return candidate
    raise MsqmriError(f"msqmri installation is incomplete: no Snakefile near {package}")


def _run_with_progress(command: list[str], log: Path, stage: str, verbose: bool, record: Path) -> int:
    """Run Snakemake, saving its output to ``log`` and showing one progress line per finished step; the
    Snakemake process (which holds OUTPUT_DIR's lock) is recorded in ``record`` while it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log, "w", encoding="utf-8") as sink,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc,
    ):
        assert proc.stdout is not None
        started = psutil.Process(proc.pid).create_time()
        save_json({"pid": proc.pid, "started": started, "host": socket.gethostname(), "stage": stage}, record)
        for line in proc.stdout:
            sink.write(line)
            match = PROGRESS.match(line)
            if verbose:
                sys.stderr.write(line)
            elif match:
                done, total, percent = match.groups()
                # on a terminal the progress line updates in place
                end = "\r" if sys.stderr.isatty() and done != total else "\n"
                print(f"msqmri: {stage}: {done}/{total} steps done ({percent})", end=end, file=sys.stderr, flush=True)
    return proc.returncode


def collect_errors(log_dir: Path, since: float, exclude: Path) -> list[str]:
    """Unique ``msqmri: error:`` lines from job logs written since ``since`` (epoch seconds), sorted. Every
    rule has a job log holding its error line whole; Snakemake's own log (``exclude``) is not read, since
    there the jobs' stderr interleaves with Snakemake's output and lines arrive twice or glued together."""
    lines = set()
    for path in log_dir.rglob("*.log"):
        if path != exclude and path.stat().st_mtime >= since - 1:
            lines.update(
                line for line in path.read_text(errors="replace").splitlines() if line.startswith(ERROR_PREFIX)
            )
    return sorted(lines)


def _tail(log: Path, n: int = 15) -> list[str]:
    return log.read_text(errors="replace").splitlines()[-n:] if log.is_file() else []


def _error(message: str, status: int = 1) -> int:
    print(f"{ERROR_PREFIX} {message}", file=sys.stderr)
    return status


def _subcommand_parser(name: str, description: str, example: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"msqmri {name}",
        description=description,
        epilog=f"example:\n  msqmri {name} {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _phantom(argv: list[str]) -> int:
    parser = _subcommand_parser(
        "phantom",
        "Write a synthetic longitudinal MS cohort as a raw BIDS dataset (with ground truth "
        "in sourcedata/ground_truth and lesion masks in derivatives/lesions).",
        "/tmp/cohort --subjects 4 --sessions 3 --resolution 1.5 --seed 7",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="directory of the new BIDS dataset")
    parser.add_argument("--subjects", type=int, default=2, metavar="N", help="number of subjects (default: 2)")
    parser.add_argument("--sessions", type=int, default=2, metavar="K", help="sessions per subject (default: 2)")
    parser.add_argument("--resolution", type=float, default=2.0, metavar="MM", help="voxel size in mm (default: 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    parser.add_argument("--no-noise", action="store_true", help="noise-free images (ground truth checks)")
    parser.add_argument(
        "--scale-drift", type=float, default=0.0, metavar="F",
        help="largest scanner scale error of a follow-up session, e.g. 0.006 (default: 0)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.subjects < 1 or args.sessions < 1 or not 0.5 <= args.resolution <= 5.0:
        parser.error("need --subjects >= 1, --sessions >= 1 and 0.5 <= --resolution <= 5")
    from msqmri.phantom import CohortSpec, generate_cohort  # heavy imports, only when needed

    spec = CohortSpec(
        n_subjects=args.subjects, n_sessions=args.sessions, resolution=args.resolution, seed=args.seed,
        noise=not args.no_noise, scale_drift=args.scale_drift,
    )  # fmt: skip
    path = generate_cohort(args.out_dir, spec)
    print(f"msqmri: phantom cohort of {args.subjects} subjects x {args.sessions} sessions in {path}", file=sys.stderr)
    return 0


def _harmonize(argv: list[str]) -> int:
    parser = _subcommand_parser(
        "harmonize",
        "Harmonise a regional_metrics.tsv (e.g. a centre that joined later) with a saved ComBat model "
        "(group/regional_metrics_combat_model.json of an earlier group run). Sites the model has seen keep "
        "their saved effects; a new site's are estimated against the model's reference.",
        "model.json new/group/regional_metrics.tsv new/participants.tsv harmonized.tsv",
    )
    parser.add_argument("model", type=Path, help="saved ComBat model (JSON)")
    parser.add_argument("regional", type=Path, help="regional_metrics.tsv to harmonise")
    parser.add_argument("participants", type=Path, help="participants.tsv with participant_id, site and the model's covariates")
    parser.add_argument("out", type=Path, help="harmonised table to write (TSV)")
    args = parser.parse_args(argv)
    from msqmri.cohort.harmonize import apply_files

    try:
        apply_files(args.model, args.regional, args.participants, args.out)
    except MsqmriError as exc:
        return _error(str(exc))
    print(f"msqmri: harmonised table in {args.out}", file=sys.stderr)
    return 0


def _demo(argv: list[str]) -> int:
    parser = _subcommand_parser(
        "demo",
        "Build the bundled synthetic cohort (2 subjects x 2 sessions at 2 mm) in OUTPUT_DIR/bids "
        "and run the participant and group stages on it into OUTPUT_DIR/derivatives.",
        "/tmp/msqmri-demo --cores 4",
    )
    parser.add_argument(
        "output_dir", metavar="OUTPUT_DIR", type=Path, nargs="?", default=Path("msqmri-demo"),
        help="demo directory (default: ./msqmri-demo)",
    )  # fmt: skip
    _add_run_options(parser)
    args, snakemake_flags = parser.parse_known_args(argv)
    bids_dir = args.output_dir / "bids"
    if not bids_dir.is_dir():
        partial = args.output_dir / "bids.partial"  # renamed into place only once complete
        shutil.rmtree(partial, ignore_errors=True)
        print(f"msqmri: generating the demo cohort in {bids_dir}", file=sys.stderr)
        from msqmri.phantom import DEMO, generate_cohort  # heavy imports, only when needed

        generate_cohort(partial, DEMO)
        partial.rename(bids_dir)
    for stage in STAGES:
        status = run_stage(
            bids_dir, args.output_dir / "derivatives", stage,
            cores=args.cores, config=args.config, snakemake_flags=snakemake_flags, verbose=args.verbose,
        )  # fmt: skip
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _pbvc_methods(config: list[str]) -> tuple[str, ...]:
    """The PBVC methods a ``--config pbvc_methods=[...]`` entry selects (all by default)."""
    for entry in reversed(config):
        key, _, value = entry.partition("=")
        if key.strip() == "pbvc_methods":
            return tuple(m.strip(" '\"") for m in value.strip("[] ").split(",") if m.strip(" '\""))
    return layout.PBVC_METHODS
