from topoamorph.logs import run_logged
from topoamorph.stages.evaluate import validate_evaluation

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    validate_evaluation,
    frames=sm.input.frames,
    selection=sm.params.selection,
    manifest=sm.output.manifest,
    energy_key=sm.params.energy_key,
    species=list(sm.params.species),
)
