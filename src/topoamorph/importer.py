"""Import existing DFT data (extxyz) instead of generating it: ``source: {kind: import, ...}``.

Either ``train`` and ``test`` files (the split is theirs) or one ``file`` split at random with
``test_fraction`` and ``seed``. Energies are total cell energies (eV) under ``energy_key`` (an info key
or a calculator result such as ``energy`` / ``free_energy``); the dataset holds eV/atom. Frames may
differ in atom count and cell. Every file is validated by the ``validate_import`` job before any
heavy job starts; errors name the file, the frame and what is wrong.
"""

from __future__ import annotations

import logging

import numpy as np

from .errors import InputFileError
from .formats.frames import check_atoms, count_frames, frame_energy, read_atoms
from .settings import SourceSettings
from .units import density_of

log = logging.getLogger(__name__)

MIN_DISTANCE_ANGSTROM = 0.5  # closer atoms are overlapping (the shortest C-C bond is 1.2 Å)
CHUNK_FRAMES = 256  # frames parsed at a time while validating


def check_frame(atoms, path, index: int, energy_key: str, species: set[str]) -> float:
    """Raise InputFileError naming the file and frame for anything a campaign cannot use; return E (eV)."""
    check_atoms(atoms, path, index, require_energy=False)
    unknown = sorted(set(atoms.get_chemical_symbols()) - species)
    if unknown:
        raise InputFileError(path, f"species {unknown} not supported by this campaign (supported: {sorted(species)})",
                             index)
    if len(atoms) > 1:
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < MIN_DISTANCE_ANGSTROM:
            raise InputFileError(path, f"atoms {i} and {j} overlap ({d[i, j]:.3f} Å apart, below "
                                 f"{MIN_DISTANCE_ANGSTROM} Å)", index)
    return frame_energy(atoms, energy_key, path, index)


def validate(source: dict | SourceSettings, species) -> dict:
    """Read and check every frame of every import file; return the manifest (frames, atom counts, energy
    and density ranges per file)."""
    src = source if isinstance(source, SourceSettings) else SourceSettings.from_config(source)
    species = set(species)
    manifest = {"energy_key": src.energy_key, "files": {}}
    for role, path in src.files().items():
        n = count_frames(path)
        sizes, e_atom, dens = [], [], []
        for start in range(0, n, CHUNK_FRAMES):
            for i, atoms in enumerate(read_atoms(path, start, min(n, start + CHUNK_FRAMES)), start=start):
                e = check_frame(atoms, path, i, src.energy_key, species)
                sizes.append(len(atoms))
                e_atom.append(e / len(atoms))
                dens.append(density_of(atoms))
        manifest["files"][role] = {
            "path": str(path), "frames": len(sizes), "atoms": sorted(set(sizes)),
            "energy_per_atom_eV": [float(min(e_atom)), float(max(e_atom))],
            "density_g_cm3": [float(min(dens)), float(max(dens))],
        }
        log.info("%s (%s): %d frames, %s atoms, E/atom %.3f..%.3f eV, density %.2f..%.2f g/cm3", path, role,
                 len(sizes), sorted(set(sizes)), min(e_atom), max(e_atom), min(dens), max(dens))
    return manifest
