# Lesions and regional metrics: the session's FLAIR normalised to its NAWM, its lesion mask on the T1w grid
# (user mask or built-in segmentation), lesion labels, location classes, regional and per-lesion metrics;
# lesion activity of every session pair (halfway space, from the subtraction image) and the subtraction
# image; persistent lesion identities per subject; their group tables.


rule flair_normalization:
    input:
        flair=out(layout.FLAIR_TO_T1W["flair"]),
        brain_mask=out(layout.STRUCTURAL["brain_mask"]),
        probseg_wm=out(layout.STRUCTURAL["probseg_wm"]),
    output:
        **{key: out(pattern) for key, pattern in layout.FLAIR_NORM.items()},
    params:
        label=session_label,
    group:
        "lesion_metrics"
    threads: config["itk_threads"]
    resources:
        **measured("flair_normalization"),
    log:
        session_log("flair_normalization"),
    benchmark:
        session_log("flair_normalization", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/flair_normalization.py"


rule lesion_mask:
    input:
        unpack(lesion_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.LESION_MASK.items()},
    params:
        min_size_mm3=config["lesion_min_size_mm3"],
        label=session_label,
    group:
        "lesion_metrics"
    threads: 1
    resources:
        **measured("lesion_mask"),
    log:
        session_log("lesion_mask"),
    benchmark:
        session_log("lesion_mask", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/lesion_mask.py"


rule session_metrics:
    input:
        unpack(metrics_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.SESSION_METRICS.items()},
    params:
        ids=lambda wildcards: session_ids(session_for(wildcards)),
        label=session_label,
    group:
        "lesion_metrics"
    threads: 1
    resources:
        **measured("session_metrics"),
    log:
        session_log("session_metrics"),
    benchmark:
        session_log("session_metrics", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/session_metrics.py"


rule lesion_activity:
    input:
        unpack(activity_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.LESION_ACTIVITY.items()},
    params:
        ids=pair_ids,
        enlarging=config["lesion_enlarging_fraction"],
        min_size_mm3=config["lesion_min_size_mm3"],
        label=pair_label,
    threads: 1
    resources:
        **measured("lesion_activity"),
    log:
        pair_log("lesion_activity"),
    benchmark:
        pair_log("lesion_activity", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/lesion_activity.py"


rule flair_subtraction:
    input:
        unpack(pair_halfway),
        unpack(lambda wildcards: pair_session_outputs(wildcards, {"flair": layout.FLAIR_NORM["flair"]})),
    output:
        out(layout.FLAIR_SUBTRACTION),
    params:
        label=pair_label,
    threads: 1
    resources:
        **measured("flair_subtraction"),
    log:
        pair_log("flair_subtraction"),
    benchmark:
        pair_log("flair_subtraction", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/flair_subtraction.py"


rule lesion_tracking:
    input:
        sessions=subject_sessions,
        pairs=subject_consecutive_changes,
    output:
        **{key: out(pattern) for key, pattern in layout.LESION_TRACKING.items()},
    params:
        session_ids=lambda wildcards: [s.session_id for s in subject_for(wildcards).sessions],
        days=session_days,
        label=lambda wildcards: wildcards.subject,
    log:
        out("logs/lesion_tracking/{subject}.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/lesion_tracking.py"


rule lesion_identities:
    input:
        labels=out(layout.SESSION_METRICS["labels"]),
        tracking=subject_of_session,
    output:
        out(layout.LESION_IDS),
    params:
        session_id=lambda wildcards: session_for(wildcards).session_id,
        label=session_label,
    log:
        session_log("lesion_identities"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/lesion_identities.py"


rule regional_metrics_table:
    input:
        all_sessions(layout.SESSION_METRICS["regional"]),
    output:
        out(layout.REGIONAL_METRICS_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/regional_metrics_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/concatenate_tables.py"


rule lesions_table:
    input:
        all_subjects(layout.LESION_TRACKING["lesions"]),
    output:
        out(layout.LESIONS_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/lesions_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/concatenate_tables.py"


rule lesion_counts_table:
    input:
        all_subjects(layout.LESION_TRACKING["counts"]),
    output:
        out(layout.LESION_COUNTS_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/lesion_counts_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/concatenate_tables.py"


rule lesion_activity_table:
    input:
        all_pairs(layout.LESION_ACTIVITY["counts"]),
    output:
        out(layout.LESION_ACTIVITY_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/lesion_activity_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/lesion_activity_table.py"


rule lesion_changes_table:
    input:
        all_pairs(layout.LESION_ACTIVITY["changes"]),
    output:
        out(layout.LESION_CHANGES_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/lesion_changes_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/concatenate_tables.py"
