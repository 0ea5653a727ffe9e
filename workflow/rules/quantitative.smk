# Quantitative maps: magnetization transfer ratio (MT-on/off pair) and R2* (multi-echo GRE), each on
# its acquisition grid and in T1w space.


rule mtr:
    input:
        unpack(mt_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.MTR.items()},
    params:
        seed=config["seed"],
        label=session_label,
    threads: config["itk_threads"]
    resources:
        **measured("mtr"),
    log:
        session_log("mtr"),
    benchmark:
        session_log("mtr", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/mtr.py"


rule r2star:
    input:
        unpack(t1w_reference),
        echoes=echo_images,
        sidecars=echo_sidecars,
    output:
        **{key: out(pattern) for key, pattern in layout.R2STAR.items()},
    params:
        method=config["r2star_fit"],
        floor_snr=config["r2star_noise_floor"],
        seed=config["seed"],
        label=session_label,
    threads: 2
    resources:
        **measured("r2star"),
    log:
        session_log("r2star"),
    benchmark:
        session_log("r2star", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/r2star.py"
