"""Size consistency of trained models and the cost of the crystal's diagrams.

    .venv/bin/python benchmarks/size_consistency.py --models results/demo/models/ridge.npz results/demo/models/cnn.pt \
        --frames results/demo/structures/rho2.50/run1.extxyz@105:108 tests/data/gap20/gap20_LD_iter1.extxyz@0:3

1. Energy per atom of each frame as 1x1x1, 2x1x1, 2x2x2 and 3x3x3 supercells, per model: the spread (max - min,
   meV/atom) over the four, which size consistency makes rounding noise (the target: under 2 meV/atom).
2. With ``--torus-model``: the same table for a model trained on the torus diagrams (``homology.diagram: torus``),
   the behaviour before the crystal's diagrams.
3. The cost: homology of each frame's cell with ``diagram: crystal`` against ``diagram: torus`` and against the
   torus of the 3x3x3 supercell (the replication alternative), interleaved in one run; ratios, no absolute claim.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

REPLICATIONS = ((1, 1, 1), (2, 1, 1), (2, 2, 2), (3, 3, 3))


def _frames(specs):
    from topoamorph.trained import FrameSet

    fs = FrameSet.read(specs)
    return fs.atoms, [f"{s}@{i}" for s, i in zip(fs.sources, fs.indices)]


def spread_table(model_path, atoms, names):
    from topoamorph import load_model

    model = load_model(model_path)
    print(f"\n{model_path}: energy per atom (eV) by supercell; spread = max - min (meV/atom)")
    print(
        f"{'frame':48s} {'atoms':>5s} "
        + " ".join(f"{'x'.join(map(str, r)):>10s}" for r in REPLICATIONS)
        + f" {'spread':>8s}"
    )
    spreads = []
    for a, name in zip(atoms, names):
        e = np.array([model.predict([a.repeat(r)])[0] for r in REPLICATIONS])
        spreads.append(1000 * (e.max() - e.min()))
        print(f"{name[-48:]:48s} {len(a):5d} " + " ".join(f"{x:10.5f}" for x in e) + f" {spreads[-1]:8.1e}")
    print(f"max spread {max(spreads):.1e} meV/atom over {len(spreads)} frames")
    return max(spreads)


def cost_table(atoms, repeats: int):
    from topoamorph.homology import compute

    print("\nhomology per frame, interleaved (median of repeats); ratio to the torus of the cell")
    print(
        f"{'atoms':>5s} {'torus':>9s} {'crystal':>9s} {'torus 3x3x3':>12s} {'crystal/torus':>14s} {'3x3x3/torus':>12s}"
    )
    for a in atoms:
        compute(a)  # compile and warm up
        t = {"torus": [], "crystal": [], "torus27": []}
        big = a.repeat(3)
        for _ in range(repeats):
            for key, atoms_, diagram in (("torus", a, "torus"), ("crystal", a, "crystal"), ("torus27", big, "torus")):
                t0 = time.perf_counter()
                compute(atoms_, diagram=diagram)
                t[key].append(time.perf_counter() - t0)
        m = {k: float(np.median(v)) for k, v in t.items()}
        print(
            f"{len(a):5d} {1000 * m['torus']:7.1f}ms {1000 * m['crystal']:7.1f}ms {1000 * m['torus27']:10.1f}ms "
            f"{m['crystal'] / m['torus']:14.2f} {m['torus27'] / m['torus']:12.1f}"
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=[], help="model files trained with diagram: crystal")
    p.add_argument("--torus-model", nargs="*", default=[], help="model files trained with diagram: torus")
    p.add_argument("--frames", nargs="+", required=True, help="extxyz frames, path[@start:stop]")
    p.add_argument("--repeats", type=int, default=5, help="timing repeats per frame (0: no cost table)")
    args = p.parse_args(argv)
    atoms, names = _frames(args.frames)
    for m in args.models + args.torus_model:
        spread_table(m, atoms, names)
    if args.repeats:
        cost_table(atoms, args.repeats)


if __name__ == "__main__":
    main()
