"""The Δ-learning engine's energy of every dataset row (``train.delta``), aligned with the dataset by (source
file, frame index): HDF5, format ``topoamorph-delta-energies/1``. Energies in eV/atom."""

from __future__ import annotations

import json

import h5py
import numpy as np

from ..errors import InputFileError
from ..io import atomic_path, decode_strings, read_hdf5
from ..units import ENERGY_PER_ATOM

FORMAT = "topoamorph-delta-energies/1"


def write_delta_energies(
    path, energy_per_atom, meta: dict, engine: dict, described: str, provenance: dict | None = None
) -> None:
    """``energy_per_atom`` (n_rows,) eV/atom in the dataset's row order (``meta``: its source and index);
    ``engine``: the engine block, ``described``: its name and version."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(
            format=FORMAT,
            engine=json.dumps(engine, sort_keys=True),
            described=described,
            units=ENERGY_PER_ATOM,
            provenance=json.dumps(provenance or {}, sort_keys=True),
        )
        h.create_dataset("energy_per_atom", data=np.asarray(energy_per_atom, dtype=np.float64))
        h.create_dataset("source", data=[str(s) for s in meta["source"]], dtype=h5py.string_dtype())
        h.create_dataset("index", data=np.asarray(meta["index"], dtype=np.int64))


def read_delta_energies(path, meta: dict, engine: dict | None = None) -> tuple[np.ndarray, str]:
    """(energy per atom of every dataset row, the engine's description), checked to be aligned with the rows in
    ``meta``, finite, and computed by ``engine`` when given."""
    with read_hdf5(path, FORMAT, "delta-energies") as h:
        e = h["energy_per_atom"][()]
        src = list(decode_strings(h["source"][()]))
        idx = h["index"][()]
        block, described = json.loads(h.attrs["engine"]), str(h.attrs["described"])
    if src != [str(s) for s in meta["source"]] or not np.array_equal(idx, np.asarray(meta["index"])):
        raise InputFileError(path, "rows do not match the dataset's frames: rebuild it (delete it and rerun)")
    if engine is not None and block != engine:
        raise InputFileError(path, f"computed with {block}, train.delta.engine is {engine}: delete it and rerun")
    if len(e) != len(src) or not np.all(np.isfinite(e)):
        raise InputFileError(path, "energies are truncated or not finite")
    return e, described
