"""Persistence diagrams of one homology batch: compact HDF5, one file per batch.

Layout (format ``topoamorph-diagrams/1``):
  attrs: format, backend, maxdim, units, topoamorph version, provenance (JSON)
  frames/{source, index, n_atoms, replicas, energy, density, stage, run, info}  one row per frame
  pd{d}/pairs (M, 2) finite (birth, death) pairs of all frames, concatenated
  pd{d}/offsets (n_frames + 1): frame i's pairs are pairs[offsets[i]:offsets[i+1]]
  pd{d}/essential (K,) births of essential classes; pd{d}/essential_offsets (n_frames + 1)
Optional, when the homology stage kept the pairs' simplices (``homology.keep_simplices: true``; alpha only),
rows aligned with pd{d}/pairs (atoms are indices into the frame's cell, -1 pads simplices of fewer than 4):
  pd{d}/birth, pd{d}/death (M, 4) int32: atoms of each pair's birth and death simplices
  pd{d}/birth_critical, pd{d}/death_critical (M, 4) int32: atoms of the simplices whose squared
      circumradius is the birth / death value
  pd{d}/birth_image, pd{d}/death_image (M, 4, 3) int8 (int32 if an atom lies over 127 cells away): lattice
      image of each critical vertex (the vertex is the atom's position + image @ cell)
  frames/cell (n_frames, 3, 3) float64: each frame's cell, so that the shifts of ``persistence.PairSimplices``
      come back exactly (shift = image @ cell)
A file without them reads as before (``PersistenceResult.pairs`` None).
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from .. import __version__
from ..errors import InputFileError
from ..io import atomic_path, decode_strings, read_hdf5
from ..persistence import PairSimplices, PersistenceResult, split_essential

FORMAT = "topoamorph-diagrams/1"
_STR = h5py.string_dtype()
#: the optional per-pair datasets: atoms (M, 4) int32, and lattice images (M, 4, 3) of the critical vertices
SIMPLEX_ATOMS = ("birth", "death", "birth_critical", "death_critical")
SIMPLEX_IMAGES = ("birth_image", "death_image")


def _images(shift: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Integer lattice vectors of ``PairSimplices`` shifts (k, 4, 3) in ``cell`` (shift = image @ cell)."""
    image = np.rint(np.asarray(shift, dtype=float) @ np.linalg.inv(cell))
    # homology gives shift = image @ cell exactly (tests/test_store_descriptors.py); refuse only what is not one
    if not np.allclose(image @ cell, shift, rtol=0.0, atol=1e-6 * max(np.abs(cell).max(), 1.0)):
        raise ValueError("a pair's critical vertex is not a lattice image of its atom")
    return image.astype(np.int64)


def _simplex_rows(records: list[dict], d: int) -> dict:
    """The optional datasets of dimension ``d``, concatenated over frames."""
    cols = {k: [] for k in SIMPLEX_ATOMS + SIMPLEX_IMAGES}
    for r in records:
        ps, cell = r["pairs"][d], np.asarray(r["cell"], dtype=float)
        for k in SIMPLEX_ATOMS:
            cols[k].append(np.asarray(getattr(ps, k), dtype=np.int64).reshape(-1, 4))
        cols["birth_image"].append(_images(ps.birth_shift, cell).reshape(-1, 4, 3))
        cols["death_image"].append(_images(ps.death_shift, cell).reshape(-1, 4, 3))
    out = {k: np.concatenate(v) if v else np.zeros((0, 4), dtype=np.int64) for k, v in cols.items()}
    for k in SIMPLEX_ATOMS:
        out[k] = out[k].astype(np.int32)
    for k in SIMPLEX_IMAGES:
        v = out[k].reshape(-1, 4, 3)
        # int8 unless a frame's atoms lie more than 127 cells away from the cell (unwrapped trajectories)
        out[k] = v.astype(np.int8 if np.abs(v).max(initial=0) <= 127 else np.int32)
    return out


def write_diagrams(path, records: list[dict], backend: str, maxdim: int, units: str, provenance: dict) -> None:
    """``records``: dicts with frame metadata (see formats.frames.frame_metadata), ``replicas`` and
    ``diagrams``; optionally ``pairs`` ({dim: ``persistence.PairSimplices``} of the finite pairs, in the diagram's
    order) and ``cell`` (3, 3), in every record or none: then the pairs' simplices are stored too."""
    kept = [r.get("pairs") is not None for r in records]
    simplices = bool(records) and all(kept)
    if any(kept) and not simplices:
        raise ValueError("the pairs' simplices are given for some frames of the batch but not all")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(
            format=FORMAT,
            backend=backend,
            maxdim=maxdim,
            units=units,
            version=__version__,
            provenance=json.dumps(provenance, sort_keys=True),
        )
        g = h.create_group("frames")
        g.create_dataset("source", data=[r["source"] for r in records], dtype=_STR)
        g.create_dataset("stage", data=[r["stage"] for r in records], dtype=_STR)
        g.create_dataset("info", data=[json.dumps(r["info"], sort_keys=True) for r in records], dtype=_STR)
        for key, dt in (
            ("index", np.int64),
            ("n_atoms", np.int64),
            ("replicas", np.int64),
            ("run", np.int64),
            ("energy", np.float64),
            ("density", np.float64),
        ):
            g.create_dataset(key, data=np.array([r[key] for r in records], dtype=dt))
        if simplices:
            g.create_dataset(
                "cell", data=np.array([np.asarray(r["cell"], dtype=np.float64).reshape(3, 3) for r in records])
            )
        for d in range(maxdim + 1):
            fin, ess = zip(*(split_essential(r["diagrams"][d]) for r in records)) if records else ((), ())
            grp = h.create_group(f"pd{d}")
            grp.create_dataset("pairs", data=np.concatenate(fin) if fin else np.zeros((0, 2)), compression="gzip")
            grp.create_dataset("offsets", data=np.cumsum([0] + [len(x) for x in fin]))
            grp.create_dataset("essential", data=np.concatenate(ess) if ess else np.zeros(0))
            grp.create_dataset("essential_offsets", data=np.cumsum([0] + [len(x) for x in ess]))
            if simplices:
                if any(len(r["pairs"][d]) != len(f) for r, f in zip(records, fin)):
                    raise ValueError(f"pd{d}: the pairs' simplices do not match the finite pairs")
                for key, value in _simplex_rows(records, d).items():
                    grp.create_dataset(key, data=value, compression="gzip")


