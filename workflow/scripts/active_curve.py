from topoamorph.logs import run_logged
from topoamorph.stages.active import active_curve

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    active_curve,
    rounds=list(sm.input.rounds),
    curve=sm.output.curve,
    figure=sm.output.figure,
    table=sm.output.table,
    dpi=int(sm.params.dpi),
)
