"""The ``msqmri`` command: a BIDS-App front end to the Snakemake workflow.

msqmri BIDS_DIR OUTPUT_DIR participant|group [options] [snakemake flags]
msqmri demo [OUTPUT_DIR]
msqmri phantom OUT_DIR --subjects N --sessions K --resolution MM [--seed S]
msqmri harmonize MODEL REGIONAL_TSV PARTICIPANTS_TSV OUT_TSV

Parsing is in :mod:`msqmri.cli.parse`, the run through Snakemake in :mod:`msqmri.cli.run`, the output
directory's lock in :mod:`msqmri.cli.locks`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence

from msqmri.cli import parse
from msqmri.cli.run import STAGES, error, run_stage
from msqmri.core.io import MsqmriError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``msqmri`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands: dict[str, Callable[[list[str]], int]] = {"demo": demo, "phantom": phantom, "harmonize": harmonize}
    try:
        if args and args[0] in commands:
            return commands[args[0]](args[1:])
        return bids_app(args)
    except KeyboardInterrupt:
        return error("interrupted", 130)


def bids_app(argv: list[str]) -> int:
    args, snakemake_flags = parse.bids_app().parse_known_args(argv)
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


def phantom(argv: list[str]) -> int:
    """Write a synthetic cohort (``msqmri phantom``)."""
    parser = parse.phantom()
    args = parser.parse_args(argv)
    if args.subjects < 1 or args.sessions < 1 or not 0.5 <= args.resolution <= 5.0:
        parser.error("need --subjects >= 1, --sessions >= 1 and 0.5 <= --resolution <= 5")
    from msqmri.phantom import CohortSpec, generate_cohort  # heavy imports, only when needed

    spec = CohortSpec(
        n_subjects=args.subjects,
        n_sessions=args.sessions,
        resolution=args.resolution,
        seed=args.seed,
        noise=not args.no_noise,
        scale_drift=args.scale_drift,
    )
    path = generate_cohort(args.out_dir, spec)
    print(f"msqmri: phantom cohort of {args.subjects} subjects x {args.sessions} sessions in {path}", file=sys.stderr)
    return 0


def harmonize(argv: list[str]) -> int:
    """Apply a saved ComBat model to a new table (``msqmri harmonize``)."""
    args = parse.harmonize().parse_args(argv)
    from msqmri.cohort.harmonize import apply_files

    try:
        apply_files(args.model, args.regional, args.participants, args.out)
    except MsqmriError as exc:
        return error(str(exc))
    print(f"msqmri: harmonised table in {args.out}", file=sys.stderr)
    return 0


def demo(argv: list[str]) -> int:
    """Build the demo cohort (once) and run both stages on it (``msqmri demo``)."""
    args, snakemake_flags = parse.demo().parse_known_args(argv)
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
            bids_dir,
            args.output_dir / "derivatives",
            stage,
            cores=args.cores,
            config=args.config,
            snakemake_flags=snakemake_flags,
            verbose=args.verbose,
        )
        if status:
            return status
    return 0
