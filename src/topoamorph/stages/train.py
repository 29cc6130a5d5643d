"""Stages of rules/train.smk: split, train_ridge, train_cnn, train_baselines, learning_curve."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import numpy as np

from .. import models, provenance
from ..errors import InputFileError
from ..formats.dataset import Dataset, row_source
from ..formats.delta import read_delta_energies
from ..formats.features import read_features
from ..formats.predictions import write_predictions
from ..io import read_json, write_json
from ..models import group_residuals_gram, group_residuals_primal, shift_groups
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
        msg = (
            f"{len(crossing)} groups of identical frames (same descriptor and energy) lie in two parts of the "
            f"split, e.g. {where}: test frames leak into training"
        )
        if opts.duplicates == "refuse":
            raise InputFileError(dataset, msg + " (train.split.duplicates: refuse)")
        log.warning("%s; set train.split.duplicates: refuse to stop here", msg)
    s["provenance"] = provenance.record(settings, seed)
    write_json(split, s)
    log.info(
        "split: %d train, %d validation, %d test frames (by %s)",
        len(s["train"]),
        len(s["validation"]),
        len(s["test"]),
        s["by"],
    )
    return s


def _identical_rows(ds: Dataset, chunk: int = 1024) -> list[list[int]]:
    """Groups (2 or more rows) of identical frames: the same descriptor bytes and energy per atom."""
    import hashlib

    seen: dict = {}
    for start in range(0, len(ds), chunk):
        X = np.ascontiguousarray(ds.X[start : start + chunk])
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


@dataclass(frozen=True)
class DeltaTarget:
    """Δ-learning (``train.delta``): every model learns y - ``energy`` (eV/atom, per dataset row), the engine's
    energy; predictions and metrics are of y (the correction plus ``energy``)."""

    energy: np.ndarray
    engine: dict
    described: str

    def header(self) -> dict:
        """What a model file records so that ``TrainedModel`` adds the engine's energy back."""
        return {"engine": self.engine, "described": self.described, "target": "E_reference - E_engine (eV/atom)"}


def _load(dataset: str, split_file: str, delta: str | None = None, delta_engine: dict | None = None):
    """(target, metadata, the train/validation/test indices of the shared split, ``DeltaTarget`` or None); the
    descriptors stay in the file (the models stream them, ``Dataset.blocks``). The target is the energy per atom,
    or with ``delta`` (the engine's energies of every row, ``train.delta``) what the engine misses of it."""
    parts = _parts(split_file)
    with Dataset(dataset) as ds:
        y, meta = ds.y.copy(), {k: v.copy() for k, v in ds.meta.items()}
    top = max((int(v.max()) for v in parts.values() if len(v)), default=-1)
    if top >= len(y):
        raise InputFileError(split_file, f"index {top} beyond the {len(y)} frames of {dataset}: rerun the split")
    target = None
    if delta:
        energy, described = read_delta_energies(delta, meta, delta_engine)
        target = DeltaTarget(energy, dict(delta_engine or {}), described)
        y = y - energy
        log.info(
            "Δ-learning on %s: the models learn E_reference - E_engine, %.4f..%.4f eV/atom", described, y.min(), y.max()
        )
    return y, meta, parts, target


def _finish(
    name,
    y,
    pred,
    meta,
    parts,
    hyper,
    prov,
    metrics_out,
    predictions_out,
    extra=None,
    sigma=None,
    delta: DeltaTarget | None = None,
) -> dict:
    """Metrics and predictions of the energy per atom (with Δ-learning, the engine's energy added back to the
    target and the prediction: the errors are the same, the reported energies are totals)."""
    if delta is not None:
        y, pred = y + delta.energy, pred + delta.energy
        hyper = dict(hyper, delta=delta.header())
    out = models.report_metrics(name, y, pred, meta["density"], parts, hyper, prov)
    out.update(extra or {})
    write_predictions(predictions_out, y, pred, meta, parts, prov, sigma=sigma)
    write_json(metrics_out, out)
    log.info(
        "%s: MAE train %.2f, validation %s, test %.2f meV/atom",
        name,
        out["train"]["mae_mev_per_atom"],
        "-" if out["validation"]["mae_mev_per_atom"] is None else f"{out['validation']['mae_mev_per_atom']:.2f}",
        out["test"]["mae_mev_per_atom"],
    )
    return out


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


