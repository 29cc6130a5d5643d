"""Frames: extxyz files of structures, through ASE. The only extxyz reader and writer of topoamorph.

A file is first indexed (``index_frames``: the byte offset and atom count of every frame, found by
scanning the atom-count lines without parsing coordinates), so that one frame, or a range of them, is
parsed without reading the others: each rank of a homology job reads only the frames it computes.
Errors name the file and the frame.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..paths import split_selection
from ..units import density_of


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
            return frame_energy(self.atoms, self.energy_key, self.source, self.index)
        return float(self.atoms.get_potential_energy())


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame of an extxyz file starts (``offsets``, bytes; one more entry: the end of the last
    frame) and how many atoms it has (``natoms``)."""

    path: str
    offsets: tuple
    natoms: tuple

    def __len__(self) -> int:
        return len(self.natoms)


def parse_spec(spec: str) -> tuple[str, int, int | None]:
    """``path`` or ``path@start:stop`` (ASE's selection syntax) -> (path, start, stop); a path may hold ``@``
    (``paths.split_selection``)."""
    path, sel = split_selection(spec)
    if path != spec:
        try:
            a, b = sel.split(":")
            start, stop = int(a or 0), (int(b) if b else None)
        except ValueError:
            raise InputFileError(spec, "selection must be path@start:stop") from None
        if start < 0 or (stop is not None and stop < 0):
            raise InputFileError(spec, "selection start and stop count frames from 0 (no negative indices)")
        if stop is not None and stop < start:
            raise InputFileError(spec, f"selection stops ({stop}) before it starts ({start})")
        return path, start, stop
    return spec, 0, None


def index_frames(path) -> FrameIndex:
    """Scan the atom-count lines of an extxyz file (no parsing of coordinates); cached per file version."""
    p = Path(path)
    if p.is_dir():
        raise InputFileError(path, "is a directory, not a file of frames")
    if not p.is_file():
        raise InputFileError(path, "file not found")
    st = p.stat()
    return _index(str(path), st.st_mtime_ns, st.st_size)


COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"(\xb5/\xfd": "zstd"}


@functools.lru_cache(maxsize=256)
def _index(path: str, mtime_ns: int, size: int) -> FrameIndex:
    offsets, natoms, line_no = [], [], 0
    with open(path, "rb") as fh:
        magic = fh.read(6)
        for sig, kind in COMPRESSED.items():
            if magic.startswith(sig):
                raise InputFileError(
                    path,
                    f"{kind}-compressed: frames are read by byte offset, so compressed files "
                    "are not supported; decompress it first",
                )
        fh.seek(0)
        while True:
            start = fh.tell()
            head = fh.readline()
            line_no += 1
            if not head:
                break
            if not head.strip():
                continue  # trailing blank lines
            try:
                n = int(head.split()[0])
            except (ValueError, IndexError):
                raise InputFileError(
                    path, f"line {line_no}: expected an atom count, found {head[:40]!r}", len(natoms)
                ) from None
            if n < 1:
                raise InputFileError(path, f"line {line_no}: atom count {n}", len(natoms))
            for k in range(n + 1):
                if not fh.readline():
                    raise InputFileError(
                        path,
                        f"truncated: the file ends inside the frame ({k} of {n + 1} lines after the atom count)",
                        len(natoms),
                    )
            line_no += n + 1
            offsets.append(start)
            natoms.append(n)
        end = fh.tell()
    if not natoms:
        raise InputFileError(path, "empty: no frames")
    return FrameIndex(path, tuple(offsets) + (end,), tuple(natoms))


def count_frames(path) -> int:
    """Frames in an extxyz file (a missing, empty or truncated file is an error naming it)."""
    return len(index_frames(path))


def _parse(path, text: str, first: int) -> list:
    """Parse extxyz text. ``parallel=False``: under MPI, ASE's read otherwise parses on rank 0 and broadcasts
    its frames to every rank, which hands a rank reading other frames than rank 0 the wrong ones."""
    from ase.io import read

    try:
        return read(io.StringIO(text), index=":", format="extxyz", parallel=False)
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds on malformed extxyz
        raise InputFileError(path, f"cannot be read as extxyz ({type(exc).__name__}: {exc})", first) from None


def read_atoms(path, start: int = 0, stop: int | None = None, index: FrameIndex | None = None) -> list:
    """ASE ``Atoms`` of frames ``start:stop`` of an extxyz file, reading and parsing only those frames
    (``index``: the file's index when the caller has it, e.g. from another MPI rank)."""
    idx = index or index_frames(path)
    stop = len(idx) if stop is None else stop
    if not 0 <= start <= stop <= len(idx):
        raise InputFileError(path, f"expected frames {start}:{stop} but the file holds only {len(idx)}")
    if start == stop:
        return []
    with open(path, "rb") as fh:
        fh.seek(idx.offsets[start])
        text = fh.read(idx.offsets[stop] - idx.offsets[start]).decode()
    images = _parse(path, text, start)
    if len(images) != stop - start:
        raise InputFileError(path, f"{len(images)} frames parsed but {stop - start} announced by atom-count lines")
    return images


def read_spec(spec: str, require_energy: bool = True, energy_key: str | None = None) -> list[Frame]:
    """Checked frames of ``path`` or ``path@start:stop``."""
    path, start, stop = parse_spec(spec)
    images = read_atoms(path, start, stop)
    if not images:
        raise InputFileError(path, "no frames")
    return [checked_frame(atoms, path, i, require_energy, energy_key) for i, atoms in enumerate(images, start=start)]


