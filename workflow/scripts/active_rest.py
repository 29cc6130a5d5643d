from topoamorph.logs import run_logged
from topoamorph.stages.active import active_rest

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    active_rest,
    dataset=sm.input.dataset,
    split=sm.input.split,
    initial=sm.input.initial,
    frames=list(sm.input.frames),
    rest=sm.output.rest,
    manifest=sm.input.get("manifest"),
)
