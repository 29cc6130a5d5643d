rule melt_quench:
    """One melt-quench MD trajectory at one density; frames sampled per protocol stage (extxyz)."""
    output:
        P.structures(),
    params:
        structures=structures_params(),
        seed=run_seed,
    log:
        P.log("melt_quench", "rho{density}_run{run}"),
    threads: 1
    resources:
        runtime=60,
        mem_mb=2000,
    conda:
        "../envs/generate.yaml"
    script:
        "../scripts/melt_quench.py"
