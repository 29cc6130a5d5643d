from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.train_cnn, sm.input.dataset, sm.input.split, dict(sm.params.cnn),
           int(sm.params.seed), sm.threads, sm.output.metrics, sm.output.predictions, sm.output.model)
