"""Active labelling: label only the frames a model is least sure of.

The pool is a campaign's train part (frames made by the cheap engine, descriptors computed once); its validation
and test parts are labelled once by the label engine (``active.label.engine``), to calibrate σ and to score.
Round 0 labels ``initial`` random pool frames (shared by every strategy); each round fits ridge on the labelled
frames' images
(regularisation by cross-validation), calibrates σ as training does (the validation part's floor and a distance
term fitted on held-out densities or runs, ``topoamorph.stages.train``), scores it on the test part, and picks
the next ``per_round`` frames: by σ without near-copies (``uncertainty.select_frames``, as ``topoamorph select``),
or at random (the comparison arm). The ``all`` arm labels the rest of the pool at once (one round): the error of
labelling everything, which the loop is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the loop's strategies: σ-selection, random selection, every pool frame at once
STRATEGIES = ("sigma", "random", "all")


def initial_rows(pool, n: int, seed: int) -> np.ndarray:
    """The rows labelled in round 0, shared by every strategy: ``n`` random pool rows."""
    pool = np.asarray(pool, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, min(int(n), len(pool)), replace=False))


@dataclass
class Round:
    """One round's ridge on the labelled rows: predictions and σ of every row, the domain's coordinates and
    spacing (for diversity), the model, its calibration and domain."""

    model: object
    pred: np.ndarray
    sigma: np.ndarray
    coords: np.ndarray
    spacing: float
    calibration: object
    domain: object


def fit_round(
    X, y, meta: dict, labelled, validation, seed: int, ridge: dict | None = None, domain: dict | None = None
) -> Round:
    """Ridge on rows ``labelled`` of ``X`` (rows flattened) and ``y`` (eV/atom; only labelled and validation rows
    are read), σ of every row: the validation part's RMS error as the floor and a distance term from the labelled
    densities (or runs) held out in turn, as the workflow's training calibrates it."""
    from . import models
    from .uncertainty import ApplicabilityDomain, Calibration

    labelled, validation = np.asarray(labelled, np.int64), np.asarray(validation, np.int64)
    m = models.RidgeModel(**(ridge or {}), seed=seed).fit(X[labelled], y[labelled])
    pred = m.predict(X)
    cal = Calibration.fit(np.zeros(len(validation)), pred[validation] - y[validation])
    ad = ApplicabilityDomain(**(domain or {})).fit(X[labelled], meta["density"][labelled], meta["n_atoms"][labelled])
    what, groups = models.shift_groups(meta, labelled)
    if groups:
        res = models.group_residuals_primal(X[labelled], y[labelled], m.alpha_, groups)
        dist = [ad.distances_between(g, np.setdiff1d(np.arange(len(labelled)), g)) for g in groups]
        cal = cal.fit_distance(np.concatenate(dist), np.concatenate(res), ad.reference_distance_, what)
    dom = ad.check(X, meta["density"], meta["n_atoms"])
    sigma = cal.sigma(np.zeros(len(pred)), dom["descriptor_distance"])
    return Round(m, pred, sigma, dom["components"], float(ad.reference_distance_), cal, ad)


def pick(strategy: str, rnd: Round, pool, labelled, n: int, seed: int, round_index: int) -> np.ndarray:
    """The next ``n`` rows to label among the unlabelled pool rows: largest σ without near-copies (labelled rows
    count as picked), or random (seeded by ``seed`` and the round); none for ``all`` (everything is labelled)."""
    from .uncertainty import select_frames

    rest = np.setdiff1d(np.asarray(pool, np.int64), np.asarray(labelled, np.int64))
    if strategy == "all" or not len(rest):
        return np.zeros(0, dtype=np.int64)
    if strategy == "random":
        rng = np.random.default_rng([seed, round_index])
        return np.sort(rng.choice(rest, min(int(n), len(rest)), replace=False))
    chosen = select_frames(rnd.sigma[rest], rnd.coords[rest], n, rnd.spacing, rnd.coords[np.asarray(labelled)])
    return rest[chosen]


def labels_needed(curve_sigma: list[dict], target_mae: float) -> int | None:
    """The fewest labels with which a strategy's test MAE (rounds of ``{"n_labels", "test": {mae}}``) is at or
    below ``target_mae``; None when no round reaches it."""
    for r in curve_sigma:
        if r["test"]["mae_mev_per_atom"] is not None and r["test"]["mae_mev_per_atom"] <= target_mae:
            return int(r["n_labels"])
    return None
