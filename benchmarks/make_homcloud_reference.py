"""Write HomCloud 5.4 periodic alpha diagrams of a few cells to tests/data/homcloud/ (reference data).

Run once with HomCloud installed (make homcloud): .venv/bin/python benchmarks/make_homcloud_reference.py
The tests compare topoamorph's diagrams with these files always, and with live HomCloud when installed.
"""

import sys
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import read, write

sys.path.insert(0, str(Path(__file__).parent))
from cells import amorphous_carbon  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "homcloud"


def homcloud_diagrams(atoms, maxdim=2):
    import homcloud.interface as hc

    L = atoms.cell.lengths()
    pdl = hc.PDList.from_alpha_filtration(
        atoms.get_positions(wrap=True), periodicity=[(0, L[0]), (0, L[1]), (0, L[2])], save_boundary_map=False
    )
    out = {}
    for d in range(maxdim + 1):
        pd = pdl.dth_diagram(d)
        b, de = np.asarray(pd.births), np.asarray(pd.deaths)
        ess = np.asarray(pd.essential_births)
        pairs = np.column_stack([b, de])[de - b > 1e-9]
        out[d] = np.vstack([pairs, np.column_stack([ess, np.full(len(ess), np.inf)])])
    return out


def main():
    import homcloud

    cells = amorphous_carbon(64, (2.0, 3.0), 1) + amorphous_carbon(216, (2.4,), 1)
    named = [(f"aC{i}_{len(a)}", a) for i, a in enumerate(cells)]
    named.append(("diamond_64", bulk("C", "diamond", a=3.567, cubic=True).repeat(2)))  # degenerate
    OUT.mkdir(parents=True, exist_ok=True)
    for name, atoms in named:
        atoms.calc = None
        write(OUT / f"{name}.extxyz", atoms, format="extxyz")
        dg = homcloud_diagrams(read(OUT / f"{name}.extxyz"))  # the positions as stored (8 decimals)
        np.savez_compressed(
            OUT / f"{name}.npz",
            **{f"pd{d}": v for d, v in dg.items()},
            homcloud_version=homcloud.__version__ if hasattr(homcloud, "__version__") else "5.4",
        )
        print(name, {d: len(v) for d, v in dg.items()})


if __name__ == "__main__":
    main()
