from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.report, dict(zip(sm.params.models, sm.input.metrics)),
           dict(zip(sm.params.models, sm.input.predictions)), sm.input.ridge_model, sm.input.dataset,
           list(sm.input.diagrams), dict(sm.params.report), dict(sm.params.descriptors),
           dict(sm.output), list(sm.input.structures),
           {tuple(k): v for k, v in zip(sm.params.runs, sm.input.traces)}, sm.input.learning_curve)