def _distance_calibration(cal: Calibration, ad: ApplicabilityDomain, shift, meta, tr) -> tuple[Calibration, dict]:
    """``cal`` with its distance term fitted on the held-out groups ``shift`` = (what, groups, residuals), and
    the per-group record for the metrics."""
    what, groups, residuals = shift if shift else ("none", [], [])
    if not groups or not len(ad.basis_):
        why = "no descriptor" if not len(ad.basis_) else "fewer than 3 densities or runs in the train part"
        return cal, {"by": "none", "note": f"no distance term: {why}"}
    distances = [ad.distances_between(g, np.setdiff1d(np.arange(len(tr)), g)) for g in groups]
    cal = cal.fit_distance(
        np.concatenate(distances),
        np.concatenate(residuals),
        ad.reference_distance_,
        f"held-out {what} groups of the train part",
    )
    rows = []
    for g, r, d in zip(groups, residuals, distances):
        dens = np.asarray(meta["density"], float)[tr[g]]
        label = (
            str(np.asarray(meta["source"])[tr[g[0]]])
            if what != "density"
            else (f"{dens.min():.3f}" if np.ptp(dens) < 1e-3 else f"{dens.min():.3f}-{dens.max():.3f}")
        )
        rows.append(
            {
                "group": label,
                "n": int(len(g)),
                "mae_mev_per_atom": float(1000 * np.mean(np.abs(r))),
                "median_excess": float(np.median(cal.excess(d))),
            }
        )
    return cal, {"by": what, "groups": rows}


def _product(
    tm: TrainedModel,
    X,
    y,
    meta,
    parts,
    uncertainty: dict,
    model_out: str,
    prov: dict,
    shift=None,
    delta: DeltaTarget | None = None,
):
    """Calibrate the model's spread on the validation part, fit its applicability domain on the train part and
    σ's distance term on the held-out groups ``shift`` (``_distance_calibration``), record them (and its errors,
    and with Δ-learning the engine to add back) in the model file and save it; return (predictions of the target,
    σ, calibration metrics)."""
    if delta is not None:
        tm.header["delta"] = delta.header()
    src = row_source(X)
    va, te, tr = parts["validation"], parts["test"], parts["train"]
    ad = ApplicabilityDomain(uncertainty["domain_percentile"], uncertainty["domain_components"])
    width = tm.domain_features(src.rows(tr[:1])).shape[1]
    ad.fit_blocks(
        lambda: ((pos, tm.domain_features(b)) for pos, b in src.blocks(tr, models.PREDICT_ROWS)),
        width,
        meta["density"][tr],
        meta["n_atoms"][tr],
    )
    point, spread, distance = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
    for pos, block in src.blocks(np.arange(len(y)), models.PREDICT_ROWS):  # one pass: prediction and distance
        point[pos], spread[pos] = tm.predict_inputs(block)
        distance[pos] = ad.check(tm.domain_features(block), meta["density"][pos], meta["n_atoms"][pos])[
            "descriptor_distance"
        ]
    if len(va) >= 2:
        cal = Calibration.fit(spread[va], point[va] - y[va])
    else:  # nothing to calibrate on: the raw spread, with the training RMS error as a floor (optimistic)
        cal = Calibration(
            scale=1.0,
            floor=float(np.sqrt(np.mean((point[tr] - y[tr]) ** 2))),
            fitted_on="train residuals (no validation part)",
        )
    cal, shift_record = _distance_calibration(cal, ad, shift, meta, tr)
    sigma = cal.sigma(spread, distance)
    tm.header.update(
        calibration=cal.to_dict(),
        domain=ad.to_header(),
        provenance=prov,
        training={
            "n_train": int(len(tr)),
            "n_validation": int(len(va)),
            "n_test": int(len(te)),
            "errors": {p: models.errors(y[i], point[i]) for p, i in parts.items()},
        },
    )
    tm.arrays.update(ad.to_arrays())
    tm.save(model_out)
    cal_metrics = dict(
        cal.to_dict(),
        members=tm.n_members,
        shift=shift_record,
        **{p: coverage(point[parts[p]] - y[parts[p]], sigma[parts[p]]) for p in ("validation", "test")},
    )
    if len(va) < 2:
        cal_metrics["note"] = (
            "fewer than 2 validation frames: sigma is the raw ensemble spread with the training RMS "
            "error as a floor (uncalibrated, optimistic)"
        )
    log.info(
        "%s: %d members, sigma = sqrt((%.3g x spread)^2 + (%.2f meV/atom)^2 + (%.2f meV/atom x excess)^2); test "
        "within 1 sigma %s, 2 sigma %s, rank correlation with |error| %s",
        tm.name,
        tm.n_members,
        cal.scale,
        1000 * cal.floor,
        1000 * cal.distance_scale,
        cal_metrics["test"]["within_1sigma"],
        cal_metrics["test"]["within_2sigma"],
        cal_metrics["test"]["spearman_sigma_abs_error"],
    )
    return point, sigma, cal_metrics


