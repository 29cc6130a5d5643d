"""Stage entry points called by the workflow's scripts (the rules stay thin; the science is here)."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np

from . import generate, models, plan, provenance
from .descriptors import Dataset, build_dataset
from .errors import InputFileError
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
                         params.get("test_source"), params.get("validation_fraction", 0.0))
    s["provenance"] = provenance.record(params, seed)
    write_json(output, s)
    log.info("split: %d train, %d validation, %d test frames (by %s)", len(s["train"]), len(s["validation"]),
             len(s["test"]), s["by"])


def structure_features(dataset: str, params: dict, species, output: str, threads: int = 1) -> None:
    from . import baselines

    shapes = baselines.structure_features(dataset, params, species, output, n_jobs=threads,
                                          provenance=provenance.record(params))
    log.info("structure features %s written to %s", shapes, output)


def _parts(split_file: str) -> dict:
    s = read_json(split_file)
    try:
        return {p: np.asarray(s.get(p, []), dtype=np.int64) for p in ("train", "validation", "test")}
    except (TypeError, ValueError) as exc:
        raise InputFileError(split_file, f"malformed split ({exc})") from None


def _load(dataset: str, split_file: str, with_X: bool = True):
    """X (None unless ``with_X``: the baselines never read the descriptors), y, metadata and the
    train/validation/test indices of the shared split."""
    parts = _parts(split_file)
    with Dataset(dataset) as ds:
        X = ds.rows(np.arange(len(ds))) if with_X else None
        y, meta = ds.y.copy(), {k: v.copy() for k, v in ds.meta.items()}
    top = max((int(v.max()) for v in parts.values() if len(v)), default=-1)
    if top >= len(y):
        raise InputFileError(split_file, f"index {top} beyond the {len(y)} frames of {dataset}: rerun the split")
    return X, y, meta, parts


def write_predictions(path, y, pred, meta, parts: dict, prov: dict | None = None) -> None:
    part_of = np.full(len(y), "", dtype=object)
    for name, idx in parts.items():
        part_of[np.asarray(idx, dtype=np.int64)] = name
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(provenance.csv_header(prov) + "\n")
        w = csv.writer(fh)
        w.writerow(["row", "part", "y_true_ev_per_atom", "y_pred_ev_per_atom", "density", "stage", "n_atoms",
                    "source", "frame"])
        for i in range(len(y)):
            w.writerow([i, part_of[i], f"{y[i]:.8f}", f"{pred[i]:.8f}", f"{meta['density'][i]:.4f}",
                        meta["stage"][i], meta["n_atoms"][i], meta["source"][i], meta["index"][i]])


def _finish(name, y, pred, meta, parts, hyper, prov, metrics_out, predictions_out, extra=None) -> dict:
    out = models.report_metrics(name, y, pred, meta["density"], parts, hyper, prov)
    out.update(extra or {})
    write_predictions(predictions_out, y, pred, meta, parts, prov)
    write_json(metrics_out, out)
    log.info("%s: MAE train %.2f, validation %s, test %.2f meV/atom", name, out["train"]["mae_mev_per_atom"],
             "-" if out["validation"]["mae_mev_per_atom"] is None else f"{out['validation']['mae_mev_per_atom']:.2f}",
             out["test"]["mae_mev_per_atom"])
    return out


def train_ridge(dataset, split_file, params: dict, seed: int, metrics_out, predictions_out, model_out) -> dict:
    X, y, meta, parts = _load(dataset, split_file)
    tr = parts["train"]
    m = models.RidgeModel(**params, seed=seed).fit(X[tr], y[tr])
    pred = m.predict(X)
    prov = provenance.record(params, seed)
    with atomic_path(model_out) as tmp:
        np.savez(tmp, coef=m.coef_.reshape(X.shape[1:]), intercept=m.intercept_, alpha=m.alpha_,
                 alphas=m.alphas_, cv_rmse=m.cv_rmse_, provenance=json.dumps(prov, sort_keys=True))
    return _finish("ridge", y, pred, meta, parts, dict(params, alpha=m.alpha_), prov, metrics_out, predictions_out)


def _cnn_fit(X, y, parts, params: dict, seed: int, train_index=None):
    """Fit the CNN on ``train_index`` (default the split's train part), early-stopped on the split's
    validation part, or on its own validation_fraction of train when the split has none."""
    tr = parts["train"] if train_index is None else np.asarray(train_index, dtype=np.int64)
    va = parts["validation"]
    if len(va):
        rows = np.concatenate([tr, va])
        m = models.CNNModel(**params, seed=seed).fit(X[rows], y[rows], validation_index=np.arange(len(tr), len(rows)))
        return m, {"train": tr, "validation": va}
    m = models.CNNModel(**params, seed=seed).fit(X[tr], y[tr])
    return m, {"train": tr[m.train_index_], "validation": tr[m.validation_index_]}


def train_cnn(dataset, split_file, params: dict, seed: int, threads: int, metrics_out, predictions_out,
              model_out) -> dict:
    import torch

    torch.set_num_threads(max(1, int(threads)))
    X, y, meta, parts = _load(dataset, split_file)
    m, fit_parts = _cnn_fit(X, y, parts, params, seed)
    pred = m.predict(X)
    parts = dict(fit_parts, test=parts["test"])
    hyper = dict(params, best_epoch=m.best_epoch_, epochs_run=len(m.history_), device_used=m.device_)
    prov = provenance.record(params, seed)
    m.save(model_out, provenance=prov)
    return _finish("cnn", y, pred, meta, parts, hyper, prov, metrics_out, predictions_out, {"history": m.history_})


def _baseline_predictions(name, y, meta, feats, tr, seed):
    """Fit baseline ``name`` on rows ``tr``; predictions for every row and its hyperparameters."""
    if name == "mean":
        return np.full(len(y), y[tr].mean()), {}
    if name == "density":
        return models.DensityBaseline().fit(meta["density"][tr], y[tr]).predict(meta["density"]), {}
    m = models.ScaledRidge(seed=seed).fit(feats[name][tr], y[tr])
    return m.predict(feats[name]), {"alpha": m.ridge_.alpha_, "features": int(feats[name].shape[1])}


def train_baselines(dataset, split_file, seed: int, outputs: dict, features=None, feature_params=None) -> None:
    """``outputs``: {name: (metrics path, predictions path)} for mean, density, and with ``features``
    (the structure-features file) soap and rdf."""
    from . import baselines

    _, y, meta, parts = _load(dataset, split_file, with_X=False)
    feats = baselines.read_features(features, meta) if features else {}
    for name, (metrics_out, predictions_out) in outputs.items():
        pred, hyper = _baseline_predictions(name, y, meta, feats, parts["train"], seed)
        params = (feature_params or {}).get(name)
        _finish(name, y, pred, meta, parts, dict(hyper, **({"descriptor": params} if params else {})),
                provenance.record(params, seed), metrics_out, predictions_out)


def learning_curve(dataset, split_file, features, params: dict, model_params: dict, seed: int, output,
                   threads: int = 1) -> dict:
    """Test and validation error against training-set size: nested random subsets of the train part
    (fractions ``params["fractions"]``), each model refitted on each."""
    from . import baselines

    X, y, meta, parts = _load(dataset, split_file)
    feats = baselines.read_features(features, meta) if features else {}
    tr = parts["train"]
    order = np.random.default_rng(seed).permutation(tr)
    curve = {"fractions": list(params["fractions"]), "models": {}, "error_units": "meV/atom"}
    if "cnn" in params["models"]:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    for name in params["models"]:
        rows = []
        for f in params["fractions"]:
            sub = np.sort(order[: max(2, int(round(f * len(tr))))])
            if name == "ridge":
                pred = models.RidgeModel(**model_params.get("ridge", {}), seed=seed).fit(X[sub], y[sub]).predict(X)
            elif name == "cnn":
                m, _ = _cnn_fit(X, y, parts, model_params.get("cnn", {}), seed, train_index=sub)
                pred = m.predict(X)
            else:
                pred, _ = _baseline_predictions(name, y, meta, feats, sub, seed)
            row = {"fraction": f, "n_train": int(len(sub))}
            for part in ("validation", "test"):
                row[part] = models.errors(y[parts[part]], pred[parts[part]])
            rows.append(row)
            log.info("learning curve %-7s n_train=%5d test MAE %.2f meV/atom", name, len(sub),
                     row["test"]["mae_mev_per_atom"])
        curve["models"][name] = rows
    curve["provenance"] = provenance.record(params, seed)
    write_json(output, curve)
    return curve


def report(metrics_files: dict, prediction_files: dict, ridge_model, dataset, diagram_files, params: dict,
           descriptors: dict, outputs: dict, structure_files=(), trace_files=None, learning_curve=None) -> None:
    from . import report as rep
    from .store import read_diagrams

    dpi = params.get("dpi", 110)
    rows = rep.metrics_table(metrics_files, outputs["table"], outputs["table_csv"])
    rep.parity_plots(prediction_files, outputs["parity"], dpi)
    if "per_density" in outputs:
        rep.per_density_errors(metrics_files, outputs["per_density"], dpi)
    if learning_curve and "learning_curve" in outputs:
        rep.learning_curve(learning_curve, outputs["learning_curve"], dpi)
    with Dataset(dataset) as ds:
        meta, y, attrs = ds.meta, ds.y, ds.attrs
    units = str(attrs.get("units", ""))
    x_range = list(attrs.get("range", descriptors["range"]))
    rep.ridge_map(ridge_model, descriptors["dims"], x_range, list(attrs.get("y_range", x_range)), outputs["ridge_map"],
                  dpi, axes=str(attrs.get("axes", "birth_death")), units=units)
    diagrams = [d for f in diagram_files for d in read_diagrams(f)["diagrams"]]
    rep.diagram_examples(meta, diagrams, outputs["diagrams"], params.get("example_frames", 4), dpi, units=units)
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
