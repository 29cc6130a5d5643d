"""Import existing DFT data (extxyz) instead of generating it: ``source: {kind: import, ...}``.

Either ``train`` and ``test`` files (the split is theirs) or one ``file`` split at random with
``test_fraction`` and ``seed``. Energies are total cell energies (eV) under ``energy_key`` (an info key
or a calculator result such as ``energy`` / ``free_energy``); the dataset holds eV/atom. Frames may
differ in atom count and cell. Every file is validated by the ``validate_import`` job before any
heavy job starts; errors name the file, the frame and what is wrong. The manifest records each file's
size and SHA-256 (``fingerprint``); every job that reads an imported file refuses one that has changed
since (``check_unchanged``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os

import numpy as np

from .errors import InputFileError
from .formats.frames import check_atoms, count_frames, frame_energy, parse_spec, read_atoms
from .io import read_json
from .settings import SourceSettings
from .units import density_of

log = logging.getLogger(__name__)

MIN_DISTANCE_ANGSTROM = 0.5  # closer atoms are overlapping (the shortest C-C bond is 1.2 Å)
CHUNK_FRAMES = 256  # frames parsed at a time while validating
MANIFEST_FORMAT = 2  # 2: each file's size and SHA-256 recorded
HASH_BLOCK = 1 << 22  # bytes read at a time while hashing a file


def fingerprint(path) -> dict:
    """A file's size (bytes) and SHA-256: what the manifest records and every job reading the file checks."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)
            size += len(block)
    return {"bytes": size, "sha256": h.hexdigest()}


def check_unchanged(manifest: dict, paths) -> None:
    """Refuse (one line naming the file) any of ``paths`` whose size or SHA-256 differs from what
    ``manifest`` (an import manifest with ``files``, or one file's entry) recorded when it was validated:
    a file replaced while the campaign runs must not mix its new frames with diagrams of the old ones.
    Paths the manifest does not list (frames the workflow generated) are not checked."""
    entries = list(manifest["files"].values()) if "files" in manifest else [manifest]
    wanted = {os.path.realpath(p) for p in paths}
    seen = set()
    for e in entries:
        path = parse_spec(e["path"])[0]
        real = os.path.realpath(path)
        if real not in wanted or real in seen:
            continue
        seen.add(real)
        if "sha256" not in e:
            raise InputFileError(
                path,
                "its manifest entry has no size and SHA-256 (written by an older topoamorph); "
                "delete the manifest so that the file is validated again",
            )
        now = fingerprint(path) if os.path.isfile(path) else None
        if now is None:
            raise InputFileError(path, "removed since it was validated")
        if now != {"bytes": e["bytes"], "sha256": e["sha256"]}:
            raise InputFileError(
                path,
                f"changed since it was validated ({e['bytes']} -> {now['bytes']} bytes, "
                f"SHA-256 {e['sha256'][:12]}... -> {now['sha256'][:12]}...); nothing was computed "
                "from the new version: run the campaign again to validate it and recompute what "
                "depends on it",
            )


@contextlib.contextmanager
def unchanged_while_read(manifest, paths):
    """``check_unchanged`` before and after the block that reads ``paths`` (``manifest``: its path, or None
    for frames the workflow generated: nothing to check)."""
    recorded = read_json(manifest) if manifest else None
    if recorded is not None:
        check_unchanged(recorded, paths)
    yield
    if recorded is not None:
        check_unchanged(recorded, paths)


def check_frame(
    atoms, path, index: int, energy_key: str, species: set[str] | None, require_energy: bool = True
) -> float:
    """Raise InputFileError naming the file and frame for anything a campaign (or a model applied to the frame)
    cannot use; return E (eV) (NaN for a frame without one when ``require_energy`` is false). ``species``: the
    supported elements, None to leave them to the caller (a model checks its own)."""
    check_atoms(atoms, path, index, require_energy=False)
    unknown = sorted(set(atoms.get_chemical_symbols()) - species) if species is not None else []
    if unknown:
        raise InputFileError(
            path, f"species {unknown} not supported by this campaign (supported: {sorted(species)})", index
        )
    check_geometry(atoms, path, index)
    return frame_energy(atoms, energy_key, path, index, required=require_energy)


def check_geometry(atoms, path, index: int) -> None:
    """No two atoms closer than ``MIN_DISTANCE_ANGSTROM`` (periodic images included): one line naming the pair."""
    if len(atoms) > 1:  # a neighbour list: linear in the atoms (all distances would be quadratic in memory)
        from ase.neighborlist import neighbor_list

        i, j, d = neighbor_list("ijd", atoms, MIN_DISTANCE_ANGSTROM)
        if len(d):
            k = int(np.argmin(d))
            apart = f"{d[k]:.3f}" if d[k] >= 1e-3 else f"{d[k]:.1e}"  # coincident atoms are not "0.000 Å" apart
            raise InputFileError(
                path,
                f"atoms {min(i[k], j[k])} and {max(i[k], j[k])} overlap ({apart} Å apart, "
                f"below {MIN_DISTANCE_ANGSTROM} Å)",
                index,
            )


def validate_file(
    path: str, energy_key: str, species, require_energy: bool = True, start: int = 0, stop: int | None = None
) -> dict:
    """Read and check every frame ``start:stop`` of one file: its manifest entry (frames, atom counts, energy
    and density ranges)."""
    spec = f"{path}@{start}:{stop}" if (start or stop is not None) else str(path)
    species = set(species)
    n_frames = count_frames(path)  # a missing, empty or truncated file is named here
    before = fingerprint(path)
    stop = n_frames if stop is None else stop
    sizes, e_atom, dens = [], [], []
    for lo in range(start, stop, CHUNK_FRAMES):
        for i, atoms in enumerate(read_atoms(path, lo, min(stop, lo + CHUNK_FRAMES)), start=lo):
            e = check_frame(atoms, path, i, energy_key, species, require_energy)
            sizes.append(len(atoms))
            e_atom.append(e / len(atoms))
            dens.append(density_of(atoms))
    if not sizes:
        raise InputFileError(spec, "no frames selected")
    if fingerprint(path) != before:
        raise InputFileError(path, "changed while it was being validated")
    labelled = [e for e in e_atom if np.isfinite(e)]
    entry = {
        "path": str(spec),
        **before,
        "frames": len(sizes),
        "atoms": sorted(set(sizes)),
        "energy_per_atom_eV": [float(min(labelled)), float(max(labelled))] if labelled else None,
        "frames_with_energy": len(labelled),
        "density_g_cm3": [float(min(dens)), float(max(dens))],
    }
    log.info(
        "%s: %d frames (%d with energy %r), %s atoms, density %.2f..%.2f g/cm3",
        spec,
        len(sizes),
        len(labelled),
        energy_key,
        sorted(set(sizes)),
        min(dens),
        max(dens),
    )
    return entry


def validate(source: dict | SourceSettings, species) -> dict:
    """Read and check every frame of every import file; return the manifest (frames, atom counts, energy
    and density ranges per file)."""
    src = source if isinstance(source, SourceSettings) else SourceSettings.from_config(source)
    species = set(species)
    manifest = {"energy_key": src.energy_key, "files": {}}
    for role, path in src.files().items():
        manifest["files"][role] = validate_file(path, src.energy_key, species)
    return manifest
