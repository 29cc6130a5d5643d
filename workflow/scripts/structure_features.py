from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.structure_features, sm.input.dataset, dict(sm.params.baselines),
           list(sm.params.species), sm.output[0], sm.threads)
