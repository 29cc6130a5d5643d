"""Stages of rules/train.smk: split, train_ridge, train_cnn, train_baselines, learning_curve."""

from __future__ import annotations

import json
import logging

import numpy as np

from .. import models, provenance
from ..errors import InputFileError
from ..formats.dataset import Dataset
from ..formats.features import read_features
from ..formats.predictions import write_predictions
from ..io import read_json, write_json
from ..settings import HomologySettings, SplitSettings
from ..trained import TrainedModel
from ..uncertainty import ApplicabilityDomain, Calibration, bootstrap_indices, coverage

log = logging.getLogger(__name__)


def split(*, dataset: str, split: str, settings: dict, seed: int) -> dict:
    """One train/validation/test split shared by every model (``settings``: a ``train.split`` block, for
    imported files the files' own split; see ``settings.Campaign.split``)."""
    opts = SplitSettings.from_config(settings)
    with Dataset(dataset) as ds:
        s = models.split(ds.meta, opts, seed)
        groups = _identical_rows(ds)
        src, idx = ds.meta["source"], ds.meta["index"]
    part_of = {i: p for p in ("train", "validation", "test") for i in s[p]}
    crossing = [g for g in groups if len({part_of.get(i) for i in g}) > 1]
    s["duplicates"] = {"identical_groups": len(groups), "across_parts": [[int(i) for i in g] for g in crossing]}
    if crossing:
        where = ", ".join(f"{src[i]} frame {idx[i]} ({part_of[i]})" for i in crossing[0][:3])
        msg = (f"{len(crossing)} groups of identical frames (same descriptor and energy) lie in two parts of the "
               f"split, e.g. {where}: test frames leak into training")
        if opts.duplicates == "refuse":
            raise InputFileError(dataset, msg + " (train.split.duplicates: refuse)")
        log.warning("%s; set train.split.duplicates: refuse to stop here", msg)
    s["provenance"] = provenance.record(settings, seed)
    write_json(split, s)
    log.info("split: %d train, %d validation, %d test frames (by %s)", len(s["train"]), len(s["validation"]),
             len(s["test"]), s["by"])
    return s


def _identical_rows(ds: Dataset, chunk: int = 1024) -> list[list[int]]:
    """Groups (2 or more rows) of identical frames: the same descriptor bytes and energy per atom."""
    import hashlib

    seen: dict = {}
    for start in range(0, len(ds), chunk):
        X = np.ascontiguousarray(ds.X[start:start + chunk])
        for k, row in enumerate(X):
            i = start + k
            key = hashlib.blake2b(row.tobytes() + np.float64(ds.y[i]).tobytes(), digest_size=16).digest()
            seen.setdefault(key, []).append(i)
    return [g for g in seen.values() if len(g) > 1]


def _parts(split_file: str) -> dict:
    s = read_json(split_file)
    try:
        return {p: np.asarray(s[p], dtype=np.int64) for p in ("train", "validation", "test")}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFileError(split_file, f"malformed split ({type(exc).__name__}: {exc})") from None


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


def _finish(name, y, pred, meta, parts, hyper, prov, metrics_out, predictions_out, extra=None, sigma=None) -> dict:
    out = models.report_metrics(name, y, pred, meta["density"], parts, hyper, prov)
    out.update(extra or {})
    write_predictions(predictions_out, y, pred, meta, parts, prov, sigma=sigma)
    write_json(metrics_out, out)
    log.info("%s: MAE train %.2f, validation %s, test %.2f meV/atom", name, out["train"]["mae_mev_per_atom"],
             "-" if out["validation"]["mae_mev_per_atom"] is None else f"{out['validation']['mae_mev_per_atom']:.2f}",
             out["test"]["mae_mev_per_atom"])
    return out


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


