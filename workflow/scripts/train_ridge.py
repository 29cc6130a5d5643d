from topoamorph.logs import run_logged
from topoamorph.stages.train import train_ridge

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    train_ridge,
    dataset=sm.input.dataset,
    split=sm.input.split,
    metrics=sm.output.metrics,
    predictions=sm.output.predictions,
    model=sm.output.model,
    ridge=dict(sm.params.ridge),
    uncertainty=dict(sm.params.uncertainty),
    homology=dict(sm.params.homology),
    species=list(sm.params.species),
    seed=int(sm.params.seed),
    delta=sm.input.get("delta"),
    delta_engine=sm.params.get("delta_engine"),
)
