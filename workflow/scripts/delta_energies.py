from topoamorph.logs import run_logged
from topoamorph.stages.descriptors import delta_energies

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    delta_energies,
    dataset=sm.input.dataset,
    frames=list(sm.input.frames),
    energies=sm.output.energies,
    engine=dict(sm.params.engine),
    element=sm.params.element,
    workdir=sm.params.workdir,
    manifest=sm.input.get("manifest"),
)