def _header(name: str, estimator: str, inputs: dict, species, hyper: dict) -> dict:
    return {
        "name": name,
        "estimator": estimator,
        "target": "energy per atom (eV/atom)",
        "inputs": dict(inputs, species=sorted(set(species)), pbc=[True, True, True]),
        "hyperparameters": hyper,
    }


def _persistence_inputs(dataset: str, homology: dict) -> dict:
    """How frames become this dataset's descriptors: homology settings (``homology``: the keyword arguments of
    ``homology.compute``, ``HomologySettings.compute_options()``), vectoriser parameters, units."""
    with Dataset(dataset) as ds:
        attrs = ds.attrs
    return {
        "kind": "persistence",
        "homology": HomologySettings.from_compute_options(homology).compute_options(),
        "descriptors": json.loads(str(attrs["params"])),
        "units": str(attrs["units"]),
        "descriptor_dtype": "float32",
    }


def _linear_model(
    name: str, inputs: dict, species, hyper: dict, coef, intercept, members=None, x_mean=None, x_scale=None
) -> TrainedModel:
    arrays = {"coef": np.asarray(coef, float).reshape(-1), "intercept": np.float64(intercept)}
    if members is not None:
        arrays.update(members_coef=np.asarray(members[0], float), members_intercept=np.asarray(members[1], float))
    if x_mean is not None:
        arrays.update(x_mean=np.asarray(x_mean, float), x_scale=np.asarray(x_scale, float))
    return TrainedModel(_header(name, "linear", inputs, species, hyper), arrays)


def train_ridge(
    *,
    dataset: str,
    split: str,
    metrics: str,
    predictions: str,
    model: str,
    ridge: dict,
    uncertainty: dict,
    homology: dict,
    species: list,
    seed: int,
    delta: str | None = None,
    delta_engine: dict | None = None,
) -> dict:
    """Ridge regression, the regularisation chosen by cross-validation on the train part; a bootstrap
    ensemble at that regularisation gives the spread. Large datasets are never held: the Gram matrix of the
    training frames and the coefficients are streamed from the dataset file (``RidgeModel``, ``solver``)."""
    y, meta, parts, target = _load(dataset, split, delta, delta_engine)
    tr = parts["train"]
    resamples = bootstrap_indices(len(tr), uncertainty["bootstrap"], seed)
    what, groups = shift_groups(meta, tr)
    with Dataset(dataset) as ds:
        m = models.RidgeModel(**ridge, seed=seed)
        if m.uses_gram(len(tr), int(np.prod(ds.X.shape[1:]))):
            G = models.gram_matrix(ds, tr)
            m.fit_gram(G, y[tr])
            weights, offsets = models.gram_members(G, y[tr], m.alpha_, resamples)
            residuals = group_residuals_gram(G, y[tr], m.alpha_, groups)
            del G
            coefs = models.weighted_rows(ds, tr, np.vstack([m.weights_[None], weights]))
            m.set_coef(coefs[0])
            members = (coefs[1:], offsets)
        else:
            X = ds.rows(tr)
            m.fit(X, y[tr])
            members = models.ridge_members(X, y[tr], m.alpha_, resamples)
            residuals = group_residuals_primal(X, y[tr], m.alpha_, groups)
            del X
        hyper = dict(ridge, alpha=m.alpha_, cv_folds_used=m.cv_folds_used_)
        tm = _linear_model(
            "ridge", _persistence_inputs(dataset, homology), species, hyper, m.coef_, m.intercept_, members
        )
        tm.header["image_shape"] = list(ds.X.shape[1:])
        tm.arrays.update(alphas=m.alphas_, cv_rmse=m.cv_rmse_)
        prov = provenance.record(ridge, seed)
        pred, sigma, cal = _product(tm, ds, y, meta, parts, uncertainty, model, prov, (what, groups, residuals), target)
    return _finish(
        "ridge", y, pred, meta, parts, hyper, prov, metrics, predictions, {"calibration": cal}, sigma, target
    )