def _product(tm: TrainedModel, X, y, meta, parts, uncertainty: dict, model_out: str, prov: dict):
    """Calibrate the model's spread on the validation part, fit its applicability domain on the train part,
    record both (and its errors) in the model file and save it; return (predictions, σ, calibration metrics)."""
    point, spread = tm.predict_inputs(X)
    va, te, tr = parts["validation"], parts["test"], parts["train"]
    if len(va) >= 2:
        cal = Calibration.fit(spread[va], point[va] - y[va])
    else:  # nothing to calibrate on: the raw spread, with the training RMS error as a floor (optimistic)
        cal = Calibration(scale=1.0, floor=float(np.sqrt(np.mean((point[tr] - y[tr]) ** 2))),
                          fitted_on="train residuals (no validation part)")
    sigma = cal.sigma(spread)
    ad = ApplicabilityDomain(uncertainty["domain_percentile"], uncertainty["domain_components"])
    ad.fit(tm.domain_features(X[tr]), meta["density"][tr], meta["n_atoms"][tr])
    tm.header.update(calibration=cal.to_dict(), domain=ad.to_header(), provenance=prov,
                     training={"n_train": int(len(tr)), "n_validation": int(len(va)), "n_test": int(len(te)),
                               "errors": {p: models.errors(y[i], point[i]) for p, i in parts.items()}})
    tm.arrays.update(ad.to_arrays())
    tm.save(model_out)
    cal_metrics = dict(cal.to_dict(), members=tm.n_members,
                       **{p: coverage(point[parts[p]] - y[parts[p]], sigma[parts[p]]) for p in ("validation", "test")})
    if len(va) < 2:
        cal_metrics["note"] = ("fewer than 2 validation frames: sigma is the raw ensemble spread with the training RMS "
                               "error as a floor (uncalibrated, optimistic)")
    log.info("%s: %d members, sigma = sqrt((%.3g x spread)^2 + (%.2f meV/atom)^2); test within 1 sigma %s, 2 sigma %s",
             tm.name, tm.n_members, cal.scale, 1000 * cal.floor, cal_metrics["test"]["within_1sigma"],
             cal_metrics["test"]["within_2sigma"])
    return point, sigma, cal_metrics


def _header(name: str, estimator: str, inputs: dict, species, hyper: dict) -> dict:
    return {"name": name, "estimator": estimator, "target": "energy per atom (eV/atom)",
            "inputs": dict(inputs, species=sorted(set(species)), pbc=[True, True, True]), "hyperparameters": hyper}


def _persistence_inputs(dataset: str, homology: dict) -> dict:
    """How frames become this dataset's descriptors: homology settings (``homology``: the keyword arguments of
    ``homology.compute``, ``HomologySettings.compute_options()``), vectoriser parameters, units."""
    with Dataset(dataset) as ds:
        attrs = ds.attrs
    return {"kind": "persistence", "homology": HomologySettings.from_compute_options(homology).compute_options(),
            "descriptors": json.loads(str(attrs["params"])), "units": str(attrs["units"]),
            "descriptor_dtype": "float32"}


def _linear_model(name: str, inputs: dict, species, hyper: dict, coef, intercept, members=None, x_mean=None,
                  x_scale=None) -> TrainedModel:
    arrays = {"coef": np.asarray(coef, float).reshape(-1), "intercept": np.float64(intercept)}
    if members is not None:
        arrays.update(members_coef=np.asarray(members[0], float), members_intercept=np.asarray(members[1], float))
    if x_mean is not None:
        arrays.update(x_mean=np.asarray(x_mean, float), x_scale=np.asarray(x_scale, float))
    return TrainedModel(_header(name, "linear", inputs, species, hyper), arrays)


