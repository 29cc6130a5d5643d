from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.validate_import, dict(sm.params.source), list(sm.params.species), sm.output[0])
