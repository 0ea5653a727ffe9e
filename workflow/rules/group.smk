# Dataset-level outputs: BIDS-Derivatives metadata and group tables.


rule dataset_description:
    output:
        out(layout.DATASET_DESCRIPTION),
    params:
        bids_dir=lambda wildcards: os.path.abspath(config["bids_dir"]),
        label="dataset-level",
    log:
        out("logs/dataset_description.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/dataset_description.py"


rule sessions_table:
    input:
        checks=all_sessions(layout.INPUT_CHECK),
        summaries=all_sessions(layout.T1W_SUMMARY),
    output:
        out(layout.SESSIONS_TABLE),
    params:
        demographics={subject.participant_id: subject.demographics() for subject in DATASET.subjects},
        label="dataset-level",
    log:
        out("logs/sessions_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/sessions_table.py"
