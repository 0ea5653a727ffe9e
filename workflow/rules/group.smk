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


rule protocol_compliance:
    input:
        [r[key] for r in protocol_acquisitions() for key in ("image", "sidecar") if r[key]] if CONFIGURED else [],
    output:
        report(out(layout.PROTOCOL_TABLE), caption="../report/protocol.rst", category="Multi-centre"),
    params:
        acquisitions=protocol_acquisitions() if CONFIGURED else [],
        label="dataset-level",
    log:
        out("logs/protocol_compliance.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/protocol_compliance.py"


rule monitoring_flags:
    input:
        pbvc=out(layout.PBVC_TABLE),
        activity=out(layout.LESION_ACTIVITY_TABLE),
        sessions=out(layout.SESSIONS_TABLE),
        compliance=out(layout.PROTOCOL_TABLE),
    output:
        report(out(layout.MONITORING_TABLE), caption="../report/monitoring.rst", category="Monitoring"),
    params:
        label="dataset-level",
    log:
        out("logs/monitoring_flags.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/monitoring_flags.py"


rule harmonize:
    input:
        regional=out(layout.REGIONAL_METRICS_TABLE),
        sessions=out(layout.SESSIONS_TABLE),
    output:
        table=report(out(layout.HARMONIZED_TABLE), caption="../report/harmonize.rst", category="Multi-centre"),
        model=out(layout.HARMONIZATION_MODEL),
    params:
        covariates=config["harmonize_covariates"],
        label="dataset-level",
    log:
        out("logs/harmonize.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/harmonize.py"


rule longitudinal_plot:
    input:
        **group_tables(),
    output:
        report(out(layout.LONGITUDINAL_PLOT), caption="../report/longitudinal.rst", category="Longitudinal",
               subcategory="{subject}"),
    params:
        label=lambda wildcards: wildcards.subject,
    log:
        out("logs/longitudinal_plot/{subject}.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/longitudinal_plot.py"


rule subject_report:
    input:
        subject_report_inputs,
    output:
        report(out(layout.SUBJECT_REPORT), caption="../report/subject.rst", category="QC reports"),
    params:
        files=subject_report_files,
        tables=group_tables(),
        plot=out(layout.LONGITUDINAL_PLOT),
        label=lambda wildcards: wildcards.subject,
    threads: config["itk_threads"]
    resources:
        **measured("subject_report"),
    log:
        out("logs/subject_report/{subject}.log"),
    benchmark:
        out("logs/subject_report/{subject}.benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/subject_report.py"


rule cohort_report:
    input:
        **group_tables(),
    output:
        report(out(layout.COHORT_REPORT), caption="../report/cohort.rst", category="QC reports"),
    params:
        label="dataset-level",
    log:
        out("logs/cohort_report.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/cohort_report.py"
