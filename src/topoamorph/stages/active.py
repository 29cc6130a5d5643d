"""Stages of rules/active.smk: active_heldout, active_initial, active_round, active_curve (``topoamorph.active``).

Frames travel between the jobs as extxyz files that ``topoamorph relabel`` (the label engine, checkpointed)
turns into labels; each frame carries its dataset ``row`` (and ``source``/``frame``) in its info."""

from __future__ import annotations

import logging

import numpy as np

from .. import active, models, provenance
from ..errors import InputFileError
from ..formats.dataset import Dataset
from ..formats.frames import read_rows, write_frames
from ..importer import unchanged_while_read
from ..io import read_json, write_json
from ..uncertainty import coverage
from ..units import ERROR_UNIT
from .train import _linear_model, _parts, _persistence_inputs

log = logging.getLogger(__name__)


def _meta(dataset: str) -> tuple[np.ndarray, dict]:
    with Dataset(dataset) as ds:
        return ds.y.copy(), {k: v.copy() for k, v in ds.meta.items()}


def _write_rows(dataset: str, rows, frames: list[str], output: str, manifest: str | None, y_meta=None) -> int:
    """The frames of dataset ``rows`` with the energy the dataset holds (the cheap engine's, kept by relabel as
    md_energy) and their row, source file and frame index in the info (``y_meta``: the dataset's energies and
    metadata when the caller has read them)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    y, meta = y_meta or _meta(dataset)
    rows = np.asarray(rows, dtype=np.int64)
    with unchanged_while_read(manifest, frames):
        atoms = read_rows(meta["source"][rows], meta["index"][rows])
    out = []
    for r, a in zip(rows, atoms):
        a = a.copy()
        a.info = {k: v for k, v in a.info.items() if "energy" not in k.lower()}  # no energy that reads as a label
        a.info.update(row=int(r), source=str(meta["source"][r]), frame=int(meta["index"][r]))
        a.calc = SinglePointCalculator(a, energy=float(y[r]) * len(a))
        out.append(a)
    write_frames(output, out)
    return len(out)


def active_heldout(*, dataset: str, split: str, frames: list[str], heldout: str, manifest: str | None = None) -> dict:
    """The validation and test frames, labelled once for every strategy (calibration and score)."""
    parts = _parts(split)
    rows = np.sort(np.concatenate([parts["validation"], parts["test"]]))
    if not len(parts["validation"]) or not len(parts["test"]):
        raise InputFileError(
            split,
            "the active loop needs a validation and a test part (train.split."
            "validation_fraction and test_fraction above 0)",
        )
    n = _write_rows(dataset, rows, frames, heldout, manifest)
    log.info("%d held-out frames (validation %d, test %d) to label", n, len(parts["validation"]), len(parts["test"]))
    return {"frames": n}


def active_initial(
    *, dataset: str, split: str, frames: list[str], initial: str, n: int, seed: int, manifest: str | None = None
) -> dict:
    """Round 0's frames, shared by every strategy: ``n`` random pool (train part) frames."""
    rows = active.initial_rows(_parts(split)["train"], n, seed)
    count = _write_rows(dataset, rows, frames, initial, manifest)
    log.info("round 0: %d random pool frames to label", count)
    return {"frames": count}


def active_rest(
    *, dataset: str, split: str, initial: str, frames: list[str], rest: str, manifest: str | None = None
) -> dict:
    """The ``all`` arm's frames: the whole pool but the initial frames (labelled already)."""
    from ..formats.frames import read_atoms

    done = {int(a.info["row"]) for a in read_atoms(initial)}
    rows = np.array([r for r in _parts(split)["train"] if int(r) not in done], dtype=np.int64)
    count = _write_rows(dataset, rows, frames, rest, manifest)
    log.info("all: %d more pool frames to label (the whole pool)", count)
    return {"frames": count}


def _labels(paths: list[str]) -> dict[int, float]:
    """{dataset row: label energy per atom} of label files (``topoamorph relabel`` outputs)."""
    from ..formats.frames import read_atoms

    out = {}
    for path in paths:
        for i, a in enumerate(read_atoms(path)):
            if "row" not in a.info or a.calc is None or "label_engine" not in a.info:
                raise InputFileError(path, "frame has no dataset row or label (not written by the active loop)", i)
            e = a.get_potential_energy()  # the label engine's (relabel's results), never an info entry
            if not np.isfinite(e):
                raise InputFileError(path, "label energy is not finite", i)
            out[int(a.info["row"])] = e / len(a)
    return out


