"""Δ-learning on real DFT data: a universal potential alone, PH alone, and PH trained on what the potential
misses (E_DFT − E_potential per atom), by repeated k-fold CV.

    python benchmarks/delta.py FILE.extxyz [FILE.extxyz ...] [--models 7net-0 chgnet] [--reps 3] [--folds 5]
        [--cache DIR] [--cnn]

Every file is one data set (labels are never mixed across files). The potentials' energies of every frame are
computed once through the ``mlip`` engine (about 3.6 s per 216-atom frame on 2 cores) and kept in ``--cache``
(one .npy per file content and model) so that reruns only refit. Prints CV MAE in meV/atom per data set:

- the potential alone with a constant offset fitted on the training folds (a DFT code and a potential trained
  on another functional differ by a constant per atom at least), and with a fitted a + b·E;
- PH (the default persistence image, crystal diagrams) + ridge alone, and SOAP + ridge alone;
- Δ-PH and Δ-SOAP: the same regressions on E_DFT − E_potential, the potential's energy added back.

Results and what they taught are in docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accuracy import cnn, cv_mae, ridge, scaled_ridge  # noqa: E402

from topoamorph import engines, homology  # noqa: E402
from topoamorph.baselines import SOAPAverage  # noqa: E402
from topoamorph.descriptors import make_vectorizer  # noqa: E402

DEFAULT_IMAGE = {"kind": "image", "bins": 40, "range": [0, 4], "sigma": 0.1, "dims": [0, 1, 2]}


def potential_energies(path: Path, frames, model: str, cache: Path | None) -> np.ndarray:
    """Energy per atom (eV) of every frame with the universal potential ``model``, cached by file content."""
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = cache / f"{path.stem}.{key}.{model}.npy" if cache else None
    if cached is not None and cached.exists():
        return np.load(cached)
    calc = engines.calculator({"name": "mlip", "model": model, "threads": 2}, "C")
    out = np.empty(len(frames))
    t0 = time.perf_counter()
    for i, atoms in enumerate(frames):
        a = atoms.copy()
        a.calc = calc
        out[i] = a.get_potential_energy() / len(a)
    print(f"  {model}: {len(frames)} frames of {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, out)
    return out


def offset(Xtr, ytr, Xte):
    """The potential alone, with a constant offset: X holds its energy per atom."""
    return Xte[:, 0] + np.mean(ytr - Xtr[:, 0])


def linear(Xtr, ytr, Xte):
    """The potential alone through a fitted a + b·E."""
    b, a = np.polyfit(Xtr[:, 0], ytr, 1)
    return a + b * Xte[:, 0]


def delta(fit_predict):
    """A regression on E_DFT − E_potential (the potential's energy in X's last column), added back."""

    def run(Xtr, ytr, Xte):
        return Xte[:, -1] + fit_predict(Xtr[:, :-1], ytr - Xtr[:, -1], Xte[:, :-1])

    return run


def flat_cnn(Xtr, ytr, Xte):
    """The accuracy harness's CNN on flattened default images (restored to channels x bins x bins)."""
    shape = (-1, len(DEFAULT_IMAGE["dims"]), DEFAULT_IMAGE["bins"], DEFAULT_IMAGE["bins"])
    return cnn(Xtr.reshape(shape), ytr, Xte.reshape(shape))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--models", nargs="+", default=["7net-0", "chgnet"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cache", type=Path, help="where the potentials' energies are kept between runs")
    ap.add_argument("--cnn", action="store_true", help="also Δ-learning with the CNN (one shuffle)")
    a = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    from ase.io import read

    for f in map(Path, a.files):
        frames = read(f, ":")
        y = np.array([x.get_potential_energy() / len(x) for x in frames])
        t0 = time.perf_counter()
        ph = make_vectorizer(DEFAULT_IMAGE).fit().images([homology.compute(x) for x in frames]).reshape(len(frames), -1)
        soap = SOAPAverage().fit().transform(frames)
        cv = lambda X, fp, y=y: cv_mae(X, y, fp, a.reps, a.folds)  # noqa: E731
        rows = {
            "mean": cv(np.zeros((len(y), 1)), lambda p, q, r: np.full(len(r), q.mean())),
            "PH + ridge": cv(ph, ridge),
            "SOAP + ridge": cv(soap, scaled_ridge),
        }
        for model in a.models:
            e = potential_energies(f, frames, model, a.cache)[:, None]
            rows[f"{model} + offset"] = cv(e, offset)
            rows[f"{model} a + b·E"] = cv(e, linear)
            rows[f"Δ-PH on {model} (ridge)"] = cv(np.hstack([ph, e]), delta(ridge))
            # the engine's energy as one more input: the correction may scale with it (a + b·E inside the ridge)
            rows[f"Δ-PH + b·E on {model} (ridge)"] = cv(np.hstack([ph, e, e]), delta(ridge))
            if a.cnn:
                rows[f"Δ-PH on {model} (CNN, 1 shuffle)"] = cv_mae(np.hstack([ph, e]), y, delta(flat_cnn), 1, a.folds)
            rows[f"Δ-SOAP on {model} (ridge)"] = cv(np.hstack([soap, e]), delta(scaled_ridge))
        print(
            f"\n{f.stem}: {len(y)} frames, {a.folds}-fold CV x {a.reps} (MAE meV/atom, "
            f"{time.perf_counter() - t0:.0f} s)"
        )
        for k, v in rows.items():
            print(f"  {v:9.1f}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
