rule descriptors:
    """Normalised persistence histograms of every frame, aggregated into one dataset (X, y, metadata)."""
    input:
        diagrams=expand(P.diagrams(), batch=BATCH_IDS),
    output:
        dataset=P.dataset(),
    params:
        descriptors=config["descriptors"],
    log:
        P.log("descriptors"),
    benchmark:
        P.benchmark("descriptors"),
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/descriptors.yaml"
    script:
        "../scripts/descriptors.py"


rule structure_features:
    """SOAP (averaged over atoms) and RDF-histogram features of every dataset row: the structure baselines."""
    input:
        dataset=P.dataset(),
        frames=frames_files(),
        **import_manifest(),
    output:
        features=P.features(),
    params:
        baselines=config["train"]["baselines"],
        species=SPECIES,
    log:
        P.log("structure_features"),
    benchmark:
        P.benchmark("structure_features"),
    threads: 2
    resources:
        runtime=60,
        mem_mb=4000,
    conda:
        "../envs/descriptors.yaml"
    script:
        "../scripts/structure_features.py"
