# Diffusion: DWI preprocessing (denoising, motion correction with b-vector rotation, b=0 brain mask),
# b=0 -> T1w registration, tensor fit (FA, MD, AD, RD, V1, colour FA) and the maps in T1w space.


rule dwi_preproc:
    input:
        unpack(dwi_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.DWI_PREPROC.items()},
    params:
        denoise=config["dwi_denoise"],
        motion_correction=config["dwi_motion_correction"],
        label=session_label,
    threads: config["itk_threads"]
    resources:
        **measured("dwi_preproc"),
    log:
        session_log("dwi_preproc"),
    benchmark:
        session_log("dwi_preproc", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/dwi_preproc.py"


rule dwi_to_t1w:
    input:
        b0=out(layout.DWI_PREPROC["b0"]),
        mask=out(layout.DWI_PREPROC["mask"]),
        t1w=out(layout.STRUCTURAL["preproc"]),
        t1w_mask=out(layout.STRUCTURAL["brain_mask"]),
    output:
        transform=out(layout.DWI_TO_T1W["transform"]),
    params:
        kind=config["dwi_to_t1w"],
        seed=config["seed"],
        label=session_label,
    threads: config["itk_threads"]
    resources:
        **measured("dwi_to_t1w"),
    log:
        session_log("dwi_to_t1w"),
    benchmark:
        session_log("dwi_to_t1w", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/dwi_to_t1w.py"


rule dti:
    input:
        unpack(dti_inputs),
    output:
        **{key: out(pattern) for key, pattern in layout.DTI.items()},
    params:
        method=config["dti_fit"],
        mask=config["dwi_mask"],
        max_b=config["dti_max_b"],
        label=session_label,
    group:
        "tensor"
    threads: 2
    resources:
        **measured("dti"),
    log:
        session_log("dti"),
    benchmark:
        session_log("dti", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/dti.py"


rule dti_to_t1w:
    input:
        **{name: out(layout.DTI[name]) for name in layout.DTI_SCALARS},
        transform=out(layout.DWI_TO_T1W["transform"]),
        t1w=out(layout.STRUCTURAL["preproc"]),
    output:
        **{key: out(pattern) for key, pattern in layout.DTI_T1W.items()},
    params:
        label=session_label,
    group:
        "tensor"
    threads: 1
    resources:
        **measured("dti_to_t1w"),
    log:
        session_log("dti_to_t1w"),
    benchmark:
        session_log("dti_to_t1w", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/dti_to_t1w.py"
