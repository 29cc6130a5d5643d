"""Persistence diagrams of one homology batch: compact HDF5, one file per batch.

Layout (format ``topoamorph-diagrams/1``):
  attrs: format, backend, maxdim, units, topoamorph version, provenance (JSON)
  frames/{source, index, n_atoms, replicas, energy, density, stage, run, info}  one row per frame
  pd{d}/pairs (M, 2) finite (birth, death) pairs of all frames, concatenated
  pd{d}/offsets (n_frames + 1): frame i's pairs are pairs[offsets[i]:offsets[i+1]]
  pd{d}/essential (K,) births of essential classes; pd{d}/essential_offsets (n_frames + 1)
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from .. import __version__
from ..errors import InputFileError
from ..io import atomic_path, decode_strings, read_hdf5
from ..persistence import PersistenceResult, split_essential

FORMAT = "topoamorph-diagrams/1"
_STR = h5py.string_dtype()


def write_diagrams(path, records: list[dict], backend: str, maxdim: int, units: str, provenance: dict) -> None:
    """``records``: dicts with frame metadata (see formats.frames.frame_metadata), ``replicas`` and
    ``diagrams``."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(format=FORMAT, backend=backend, maxdim=maxdim, units=units, version=__version__,
                       provenance=json.dumps(provenance, sort_keys=True))
        g = h.create_group("frames")
        g.create_dataset("source", data=[r["source"] for r in records], dtype=_STR)
        g.create_dataset("stage", data=[r["stage"] for r in records], dtype=_STR)
        g.create_dataset("info", data=[json.dumps(r["info"], sort_keys=True) for r in records], dtype=_STR)
        for key, dt in (("index", np.int64), ("n_atoms", np.int64), ("replicas", np.int64), ("run", np.int64),
                        ("energy", np.float64), ("density", np.float64)):
            g.create_dataset(key, data=np.array([r[key] for r in records], dtype=dt))
        for d in range(maxdim + 1):
            fin, ess = zip(*(split_essential(r["diagrams"][d]) for r in records)) if records else ((), ())
            grp = h.create_group(f"pd{d}")
            grp.create_dataset("pairs", data=np.concatenate(fin) if fin else np.zeros((0, 2)), compression="gzip")
            grp.create_dataset("offsets", data=np.cumsum([0] + [len(x) for x in fin]))
            grp.create_dataset("essential", data=np.concatenate(ess) if ess else np.zeros(0))
            grp.create_dataset("essential_offsets", data=np.cumsum([0] + [len(x) for x in ess]))


def read_diagrams(path) -> dict:
    """{'attrs': ..., 'frames': {column: array}, 'diagrams': [ {dim: (k,2) with essential inf} ],
    'results': [PersistenceResult] (the same diagrams with their atom count, replication and units)}."""
    with read_hdf5(path, FORMAT, "diagrams") as h:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h.attrs.items()}
        frames = {k: h["frames"][k][()] for k in h["frames"]}
        for k in ("source", "stage", "info"):
            frames[k] = decode_strings(frames[k])
        n = len(frames["index"])
        diagrams = [dict() for _ in range(n)]
        for d in range(int(attrs["maxdim"]) + 1):
            g = h[f"pd{d}"]
            pairs, off = g["pairs"][()], g["offsets"][()]
            ess, eoff = g["essential"][()], g["essential_offsets"][()]
            if len(off) != n + 1 or off[-1] != len(pairs) or len(eoff) != n + 1 or eoff[-1] != len(ess):
                raise InputFileError(path, f"pd{d} offsets do not match its pairs (truncated or corrupt)")
            for i in range(n):
                e = ess[eoff[i]:eoff[i + 1]]
                diagrams[i][d] = np.vstack([pairs[off[i]:off[i + 1]],
                                            np.column_stack([e, np.full(len(e), np.inf)])])
    results = [PersistenceResult(dg, int(na), int(rep), str(attrs["units"]))
               for dg, na, rep in zip(diagrams, frames["n_atoms"], frames["replicas"])]
    return {"attrs": attrs, "frames": frames, "diagrams": diagrams, "results": results}


def count_diagrams(path) -> int:
    """Number of frames in a diagram file (reads only its frame index)."""
    with read_hdf5(path, FORMAT, "diagrams") as h:
        return int(h["frames"]["index"].shape[0])
