from topoamorph.logs import run_logged
from topoamorph.stages.active import active_initial

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    active_initial,
    dataset=sm.input.dataset,
    split=sm.input.split,
    frames=list(sm.input.frames),
    initial=sm.output.initial,
    n=int(sm.params.n),
    seed=int(sm.params.seed),
    manifest=sm.input.get("manifest"),
)
