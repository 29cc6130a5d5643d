"""Accuracy of PH descriptors against the SOAP and RDF baselines on real DFT data (repeated k-fold CV).

    python benchmarks/accuracy.py [FILE.extxyz ...] [--reps 3] [--folds 5] [--cnn] [--diagram crystal|torus]

Default file: the copy of gap20_LD_iter1 in tests/data/gap20 (the docs' tables also used GAP-20's
diamond and liquid sets: give them as FILE arguments). Every file is one data set (labels are never mixed across
files); "combined" pools them all when more than one is given. Prints a table of CV MAE in
meV/atom per data set and model. Results and what they taught are in docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from topoamorph import homology, models  # noqa: E402
from topoamorph.baselines import RDFHistogram, SOAPAverage  # noqa: E402
from topoamorph.descriptors import make_vectorizer  # noqa: E402

DESCRIPTORS = {
    "histogram 40, 0-10 Å² (first default)": {"kind": "histogram", "bins": 40, "range": [0, 10]},
    "histogram 40, 0-4 Å²": {"kind": "histogram", "bins": 40, "range": [0, 4]},
    "image 40, 0-4 Å², σ 0.1, none (default)": {"kind": "image", "bins": 40, "range": [0, 4], "sigma": 0.1},
    "image 40, 0-4 Å², σ 0.08, none": {"kind": "image", "bins": 40, "range": [0, 4], "sigma": 0.08},
    "image 40, 0-4 Å², σ 0.1, atan": {"kind": "image", "bins": 40, "range": [0, 4], "sigma": 0.1, "weight": "atan"},
    "image 40, 0-6 Å², σ 0.15, atan": {"kind": "image", "bins": 40, "range": [0, 6], "sigma": 0.15, "weight": "atan"},
    "image 32, birth-persistence, σ 0.1": {
        "kind": "image",
        "bins": 32,
        "range": [0, 4],
        "sigma": 0.1,
        "axes": "birth_persistence",
    },
}


def load(path, diagram=None):
    from ase.io import read

    rows = []
    for atoms in read(path, ":"):
        r = homology.compute(atoms, diagram=diagram)
        rows.append(
            {
                "atoms": atoms,
                "res": r,
                "dg": r.diagrams,
                "n": r.n_complex,
                "e": atoms.get_potential_energy() / len(atoms),
            }
        )
    return rows


def cv_mae(X, y, fit_predict, reps, folds) -> float:
    out = []
    for r in range(reps):
        fold = np.random.default_rng(r).permutation(len(y)) % folds
        pred = np.zeros(len(y))
        for f in range(folds):
            tr, te = fold != f, fold == f
            pred[te] = fit_predict(X[tr], y[tr], X[te])
        out.append(1000 * np.mean(np.abs(pred - y)))
    return float(np.mean(out))


def ridge(Xtr, ytr, Xte):
    return models.RidgeModel(alpha_min=1e-8, alpha_max=1e4, n_alphas=25).fit(Xtr, ytr).predict(Xte)


def scaled_ridge(Xtr, ytr, Xte):
    return models.ScaledRidge().fit(Xtr, ytr).predict(Xte)


def cnn(Xtr, ytr, Xte):
    m = models.CNNModel(epochs=150, patience=30, device="cpu", batch_size=16).fit(Xtr.astype(np.float32), ytr)
    return m.predict(Xte.astype(np.float32))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cnn", action="store_true", help="also the CNN on the default image (one repeat)")
    ap.add_argument("--diagram", choices=["crystal", "torus"], help="the alpha diagrams (default: homology.diagram)")
    a = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    files = a.files or [str(ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz")]
    sets = {Path(f).stem: load(f, a.diagram) for f in files}
    if len(sets) > 1:
        sets["combined"] = [r for rows in list(sets.values()) for r in rows]
    for name, rows in sets.items():
        t0 = time.perf_counter()
        y = np.array([r["e"] for r in rows])
        atoms = [r["atoms"] for r in rows]
        res = {
            "mean": cv_mae(np.zeros((len(y), 1)), y, lambda a, b, c: np.full(len(c), b.mean()), a.reps, a.folds),
            "SOAP + ridge (baseline)": cv_mae(SOAPAverage().fit().transform(atoms), y, scaled_ridge, a.reps, a.folds),
            "RDF histogram + ridge (baseline)": cv_mae(
                RDFHistogram().fit().transform(atoms), y, scaled_ridge, a.reps, a.folds
            ),
        }
        for label, spec in DESCRIPTORS.items():
            X = make_vectorizer(dict(spec, dims=[0, 1, 2])).fit().images([r["res"] for r in rows])
            res[f"PH {label} + ridge"] = cv_mae(X, y, ridge, a.reps, a.folds)
            if a.cnn and "(default)" in label:
                res[f"PH {label} + CNN"] = cv_mae(X, y, cnn, 1, a.folds)
        print(
            f"\n{name}: {len(y)} frames, {a.folds}-fold CV x {a.reps} (MAE meV/atom, {time.perf_counter() - t0:.0f} s)"
        )
        for k, v in res.items():
            print(f"  {v:9.1f}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
