"""Reading frames (extxyz through ASE) with errors that name the file and the frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputFileError
from .units import density_of


@dataclass
class Frame:
    source: str
    index: int
    atoms: object
    energy_key: str | None = None  # None: the calculator's potential energy (generated frames)

    @property
    def energy(self) -> float:
        """Total energy of the cell (eV)."""
        if self.energy_key:
            from .importer import frame_energy

            return frame_energy(self.atoms, self.energy_key, self.source, self.index)
        return float(self.atoms.get_potential_energy())


def parse_spec(spec: str) -> tuple[str, int, int | None]:
    """``path`` or ``path@start:stop`` (ASE's selection syntax) -> (path, start, stop)."""
    if "@" in spec:
        path, sel = spec.rsplit("@", 1)
        try:
            a, b = sel.split(":")
            return path, int(a or 0), (int(b) if b else None)
        except ValueError:
            raise InputFileError(spec, "selection must be path@start:stop") from None
    return spec, 0, None


def read_spec(spec: str, require_energy: bool = True, energy_key: str | None = None) -> list[Frame]:
    from ase.io import read

    path, start, stop = parse_spec(spec)
    if not Path(path).is_file():
        raise InputFileError(path, "file not found")
    index = f"{start}:{'' if stop is None else stop}"
    try:
        images = read(path, index=index, format="extxyz")
    except Exception as exc:  # ASE raises many kinds on malformed extxyz
        raise InputFileError(path, f"cannot be read as extxyz ({type(exc).__name__}: {exc})") from None
    if stop is not None and len(images) != stop - start:
        raise InputFileError(path, f"expected frames {start}:{stop} but the file holds only {start + len(images)}")
    if not images:
        raise InputFileError(path, "no frames")
    frames = []
    for i, atoms in enumerate(images, start=start):
        check_atoms(atoms, path, i, require_energy and not energy_key)
        frame = Frame(str(path), i, atoms, energy_key)
        if require_energy and energy_key:
            frame.energy  # noqa: B018 (raises naming the file, frame and key)
        frames.append(frame)
    return frames


def check_atoms(atoms, path, index: int, require_energy: bool = True) -> None:
    if len(atoms) == 0:
        raise InputFileError(path, "frame has no atoms", index)
    if not all(atoms.pbc):
        raise InputFileError(path, "frame is not periodic in all three directions (pbc)", index)
    if abs(atoms.cell.volume) < 1e-9:
        raise InputFileError(path, "frame has no cell (zero volume)", index)
    if not np.all(np.isfinite(atoms.get_positions())):
        raise InputFileError(path, "positions contain NaN or infinite values", index)
    if require_energy:
        try:
            e = atoms.get_potential_energy()
        except Exception:
            raise InputFileError(path, "frame has no energy", index) from None
        if not np.isfinite(e):
            raise InputFileError(path, f"energy is not finite ({e})", index)


def frame_metadata(frame: Frame) -> dict:
    """Per-frame metadata carried from structures to diagrams to the dataset."""
    atoms = frame.atoms
    info = {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool, np.integer, np.floating))}
    return {
        "source": frame.source,
        "index": frame.index,
        "n_atoms": len(atoms),
        "energy": frame.energy,
        "density": density_of(atoms),
        # generated frames: stage; the source paper's data: process; GAP-style sets: config_type
        "stage": str(info.get("stage", info.get("process", info.get("config_type", "")))),
        "run": int(info.get("run", -1)),
        "info": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in info.items()},
    }
