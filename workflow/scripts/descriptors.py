from topoamorph.logs import run_logged
from topoamorph.stages.descriptors import descriptors

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    descriptors,
    diagrams=list(sm.input.diagrams),
    dataset=sm.output.dataset,
    descriptors=dict(sm.params.descriptors),
)
