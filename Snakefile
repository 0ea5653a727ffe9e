# msqmri: longitudinal quantitative MRI of multiple sclerosis, as a Snakemake workflow over BIDS.
#
#   snakemake --cores 4 --config bids_dir=path/to/bids output_dir=path/to/derivatives
#
# Targets: `participant` (per-session outputs), `group` (group tables), `all` (default: both).
# The `msqmri` command line runs this same workflow (see `msqmri --help`).

import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


validate(config, "workflow/schemas/config.schema.yaml")


if config["container"]:

    container: config["container"]


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/structural.smk"
include: "workflow/rules/atrophy.smk"
include: "workflow/rules/diffusion.smk"
include: "workflow/rules/quantitative.smk"
include: "workflow/rules/lesions.smk"
include: "workflow/rules/group.smk"


# Small table and report jobs run in the main Snakemake process, not as cluster jobs (seconds of work
# each, against a scheduler round trip). Likewise a session's tensor fit and its T1w-space maps, and its
# lesion mask and metrics, go to the cluster as one job each (the rules' `group:`).
localrules:
    check_inputs,
    t1w_summary,
    dataset_description,
    sessions_table,
    brain_volumes_table,
    pbvc_table,
    regional_metrics_table,
    lesion_tracking,
    lesion_identities,
    lesions_table,
    lesion_counts_table,
    lesion_activity_table,
    lesion_changes_table,
    protocol_compliance,
    monitoring_flags,
    harmonize,
    longitudinal_plot,
    cohort_report,


rule all:
    default_target: True
    localrule: True
    input:
        lambda wildcards: stage_outputs("participant") + stage_outputs("group"),


rule participant:
    localrule: True
    input:
        lambda wildcards: stage_outputs("participant"),


rule group:
    localrule: True
    input:
        lambda wildcards: stage_outputs("group"),
