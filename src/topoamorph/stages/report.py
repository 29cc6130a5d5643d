"""The stage of rules/report.smk: tables and figures of a campaign."""

from __future__ import annotations

import logging

import numpy as np

from .. import report as rep
from .. import structure
from ..errors import InputFileError
from ..formats.dataset import Dataset
from ..formats.diagrams import count_diagrams, read_diagrams
from ..formats.frames import checked_frame, index_frames, parse_spec, read_rows
from ..importer import unchanged_while_read
from ..settings import ReportSettings

log = logging.getLogger(__name__)


def report(
    *,
    metrics: list[str],
    predictions: list[str],
    ridge_model: str,
    curve: str,
    dataset: str,
    diagrams: list[str],
    structures: list[str],
    traces: list[str],
    models: list[str],
    runs: list,
    settings: dict,
    table: str,
    table_csv: str,
    parity: str,
    diagram_examples: str,
    ridge_map: str,
    energy_density: str,
    structure_png: str,
    structure_csv: str,
    learning_curve: str,
    per_density: str,
    calibration: str,
    explanations: str,
    explanations_csv: str,
    evaluation_predictions: list[str] = (),
    evaluations: list[str] = (),
    evaluation: list[str] = (),
    trace: str | None = None,
    manifest: str | None = None,
) -> None:
    """``metrics`` and ``predictions``: one file per model of ``models``, in that order; ``traces``: one per
    run of ``runs`` ((density, run) pairs; none for imported data, and then no ``trace`` figure);
    ``evaluation_predictions``: per evaluation file of ``evaluations``, one file per model (file-major), and
    ``evaluation`` one figure per evaluation file; ``manifest``: the import manifest the structure files are
    checked against (imported data); ``explanations``/``explanations_csv``: the ridge model's per-atom
    explanations of ``report.EXPLAINED_FRAMES`` frames and their per-environment statistics."""
    s = ReportSettings.from_config(settings)
    metrics_files, prediction_files = dict(zip(models, metrics)), dict(zip(models, predictions))
    regime = None
    if structures:
        with unchanged_while_read(manifest, structures):
            regime = _structure_report(structures, structure_png, structure_csv, s.dpi, s.structure_frames_per_file)
    rows = rep.metrics_table(metrics_files, table, table_csv, regime)
    for line in rep.headline(rows, regime):
        log.info("%s", line.replace("**", ""))
    rep.parity_plots(prediction_files, parity, s.dpi)
    rep.calibration_plot(prediction_files, calibration, s.dpi)
    for k, (name, out) in enumerate(zip(evaluations, evaluation)):
        files = evaluation_predictions[k * len(models) : (k + 1) * len(models)]
        rep.evaluation_plot(name, dict(zip(models, files)), out, s.dpi)
    rep.per_density_errors(metrics_files, per_density, s.dpi)
    rep.learning_curve(curve, learning_curve, s.dpi)
    with Dataset(dataset) as ds:
        meta, y, attrs = ds.meta, ds.y, ds.attrs
    units = str(attrs["units"])
    rep.ridge_map(
        ridge_model,
        list(attrs["dims"]),
        list(attrs["range"]),
        list(attrs["y_range"]),
        ridge_map,
        s.dpi,
        axes=str(attrs["axes"]),
        units=units,
    )
    picks = rep.example_frames(meta, s.example_frames)
    rep.diagram_examples(meta, picks, diagrams_of_rows(diagrams, picks), diagram_examples, s.dpi, units=units)
    _explanations(ridge_model, meta, diagrams, structures, manifest, explanations, explanations_csv, s.dpi)
    rep.energy_vs_density(meta, y, energy_density, s.dpi)
    if trace is not None and traces:
        rep.traces({tuple(k): v for k, v in zip(runs, traces)}, trace, s.dpi)
    for r in rows:
        log.info("%-8s test MAE %s meV/atom", r["model"], r.get("test_mae"))


