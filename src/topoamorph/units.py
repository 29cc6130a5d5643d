"""Units, stated once.

Every quantity in topoamorph uses these units; names of keys and columns repeat them
(``energy`` in eV, ``density`` in g/cm³, ``time_ps``...). ASE's internal units are eV and Å.

- energy: eV (per cell); targets: eV/atom; reported errors: meV/atom
- length: Å; cell volume: Å³
- density: g/cm³
- alpha filtration values: squared radii, Å² (HomCloud's convention)
- time: fs for the time step, ps for durations and frame times
- temperature: K
"""

from __future__ import annotations

from ase.data import atomic_masses, atomic_numbers

#: Avogadro's number times 1e-24 (cm³ per Å³): g/mol / Å³  ->  g/cm³ is  (M / V) / AVOGADRO_CM3
AVOGADRO_CM3 = 0.602214076  # N_A * 1e-24

#: the unit strings files carry (diagrams, datasets, Δ-energies, metrics)
ENERGY_PER_ATOM = "eV/atom"
ERROR_UNIT = "meV/atom"
LENGTH = "angstrom"
ALPHA_UNIT = "angstrom^2"


def molar_mass(element: str) -> float:
    """Molar mass of an element in g/mol (ASE's table)."""
    return float(atomic_masses[atomic_numbers[element]])


def volume_for_density(element: str, natoms: int, density: float) -> float:
    """Cell volume in Å³ holding ``natoms`` atoms of ``element`` at ``density`` g/cm³."""
    return natoms * molar_mass(element) / (density * AVOGADRO_CM3)


def density_of(atoms) -> float:
    """Mass density of an ASE ``Atoms`` in g/cm³."""
    return float(atoms.get_masses().sum() / (atoms.get_volume() * AVOGADRO_CM3))


def ev_to_mev(x):
    return x * 1000.0
