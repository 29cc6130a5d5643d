rule split:
    """One train/test split shared by every model and baseline."""
    input:
        dataset=P.dataset(),
    output:
        split=P.split(),
    params:
        settings=split_params(),
        seed=split_seed(),
    log:
        P.log("split"),
    benchmark:
        P.benchmark("split"),
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/split.py"


rule train_ridge:
    """Ridge regression, regularisation chosen by cross-validation; a bootstrap ensemble for its uncertainty,
    calibrated on the validation part. The model file is self-contained (topoamorph predict)."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        **delta_inputs(),
    output:
        metrics=P.fit_metrics("ridge"),
        predictions=P.predictions("ridge"),
        model=P.model("ridge", "npz"),
    params:
        **delta_params(),
        ridge=config["train"]["ridge"],
        uncertainty=uncertainty_params("bootstrap"),
        homology=homology_compute_options(),
        species=SPECIES,
        seed=config["seed"],
    log:
        P.log("train_ridge"),
    benchmark:
        P.benchmark("train_ridge"),
    resources:
        runtime=30,
        mem_mb=8000,  # the Gram path at 12,000 training frames peaks at 4.6 GB (docs/scale.md)
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_ridge.py"


rule train_cnn:
    """An ensemble of small CNNs on the descriptor images (CUDA when available, else CPU), from consecutive
    seeds: the prediction is their mean, their spread (calibrated) the uncertainty."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        **delta_inputs(),
    output:
        metrics=P.fit_metrics("cnn"),
        predictions=P.predictions("cnn"),
        model=P.model("cnn", "pt"),
    params:
        **delta_params(),
        cnn=config["train"]["cnn"],
        uncertainty=uncertainty_params("cnn_members"),
        homology=homology_compute_options(),
        species=SPECIES,
        seed=config["seed"],
    log:
        P.log("train_cnn"),
    benchmark:
        P.benchmark("train_cnn"),
    threads: 2
    resources:
        runtime=120,
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_cnn.py"


rule train_baselines:
    """Baselines on the same split: the training mean, energy from density alone, and ridge on SOAP and on
    the RDF histogram."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        features=P.features(),
        **delta_inputs(),
    output:
        metrics=[P.fit_metrics(b) for b in BASELINES],
        predictions=[P.predictions(b) for b in BASELINES],
        model_files=[P.model(b, "npz") for b in BASELINES],
    params:
        **delta_params(),
        seed=config["seed"],
        names=BASELINES,
        baselines=config["train"]["baselines"],
        uncertainty=uncertainty_params("bootstrap"),
        species=SPECIES,
    log:
        P.log("train_baselines"),
    benchmark:
        P.benchmark("train_baselines"),
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train_baselines.py"


rule learning_curve:
    """Validation and test error against training-set size, every listed model refitted on nested subsets."""
    input:
        dataset=P.dataset(),
        split=P.split(),
        features=P.features(),
        **delta_inputs(),
    output:
        curve=P.metrics("learning_curve"),
    params:
        **delta_params(),
        settings=config["train"]["learning_curve"],
        models_params=learning_curve_model_params(),
        seed=config["seed"],
    log:
        P.log("learning_curve"),
    benchmark:
        P.benchmark("learning_curve"),
    threads: 2
    resources:
        runtime=lambda wc: 240 if "cnn" in config["train"]["learning_curve"]["models"] else 30,
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/learning_curve.py"
