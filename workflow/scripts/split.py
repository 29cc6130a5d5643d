from topoamorph.logs import run_logged
from topoamorph.stages.train import split

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    split,
    dataset=sm.input.dataset,
    split=sm.output.split,
    settings=dict(sm.params.settings),
    seed=int(sm.params.seed),
)