def _cnn_fit(X, y, parts, params: dict, seed: int, train_index=None):
    """Fit the CNN on ``train_index`` (default the split's train part), early-stopped on the split's
    validation part, or on its own validation_fraction of train when the split has none. ``X``: the dataset
    (streamed) or an array; ``y``: every row's target."""
    tr = parts["train"] if train_index is None else np.asarray(train_index, dtype=np.int64)
    va = parts["validation"]
    return models.CNNModel(**params, seed=seed).fit(X, y, validation_index=va if len(va) else None, train_index=tr)


def surrogate_group_residuals(ds, y, tr, groups, seed: int) -> list[np.ndarray]:
    """Held-out-group residuals for the CNN's distance term: refitting the CNN once per group would multiply its
    training cost, so ridge on the same images (regularisation by its own CV) stands in for it; the CNN's and
    ridge's errors grow alike off the training data (docs/models.md#uncertainty)."""
    if not groups:
        return []
    m = models.RidgeModel(seed=seed)
    if m.uses_gram(len(tr), int(np.prod(ds.X.shape[1:]))):
        G = models.gram_matrix(ds, tr)
        m.fit_gram(G, y[tr])
        return group_residuals_gram(G, y[tr], m.alpha_, groups)
    X = ds.rows(tr)
    m.fit(X, y[tr])
    return group_residuals_primal(X, y[tr], m.alpha_, groups)


def train_cnn(
    *,
    dataset: str,
    split: str,
    metrics: str,
    predictions: str,
    model: str,
    cnn: dict,
    uncertainty: dict,
    homology: dict,
    species: list,
    seed: int,
    threads: int = 1,
    delta: str | None = None,
    delta_engine: dict | None = None,
) -> dict:
    """An ensemble of small CNNs on the descriptor images (seeds seed, seed+1, ...), each early-stopped on the
    validation part; the prediction is the members' mean, their spread the uncertainty. The images are streamed
    from the dataset file: memory holds a shuffle buffer, not the training set."""
    _set_threads(threads)
    y, meta, parts, target = _load(dataset, split, delta, delta_engine)
    if not len(parts["validation"]):  # one held-out subset of train for every member (early stopping, calibration)
        tr = parts["train"]
        n_va = max(1, int(round(models.CNNModel(**cnn).validation_fraction * len(tr))))
        va = np.sort(np.random.default_rng(seed).permutation(tr)[:n_va])
        parts = dict(parts, train=np.setdiff1d(tr, va), validation=va)
    arrays, fits = {}, []
    with Dataset(dataset) as ds:
        for j in range(int(uncertainty["cnn_members"])):
            m = _cnn_fit(ds, y, parts, cnn, seed + j)
            arrays.update({f"m{j}.{k}": v for k, v in m.state_arrays().items()})
            fits.append(m)
        first = fits[0]
        hyper = dict(
            cnn,
            best_epoch=[f.best_epoch_ for f in fits],
            epochs_run=[len(f.history_) for f in fits],
            device_used=first.device_,
            members=len(fits),
            seconds={k: round(sum(f.timing_[k] for f in fits), 1) for k in first.timing_},
        )
        header = _header("cnn", "cnn", _persistence_inputs(dataset, homology), species, hyper)
        header["cnn"] = {
            "members": len(fits),
            "in_channels": int(ds.X.shape[1]),
            "bins": int(ds.X.shape[2]),
            "channels": list(first.channels),
            "hidden": int(first.hidden),
            "pool": first.pool,
        }
        tm = TrainedModel(header, arrays)
        prov = provenance.record(cnn, seed)
        what, groups = shift_groups(meta, parts["train"])
        shift = (what, groups, surrogate_group_residuals(ds, y, parts["train"], groups, seed))
        pred, sigma, cal = _product(tm, ds, y, meta, parts, uncertainty, model, prov, shift, target)
    return _finish(
        "cnn",
        y,
        pred,
        meta,
        parts,
        hyper,
        prov,
        metrics,
        predictions,
        {"history": first.history_, "calibration": cal},
        sigma,
        target,
    )


