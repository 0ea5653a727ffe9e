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
include: "workflow/rules/steps.smk"


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
