from topoamorph.logs import run_logged
from topoamorph.stages.evaluate import merge_metrics

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    merge_metrics,
    fit=sm.input.fit,
    evaluation=list(sm.input.evaluation),
    names=list(sm.params.names),
    model=sm.params.model,
    metrics=sm.output.metrics,
)
