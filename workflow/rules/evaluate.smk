rule validate_evaluation:
    """Every frame of an evaluation file checked as imported frames are (periodic cell, species, no overlapping
    atoms, a finite energy where there is one); runs first (priority)."""
    input:
        frames=evaluation_file,
    output:
        manifest=P.evaluation("{name}", "manifest.json"),
    params:
        selection=evaluation_selection,
        energy_key=lambda wc: EVALUATIONS[wc.name].energy_key,
        species=SPECIES,
    priority: 100
    log:
        P.log("validate_evaluation", "{name}"),
    benchmark:
        P.benchmark("validate_evaluation", "{name}"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/validate_evaluation.py"


rule evaluate:
    """Every trained model predicts one evaluation file (homology computed once for all): predictions per
    model with sigma and the applicability domain, and errors where the frames carry energies."""
    input:
        frames=evaluation_file,
        manifest=P.evaluation("{name}", "manifest.json"),
        model_files=[model_file(m) for m in ALL_MODELS],
    output:
        predictions=[P.evaluation("{name}", f"{m}.csv") for m in ALL_MODELS],
        metrics=P.evaluation("{name}", "metrics.json"),
    params:
        selection=evaluation_selection,
        names=ALL_MODELS,
        energy_key=lambda wc: EVALUATIONS[wc.name].energy_key,
    log:
        P.log("evaluate", "{name}"),
    benchmark:
        P.benchmark("evaluate", "{name}"),
    resources:
        runtime=120,
        mem_mb=4000,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/evaluate.py"


rule merge_metrics:
    """A model's metrics: its training metrics plus a section per evaluation file (changing `evaluate`
    reruns only the evaluation, this and the report)."""
    input:
        fit=P.fit_metrics(),
        evaluation=[P.evaluation(n, "metrics.json") for n in EVALUATIONS],
    output:
        metrics=P.metrics(),
    params:
        names=list(EVALUATIONS),
        model=lambda wc: wc.model,
    log:
        P.log("merge_metrics", "{model}"),
    benchmark:
        P.benchmark("merge_metrics", "{model}"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/merge_metrics.py"
