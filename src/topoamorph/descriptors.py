"""Descriptors: vectorisers of persistence diagrams (scikit-learn transformers) and the dataset file.

``PersistenceHistogram``: the source paper's descriptor, a normalised 2D histogram of finite
(birth, death) pairs per homology dimension, stacked as channels: X has shape
(n_frames, len(dims), bins, bins), axis 1 of each image = birth, axis 2 = death, both over
``range`` in the diagram's units (Å² for the alpha filtration). Essential classes are not counted.
``normalize="per_atom"`` divides the counts by the atoms in the complex (n_atoms x replicas), so
cells of different sizes, and replicated small cells, give comparable descriptors.
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from . import __version__
from .errors import InputFileError
from .io import atomic_path
from .store import read_diagrams

log = logging.getLogger(__name__)

DATASET_FORMAT = "topoamorph-dataset/1"


class PersistenceHistogram(TransformerMixin, BaseEstimator):
    """Normalised 2D persistence histograms, one channel per homology dimension.

    ``transform(diagrams, n_atoms=None)``: ``diagrams`` is a list of ``{dim: (k, 2) array}``;
    ``n_atoms`` (array, one per diagram) is needed for ``normalize="per_atom"``.
    """

    def __init__(self, dims=(0, 1, 2), bins: int = 32, range=(0.0, 8.0), normalize: str = "per_atom"):
        self.dims = dims
        self.bins = bins
        self.range = range
        self.normalize = normalize

    def fit(self, diagrams=None, y=None, **fit_params):
        if self.normalize not in ("per_atom", "none"):
            raise ValueError(f"normalize must be 'per_atom' or 'none', not {self.normalize!r}")
        lo, hi = self.range
        if not hi > lo:
            raise ValueError(f"range must be increasing, got {self.range}")
        self.edges_ = np.linspace(lo, hi, self.bins + 1)
        return self

    def transform(self, diagrams, n_atoms=None):
        if not hasattr(self, "edges_"):
            self.fit()
        if self.normalize == "per_atom":
            if n_atoms is None:
                raise ValueError("normalize='per_atom' needs n_atoms (atoms in each complex)")
            scale = 1.0 / np.asarray(n_atoms, dtype=float)
        else:
            scale = np.ones(len(diagrams))
        X = np.zeros((len(diagrams), len(self.dims), self.bins, self.bins))
        for i, dgm in enumerate(diagrams):
            for c, d in enumerate(self.dims):
                pairs = np.asarray(dgm[d])
                pairs = pairs[np.isfinite(pairs[:, 1])]
                h, _, _ = np.histogram2d(pairs[:, 0], pairs[:, 1], bins=[self.edges_, self.edges_])
                X[i, c] = h * scale[i]
        return X

    def out_of_range_fraction(self, diagrams) -> float:
        lo, hi = self.range
        total = outside = 0
        for dgm in diagrams:
            for d in self.dims:
                p = np.asarray(dgm[d])
                p = p[np.isfinite(p[:, 1])]
                total += len(p)
                outside += int(np.sum((p < lo).any(axis=1) | (p > hi).any(axis=1)))
        return outside / max(total, 1)

    def get_feature_names_out(self, input_features=None):
        return np.array([f"pd{d}_b{i}_d{j}" for d in self.dims for i in range(self.bins) for j in range(self.bins)])


def build_dataset(diagram_files: list[str], output: str, params: dict, provenance: dict | None = None) -> dict:
    """Vectorise every frame of the batch files into one HDF5 dataset (X, y in eV/atom, metadata)."""
    diagrams, cols = [], {}
    units = None
    for path in diagram_files:
        part = read_diagrams(path)
        units = units or part["attrs"]["units"]
        if part["attrs"]["units"] != units:
            raise InputFileError(path, f"units {part['attrs']['units']!r} differ from {units!r} of earlier batches")
        diagrams.extend(part["diagrams"])
        for k, v in part["frames"].items():
            cols.setdefault(k, []).append(v)
    if not diagrams:
        raise InputFileError(diagram_files[0] if diagram_files else "<none>", "no frames in the diagram files")
    cols = {k: np.concatenate(v) for k, v in cols.items()}
    vec = PersistenceHistogram(dims=tuple(params["dims"]), bins=params["bins"], range=tuple(params["range"]),
                               normalize=params.get("normalize", "per_atom")).fit()
    n_complex = cols["n_atoms"] * cols["replicas"]
    X = vec.transform(diagrams, n_atoms=n_complex)
    y = cols["energy"] / cols["n_atoms"]
    outside = vec.out_of_range_fraction(diagrams)
    if outside > 0.01:
        log.warning("%.1f%% of finite pairs fall outside descriptors.range %s %s: widen it", 100 * outside,
                    params["range"], units)
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(format=DATASET_FORMAT, version=__version__, kind="histogram", dims=list(params["dims"]),
                       bins=params["bins"], range=list(params["range"]), units=units,
                       normalize=params.get("normalize", "per_atom"), y_units="eV/atom",
                       out_of_range_fraction=outside, provenance=json.dumps(provenance or {}, sort_keys=True))
        h.create_dataset("X", data=X.astype(np.float32), chunks=(min(len(X), 256),) + X.shape[1:],
                         compression="gzip")
        h.create_dataset("y", data=y)
        m = h.create_group("meta")
        for k, v in cols.items():
            if v.dtype == object:
                m.create_dataset(k, data=list(v), dtype=h5py.string_dtype())
            else:
                m.create_dataset(k, data=v)
    log.info("dataset %s: X %s, y %.4f..%.4f eV/atom, %.2f%% pairs out of range", output, X.shape, y.min(), y.max(),
             100 * outside)
    return {"n": len(y), "shape": list(X.shape), "out_of_range_fraction": outside}


class Dataset:
    """Lazy view of a dataset file: ``X[idx]`` reads only the rows asked for."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self._h = h5py.File(self.path, "r")
            if self._h.attrs.get("format") != DATASET_FORMAT:
                raise InputFileError(path, "not a topoamorph dataset file")
            self.X = self._h["X"]
            self.y = self._h["y"][()]
            self.attrs = dict(self._h.attrs)
            self.meta = {}
            for k in self._h["meta"]:
                v = self._h["meta"][k][()]
                if v.dtype == object:
                    v = np.array([x.decode() if isinstance(x, bytes) else x for x in v], dtype=object)
                self.meta[k] = v
        except InputFileError:
            raise
        except (OSError, KeyError) as exc:
            raise InputFileError(path, f"unreadable dataset file ({type(exc).__name__}: {exc})") from None
        if len(self.y) != self.X.shape[0]:
            raise InputFileError(path, "X and y have different lengths (truncated or corrupt)")

    def __len__(self):
        return len(self.y)

    def rows(self, idx) -> np.ndarray:
        unique, inverse = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
        return self.X[unique][inverse] if len(unique) else np.zeros((0,) + self.X.shape[1:], np.float32)

    def close(self):
        self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
