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


rule delta_energies:
    """Δ-learning (train.delta): the engine's energy of every dataset row, which every model learns to correct."""
    input:
        dataset=P.dataset(),
        frames=frames_files(),
        **import_manifest(),
    output:
        energies=P.delta_energies(),
    params:
        engine=delta_engine(),
        element=config["structures"]["element"],
        workdir=P.workdir("delta_energies", density="all", run="all"),
    log:
        P.log("delta_energies"),
    benchmark:
        P.benchmark("delta_energies"),
    threads: engine_cores(delta_engine())
    resources:
        tasks=engine_ranks(delta_engine()),
        gpu=engine_gpus(delta_engine()),
        **engine_mpi(delta_engine()),
        runtime=lambda wildcards, attempt: plan.job_minutes(DELTA_MINUTES, attempt, config["structures"]),
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    conda:
        "../envs/generate.yaml"
    script:
        "../scripts/delta_energies.py"
