"""Variants of the PH descriptor tried to close the gap to SOAP on strained diamond (docs/accuracy.md,
"Closing the diamond gap"): bins/σ sweep, density as extra columns, PD-dimension subsets, fine 1D images
of bond-length values, and atom-centred local PH. Ridge, 5-fold CV x 3, MAE meV/atom.

    python benchmarks/accuracy_variants.py [--reps 3]

Usage: python benchmarks/accuracy_variants.py LD.extxyz DIAMOND.extxyz (GAP-20's LD_iter1 and diamond sets).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402

from topoamorph.descriptors import make_vectorizer  # noqa: E402
from topoamorph.units import density_of  # noqa: E402

DEFAULT = {"kind": "image", "bins": 40, "range": [0, 4], "sigma": 0.1, "dims": [0, 1, 2]}


def image(rows, **change):
    return make_vectorizer(dict(DEFAULT, **change)).fit().transform([r["res"] for r in rows])


def density(rows):
    return np.array([density_of(r["atoms"]) for r in rows])


def image_1d(values, n_atoms, sigma, bins, hi=2.0):
    """Pixel-integrated 1D Gaussians of the given values on [0, hi] Å², per atom."""
    edges = np.linspace(0.0, hi, bins + 1)
    out = np.zeros((len(values), bins))
    for k, (v, n) in enumerate(zip(values, n_atoms)):
        cdf = 0.5 * erf((edges[None, :] - v[:, None]) / (np.sqrt(2.0) * sigma))
        out[k] = (cdf[:, 1:] - cdf[:, :-1]).sum(0) / n
    return out


def finite(pairs):
    pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
    return pairs[np.isfinite(pairs[:, 1])]


def local_ph(rows, r_cut, bins=40, sigma=0.1):
    """Alpha PH (gudhi, open boundary) of every atom's neighbours within r_cut, images averaged over atoms."""
    import gudhi
    from ase.neighborlist import neighbor_list

    vec = make_vectorizer(dict(DEFAULT, bins=bins, sigma=sigma, normalize="none")).fit()
    X = []
    for r in rows:
        i, D = neighbor_list("iD", r["atoms"], r_cut)
        per_atom = []
        for a in range(len(r["atoms"])):
            st = gudhi.AlphaComplex(points=np.vstack([[0.0, 0.0, 0.0], D[i == a]])).create_simplex_tree()
            st.compute_persistence()
            dg = {}
            for d in range(3):
                p = finite(st.persistence_intervals_in_dimension(d))
                dg[d] = p[p[:, 1] - p[:, 0] > 1e-12]
            per_atom.append(dg)
        X.append(vec.transform(per_atom).reshape(len(per_atom), -1).mean(0))
    return np.array(X)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ld", help="GAP-20's gap20_LD_iter1.extxyz")
    ap.add_argument("diamond", help="GAP-20's gap20_diamond.extxyz")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    sets = {"LD_iter1": accuracy.load(a.ld), "diamond": accuracy.load(a.diamond)}
    sets["combined"] = sets["LD_iter1"] + sets["diamond"]

    def cv(X, rows):
        return accuracy.cv_mae(X, np.array([r["e"] for r in rows]), accuracy.ridge, a.reps, 5)

    def line(label, per_set):
        print(
            f"{label:58s}" + "".join(f"{per_set[n]:10.1f}" if n in per_set else f"{'-':>10s}" for n in sets), flush=True
        )

    print(f"{'ridge, 5-fold CV x ' + str(a.reps) + ', MAE meV/atom':58s}" + "".join(f"{n:>10s}" for n in sets))
    for bins, sigma in (
        (40, 0.1),
        (30, 0.15),
        (24, 0.15),
        (32, 0.125),
        (40, 0.15),
        (30, 0.2),
        (24, 0.2),
        (20, 0.15),
        (60, 0.06),
        (80, 0.05),
    ):
        line(
            f"image {bins} bins, sigma {sigma}",
            {n: cv(image(rows, bins=bins, sigma=sigma), rows) for n, rows in sets.items()},
        )
    for scale in (0.3, 1.0, 3.0):
        res = {}
        for n in ("LD_iter1", "diamond"):
            rho = density(sets[n]) - 3.0
            extra = scale * np.stack([rho, rho**2, rho**3], axis=1)
            res[n] = cv(np.hstack([image(sets[n]), extra]), sets[n])
        line(f"default + density, density^2, density^3 (x{scale})", res)
    for dims in ([0], [1], [2], [0, 1], [1, 2]):
        line(f"default, dims {dims}", {n: cv(image(sets[n], dims=dims), sets[n]) for n in ("LD_iter1", "diamond")})
    rows = sets["diamond"]
    n_atoms = [r["n"] for r in rows]
    pd0_deaths = [finite(r["dg"][0])[:, 1] for r in rows]
    pd1_births = [finite(r["dg"][1])[:, 0] for r in rows]
    for sigma, bins in ((0.02, 100), (0.01, 200), (0.005, 400)):
        X = np.hstack([image_1d(pd0_deaths, n_atoms, sigma, bins), image_1d(pd1_births, n_atoms, sigma, bins)])
        line(f"1D images PD0 deaths + PD1 births, sigma {sigma}", {"diamond": cv(X, rows)})
        if sigma == 0.02:
            line("default + those 1D images", {"diamond": cv(np.hstack([image(rows), X]), rows)})
    for r_cut in (2.0, 3.0, 4.0):
        line(f"local PH, r_cut {r_cut} Å, averaged over atoms", {"diamond": cv(local_ph(rows, r_cut), rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
