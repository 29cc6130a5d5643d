from topoamorph.logs import run_logged
from topoamorph.stages.active import active_heldout

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    active_heldout,
    dataset=sm.input.dataset,
    split=sm.input.split,
    frames=list(sm.input.frames),
    heldout=sm.output.heldout,
    manifest=sm.input.get("manifest"),
)