def train_ridge(*, dataset: str, split: str, metrics: str, predictions: str, model: str, ridge: dict,
                uncertainty: dict, homology: dict, species: list, seed: int) -> dict:
    """Ridge regression, the regularisation chosen by cross-validation on the train part; a bootstrap
    ensemble at that regularisation gives the spread."""
    X, y, meta, parts = _load(dataset, split)
    tr = parts["train"]
    m = models.RidgeModel(**ridge, seed=seed).fit(X[tr], y[tr])
    members = models.ridge_members(X[tr], y[tr], m.alpha_, bootstrap_indices(len(tr), uncertainty["bootstrap"], seed))
    hyper = dict(ridge, alpha=m.alpha_, cv_folds_used=m.cv_folds_used_)
    tm = _linear_model("ridge", _persistence_inputs(dataset, homology), species, hyper, m.coef_, m.intercept_,
                       members)
    tm.header["image_shape"] = list(X.shape[1:])
    tm.arrays.update(alphas=m.alphas_, cv_rmse=m.cv_rmse_)
    prov = provenance.record(ridge, seed)
    pred, sigma, cal = _product(tm, X, y, meta, parts, uncertainty, model, prov)
    return _finish("ridge", y, pred, meta, parts, hyper, prov, metrics, predictions, {"calibration": cal}, sigma)


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


def train_cnn(*, dataset: str, split: str, metrics: str, predictions: str, model: str, cnn: dict, uncertainty: dict,
              homology: dict, species: list, seed: int, threads: int = 1) -> dict:
    """An ensemble of small CNNs on the descriptor images (seeds seed, seed+1, ...), each early-stopped on the
    validation part; the prediction is the members' mean, their spread the uncertainty."""
    _set_threads(threads)
    X, y, meta, parts = _load(dataset, split)
    if not len(parts["validation"]):  # one held-out subset of train for every member (early stopping, calibration)
        tr = parts["train"]
        n_va = max(1, int(round(models.CNNModel(**cnn).validation_fraction * len(tr))))
        va = np.sort(np.random.default_rng(seed).permutation(tr)[:n_va])
        parts = dict(parts, train=np.setdiff1d(tr, va), validation=va)
    arrays, fits = {}, []
    for j in range(int(uncertainty["cnn_members"])):
        m, _ = _cnn_fit(X, y, parts, cnn, seed + j)
        arrays.update({f"m{j}.{k}": v for k, v in m.state_arrays().items()})
        fits.append(m)
    first = fits[0]
    hyper = dict(cnn, best_epoch=[f.best_epoch_ for f in fits], epochs_run=[len(f.history_) for f in fits],
                 device_used=first.device_, members=len(fits))
    header = _header("cnn", "cnn", _persistence_inputs(dataset, homology), species, hyper)
    header["cnn"] = {"members": len(fits), "in_channels": int(X.shape[1]), "bins": int(X.shape[2]),
                     "channels": list(first.channels), "hidden": int(first.hidden), "pool": first.pool}
    tm = TrainedModel(header, arrays)
    prov = provenance.record(cnn, seed)
    pred, sigma, cal = _product(tm, X, y, meta, parts, uncertainty, model, prov)
    return _finish("cnn", y, pred, meta, parts, hyper, prov, metrics, predictions,
                   {"history": first.history_, "calibration": cal}, sigma)


def _baseline_model(name, y, meta, feats, tr, seed, species, params, resamples=()) -> tuple[TrainedModel, dict]:
    """Baseline ``name`` fitted on rows ``tr`` (and refitted on each resample of them, for the spread), as a
    trained model; its inputs for every row are ``_baseline_inputs``."""
    if name == "mean":
        boot = [float(np.mean(y[tr][r])) for r in resamples]
        tm = _linear_model(name, {"kind": "none"}, species, {}, np.zeros(0), y[tr].mean(),
                           (np.zeros((len(boot), 0)), boot))
        return tm, {}
    if name == "density":
        b = models.DensityBaseline().fit(meta["density"][tr], y[tr])
        Z = (models.density_features(meta["density"][tr]) - b.mean_) / b.scale_
        members = models.ridge_members(Z, y[tr], b.alpha_, resamples)
        tm = _linear_model(name, {"kind": "density"}, species, {"alpha": b.alpha_}, b.coef_, b.intercept_, members,
                           b.mean_, b.scale_)
        return tm, {"alpha": b.alpha_}
    m = models.ScaledRidge(seed=seed).fit(feats[name][tr], y[tr])
    Z = (feats[name][tr] - m.mean_) / m.scale_
    members = models.ridge_members(Z, y[tr], m.ridge_.alpha_, resamples)
    hyper = {"alpha": m.ridge_.alpha_, "cv_folds_used": m.ridge_.cv_folds_used_, "features": int(feats[name].shape[1]),
             "descriptor": params}
    tm = _linear_model(name, {"kind": name, "params": params}, species, hyper, m.ridge_.coef_, m.ridge_.intercept_,
                       members, m.mean_, m.scale_)
    return tm, hyper


