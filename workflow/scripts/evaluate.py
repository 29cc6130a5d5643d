from topoamorph.logs import run_logged
from topoamorph.stages.evaluate import evaluate

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    evaluate,
    frames=sm.input.frames,
    selection=sm.params.selection,
    manifest=sm.input.manifest,
    model_files=list(sm.input.model_files),
    names=list(sm.params.names),
    predictions=list(sm.output.predictions),
    metrics=sm.output.metrics,
    energy_key=sm.params.energy_key,
)
