# Per-session input validation and a descriptive T1w summary.


rule check_inputs:
    input:
        session_files,
    output:
        out(layout.INPUT_CHECK),
    params:
        session=session_for,
        label=session_label,
    log:
        session_log("check_inputs"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/check_inputs.py"


rule t1w_summary:
    input:
        t1w=session_t1w,
    output:
        out(layout.T1W_SUMMARY),
    params:
        label=session_label,
    log:
        session_log("t1w_summary"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/t1w_summary.py"
