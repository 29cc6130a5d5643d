rule melt_quench:
    """One melt-quench MD trajectory at one density: frames sampled per protocol stage (extxyz) and a
    temperature/energy trace (CSV). Resumes from its checkpoint when rerun after a kill or time limit."""
    output:
        frames=P.structures(),
        trace=P.trace(),
    params:
        structures=structures_json(),
        seed=run_seed,
        launch=md_launch,
        checkpoint=P.checkpoint("melt_quench"),
        workdir=P.workdir("melt_quench"),
    log:
        P.log("melt_quench", "rho{density}_run{run}"),
    benchmark:
        P.benchmark("melt_quench", "rho{density}_run{run}"),
    threads: engine_cores(config["structures"]["engine"])
    resources:
        tasks=engine_ranks(config["structures"]["engine"]),
        gpu=engine_gpus(config["structures"]["engine"]),
        # an MPI job (no srun wrapper from the slurm executor) only when the engine runs on several ranks
        **engine_mpi(config["structures"]["engine"]),
        runtime=lambda wildcards, attempt: plan.job_minutes(MD_MINUTES, attempt, config["structures"]),
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    conda:
        "../envs/generate.yaml"
    shell:
        "{params.launch} topoamorph melt-quench --structures {params.structures:q} --density {wildcards.density}"
        " --run {wildcards.run} --seed {params.seed} --output {output.frames:q} --trace {output.trace:q}"
        " --checkpoint {params.checkpoint:q} --workdir {params.workdir:q} >> {log:q} 2>&1"


rule relabel:
    """Single-point energies (and forces) of one run's frames with the relabel engine; frames keep the MD
    energy as md_energy. Resumes from its checkpoint."""
    input:
        frames=P.structures(),
    output:
        labels=P.labels(),
    params:
        engine=relabel_json(),
        forces="" if CAMPAIGN.relabel is None or CAMPAIGN.relabel.forces else "--no-forces",
        element=config["structures"]["element"],
        launch=relabel_launch,
        checkpoint=P.checkpoint("relabel"),
        workdir=P.workdir("relabel"),
    log:
        P.log("relabel", "rho{density}_run{run}"),
    benchmark:
        P.benchmark("relabel", "rho{density}_run{run}"),
    threads: engine_cores(relabel_engine())
    resources:
        tasks=engine_ranks(relabel_engine()),
        gpu=engine_gpus(relabel_engine()),
        **engine_mpi(relabel_engine()),
        runtime=lambda wildcards, attempt: plan.job_minutes(RELABEL_MINUTES, attempt, config["structures"]),
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    conda:
        "../envs/generate.yaml"
    shell:
        RELABEL_SHELL


rule validate_import:
    """Imported frames (source.kind: import): every frame of every file read and checked (cell, pbc, finite
    positions, energy under source.energy_key, supported species, no overlapping atoms) before any homology
    job starts; the first problem stops the campaign naming the file and frame."""
    input:
        frames=frames_files() if IMPORT else [],
    output:
        manifest=P.manifest(),
    params:
        source=config["source"],
        species=SPECIES,
        manifest_format=importer.MANIFEST_FORMAT,  # a manifest of an older format is written again
    log:
        P.log("validate_import"),
    benchmark:
        P.benchmark("validate_import"),
    conda:
        "../envs/generate.yaml"
    script:
        "../scripts/validate_import.py"
