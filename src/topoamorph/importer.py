"""Import existing DFT data (extxyz) instead of generating it: ``source: {kind: import, ...}``.

Either ``train`` and ``test`` files (the split is theirs) or one ``file`` split at random with
``test_fraction`` and ``seed``. Energies are total cell energies (eV) under ``energy_key`` (an info key
or a calculator result such as ``energy`` / ``free_energy``); the dataset holds eV/atom. Frames may
differ in atom count and cell. Every file is validated by the ``validate_import`` job before any
heavy job starts; errors name the file, the frame and what is wrong.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import ConfigError, InputFileError
from .io import write_json

log = logging.getLogger(__name__)

MIN_DISTANCE_ANGSTROM = 0.5  # closer atoms are overlapping (the shortest C-C bond is 1.2 Å)


def files(source: dict) -> dict[str, str]:
    """{role: path} of an import source: {'train': A, 'test': B} or {'all': F}."""
    if source.get("file"):
        return {"all": str(source["file"])}
    return {"train": str(source["train"]), "test": str(source["test"])}


def count_frames(path) -> int:
    """Frames in an extxyz file, by scanning its atom-count lines (no parsing of coordinates)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    n, line_no = 0, 0
    with open(path, "rb") as fh:
        while True:
            head = fh.readline()
            line_no += 1
            if not head:
                break
            if not head.strip():
                continue  # trailing blank lines
            try:
                natoms = int(head.split()[0])
            except (ValueError, IndexError):
                raise InputFileError(path, f"line {line_no}: expected an atom count, found {head[:40]!r}",
                                     n) from None
            if natoms < 1:
                raise InputFileError(path, f"line {line_no}: atom count {natoms}", n)
            for k in range(natoms + 1):
                if not fh.readline():
                    raise InputFileError(path, f"truncated: the file ends inside the frame ({k} of {natoms + 1} "
                                         "lines after the atom count)", n)
            line_no += natoms + 1
            n += 1
    if n == 0:
        raise InputFileError(path, "empty: no frames")
    return n


def frame_energy(atoms, key: str, path, index: int) -> float:
    """The frame's total energy (eV) under ``key``: an info entry, else a calculator result."""
    value = atoms.info.get(key)
    if value is None and atoms.calc is not None:
        value = atoms.calc.results.get(key)
    if value is None:
        raise InputFileError(path, f"no energy under key {key!r} (source.energy_key); info keys: "
                             f"{sorted(atoms.info)}", index)
    try:
        e = float(value)
    except (TypeError, ValueError):
        raise InputFileError(path, f"energy {key!r} is not a number ({value!r})", index) from None
    if not np.isfinite(e):
        raise InputFileError(path, f"energy {key!r} is not finite ({e})", index)
    return e


def check_frame(atoms, path, index: int, energy_key: str, species: set[str]) -> float:
    """Raise InputFileError naming the file and frame for anything a campaign cannot use; return E (eV)."""
    from .frames import check_atoms

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


def validate(source: dict, species, output=None) -> dict:
    """Read and check every frame of every import file; write and return a manifest."""
    from ase.io import iread

    from .units import density_of

    species = set(species)
    energy_key = source.get("energy_key", "energy")
    manifest = {"energy_key": energy_key, "files": {}}
    for role, path in files(source).items():
        expected = count_frames(path)
        sizes, e_atom, dens = [], [], []
        try:
            for i, atoms in enumerate(iread(path, index=":", format="extxyz")):
                e = check_frame(atoms, path, i, energy_key, species)
                sizes.append(len(atoms))
                e_atom.append(e / len(atoms))
                dens.append(density_of(atoms))
        except InputFileError:
            raise
        except Exception as exc:  # ASE raises many kinds on malformed extxyz
            raise InputFileError(path, f"cannot be read as extxyz ({type(exc).__name__}: {exc})",
                                 len(sizes)) from None
        if len(sizes) != expected:
            raise InputFileError(path, f"{len(sizes)} frames parsed but {expected} announced by atom-count lines")
        manifest["files"][role] = {
            "path": str(path), "frames": len(sizes), "atoms": sorted(set(sizes)),
            "energy_per_atom_eV": [float(min(e_atom)), float(max(e_atom))],
            "density_g_cm3": [float(min(dens)), float(max(dens))],
        }
        log.info("%s (%s): %d frames, %s atoms, E/atom %.3f..%.3f eV, density %.2f..%.2f g/cm3", path, role,
                 len(sizes), sorted(set(sizes)), min(e_atom), max(e_atom), min(dens), max(dens))
    if output:
        from .provenance import record

        manifest["provenance"] = record(source)
        write_json(output, manifest)
    return manifest


def check_config(source: dict) -> None:
    """Config-level checks of an import source (the files themselves are checked by ``validate``)."""
    has_pair = bool(source.get("train")) or bool(source.get("test"))
    if source.get("file") and has_pair:
        raise ConfigError("source.file", "give either source.file or source.train and source.test, not both")
    if not source.get("file"):
        for role in ("train", "test"):
            if not source.get(role):
                raise ConfigError(f"source.{role}", "missing: an import needs source.train and source.test, "
                                  "or one source.file")
    if source.get("file") is None and source.get("test_fraction") is not None:
        raise ConfigError("source.test_fraction", "only used with one source.file (train/test files are the split)")
