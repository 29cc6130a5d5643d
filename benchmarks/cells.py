"""Amorphous carbon test cells for benchmarks: short Tersoff melt-quenches (seeded, cached)."""

from __future__ import annotations

from pathlib import Path

from ase.io import read, write

from topoamorph import generate, plan


def amorphous_carbon(
    natoms: int, densities=(2.0, 3.0), frames_per_density: int = 2, steps: int = 600, cache_dir="results/benchmarks"
) -> list:
    path = Path(cache_dir) / f"aC_{natoms}_{'-'.join(map(str, densities))}_{frames_per_density}_{steps}.extxyz"
    if path.exists():
        return read(path, ":")
    frames = []
    for rho in densities:
        structures = {
            "element": "C",
            "natoms": natoms,
            "engine": {"name": "lammps", "potential": "tersoff"},
            "protocol": {
                "timestep_fs": 1.0,
                "thermostat": {"name": "langevin", "friction_per_ps": 20.0},
                "segments": [
                    {"name": "hot", "t_start_K": 6000, "t_end_K": 6000, "duration_ps": steps / 2000, "frames": 0},
                    {
                        "name": "cool",
                        "t_start_K": 6000,
                        "t_end_K": 300,
                        "duration_ps": steps / 2000,
                        "frames": frames_per_density,
                    },
                ],
            },
        }
        frames += generate.melt_quench(structures, plan.schedule(structures["protocol"]), rho, 1, natoms).frames
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, frames, format="extxyz")
    return frames


def jittered_grid(natoms: int, density: float = 2.5, jitter: float = 0.25, seed: int = 0):
    """An a-C-like carbon cell of m**3 atoms (m = round(natoms ** (1/3))) at ``density`` g/cm³: a simple cubic
    grid with Gaussian displacements of ``jitter`` x the spacing; cheap at any size (no MD)."""
    import numpy as np
    from ase import Atoms

    from topoamorph.units import volume_for_density

    m = max(2, int(round(natoms ** (1.0 / 3.0))))
    n = m**3
    length = volume_for_density("C", n, density) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    grid = (np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * (length / m)
    grid += rng.normal(0.0, jitter * length / m, grid.shape)
    return Atoms(f"C{n}", positions=grid, cell=[length] * 3, pbc=True)
