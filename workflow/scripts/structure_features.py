from topoamorph.logs import run_logged
from topoamorph.stages.descriptors import structure_features

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    structure_features,
    dataset=sm.input.dataset,
    frames=list(sm.input.frames),
    features=sm.output.features,
    baselines=dict(sm.params.baselines),
    species=list(sm.params.species),
    threads=sm.threads,
    manifest=sm.input.get("manifest"),
)
