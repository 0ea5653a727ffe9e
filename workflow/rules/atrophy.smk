# Percentage brain volume change between sessions: skull-constrained halfway registration, the
# SIENA-like edge method and Jacobian integration, then group/pbvc.tsv.


rule halfway:
    input:
        unpack(pair_structural),
    output:
        **{key: out(pattern) for key, pattern in layout.HALFWAY.items()},
    params:
        seed=config["seed"],
        label=pair_label,
    threads: config["itk_threads"]
    resources:
        **measured("halfway"),
    log:
        pair_log("halfway"),
    benchmark:
        pair_log("halfway", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/halfway.py"


rule siena:
    input:
        unpack(pair_structural),
        transform=out(layout.HALFWAY["transform"]),
    output:
        **{key: out(pattern) for key, pattern in layout.PBVC["siena"].items()},
    params:
        ids=pair_ids,
        label=pair_label,
    threads: 1
    resources:
        **measured("siena"),
    log:
        pair_log("siena"),
    benchmark:
        pair_log("siena", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/siena.py"


rule jacobian:
    input:
        **{key: out(layout.HALFWAY[key]) for key in ("image_from", "image_to", "brain_from", "brain_to", "transform")},
    output:
        **{key: out(pattern) for key, pattern in layout.PBVC["jacobian"].items()},
    params:
        ids=pair_ids,
        seed=config["seed"],
        label=pair_label,
    threads: config["itk_threads"]
    resources:
        **measured("jacobian"),
    log:
        pair_log("jacobian"),
    benchmark:
        pair_log("jacobian", "benchmark.tsv"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/jacobian.py"


rule pbvc_table:
    input:
        [path for method in PBVC_METHODS for path in all_pairs(layout.PBVC[method]["pbvc"])],
    output:
        out(layout.PBVC_TABLE),
    params:
        label="dataset-level",
    log:
        out("logs/pbvc_table.log"),
    conda:
        "../../envs/msqmri.yaml"
    script:
        "../../scripts/pbvc_table.py"