def _baseline_model(name, y, meta, feats, tr, seed, species, params, resamples=()) -> tuple[TrainedModel, dict]:
    """Baseline ``name`` fitted on rows ``tr`` (and refitted on each resample of them, for the spread), as a
    trained model; its inputs for every row are ``_baseline_inputs``."""
    if name == "mean":
        boot = [float(np.mean(y[tr][r])) for r in resamples]
        tm = _linear_model(
            name, {"kind": "none"}, species, {}, np.zeros(0), y[tr].mean(), (np.zeros((len(boot), 0)), boot)
        )
        return tm, {}
    if name == "density":
        b = models.DensityBaseline().fit(meta["density"][tr], y[tr])
        Z = (models.density_features(meta["density"][tr]) - b.mean_) / b.scale_
        members = models.ridge_members(Z, y[tr], b.alpha_, resamples)
        tm = _linear_model(
            name, {"kind": "density"}, species, {"alpha": b.alpha_}, b.coef_, b.intercept_, members, b.mean_, b.scale_
        )
        return tm, {"alpha": b.alpha_}
    m = models.ScaledRidge(seed=seed).fit(feats[name][tr], y[tr])
    Z = (feats[name][tr] - m.mean_) / m.scale_
    members = models.ridge_members(Z, y[tr], m.ridge_.alpha_, resamples)
    hyper = {
        "alpha": m.ridge_.alpha_,
        "cv_folds_used": m.ridge_.cv_folds_used_,
        "features": int(feats[name].shape[1]),
        "descriptor": params,
    }
    tm = _linear_model(
        name,
        {"kind": name, "params": params},
        species,
        hyper,
        m.ridge_.coef_,
        m.ridge_.intercept_,
        members,
        m.mean_,
        m.scale_,
    )
    return tm, hyper


def _baseline_inputs(name, y, meta, feats):
    return {"mean": np.zeros((len(y), 0)), "density": meta["density"]}.get(name, feats.get(name))


def train_baselines(
    *,
    dataset: str,
    split: str,
    features: str,
    metrics: list[str],
    predictions: list[str],
    model_files: list[str],
    names: list[str],
    baselines: dict,
    uncertainty: dict,
    species: list,
    seed: int,
    delta: str | None = None,
    delta_engine: dict | None = None,
) -> None:
    """The baselines ``names`` (mean, density, soap, rdf) on the same split; ``metrics``, ``predictions`` and
    ``model_files``: one file each per name, in the same order."""
    y, meta, parts, target = _load(dataset, split, delta, delta_engine)
    feats = read_features(features, meta) if features else {}
    resamples = bootstrap_indices(len(parts["train"]), uncertainty["bootstrap"], seed)
    for name, metrics_out, predictions_out, model_out in zip(names, metrics, predictions, model_files):
        params = baselines.get(name)  # the feature settings of soap and rdf (mean and density have none)
        tm, hyper = _baseline_model(name, y, meta, feats, parts["train"], seed, species, params, resamples)
        prov = provenance.record(params, seed)
        X = _baseline_inputs(name, y, meta, feats)
        shift = None
        if name in feats:  # the descriptor baselines (soap, rdf); density and mean have no descriptor distance
            tr = parts["train"]
            what, groups = shift_groups(meta, tr)
            Z = (np.asarray(feats[name][tr], float) - tm.arrays["x_mean"]) / tm.arrays["x_scale"]
            shift = (what, groups, group_residuals_primal(Z, y[tr], hyper["alpha"], groups))
        pred, sigma, cal = _product(tm, X, y, meta, parts, uncertainty, model_out, prov, shift, target)
        _finish(
            name, y, pred, meta, parts, hyper, prov, metrics_out, predictions_out, {"calibration": cal}, sigma, target
        )


def _ridge_curve(ds, y, tr, subsets, ridge: dict, seed: int) -> list[np.ndarray]:
    """Ridge predictions of every row, refitted on each nested subset of the train part ``tr``: with the Gram
    solver, one Gram matrix of ``tr`` serves every subset and one pass gives all their coefficients."""
    model = models.RidgeModel(**ridge, seed=seed)
    rows = np.arange(len(y))
    if not model.uses_gram(len(tr), int(np.prod(ds.X.shape[1:]))):
        X = ds.rows(rows)
        return [models.RidgeModel(**ridge, seed=seed).fit(X[sub], y[sub]).predict(X) for sub in subsets]
    G = models.gram_matrix(ds, tr)
    where = {int(r): i for i, r in enumerate(tr)}
    W, offsets = np.zeros((len(subsets), len(tr))), []
    for k, sub in enumerate(subsets):
        p = np.array([where[int(r)] for r in sub])
        m = models.RidgeModel(**ridge, seed=seed).fit_gram(G[np.ix_(p, p)], y[sub])
        W[k, p] = m.weights_
        offsets.append(m.intercept_offset_)
    del G
    coefs = models.weighted_rows(ds, tr, W)
    preds = np.zeros((len(subsets), len(y)))
    for pos, block in ds.blocks(rows, models.PREDICT_ROWS):
        preds[:, pos] = coefs @ block.reshape(len(block), -1).T.astype(float) + np.array(offsets)[:, None]
    return list(preds)


