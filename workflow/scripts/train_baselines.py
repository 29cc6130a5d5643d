from topoamorph.logs import run_logged
from topoamorph.stages.train import train_baselines

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    train_baselines,
    dataset=sm.input.dataset,
    split=sm.input.split,
    features=sm.input.features,
    metrics=list(sm.output.metrics),
    predictions=list(sm.output.predictions),
    names=list(sm.params.names),
    model_files=list(sm.output.model_files),
    baselines=dict(sm.params.baselines),
    uncertainty=dict(sm.params.uncertainty),
    species=list(sm.params.species),
    seed=int(sm.params.seed),
    delta=sm.input.get("delta"),
    delta_engine=sm.params.get("delta_engine"),
)