def read_diagrams(path, frames=None, simplices: bool = True) -> dict:
    """{'attrs': ..., 'frames': {column: array}, 'diagrams': [ {dim: (k,2) with essential inf} ],
    'results': [PersistenceResult] (the same diagrams with their atom count, replication and units, and
    ``pairs`` {dim: ``persistence.PairSimplices``} when the file holds the pairs' simplices)}.
    ``frames``: positions in the file of the frames to read (default all); only their pairs are read, so a
    few frames of a large batch cost a few frames. ``simplices=False``: leave the pairs' simplices unread."""

    with read_hdf5(path, FORMAT, "diagrams") as h:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h.attrs.items()}
        n_file = int(h["frames"]["index"].shape[0])
        pick = np.arange(n_file) if frames is None else np.asarray(frames, dtype=np.int64).reshape(-1)
        if len(pick) and (pick.min() < 0 or pick.max() >= n_file):
            raise InputFileError(path, f"holds {n_file} frames; asked for frame {int(pick.max())}")
        whole = frames is None
        # frames/cell goes with the pairs' simplices, not with the per-frame columns (the dataset's metadata)
        frames = {k: h["frames"][k][()] if whole else h["frames"][k][()][pick] for k in h["frames"] if k != "cell"}
        for k in ("source", "stage", "info"):
            frames[k] = decode_strings(frames[k])
        diagrams = [dict() for _ in range(len(pick))]
        simplices = simplices and "cell" in h["frames"]
        cells = h["frames"]["cell"][()][pick] if simplices else None
        kept = [dict() for _ in range(len(pick))] if simplices else [None] * len(pick)
        for d in range(int(attrs["maxdim"]) + 1):
            g = h[f"pd{d}"]
            off, eoff = g["offsets"][()], g["essential_offsets"][()]
            n_pairs, n_ess = g["pairs"].shape[0], g["essential"].shape[0]
            if len(off) != n_file + 1 or off[-1] != n_pairs or len(eoff) != n_file + 1 or eoff[-1] != n_ess:
                raise InputFileError(path, f"pd{d} offsets do not match its pairs (truncated or corrupt)")
            pairs = g["pairs"][()] if whole else None
            ess = g["essential"][()]
            for j, i in enumerate(pick):
                p = pairs[off[i] : off[i + 1]] if whole else g["pairs"][off[i] : off[i + 1]]
                e = ess[eoff[i] : eoff[i + 1]]
                diagrams[j][d] = np.vstack([p, np.column_stack([e, np.full(len(e), np.inf)])])
            if simplices:
                _read_simplices(path, g, d, off, pick, whole, cells, kept)
    results = [
        PersistenceResult(dg, int(na), int(rep), str(attrs["units"]), pairs=ps)
        for dg, na, rep, ps in zip(diagrams, frames["n_atoms"], frames["replicas"], kept)
    ]
    return {"attrs": attrs, "frames": frames, "diagrams": diagrams, "results": results}


def _read_simplices(path, g, d: int, off, pick, whole: bool, cells, pairs: list) -> None:
    """Fill ``pairs[j][d]`` with the ``PairSimplices`` of frame ``pick[j]`` (``cells``: the picked frames')."""
    keys = SIMPLEX_ATOMS + SIMPLEX_IMAGES
    if any(k not in g for k in keys) or any(g[k].shape[0] != off[-1] for k in keys):
        raise InputFileError(path, f"pd{d} simplices do not match its pairs (truncated or corrupt)")
    full = {k: g[k][()] for k in keys} if whole else None
    for j, i in enumerate(pick):
        part = {k: (full[k][off[i] : off[i + 1]] if whole else g[k][off[i] : off[i + 1]]) for k in keys}
        cell = cells[j]
        atoms = {k: part[k].astype(np.int64) for k in SIMPLEX_ATOMS}
        pairs[j][d] = PairSimplices(
            birth_shift=part["birth_image"].astype(np.float64) @ cell,
            death_shift=part["death_image"].astype(np.float64) @ cell,
            **atoms,
        )


def count_diagrams(path) -> int:
    """Number of frames in a diagram file (reads only its frame index)."""
    with read_hdf5(path, FORMAT, "diagrams") as h:
        return int(h["frames"]["index"].shape[0])
