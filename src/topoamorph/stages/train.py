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
from ..io import atomic_path, read_json, write_json
from ..settings import SplitSettings

log = logging.getLogger(__name__)


def split(*, dataset: str, split: str, settings: dict, seed: int) -> dict:
    """One train/validation/test split shared by every model (``settings``: a ``train.split`` block, for
    imported files the files' own split; see ``settings.Campaign.split``)."""
    with Dataset(dataset) as ds:
        s = models.split(ds.meta, SplitSettings.from_config(settings), seed)
    s["provenance"] = provenance.record(settings, seed)
    write_json(split, s)
    log.info("split: %d train, %d validation, %d test frames (by %s)", len(s["train"]), len(s["validation"]),
             len(s["test"]), s["by"])
    return s


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


def _finish(name, y, pred, meta, parts, hyper, prov, metrics_out, predictions_out, extra=None) -> dict:
    out = models.report_metrics(name, y, pred, meta["density"], parts, hyper, prov)
    out.update(extra or {})
    write_predictions(predictions_out, y, pred, meta, parts, prov)
    write_json(metrics_out, out)
    log.info("%s: MAE train %.2f, validation %s, test %.2f meV/atom", name, out["train"]["mae_mev_per_atom"],
             "-" if out["validation"]["mae_mev_per_atom"] is None else f"{out['validation']['mae_mev_per_atom']:.2f}",
             out["test"]["mae_mev_per_atom"])
    return out


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


def train_ridge(*, dataset: str, split: str, metrics: str, predictions: str, model: str, ridge: dict,
                seed: int) -> dict:
    """Ridge regression, the regularisation chosen by cross-validation on the train part."""
    X, y, meta, parts = _load(dataset, split)
    tr = parts["train"]
    m = models.RidgeModel(**ridge, seed=seed).fit(X[tr], y[tr])
    pred = m.predict(X)
    prov = provenance.record(ridge, seed)
    with atomic_path(model) as tmp:
        np.savez(tmp, coef=m.coef_.reshape(X.shape[1:]), intercept=m.intercept_, alpha=m.alpha_,
                 alphas=m.alphas_, cv_rmse=m.cv_rmse_, provenance=json.dumps(prov, sort_keys=True))
    return _finish("ridge", y, pred, meta, parts, dict(ridge, alpha=m.alpha_), prov, metrics, predictions)


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


def train_cnn(*, dataset: str, split: str, metrics: str, predictions: str, model: str, cnn: dict, seed: int,
              threads: int = 1) -> dict:
    """A small CNN on the descriptor images, early-stopped on the validation part."""
    _set_threads(threads)
    X, y, meta, parts = _load(dataset, split)
    m, fit_parts = _cnn_fit(X, y, parts, cnn, seed)
    pred = m.predict(X)
    parts = dict(fit_parts, test=parts["test"])
    hyper = dict(cnn, best_epoch=m.best_epoch_, epochs_run=len(m.history_), device_used=m.device_)
    prov = provenance.record(cnn, seed)
    m.save(model, provenance=prov)
    return _finish("cnn", y, pred, meta, parts, hyper, prov, metrics, predictions, {"history": m.history_})


def _baseline_predictions(name, y, meta, feats, tr, seed):
    """Fit baseline ``name`` on rows ``tr``; predictions for every row and its hyperparameters."""
    if name == "mean":
        return np.full(len(y), y[tr].mean()), {}
    if name == "density":
        return models.DensityBaseline().fit(meta["density"][tr], y[tr]).predict(meta["density"]), {}
    m = models.ScaledRidge(seed=seed).fit(feats[name][tr], y[tr])
    return m.predict(feats[name]), {"alpha": m.ridge_.alpha_, "features": int(feats[name].shape[1])}


def train_baselines(*, dataset: str, split: str, features: str, metrics: list[str], predictions: list[str],
                    names: list[str], baselines: dict, seed: int) -> None:
    """The baselines ``names`` (mean, density, soap, rdf) on the same split; ``metrics`` and
    ``predictions``: one file each per name, in the same order."""
    _, y, meta, parts = _load(dataset, split, with_X=False)
    feats = read_features(features, meta) if features else {}
    for name, metrics_out, predictions_out in zip(names, metrics, predictions):
        pred, hyper = _baseline_predictions(name, y, meta, feats, parts["train"], seed)
        params = baselines.get(name)  # the feature settings of soap and rdf (mean and density have none)
        _finish(name, y, pred, meta, parts, dict(hyper, **({"descriptor": params} if params else {})),
                provenance.record(params, seed), metrics_out, predictions_out)


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
                pred, _ = _baseline_predictions(name, y, meta, feats, sub, seed)
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
