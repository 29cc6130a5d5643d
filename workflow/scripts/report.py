from topoamorph.logs import run_logged
from topoamorph.stages.report import report

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_logged(sm.log[0], report, metrics=list(sm.input.metrics), predictions=list(sm.input.predictions),
           evaluation_predictions=list(sm.input.evaluation_predictions), evaluations=list(sm.params.evaluations),
           calibration=sm.output.calibration, evaluation=list(sm.output.evaluation),
           ridge_model=sm.input.ridge_model, curve=sm.input.curve, dataset=sm.input.dataset,
           diagrams=list(sm.input.diagrams), structures=list(sm.input.structures), traces=list(sm.input.traces),
           models=list(sm.params.models), runs=[tuple(r) for r in sm.params.runs], settings=dict(sm.params.settings),
           table=sm.output.table, table_csv=sm.output.table_csv, parity=sm.output.parity,
           diagram_examples=sm.output.diagram_examples, ridge_map=sm.output.ridge_map,
           energy_density=sm.output.energy_density, structure_png=sm.output.structure_png,
           structure_csv=sm.output.structure_csv, learning_curve=sm.output.learning_curve,
           per_density=sm.output.per_density, explanations=sm.output.explanations,
           explanations_csv=sm.output.explanations_csv, trace=sm.output.get("trace"), manifest=sm.input.get("manifest"))
