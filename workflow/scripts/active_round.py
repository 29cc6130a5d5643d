from topoamorph.logs import run_logged
from topoamorph.stages.active import active_round

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    active_round,
    dataset=sm.input.dataset,
    split=sm.input.split,
    heldout=sm.input.heldout,
    labels=list(sm.input.labels),
    frames=list(sm.input.frames),
    record=sm.output.record,
    picks=sm.output.picks,
    model=sm.output.model,
    strategy=sm.wildcards.strategy,
    round=int(sm.wildcards.round),
    per_round=int(sm.params.per_round),
    seed=int(sm.params.seed),
    ridge=dict(sm.params.ridge),
    uncertainty=dict(sm.params.uncertainty),
    homology=dict(sm.params.homology),
    species=list(sm.params.species),
    label_engine=sm.params.label_engine,
    manifest=sm.input.get("manifest"),
)