def _baseline_inputs(name, y, meta, feats):
    return {"mean": np.zeros((len(y), 0)), "density": meta["density"]}.get(name, feats.get(name))


def train_baselines(*, dataset: str, split: str, features: str, metrics: list[str], predictions: list[str],
                    model_files: list[str], names: list[str], baselines: dict, uncertainty: dict, species: list,
                    seed: int) -> None:
    """The baselines ``names`` (mean, density, soap, rdf) on the same split; ``metrics``, ``predictions`` and
    ``model_files``: one file each per name, in the same order."""
    _, y, meta, parts = _load(dataset, split, with_X=False)
    feats = read_features(features, meta) if features else {}
    resamples = bootstrap_indices(len(parts["train"]), uncertainty["bootstrap"], seed)
    for name, metrics_out, predictions_out, model_out in zip(names, metrics, predictions, model_files):
        params = baselines.get(name)  # the feature settings of soap and rdf (mean and density have none)
        tm, hyper = _baseline_model(name, y, meta, feats, parts["train"], seed, species, params, resamples)
        prov = provenance.record(params, seed)
        X = _baseline_inputs(name, y, meta, feats)
        pred, sigma, cal = _product(tm, X, y, meta, parts, uncertainty, model_out, prov)
        _finish(name, y, pred, meta, parts, hyper, prov, metrics_out, predictions_out, {"calibration": cal}, sigma)


def learning_curve(*, dataset: str, split: str, features: str, curve: str, settings: dict, models_params: dict,
                   seed: int, threads: int = 1) -> dict:
    """Test and validation error against training-set size: nested random subsets of the train part
    (fractions ``settings["fractions"]``), each model of ``settings["models"]`` refitted on each
    (``models_params``: the ridge and cnn blocks of the PH models among them)."""
    X, y, meta, parts = _load(dataset, split)
    feats = read_features(features, meta) if features else {}
    tr = parts["train"]
    order = np.random.default_rng(seed).permutation(tr)
    out = {"fractions": list(settings["fractions"]), "models": {}, "error_units": "meV/atom"}
    if "cnn" in settings["models"]:
        _set_threads(threads)
    for name in settings["models"]:
        rows = []
        for f in settings["fractions"]:
            sub = np.sort(order[: max(2, int(round(f * len(tr))))])
            if name == "ridge":
                pred = models.RidgeModel(**models_params["ridge"], seed=seed).fit(X[sub], y[sub]).predict(X)
            elif name == "cnn":
                m, _ = _cnn_fit(X, y, parts, models_params["cnn"], seed, train_index=sub)
                pred = m.predict(X)
            else:
                tm, _ = _baseline_model(name, y, meta, feats, sub, seed, species=[], params=None)
                pred = tm.predict_inputs(_baseline_inputs(name, y, meta, feats))[0]
            row = {"fraction": f, "n_train": int(len(sub))}
            for part in ("validation", "test"):
                row[part] = models.errors(y[parts[part]], pred[parts[part]])
            rows.append(row)
            log.info("learning curve %-7s n_train=%5d test MAE %.2f meV/atom", name, len(sub),
                     row["test"]["mae_mev_per_atom"])
        out["models"][name] = rows
    out["provenance"] = provenance.record(settings, seed)
    write_json(curve, out)
    return out
