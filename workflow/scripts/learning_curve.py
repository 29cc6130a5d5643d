from topoamorph.logs import run_logged
from topoamorph.stages.train import learning_curve

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    learning_curve,
    dataset=sm.input.dataset,
    split=sm.input.split,
    features=sm.input.features,
    curve=sm.output.curve,
    settings=dict(sm.params.settings),
    models_params=dict(sm.params.models_params),
    seed=int(sm.params.seed),
    threads=sm.threads,
    delta=sm.input.get("delta"),
    delta_engine=sm.params.get("delta_engine"),
)