def _explanations(ridge_model, meta, diagram_files, structure_files, manifest, out_png, out_csv, dpi) -> None:
    """The ridge model's per-atom contributions for ``report.EXPLAINED_FRAMES`` final-stage frames (low, middle,
    high density; only those frames are read and explained), from the diagram files' stored simplices when the
    campaign kept them (``homology.keep_simplices``), else computed; and their per-environment statistics."""
    from ..formats.frames import read_rows
    from ..potential import vectorizer
    from ..trained import load_model

    model = load_model(ridge_model)
    try:
        vectorizer(model)
    except InputFileError as exc:
        log.warning("no per-atom explanations: %s", exc)
        rep.explanations_unavailable(str(exc), out_png, out_csv, dpi)
        return
    picks = rep.example_frames(meta, rep.EXPLAINED_FRAMES)
    sources, indices = [str(meta["source"][i]) for i in picks], [int(meta["index"][i]) for i in picks]
    with unchanged_while_read(manifest, structure_files):
        atoms = read_rows(sources, indices)
    stored = results_of_rows(diagram_files, picks)
    stored = stored if all(r.pairs is not None for r in stored) else None
    explained = rep.explain_frames(model, atoms, stored)
    frames = [
        {"density": float(meta["density"][i]), "stage": str(meta["stage"][i]), "source": src, "frame": idx}
        for i, src, idx in zip(picks, sources, indices)
    ]
    rows = rep.environment_statistics(explained, frames)
    rep.write_explanation_table(rows, out_csv)
    rep.explanations_figure(explained, atoms, frames, rows, out_png, dpi)
    for r in rows:
        if r["environment"] != "all":
            log.info(
                "explained %.2f g/cm3 frame: %s atoms %d (%.0f%%), mean contribution %+.1f meV",
                r["density"],
                r["environment"],
                r["atoms"],
                100 * r["fraction"],
                r["mean_contribution_meV"],
            )
    log.info("explanations from %s simplices", "the diagram files' stored" if stored else "recomputed")


def diagrams_of_rows(diagram_files: list[str], rows) -> list[dict]:
    """The diagrams of dataset ``rows`` (see ``results_of_rows``)."""
    return [r.diagrams for r in results_of_rows(diagram_files, rows, simplices=False)]


def results_of_rows(diagram_files: list[str], rows, simplices: bool = True) -> list:
    """The ``PersistenceResult`` of dataset ``rows`` (the dataset holds the batch files' frames in their order),
    reading only those frames of only their batch files: the report's cost does not grow with the campaign.
    ``simplices``: with their pairs' simplices where the files hold them."""
    starts = np.cumsum([0] + [count_diagrams(f) for f in diagram_files])
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= starts[-1]):
        raise ValueError(f"dataset row {int(rows.max())} beyond the {int(starts[-1])} frames of the diagram files")
    file_of = np.searchsorted(starts, rows, side="right") - 1
    out: list = [None] * len(rows)
    for f in np.unique(file_of):
        sel = np.nonzero(file_of == f)[0]
        part = read_diagrams(diagram_files[f], frames=rows[sel] - starts[f], simplices=simplices)["results"]
        for j, res in zip(sel, part):
            out[j] = res
    return out


def sampled_frames(spec: str, per_file: int) -> list:
    """Up to ``per_file`` checked frames of a structure file (``path`` or ``path@start:stop``), evenly spaced with
    the first and last included; only those frames are parsed."""
    path, start, stop = parse_spec(str(spec))
    idx = index_frames(path)
    stop = len(idx) if stop is None else min(stop, len(idx))
    if stop <= start:
        raise InputFileError(path, "no frames")
    picks = np.unique(np.linspace(start, stop - 1, min(per_file, stop - start)).round().astype(int))
    return [
        checked_frame(atoms, path, int(i), require_energy=False)
        for atoms, i in zip(read_rows([path] * len(picks), picks), picks)
    ]


def _structure_report(structure_files, out_png, out_csv, dpi, per_file: int) -> dict:
    """The structure figure and table from up to ``per_file`` frames of each structure file; returns the data's
    regime (fraction of crystal-like frames)."""
    rows, rdfs, finals = [], {}, {}
    for path in structure_files:
        frames = sampled_frames(str(path), per_file)
        rows.extend(structure.analyse_frames(frames))
        last = frames[-1].atoms
        finals.setdefault(round(float(last.info.get("density", 0.0)), 2), []).append(last)
    for density, atoms_list in finals.items():
        curves = [structure.rdf(a) for a in atoms_list]
        rdfs[density] = (curves[0][0], np.mean([g for _, g in curves], axis=0))
    rep.structure_summary(rows, rdfs, out_png, out_csv, dpi)
    trend = rep.sp3_trend(rows)
    if trend is not None:
        (log.info if trend > 0 else log.warning)(
            "sp3 fraction vs density in the last stage: Spearman %+.2f (%s)",
            trend,
            "rises, as for amorphous carbon" if trend > 0 else "does not rise: check the engine and protocol",
        )
    final_stage = rows[-1]["stage"] if rows else ""
    for density in sorted(finals):
        sel = [r["sp3"] for r in rows if r["stage"] == final_stage and round(r["density"], 2) == density]
        log.info("sp3 fraction at %.2f g/cm3 (%s): %.3f", density, final_stage, float(np.mean(sel)) if sel else np.nan)
    cryst = np.array([r["crystalline"] for r in rows])
    return {
        "frames": len(rows),
        "crystalline_frames": float(np.mean(cryst > structure.CRYSTALLINE_FRAME)),
        "crystalline_atoms": float(np.mean(cryst)),
    }
