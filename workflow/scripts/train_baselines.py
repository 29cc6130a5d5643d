from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
outputs = {name: (m, p) for name, m, p in zip(sm.params.names, sm.output.metrics, sm.output.predictions)}
run_logged(sm.log[0], stages.train_baselines, sm.input.dataset, sm.input.split, int(sm.params.seed), outputs,
           sm.input.features, dict(sm.params.baselines))