def cnn_budget(cnn: dict, n_full: int, n_subset: int, budget: str = "steps") -> dict:
    """The CNN settings of a learning-curve point trained on ``n_subset`` of the ``n_full`` training frames.
    ``budget="steps"``: epochs and patience scaled by the full set's batches per epoch over the subset's, so the
    point takes the optimizer steps (and cosine schedule, and patience in steps) of the full-size training, and
    is validated about once per full-size epoch (``validate_every``); ``"epochs"``: unchanged."""
    if budget == "epochs":
        return dict(cnn)
    if budget != "steps":
        raise ValueError(f"train.learning_curve.cnn_budget: {budget!r} is not 'steps' or 'epochs'")
    batch = int(cnn["batch_size"])
    scale = math.ceil(n_full / batch) / max(1, math.ceil(n_subset / batch))
    if scale == 1:
        return dict(cnn)
    # validated about as often as the full-size training is (once per its epoch), not once per short epoch
    return dict(
        cnn,
        epochs=int(math.ceil(cnn["epochs"] * scale)),
        patience=int(math.ceil(cnn["patience"] * scale)),
        validate_every=max(1, int(round(scale))),
    )


def curve_subsets(train, fractions, seed: int) -> list[np.ndarray]:
    """The learning curve's nested random subsets of the train part (sorted rows), one per fraction."""
    order = np.random.default_rng(seed).permutation(train)
    return [np.sort(order[: max(2, int(round(f * len(train))))]) for f in fractions]


def learning_curve(
    *,
    dataset: str,
    split: str,
    features: str,
    curve: str,
    settings: dict,
    models_params: dict,
    seed: int,
    threads: int = 1,
    delta: str | None = None,
    delta_engine: dict | None = None,
) -> dict:
    """Test and validation error against training-set size: nested random subsets of the train part
    (fractions ``settings["fractions"]``), each model of ``settings["models"]`` refitted on each
    (``models_params``: the ridge and cnn blocks of the PH models among them)."""
    y, meta, parts, target = _load(dataset, split, delta, delta_engine)
    feats = read_features(features, meta) if features else {}
    tr = parts["train"]
    subsets = curve_subsets(tr, settings["fractions"], seed)
    out = {"fractions": list(settings["fractions"]), "models": {}, "error_units": "meV/atom"}
    if "cnn" in settings["models"]:
        _set_threads(threads)
    with Dataset(dataset) as ds:
        for name in settings["models"]:
            if name == "ridge":
                preds = _ridge_curve(ds, y, tr, subsets, models_params["ridge"], seed)
            rows = []
            for k, (f, sub) in enumerate(zip(settings["fractions"], subsets)):
                if name == "ridge":
                    pred = preds[k]
                elif name == "cnn":
                    params = cnn_budget(models_params["cnn"], len(tr), len(sub), settings["cnn_budget"])
                    m = _cnn_fit(ds, y, parts, params, seed, train_index=sub)
                    pred = m.predict(ds)
                else:
                    tm, _ = _baseline_model(name, y, meta, feats, sub, seed, species=[], params=None)
                    pred = tm.predict_inputs(_baseline_inputs(name, y, meta, feats))[0]
                row = {"fraction": f, "n_train": int(len(sub))}
                if name == "cnn":
                    row.update(
                        epochs=params["epochs"],
                        patience=params["patience"],
                        epochs_run=len(m.history_),
                        best_epoch=int(m.best_epoch_),
                        validate_every=params.get("validate_every", 1),
                    )
                for part in ("validation", "test"):
                    row[part] = models.errors(y[parts[part]], pred[parts[part]])
                rows.append(row)
                log.info(
                    "learning curve %-7s n_train=%5d test MAE %.2f meV/atom",
                    name,
                    len(sub),
                    row["test"]["mae_mev_per_atom"],
                )
            out["models"][name] = rows
    if target is not None:  # errors are those of the energy: the same as of the correction the models learn
        out["delta"] = target.header()
    out["provenance"] = provenance.record(settings, seed)
    write_json(curve, out)
    return out
