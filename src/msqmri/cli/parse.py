"""The command line's parsers: the BIDS-App (``msqmri BIDS_DIR OUTPUT_DIR participant|group``) and the
subcommands ``demo``, ``phantom`` and ``harmonize``."""

from __future__ import annotations

import argparse
from pathlib import Path

from msqmri import __version__
from msqmri.cli.run import STAGES

USAGE = """%(prog)s BIDS_DIR OUTPUT_DIR {participant,group} [options] [snakemake flags]
       %(prog)s demo [OUTPUT_DIR]
       %(prog)s phantom OUT_DIR --subjects N --sessions K --resolution MM [--seed S]
       %(prog)s harmonize MODEL REGIONAL_TSV PARTICIPANTS_TSV OUT_TSV"""
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


def bids_app() -> argparse.ArgumentParser:
    """The BIDS-App parser (unknown options are left for Snakemake: use ``parse_known_args``)."""
    parser = argparse.ArgumentParser(
        prog="msqmri",
        usage=USAGE,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Longitudinal quantitative MRI of multiple sclerosis (atrophy, lesions, DTI, MTR, R2*) "
        "on a BIDS dataset. Runs the msqmri Snakemake workflow; unknown options are passed to Snakemake.",
    )
    parser.add_argument("bids_dir", metavar="BIDS_DIR", type=Path, help="raw BIDS dataset (read only)")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="where the derivatives are written")
    parser.add_argument("stage", choices=STAGES, help="participant: per-session outputs; group: group tables")
    parser.add_argument(
        "--participant-label", nargs="+", metavar="LABEL", help="process only these subjects (e.g. 01 02)"
    )
    add_run_options(parser)
    parser.add_argument("--version", action="version", version=f"msqmri {__version__}")
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run through Snakemake (the BIDS-App and the demo)."""
    parser.add_argument("--cores", default="1", metavar="N", help="CPU cores to use, or 'all' (default: 1)")
    parser.add_argument(
        "--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override workflow settings"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Snakemake's full output")


def subcommand(name: str, description: str, example: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"msqmri {name}",
        description=description,
        epilog=f"example:\n  msqmri {name} {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def demo() -> argparse.ArgumentParser:
    parser = subcommand(
        "demo",
        "Build the bundled synthetic cohort (2 subjects x 2 sessions at 2 mm) in OUTPUT_DIR/bids "
        "and run the participant and group stages on it into OUTPUT_DIR/derivatives.",
        "/tmp/msqmri-demo --cores 4",
    )
    parser.add_argument(
        "output_dir",
        metavar="OUTPUT_DIR",
        type=Path,
        nargs="?",
        default=Path("msqmri-demo"),
        help="demo directory (default: ./msqmri-demo)",
    )
    add_run_options(parser)
    return parser


def phantom() -> argparse.ArgumentParser:
    parser = subcommand(
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
        "--scale-drift",
        type=float,
        default=0.0,
        metavar="F",
        help="largest scanner scale error of a follow-up session, e.g. 0.006 (default: 0)",
    )
    return parser


def harmonize() -> argparse.ArgumentParser:
    parser = subcommand(
        "harmonize",
        "Harmonise a regional_metrics.tsv (e.g. a centre that joined later) with a saved ComBat model "
        "(group/regional_metrics_combat_model.json of an earlier group run). Sites the model has seen keep "
        "their saved effects; a new site's are estimated against the model's reference.",
        "model.json new/group/regional_metrics.tsv new/participants.tsv harmonized.tsv",
    )
    parser.add_argument("model", type=Path, help="saved ComBat model (JSON)")
    parser.add_argument("regional", type=Path, help="regional_metrics.tsv to harmonise")
    parser.add_argument(
        "participants", type=Path, help="participants.tsv with participant_id, site and the model's covariates"
    )
    parser.add_argument("out", type=Path, help="harmonised table to write (TSV)")
    return parser
