"""σ and the domain flag on shifted data: a finished campaign whose test part is shifted (``train.split.by:
density``, e.g. config/demo-shift.yaml) or an evaluation file (``--evaluate NAME``).

    .venv/bin/python benchmarks/shift.py results/demo-shift
    .venv/bin/python benchmarks/shift.py results/paper-cheap --evaluate transfer512

Per model: MAE, median σ, fraction within 1σ and 2σ, σ's rank correlation with |error|, and the fraction flagged
out of domain, on the validation part (in distribution) and on the shifted frames; then the ratio of the median
σ, shifted over in distribution. What the trust issue asks: ratio >= 2, 1σ coverage in [0.55, 0.85] on both,
>= 90% of shifted frames flagged and <= 10% of in-distribution ones.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

MODELS = ("ridge", "cnn", "soap", "rdf", "density", "mean")


def _row(name, part, err, sigma, flagged):
    from topoamorph.uncertainty import coverage

    c = coverage(err, sigma)
    rho = c["spearman_sigma_abs_error"]
    print(
        f"{name:8s} {part:14s} {len(err):5d} {1000 * np.mean(np.abs(err)):8.1f} {1000 * np.median(sigma):9.1f} "
        f"{c['within_1sigma']:6.2f} {c['within_2sigma']:6.2f} {'-' if rho is None else f'{rho:.2f}':>6s} "
        f"{np.mean(flagged):8.2f}"
    )
    return float(np.median(sigma))


def campaign_parts(campaign: str, name: str, model):
    """(in-distribution rows, shifted rows) of the campaign's dataset: validation and test parts."""
    from topoamorph.formats.dataset import Dataset
    from topoamorph.formats.features import read_features
    from topoamorph.io import read_json

    split = read_json(os.path.join(campaign, "dataset", "split.json"))
    with Dataset(os.path.join(campaign, "dataset", "descriptors.h5")) as ds:
        y, meta = ds.y.copy(), {k: v.copy() for k, v in ds.meta.items()}
        kind = model.inputs["kind"]
        if kind == "persistence":
            X = ds.rows(np.arange(len(y)))
        elif kind in ("soap", "rdf"):
            X = read_features(os.path.join(campaign, "dataset", "structure_features.h5"), meta)[kind]
        elif kind == "density":
            X = meta["density"]
        else:
            X = np.zeros((len(y), 0))
    point, spread = model.predict_inputs(X)
    dom = model.domain.check(model.domain_features(X), meta["density"], meta["n_atoms"])
    sigma = model.calibration.sigma(spread, dom["descriptor_distance"])
    out = {}
    for part in ("validation", "test"):
        i = np.asarray(split[part], dtype=np.int64)
        out[part] = (point[i] - y[i], sigma[i], ~dom["in_domain"][i])
    return out["validation"], out["test"], f"test ({split['by']})"


def main(argv=None):
    from topoamorph import load_model
    from topoamorph.formats.predictions import read_applied

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("campaign", help="results/<campaign>")
    p.add_argument("--evaluate", help="an evaluation file's name: its frames are the shifted set")
    args = p.parse_args(argv)
    print(
        f"{'model':8s} {'frames':14s} {'n':>5s} {'MAE':>8s} {'median σ':>9s} {'in 1σ':>6s} {'in 2σ':>6s} "
        f"{'ρ':>6s} {'flagged':>8s}   (meV/atom)"
    )
    for name in MODELS:
        path = os.path.join(args.campaign, "models", f"{name}.{'pt' if name == 'cnn' else 'npz'}")
        if not os.path.exists(path):
            continue
        model = load_model(path)
        inside, shifted, label = campaign_parts(args.campaign, name, model)
        if args.evaluate:
            a = read_applied(os.path.join(args.campaign, "evaluation", args.evaluate, f"{name}.csv"))
            has = np.isfinite(a["reference_energy_per_atom_ev"])
            shifted = (
                a["energy_per_atom_ev"][has] - a["reference_energy_per_atom_ev"][has],
                a["sigma_ev_per_atom"][has],
                ~a["in_domain"][has],
            )
            label = f"eval {args.evaluate}"
        m_in = _row(name, "validation", *inside)
        m_out = _row(name, label[:14], *shifted)
        print(f"{'':8s} median σ shifted / in distribution: {m_out / m_in:.2f}")


if __name__ == "__main__":
    main()
