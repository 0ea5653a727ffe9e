# Structural preprocessing of each session's T1w: N4, brain extraction, tissue segmentation,
# registration to the MNI template, SIENAX-like volumes.


rule structural:
    input:
        unpack(structural_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.STRUCTURAL.items()},
    params:
        ids=lambda wildcards: session_ids(session_for(wildcards)),
        seed=config["seed"],
        backend=config["brain_extraction"],
        label=session_label,
    threads: config["itk_threads"]
    resources:
        **measured("structural"),
    log:
        session_log("structural"),
    benchmark:
        session_log("structural", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/structural.py"


rule flair_to_t1w:
    input:
        flair=lambda wildcards: str(session_for(wildcards).flair),
        t1w=session_t1w,
    output:
        transform=out(layout.FLAIR_TO_T1W["transform"]),
        flair=out(layout.FLAIR_TO_T1W["flair"]),
    params:
        seed=config["seed"],
        label=session_label,
    threads: config["itk_threads"]
    resources:
        **measured("flair_to_t1w"),
    log:
        session_log("flair_to_t1w"),
    benchmark:
        session_log("flair_to_t1w", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/flair_to_t1w.py"


rule brain_volumes_table:
    input:
        all_sessions(layout.STRUCTURAL["volumes"]),
    output:
        out(layout.BRAIN_VOLUMES_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/brain_volumes_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/brain_volumes_table.py"