def checked_frame(atoms, path, index: int, require_energy: bool = True, energy_key: str | None = None) -> Frame:
    check_atoms(atoms, path, index, require_energy and not energy_key)
    frame = Frame(str(path), index, atoms, energy_key)
    if require_energy and energy_key:
        frame.energy  # noqa: B018 (raises naming the file, frame and key)
    return frame


def read_rows(sources, indices) -> list:
    """The ``Atoms`` of rows given as (source file, frame index) pairs, each file indexed once and only
    the frames asked for parsed."""
    sources = [str(s) for s in sources]
    indices = np.asarray(indices, dtype=np.int64)
    out: list = [None] * len(sources)
    for src in dict.fromkeys(sources):
        rows = [r for r, s in enumerate(sources) if s == src]
        idx = index_frames(src)
        for r in rows:
            i = int(indices[r])
            if not 0 <= i < len(idx):
                raise InputFileError(src, f"frame {i} is not in the file (it has {len(idx)} frames)")
            out[r] = read_atoms(src, i, i + 1, index=idx)[0]
    return out


#: a cell thinner than this across a face holds no structure of atoms; a wider one is no periodic structure at any
#: sane density (a cell vector in the wrong unit): both are refused before any homology, whose memory they would blow
MIN_CELL_HEIGHT = 0.5  # Å
MAX_CELL_HEIGHT = 1.0e4  # Å


def cell_heights(cell) -> np.ndarray:
    """The cell's three heights (Å): its thickness across each pair of faces."""
    cell = np.asarray(cell, dtype=float)
    vol = abs(np.linalg.det(cell))
    return np.array([vol / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])


def cell_problem(cell) -> str | None:
    """Why a cell cannot be analysed (zero volume, too thin, too wide), None when it can."""
    if not np.all(np.isfinite(np.asarray(cell, dtype=float))) or abs(np.linalg.det(np.asarray(cell, float))) < 1e-9:
        return "frame has no cell (zero volume)"
    h = cell_heights(cell)
    if h.min() < MIN_CELL_HEIGHT:
        return (
            f"the cell is {h.min():.3g} Å thick across one face (below {MIN_CELL_HEIGHT} Å: a cell vector near "
            "zero or three nearly coplanar vectors)"
        )
    if h.max() > MAX_CELL_HEIGHT:
        return (
            f"the cell is {h.max():.3g} Å across (above {MAX_CELL_HEIGHT:g} Å: no periodic structure of atoms at "
            "any sane density; a cell vector in the wrong unit?)"
        )
    return None


def check_atoms(atoms, path, index: int, require_energy: bool = True) -> None:
    if len(atoms) == 0:
        raise InputFileError(path, "frame has no atoms", index)
    if not all(atoms.pbc):
        raise InputFileError(path, "frame is not periodic in all three directions (pbc)", index)
    problem = cell_problem(atoms.cell[:])
    if problem:
        raise InputFileError(path, problem, index)
    if not np.all(np.isfinite(atoms.get_positions())):
        raise InputFileError(path, "positions contain NaN or infinite values", index)
    if require_energy:
        try:
            e = atoms.get_potential_energy()
        except Exception:  # noqa: BLE001 - no calculator or no energy in it: an unlabelled frame
            raise InputFileError(path, "frame has no energy", index) from None
        if not np.isfinite(e):
            raise InputFileError(path, f"energy is not finite ({e})", index)


def frame_energy(atoms, key: str, path, index: int, required: bool = True) -> float:
    """The frame's total energy (eV) under ``key``: an info entry, else a calculator result; NaN for a frame
    without one when not ``required`` (a value that is there but not a finite number is always an error)."""
    value = atoms.info.get(key)
    if value is None and atoms.calc is not None:
        value = atoms.calc.results.get(key)
    if value is None and not required:
        return float("nan")
    if value is None:
        raise InputFileError(
            path, f"no energy under key {key!r} (source.energy_key); info keys: {sorted(atoms.info)}", index
        )
    try:
        e = float(value)
    except (TypeError, ValueError):
        raise InputFileError(path, f"energy {key!r} is not a number ({value!r})", index) from None
    if not np.isfinite(e):
        raise InputFileError(path, f"energy {key!r} is not finite ({e})", index)
    return e


def frame_metadata(frame: Frame, with_energy: bool = True) -> dict:
    """Per-frame metadata carried from structures to diagrams to the dataset (``with_energy=False``: the
    energy is NaN when the frame has none)."""
    atoms = frame.atoms
    info = {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool, np.integer, np.floating))}
    return {
        "source": frame.source,
        "index": frame.index,
        "n_atoms": len(atoms),
        "energy": frame.energy if with_energy else _energy_or_nan(frame),
        "density": density_of(atoms),
        # generated frames: stage; the source paper's data: process; GAP-style sets: config_type
        "stage": str(info.get("stage", info.get("process", info.get("config_type", "")))),
        "run": int(info.get("run", -1)),
        "info": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in info.items()},
    }


def _energy_or_nan(frame: Frame) -> float:
    try:
        return frame.energy
    except Exception:  # noqa: BLE001 (no calculator, no key: an unlabelled frame)
        return float("nan")


def write_frames(path, frames) -> None:
    """Write frames as extxyz, atomically (the caller decides which MPI rank writes)."""
    from ase.io import write

    from ..io import atomic_path

    with atomic_path(path) as tmp:
        write(tmp, frames, format="extxyz", parallel=False)
