rule report:
    """Metrics table (best model and data regime first), parity plots with error bars, calibration, learning
    curve, error per density, example diagrams, ridge coefficient maps, the ridge model's per-atom explanations
    of three frames with per-environment statistics, energy vs density, structure, and a parity plot and table
    per evaluation file."""
    input:
        metrics=[P.metrics(m) for m in ALL_MODELS],
        predictions=[P.predictions(m) for m in ALL_MODELS],
        evaluation_predictions=[P.evaluation(n, f"{m}.csv") for n in EVALUATIONS for m in ALL_MODELS],
        ridge_model=P.model("ridge", "npz"),
        curve=P.metrics("learning_curve"),
        dataset=P.dataset(),
        diagrams=expand(P.diagrams(), batch=BATCH_IDS),
        structures=frames_files(),
        **import_manifest(),
        traces=[P.trace(r.density, r.run) for r in RUNS],
    output:
        table=report(P.report("metrics.md"), caption="../report/metrics.rst", category="Metrics"),
        table_csv=P.report("metrics.csv"),
        parity=report(P.report("parity.png"), caption="../report/parity.rst", category="Models"),
        diagram_examples=report(P.report("diagrams.png"), caption="../report/diagrams.rst", category="Homology"),
        ridge_map=report(
            P.report("ridge_coefficients.png"), caption="../report/ridge_map.rst", category="Models"
        ),
        energy_density=report(
            P.report("energy_density.png"), caption="../report/energy_density.rst", category="Structures"
        ),
        structure_png=report(P.report("structure.png"), caption="../report/structure.rst", category="Structures"),
        structure_csv=P.report("structure.csv"),
        learning_curve=report(
            P.report("learning_curve.png"), caption="../report/learning_curve.rst", category="Models"
        ),
        per_density=report(P.report("per_density.png"), caption="../report/per_density.rst", category="Models"),
        calibration=report(P.report("calibration.png"), caption="../report/calibration.rst", category="Models"),
        explanations=report(
            P.report("explanations.png"), caption="../report/explanations.rst", category="Models"
        ),
        explanations_csv=P.report("explanations.csv"),
        evaluation=[
            report(P.report(f"evaluation_{n}.png"), caption="../report/evaluation.rst", category="Evaluation")
            for n in EVALUATIONS
        ],
        # the MD trace exists for generated campaigns only
        **({} if IMPORT else {"trace": report(P.report("trace.png"), caption="../report/trace.rst",
                                              category="Structures")}),
    params:
        models=ALL_MODELS,
        evaluations=list(EVALUATIONS),
        runs=[(r.density, r.run) for r in RUNS],
        settings=config["report"],
    log:
        P.log("report"),
    benchmark:
        P.benchmark("report"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
