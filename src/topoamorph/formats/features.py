"""SOAP and RDF features of every dataset row (the structure baselines), aligned with the dataset by
(source file, frame index): HDF5, format ``topoamorph-structure-features/1``."""

from __future__ import annotations

import json

import h5py
import numpy as np

from ..errors import InputFileError
from ..io import atomic_path, decode_strings, read_hdf5

FORMAT = "topoamorph-structure-features/1"
KINDS = ("soap", "rdf")


def write_features(path, feats: dict, meta: dict, params: dict, species, provenance: dict | None = None) -> None:
    """``feats``: {kind: (n_rows, n_features)} in the dataset's row order (``meta``: its source and index)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(
            format=FORMAT,
            params=json.dumps(params, sort_keys=True),
            species=json.dumps(sorted(set(species))),
            provenance=json.dumps(provenance or {}, sort_keys=True),
        )
        for kind, X in feats.items():
            h.create_dataset(kind, data=X, compression="gzip")
        h.create_dataset("source", data=[str(s) for s in meta["source"]], dtype=h5py.string_dtype())
        h.create_dataset("index", data=np.asarray(meta["index"], dtype=np.int64))


def read_features(path, meta: dict) -> dict:
    """The feature matrices of ``path``, checked to be aligned with the dataset rows in ``meta``."""
    with read_hdf5(path, FORMAT, "structure-features") as h:
        out = {k: h[k][()] for k in KINDS}
        src = list(decode_strings(h["source"][()]))
        idx = h["index"][()]
    if src != [str(s) for s in meta["source"]] or not np.array_equal(idx, np.asarray(meta["index"])):
        raise InputFileError(path, "rows do not match the dataset's frames: rebuild it (delete it and rerun)")
    for k, X in out.items():
        if len(X) != len(src) or not np.all(np.isfinite(X)):
            raise InputFileError(path, f"{k} features are truncated or not finite")
    return out
