"""The dataset: descriptors X (n_frames, channels, bins, bins), targets y (eV/atom) and per-frame metadata
(source file, frame index, n_atoms, replicas, energy, density, stage, run, info) in one HDF5 file
(format ``topoamorph-dataset/1``), read lazily: ``Dataset(path).rows(idx)`` reads only the rows asked for.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from .. import __version__
from ..errors import InputFileError
from ..io import atomic_path, check_hdf5_format, decode_strings

FORMAT = "topoamorph-dataset/1"


def write_dataset(path, X: np.ndarray, y: np.ndarray, meta: dict, attrs: dict, provenance: dict | None = None) -> None:
    """``meta``: {column: array of one value per frame}; ``attrs``: the descriptor's settings and units."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(format=FORMAT, version=__version__, **attrs,
                       provenance=json.dumps(provenance or {}, sort_keys=True))
        h.create_dataset("X", data=X.astype(np.float32), chunks=(min(len(X), 256),) + X.shape[1:],
                         compression="gzip")
        h.create_dataset("y", data=y)
        m = h.create_group("meta")
        for k, v in meta.items():
            if v.dtype == object:
                m.create_dataset(k, data=list(v), dtype=h5py.string_dtype())
            else:
                m.create_dataset(k, data=v)


class Dataset:
    """Lazy view of a dataset file: ``rows(idx)`` reads only the rows asked for."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self._h = h5py.File(self.path, "r")
            check_hdf5_format(self._h, path, FORMAT, "dataset")
            self.X = self._h["X"]
            self.y = self._h["y"][()]
            self.attrs = dict(self._h.attrs)
            self.meta = {}
            for k in self._h["meta"]:
                v = self._h["meta"][k][()]
                self.meta[k] = decode_strings(v) if v.dtype == object else v
        except InputFileError:
            self.close()
            raise
        except (OSError, KeyError) as exc:
            self.close()
            raise InputFileError(path, f"unreadable dataset file ({type(exc).__name__}: {exc})") from None
        if len(self.y) != self.X.shape[0]:
            raise InputFileError(path, "X and y have different lengths (truncated or corrupt)")

    def __len__(self):
        return len(self.y)

    def rows(self, idx) -> np.ndarray:
        unique, inverse = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
        return self.X[unique][inverse] if len(unique) else np.zeros((0,) + self.X.shape[1:], np.float32)

    def close(self):
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
