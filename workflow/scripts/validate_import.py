from topoamorph.logs import run_logged
from topoamorph.stages.generate import validate_import

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(
    sm.log[0],
    validate_import,
    frames=list(sm.input.frames),
    manifest=sm.output.manifest,
    source=dict(sm.params.source),
    species=list(sm.params.species),
    manifest_format=sm.params.manifest_format,
)
