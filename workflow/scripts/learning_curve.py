from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.learning_curve, sm.input.dataset, sm.input.split, sm.input.features,
           dict(sm.params.curve), dict(sm.params.models), int(sm.params.seed), sm.output[0], sm.threads)
