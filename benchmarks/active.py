"""Is σ useful? Active selection against random selection, same label budget, several seeds.

    .venv/bin/python benchmarks/active.py results/demo --rounds 8 --per-round 40 --seeds 3

The campaign's train part is the unlabelled pool, its validation part calibrates σ, its test part scores. Each
seed starts from the same random ``--initial`` labelled frames for every strategy; each round fits ridge on
the images (regularisation by CV), calibrates σ exactly as training does (validation floor, distance term from
held-out densities or runs, ``topoamorph.stages.train``), and labels ``--per-round`` more frames: the ones
``topoamorph select`` would pick (``uncertainty.select_frames``: σ without near-copies), or random ones. Prints
the test MAE after every round for both, and how many labels σ-selection needed to reach random selection's
final MAE (the trust issue's bar: at most 60% of random's).
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def _round(X, y, meta, labelled, va, te, seed):
    """Ridge on the labelled rows, its σ on every row (validation floor + distance term), and its test MAE: one
    round of the workflow's loop (``topoamorph.active.fit_round``)."""
    from topoamorph.active import fit_round

    rnd = fit_round(X, y, meta, labelled, va, seed)
    return float(1000 * np.mean(np.abs(rnd.pred[te] - y[te]))), rnd.sigma, rnd.coords, rnd.spacing


def run(campaign, rounds, per_round, seeds, initial, strategies=("sigma", "random")):
    from topoamorph.formats.dataset import Dataset
    from topoamorph.io import read_json
    from topoamorph.uncertainty import select_frames

    split = read_json(os.path.join(campaign, "dataset", "split.json"))
    pool, va, te = (np.asarray(split[p], dtype=np.int64) for p in ("train", "validation", "test"))
    with Dataset(os.path.join(campaign, "dataset", "descriptors.h5")) as ds:
        y, meta = ds.y.copy(), {k: v.copy() for k, v in ds.meta.items()}
        X = ds.rows(np.arange(len(y))).reshape(len(y), -1).astype(float)
    curves = {k: [] for k in strategies}
    sizes = [initial + r * per_round for r in range(rounds + 1)]
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        start = rng.choice(pool, initial, replace=False)
        for strategy in curves:
            labelled, maes = np.sort(start), []
            for r in range(rounds + 1):
                mae, sigma, coords, spacing = _round(X, y, meta, labelled, va, te, seed)
                maes.append(mae)
                if r == rounds:
                    break
                rest = np.setdiff1d(pool, labelled)
                if strategy in ("sigma", "diversity", "sigma-density"):  # labelled count as picked: no near-copies
                    s = sigma[rest] if strategy != "diversity" else np.ones(len(rest))  # diversity: farthest points
                    if strategy == "sigma-density":  # times representativeness: closeness to the rest of the pool
                        from scipy.spatial import cKDTree

                        d = cKDTree(coords[rest]).query(coords[rest], k=min(11, len(rest)))[0][:, 1:].mean(axis=1)
                        s = s / (1.0 + d / spacing)
                    new = rest[select_frames(s, coords[rest], per_round, spacing, coords[labelled])]
                else:
                    new = rng.choice(rest, per_round, replace=False)
                labelled = np.sort(np.concatenate([labelled, new]))
            curves[strategy].append(maes)
            print(f"seed {seed} {strategy:6s} " + " ".join(f"{m:6.1f}" for m in maes), flush=True)
    mean = {k: np.mean(v, axis=0) for k, v in curves.items()}
    print("\nlabels      " + " ".join(f"{n:6d}" for n in sizes))
    for k, v in mean.items():
        print(f"{k:6s} mean " + " ".join(f"{m:6.1f}" for m in v))
    if not {"sigma", "random"} <= set(mean):
        return mean
    target = mean["random"][-1]
    reached = [n for n, m in zip(sizes, mean["sigma"]) if m <= target]
    if reached:
        print(
            f"sigma-selection reaches random's final test MAE ({target:.1f} meV/atom at {sizes[-1]} labels) with "
            f"{reached[0]} labels: {reached[0] / sizes[-1]:.0%} of random's"
        )
    else:
        print(
            f"sigma-selection does not reach random's final test MAE ({target:.1f} meV/atom) within "
            f"{sizes[-1]} labels (its final: {mean['sigma'][-1]:.1f})"
        )
    return mean


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("campaign")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--per-round", type=int, default=40)
    p.add_argument("--initial", type=int, default=40)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--strategies",
        nargs="+",
        default=["sigma", "random"],
        choices=["sigma", "random", "diversity", "sigma-density"],
        help="diversity: farthest-point picks in the domain's components, σ left out; sigma-density: σ "
        "divided by (1 + mean distance to the 10 nearest pool frames / spacing), uncertain and representative",
    )
    a = p.parse_args(argv)
    run(a.campaign, a.rounds, a.per_round, a.seeds, a.initial, tuple(a.strategies))


if __name__ == "__main__":
    main()
