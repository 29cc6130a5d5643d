from topoamorph import stages
from topoamorph.logs import run_logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], stages.melt_quench, sm.params.structures, float(sm.wildcards.density),
           int(sm.wildcards.run), int(sm.params.seed), sm.output[0])
