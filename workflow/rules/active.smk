# The active-labelling loop (active:, topoamorph.active): label only the frames the model is least sure of.
# Shared sets: heldout (validation + test parts, labelled once) and initial (round 0's random pool frames);
# then per strategy and round: the model (round{r}.json, round{r}.model.npz), its picks, and their labels.


rule active_heldout:
    """The validation and test frames, labelled once by the label engine: σ's calibration and the score."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        frames=frames_files(),
        **import_manifest(),
    output:
        heldout=P.active_set("heldout", "frames"),
    log:
        P.log("active_heldout"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/active_heldout.py"


rule active_initial:
    """Round 0: `active.initial` random pool frames, the same for every strategy."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        frames=frames_files(),
        **import_manifest(),
    output:
        initial=P.active_set("initial", "frames"),
    params:
        n=ACTIVE.initial if ACTIVE else 0,
        seed=config["seed"],
    log:
        P.log("active_initial"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/active_initial.py"


rule active_rest:
    """The `all` arm: the whole pool but the initial frames, labelled at once (the error of labelling everything)."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        initial=P.active_set("initial", "frames"),
        frames=frames_files(),
        **import_manifest(),
    output:
        rest=P.active_frames("all", 1),
    log:
        P.log("active_rest"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/active_rest.py"


rule active_label_set:
    """Labels of a shared set (heldout, initial) by the label engine (topoamorph relabel; resumes from its
    checkpoint)."""
    input:
        frames=P.active_set("{name}", "frames"),
    output:
        labels=P.active_set("{name}", "labels"),
    wildcard_constraints:
        name="heldout|initial",
    params:
        engine=active_label_json(),
        forces=active_forces(),
        element=config["structures"]["element"],
        launch=active_launch,
        checkpoint=P.active_checkpoint("{name}"),
        workdir=P.active_workdir("{name}"),
    log:
        P.log("active_label", "{name}"),
    benchmark:
        P.benchmark("active_label", "{name}"),
    threads: engine_cores(active_label_engine())
    resources:
        tasks=engine_ranks(active_label_engine()),
        gpu=engine_gpus(active_label_engine()),
        **engine_mpi(active_label_engine()),
        runtime=lambda wildcards, attempt: plan.job_minutes(ACTIVE_LABEL_MINUTES, attempt, config["structures"]),
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    conda:
        "../envs/generate.yaml"
    shell:
        RELABEL_SHELL


rule active_label:
    """Labels of one round's frames (the previous round's picks; for `all`, the rest of the pool)."""
    input:
        frames=active_round_frames,
    output:
        labels=P.active_labels(),
    wildcard_constraints:
        round=r"[1-9][0-9]*",
    params:
        engine=active_label_json(),
        forces=active_forces(),
        element=config["structures"]["element"],
        launch=active_launch,
        checkpoint=P.active_checkpoint("{strategy}_round{round}"),
        workdir=P.active_workdir("{strategy}_round{round}"),
    log:
        P.log("active_label", "{strategy}_round{round}"),
    benchmark:
        P.benchmark("active_label", "{strategy}_round{round}"),
    threads: engine_cores(active_label_engine())
    resources:
        tasks=engine_ranks(active_label_engine()),
        gpu=engine_gpus(active_label_engine()),
        **engine_mpi(active_label_engine()),
        runtime=lambda wildcards, attempt: plan.job_minutes(ACTIVE_LABEL_MINUTES, attempt, config["structures"]),
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    conda:
        "../envs/generate.yaml"
    shell:
        RELABEL_SHELL


rule active_round:
    """One round of one strategy: ridge on every frame labelled so far, scored on the labelled test part, σ
    calibrated on the labelled validation part; its model file and the frames it picks to label next."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        heldout=P.active_set("heldout", "labels"),
        labels=active_round_labels,
        frames=frames_files(),
        **import_manifest(),
    output:
        record=P.active_round(),
        picks=P.active_picks(),
        model=P.active_model(),
    params:
        per_round=active_per_round,
        seed=config["seed"],
        ridge=config["train"]["ridge"],
        uncertainty=config["train"]["uncertainty"],
        homology=homology_compute_options(),
        species=SPECIES,
        label_engine=active_label_described(),
    log:
        P.log("active_round", "{strategy}_round{round}"),
    benchmark:
        P.benchmark("active_round", "{strategy}_round{round}"),
    resources:
        runtime=30,
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/active_round.py"


rule active_curve:
    """Test error against labelled frames for every strategy, and the labels σ-selection needs to reach the others."""
    input:
        rounds=active_round_records(),
    output:
        curve=P.active_curve(),
        figure=report(P.report("active.png"), caption="../report/active.rst", category="Active labelling"),
        table=P.report("active.md"),
    params:
        dpi=config["report"]["dpi"],
    log:
        P.log("active_curve"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/active_curve.py"
