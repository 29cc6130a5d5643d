rule descriptors:
    """Normalised persistence histograms of every frame, aggregated into one dataset (X, y, metadata)."""
    input:
        expand(P.diagrams(), batch=BATCH_IDS),
    output:
        P.dataset(),
    params:
        descriptors=config["descriptors"],
    log:
        P.log("descriptors"),
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/descriptors.yaml"
    script:
        "../scripts/descriptors.py"