def active_round(
    *,
    dataset: str,
    split: str,
    heldout: str,
    labels: list[str],
    frames: list[str],
    record: str,
    picks: str,
    model: str,
    strategy: str,
    round: int,
    per_round: int,
    seed: int,
    ridge: dict,
    uncertainty: dict,
    homology: dict,
    species: list,
    label_engine: str,
    manifest: str | None = None,
) -> dict:
    """One round of ``strategy``: ridge on the frames labelled in rounds 0..``round`` (``labels``), scored on
    the labelled test part, σ calibrated on the labelled validation part; writes the round's ``record``, its
    model file (``model``, usable by ``topoamorph predict``) and the next round's frames
    (``picks``: what to label next, also after the last round)."""
    round_index = int(round)
    y_cheap, meta = _meta(dataset)
    parts = _parts(split)
    held, got = _labels([heldout]), _labels(labels)
    y = np.full(len(y_cheap), np.nan)
    for row, e in {**held, **got}.items():
        y[row] = e
    va, te = parts["validation"], parts["test"]
    missing = [int(r) for r in np.concatenate([va, te]) if not np.isfinite(y[r])]
    if missing:
        raise InputFileError(heldout, f"no label for held-out rows {missing[:5]}: rerun active_heldout")
    labelled = np.array(sorted(got), dtype=np.int64)
    with Dataset(dataset) as ds:
        X = ds.rows(np.arange(len(y))).reshape(len(y), -1).astype(float)
        image_shape = list(ds.X.shape[1:])
    domain = {"percentile": uncertainty["domain_percentile"], "components": uncertainty["domain_components"]}
    rnd = active.fit_round(X, y, meta, labelled, va, seed, ridge, domain)
    picked = active.pick(strategy, rnd, parts["train"], labelled, per_round, seed, round_index)
    _write_rows(dataset, picked, frames, picks, manifest, (y_cheap, meta))
    err = {p: models.errors(y[parts[p]], rnd.pred[parts[p]]) for p in ("validation", "test")}
    out = {
        "strategy": strategy,
        "round": round_index,
        "n_labels": int(len(labelled)),
        "label_engine": label_engine,
        "labelled_rows": labelled.tolist(),
        "picked_rows": picked.tolist(),
        "alpha": float(rnd.model.alpha_),
        **err,
        "calibration": dict(rnd.calibration.to_dict(), test=coverage(rnd.pred[te] - y[te], rnd.sigma[te])),
        "pool_sigma_median_ev_per_atom": float(np.median(rnd.sigma[parts["train"]])),
        "error_units": ERROR_UNIT,
        "provenance": provenance.record({"strategy": strategy, "ridge": ridge}, seed),
    }
    write_json(record, out)
    tm = _linear_model(
        "ridge",
        _persistence_inputs(dataset, homology),
        species,
        {
            "alpha": float(rnd.model.alpha_),
            "active": {"strategy": strategy, "round": round_index, "label_engine": label_engine},
        },
        rnd.model.coef_,
        rnd.model.intercept_,
    )
    tm.header.update(
        image_shape=image_shape,
        calibration=rnd.calibration.to_dict(),
        domain=rnd.domain.to_header(),
        provenance=out["provenance"],
        training={"n_train": int(len(labelled)), "n_validation": int(len(va)), "n_test": int(len(te)), "errors": err},
    )
    tm.arrays.update(rnd.domain.to_arrays())
    tm.save(model)
    log.info(
        "%s round %d: %d labels, test MAE %.2f meV/atom; %d frames picked next",
        strategy,
        round_index,
        len(labelled),
        err["test"]["mae_mev_per_atom"],
        len(picked),
    )
    return out


def active_curve(*, rounds: list[str], curve: str, figure: str, table: str, dpi: int = 110) -> dict:
    """Test error against the number of labelled frames for every strategy, and how many labels σ-selection
    needs to reach the error of labelling the whole pool (the ``all`` arm) and random selection's last error:
    ``curve`` (JSON), ``figure`` and ``table`` (the report's active.png and active.md)."""
    from ..report import active_curve as draw

    out: dict = {"strategies": {}, "error_units": ERROR_UNIT}
    for path in rounds:
        r = read_json(path)
        out["strategies"].setdefault(r["strategy"], []).append(
            {
                k: r[k]
                for k in ("round", "n_labels", "test", "validation", "calibration", "pool_sigma_median_ev_per_atom")
            }
        )
        out["label_engine"] = r["label_engine"]
    for rows in out["strategies"].values():
        rows.sort(key=lambda r: r["round"])
    s = out["strategies"]
    if "sigma" in s:
        for arm in ("all", "random"):
            if arm in s:
                target = s[arm][-1]["test"]["mae_mev_per_atom"]
                out[f"sigma_labels_to_reach_{arm}"] = {
                    "target_mae_mev_per_atom": target,
                    "target_labels": s[arm][-1]["n_labels"],
                    "labels": active.labels_needed(s["sigma"], target),
                }
    write_json(curve, out)
    draw(curve, figure, table, dpi=dpi)
    return out
