"""Stage entry points called by the workflow's scripts (the rules stay thin; the science is here)."""

from __future__ import annotations

import csv
import logging

import numpy as np

from . import generate, models, plan, provenance
from .descriptors import Dataset, build_dataset
from .io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)


def melt_quench(structures: dict, density: float, run: int, seed: int, output: str, trace: str,
                checkpoint: str | None = None, workdir: str | None = None) -> None:
    """One melt-quench run: frames and trace written atomically, then the checkpoint removed."""
    sched = plan.schedule(structures["protocol"])
    res = generate.melt_quench(structures, sched, density, run, seed, checkpoint=checkpoint, workdir=workdir)
    generate.write_trace(trace, res.trace)
    generate.write_frames(output, res.frames)
    generate.remove_checkpoint(checkpoint)
    log.info("wrote %d frames to %s and %d trace rows to %s", len(res.frames), output, len(res.trace), trace)


def relabel(frames_file: str, engine_cfg: dict, element: str, output: str, forces: bool = True,
            checkpoint: str | None = None, workdir: str | None = None) -> None:
    """Single-point labels of a run's frames with a second engine (see generate.relabel)."""
    from . import frames as framesio

    frames = [f.atoms for f in framesio.read_spec(frames_file)]
    out = generate.relabel(frames, engine_cfg, element, checkpoint=checkpoint, workdir=workdir, forces=forces,
                           source=str(frames_file))
    generate.write_frames(output, out)
    generate.remove_checkpoint(checkpoint)
    log.info("wrote %d relabelled frames to %s", len(out), output)


def validate_import(source: dict, species, output: str) -> None:
    from . import importer

    importer.validate(source, species, output)


def descriptors(diagram_files, params: dict, output: str) -> None:
    build_dataset(list(diagram_files), output, params, provenance.record(params))


def make_split(dataset: str, params: dict, seed: int, output: str) -> None:
    with Dataset(dataset) as ds:
        s = models.split(ds.meta, params.get("test_fraction", 0.0), seed, params.get("by", "frame"),
                         params.get("test_source"))
    s["provenance"] = provenance.record(params, seed)
    write_json(output, s)
    log.info("split: %d train, %d test frames (by %s)", len(s["train"]), len(s["test"]), s["by"])


def _load(dataset: str, split_file: str):
    """X, y, metadata and the train and test indices of the shared split."""
    s = read_json(split_file)
    with Dataset(dataset) as ds:
        X = ds.rows(np.arange(len(ds)))
        y, meta = ds.y.copy(), {k: v.copy() for k, v in ds.meta.items()}
    return X, y, meta, np.asarray(s["train"]), np.asarray(s["test"])


def write_predictions(path, y, pred, meta, parts: dict) -> None:
    part_of = np.full(len(y), "", dtype=object)
    for name, idx in parts.items():
        part_of[np.asarray(idx, dtype=np.int64)] = name
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "part", "y_true_ev_per_atom", "y_pred_ev_per_atom", "density", "stage", "n_atoms",
                    "source", "frame"])
        for i in range(len(y)):
            w.writerow([i, part_of[i], f"{y[i]:.8f}", f"{pred[i]:.8f}", f"{meta['density'][i]:.4f}",
                        meta["stage"][i], meta["n_atoms"][i], meta["source"][i], meta["index"][i]])


def train_ridge(dataset, split_file, params: dict, seed: int, metrics_out, predictions_out, model_out) -> dict:
    X, y, meta, tr, te = _load(dataset, split_file)
    m = models.RidgeModel(**params, seed=seed).fit(X[tr], y[tr])
    pred = m.predict(X)
    parts = {"train": tr, "test": te}
    hyper = dict(params, alpha=m.alpha_)
    out = models.report_metrics("ridge", y, pred, meta["density"], parts, hyper, provenance.record(params, seed))
    with atomic_path(model_out) as tmp:
        np.savez(tmp, coef=m.coef_.reshape(X.shape[1:]), intercept=m.intercept_, alpha=m.alpha_,
                 alphas=m.alphas_, cv_rmse=m.cv_rmse_)
    write_predictions(predictions_out, y, pred, meta, parts)
    write_json(metrics_out, out)
    log.info("ridge test MAE %.2f meV/atom", out["test"]["mae_mev_per_atom"])
    return out


