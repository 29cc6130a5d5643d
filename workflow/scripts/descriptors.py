from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.descriptors, list(sm.input), dict(sm.params.descriptors), sm.output[0])
