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


def read_diagrams(path, frames=None) -> dict:
    """{'attrs': ..., 'frames': {column: array}, 'diagrams': [ {dim: (k,2) with essential inf} ],
    'results': [PersistenceResult] (the same diagrams with their atom count, replication and units)}.
    ``frames``: positions in the file of the frames to read (default all); only their pairs are read, so a
    few frames of a large batch cost a few frames."""
    with read_hdf5(path, FORMAT, "diagrams") as h:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h.attrs.items()}
        n_file = int(h["frames"]["index"].shape[0])
        pick = np.arange(n_file) if frames is None else np.asarray(frames, dtype=np.int64).reshape(-1)
        if len(pick) and (pick.min() < 0 or pick.max() >= n_file):
            raise InputFileError(path, f"holds {n_file} frames; asked for frame {int(pick.max())}")
        whole = frames is None
        frames = {k: h["frames"][k][()] if whole else h["frames"][k][()][pick] for k in h["frames"]}
        for k in ("source", "stage", "info"):
            frames[k] = decode_strings(frames[k])
        diagrams = [dict() for _ in range(len(pick))]
        for d in range(int(attrs["maxdim"]) + 1):
            g = h[f"pd{d}"]
            off, eoff = g["offsets"][()], g["essential_offsets"][()]
            n_pairs, n_ess = g["pairs"].shape[0], g["essential"].shape[0]
            if len(off) != n_file + 1 or off[-1] != n_pairs or len(eoff) != n_file + 1 or eoff[-1] != n_ess:
                raise InputFileError(path, f"pd{d} offsets do not match its pairs (truncated or corrupt)")
            pairs = g["pairs"][()] if whole else None
            ess = g["essential"][()]
            for j, i in enumerate(pick):
                p = pairs[off[i]:off[i + 1]] if whole else g["pairs"][off[i]:off[i + 1]]
                e = ess[eoff[i]:eoff[i + 1]]
                diagrams[j][d] = np.vstack([p, np.column_stack([e, np.full(len(e), np.inf)])])
    results = [PersistenceResult(dg, int(na), int(rep), str(attrs["units"]))
               for dg, na, rep in zip(diagrams, frames["n_atoms"], frames["replicas"])]
    return {"attrs": attrs, "frames": frames, "diagrams": diagrams, "results": results}


def count_diagrams(path) -> int:
    """Number of frames in a diagram file (reads only its frame index)."""
    with read_hdf5(path, FORMAT, "diagrams") as h:
        return int(h["frames"]["index"].shape[0])
