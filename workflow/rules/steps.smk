# One rule per step, each derived from the step's declaration (msqmri.workflow.steps: inputs, outputs,
# parameters, threads, library call): every rule runs scripts/step.py, which calls that library function.
# Small table and report steps run in Snakemake's own process (`local`), not as cluster jobs; a session's
# tensor fit and its T1w-space maps, and its lesion mask and metrics, go to a cluster as one job each (`group`).

from msqmri.workflow import directives
from msqmri.workflow.steps import STEPS


for step in STEPS.values():

    rule:
        name:
            step.name
        input:
            unpack(directives.inputs(RUN, step)),
        output:
            **directives.outputs(RUN, step),
        params:
            **directives.params(RUN, step),
        threads: directives.threads(RUN, step)
        resources:
            **directives.resources(step, MEASURED),
        log:
            directives.log(RUN, step),
        benchmark:
            directives.log(RUN, step, "benchmark.tsv")
        group:
            step.group
        localrule: step.local
        conda:
            "../../envs/msqmri.yaml"
        script:
            "../../scripts/step.py"
