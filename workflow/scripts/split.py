from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.make_split, sm.input[0], dict(sm.params.split), int(sm.params.seed), sm.output[0])
