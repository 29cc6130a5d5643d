rule homology:
    """Persistence diagrams of one batch of frames, spread over MPI ranks (one job per batch)."""
    input:
        frames=batch_files,
    output:
        diagrams=P.diagrams(),
    params:
        specs=batch_specs,
        backend=config["homology"]["backend"],
        maxdim=config["homology"]["maxdim"],
        backend_options=homology_options(),
    log:
        P.log("homology", "batch{batch}"),
    benchmark:
        P.benchmark("homology", "batch{batch}"),
    threads: CAMPAIGN.homology.mpi_ranks
    resources:
        tasks=CAMPAIGN.homology.mpi_ranks,
        mpi="mpiexec",
        runtime=60,
        mem_mb=2000,
    conda:
        "../envs/homology.yaml"
    shell:
        "{resources.mpi} -n {resources.tasks} topoamorph homology {params.specs:q} --output {output.diagrams:q}"
        " --backend {params.backend} --maxdim {params.maxdim} {params.backend_options} > {log:q} 2>&1"