def train_cnn(dataset, split_file, params: dict, seed: int, threads: int, metrics_out, predictions_out,
              model_out) -> dict:
    import torch

    torch.set_num_threads(max(1, int(threads)))
    X, y, meta, tr, te = _load(dataset, split_file)
    m = models.CNNModel(**params, seed=seed).fit(X[tr], y[tr])
    pred = m.predict(X)
    parts = {"train": tr[m.train_index_], "validation": tr[m.validation_index_], "test": te}
    hyper = dict(params, best_epoch=m.best_epoch_, epochs_run=len(m.history_), device_used=m.device_)
    out = models.report_metrics("cnn", y, pred, meta["density"], parts, hyper, provenance.record(params, seed))
    out["history"] = m.history_
    m.save(model_out)
    write_predictions(predictions_out, y, pred, meta, parts)
    write_json(metrics_out, out)
    log.info("cnn test MAE %.2f meV/atom on %s", out["test"]["mae_mev_per_atom"], m.device_)
    return out


def train_baselines(dataset, split_file, seed: int, outputs: dict) -> None:
    """``outputs``: {name: (metrics path, predictions path)} for the names 'mean' and 'density'."""
    X, y, meta, tr, te = _load(dataset, split_file)
    parts = {"train": tr, "test": te}
    rho = meta["density"]
    preds = {
        "mean": np.full(len(y), y[tr].mean()),
        "density": models.DensityBaseline().fit(rho[tr], y[tr]).predict(rho),
    }
    for name, (metrics_out, predictions_out) in outputs.items():
        out = models.report_metrics(name, y, preds[name], rho, parts, {}, provenance.record(None, seed))
        write_predictions(predictions_out, y, preds[name], meta, parts)
        write_json(metrics_out, out)
        log.info("%s baseline test MAE %.2f meV/atom", name, out["test"]["mae_mev_per_atom"])


def report(metrics_files: dict, prediction_files: dict, ridge_model, dataset, diagram_files, params: dict,
           dims, value_range, outputs: dict, structure_files=(), trace_files=None) -> None:
    from . import report as rep
    from .store import read_diagrams

    dpi = params.get("dpi", 110)
    rows = rep.metrics_table(metrics_files, outputs["table"], outputs["table_csv"])
    rep.parity_plots(prediction_files, outputs["parity"], dpi)
    rep.ridge_map(ridge_model, dims, value_range, outputs["ridge_map"], dpi)
    with Dataset(dataset) as ds:
        meta, y = ds.meta, ds.y
    diagrams = [d for f in diagram_files for d in read_diagrams(f)["diagrams"]]
    rep.diagram_examples(meta, diagrams, outputs["diagrams"], params.get("example_frames", 4), dpi)
    rep.energy_vs_density(meta, y, outputs["energy_density"], dpi)
    if structure_files:
        _structure_report(structure_files, outputs, dpi)
    if trace_files and "trace" in outputs:
        rep.traces(trace_files, outputs["trace"], dpi)
    for r in rows:
        log.info("%-8s test MAE %s meV/atom", r["model"], r.get("test_mae"))


def _structure_report(structure_files, outputs: dict, dpi) -> None:
    from . import report as rep
    from . import structure
    from .frames import read_spec

    rows, rdfs, finals = [], {}, {}
    for path in structure_files:
        frames = read_spec(str(path), require_energy=False)
        rows.extend(structure.analyse_frames(frames))
        last = frames[-1].atoms
        finals.setdefault(round(float(last.info.get("density", 0.0)), 2), []).append(last)
    for density, atoms_list in finals.items():
        curves = [structure.rdf(a) for a in atoms_list]
        rdfs[density] = (curves[0][0], np.mean([g for _, g in curves], axis=0))
    rep.structure_summary(rows, rdfs, outputs["structure"], outputs["structure_csv"], dpi)
    trend = rep.sp3_trend(rows)
    if trend is not None:
        (log.info if trend > 0 else log.warning)(
            "sp3 fraction vs density in the last stage: Spearman %+.2f (%s)", trend,
            "rises, as for amorphous carbon" if trend > 0 else "does not rise: check the engine and protocol")
    final_stage = rows[-1]["stage"] if rows else ""
    for density in sorted(finals):
        sel = [r["sp3"] for r in rows if r["stage"] == final_stage and round(r["density"], 2) == density]
        log.info("sp3 fraction at %.2f g/cm3 (%s): %.3f", density, final_stage, float(np.mean(sel)) if sel else np.nan)
