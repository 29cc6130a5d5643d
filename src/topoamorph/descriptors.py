"""Descriptors: vectorisers of persistence diagrams (scikit-learn transformers) and the dataset file.

Both vectorisers turn a list of diagrams ``{dim: (k, 2) array of (birth, death)}`` into images
X of shape (n_frames, len(dims), bins, bins): one channel per homology dimension, axis 1 of each
image = birth over ``range``, axis 2 = death over ``range`` (``axes="birth_death"``) or
persistence = death - birth over ``persistence_range`` (``axes="birth_persistence"``, default
[0, high - low]); all in the diagram's units (Å² for the alpha filtration, Å for Rips). Essential
classes are not counted. ``normalize="per_atom"`` divides by the atoms in the complex
(n_atoms x replicas), so cells of different sizes, and replicated small cells, compare.

- ``PersistenceHistogram``: the source paper's descriptor, a normalised 2D histogram of the pairs.
- ``PersistenceImage``: each pair a Gaussian of standard deviation ``sigma`` integrated over every
  pixel, weighted by ``weight``: ``none`` (1), ``linear`` (weight_a x persistence) or ``atan``
  (atan(weight_c x persistence^weight_p)), HomCloud's weight functions. Equal to persim's
  ``PersistenceImager(birth_range=range, pers_range=..., pixel_size=(high-low)/bins,
  kernel_params={"sigma": sigma**2})`` (persim takes the variance) to 1e-10, computed as one
  matrix product per diagram instead of persim's loop over pairs.
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
from scipy.special import ndtr
from sklearn.base import BaseEstimator, TransformerMixin

from . import __version__
from .errors import InputFileError
from .io import atomic_path
from .store import read_diagrams

log = logging.getLogger(__name__)

DATASET_FORMAT = "topoamorph-dataset/1"
AXES = ("birth_death", "birth_persistence")
WEIGHTS = ("none", "linear", "atan")


class _DiagramVectorizer(TransformerMixin, BaseEstimator):
    """Shared grid, axes and normalisation of the diagram vectorisers."""

    def _check(self):
        if self.normalize not in ("per_atom", "none"):
            raise ValueError(f"normalize must be 'per_atom' or 'none', not {self.normalize!r}")
        if self.axes not in AXES:
            raise ValueError(f"axes must be one of {AXES}, not {self.axes!r}")
        lo, hi = self.range
        if not hi > lo:
            raise ValueError(f"range must be increasing, got {self.range}")
        if int(self.bins) < 1:
            raise ValueError(f"bins must be positive, got {self.bins}")

    def fit(self, diagrams=None, y=None, **fit_params):
        self._check()
        lo, hi = self.range
        self.x_edges_ = np.linspace(lo, hi, int(self.bins) + 1)
        if self.axes == "birth_death":
            self.y_edges_ = self.x_edges_
        else:
            plo, phi = self.persistence_range if self.persistence_range is not None else (0.0, hi - lo)
            if not phi > plo:
                raise ValueError(f"persistence_range must be increasing, got {self.persistence_range}")
            self.y_edges_ = np.linspace(plo, phi, int(self.bins) + 1)
        return self

    def _pairs(self, dgm, d) -> np.ndarray:
        pairs = np.asarray(dgm[d], dtype=float).reshape(-1, 2)
        pairs = pairs[np.isfinite(pairs[:, 1])]
        if self.axes == "birth_persistence":
            pairs = np.column_stack([pairs[:, 0], pairs[:, 1] - pairs[:, 0]])
        return pairs

    def _scale(self, diagrams, n_atoms):
        if self.normalize == "per_atom":
            if n_atoms is None:
                raise ValueError("normalize='per_atom' needs n_atoms (atoms in each complex)")
            return 1.0 / np.asarray(n_atoms, dtype=float)
        return np.ones(len(diagrams))

    def transform(self, diagrams, n_atoms=None):
        if not hasattr(self, "x_edges_"):
            self.fit()
        scale = self._scale(diagrams, n_atoms)
        X = np.zeros((len(diagrams), len(self.dims), int(self.bins), int(self.bins)))
        for i, dgm in enumerate(diagrams):
            for c, d in enumerate(self.dims):
                pairs = self._pairs(dgm, d)
                if len(pairs):
                    X[i, c] = self._image(pairs) * scale[i]
        return X

    def out_of_range_fraction(self, diagrams) -> float:
        """Fraction of finite pairs outside the grid (for images: whose centre is outside)."""
        if not hasattr(self, "x_edges_"):
            self.fit()
        total = outside = 0
        for dgm in diagrams:
            for d in self.dims:
                p = self._pairs(dgm, d)
                total += len(p)
                outside += int(np.sum((p[:, 0] < self.x_edges_[0]) | (p[:, 0] > self.x_edges_[-1])
                                      | (p[:, 1] < self.y_edges_[0]) | (p[:, 1] > self.y_edges_[-1])))
        return outside / max(total, 1)

    def get_feature_names_out(self, input_features=None):
        second = "d" if self.axes == "birth_death" else "p"
        return np.array([f"pd{d}_b{i}_{second}{j}" for d in self.dims for i in range(int(self.bins))
                         for j in range(int(self.bins))])


class PersistenceHistogram(_DiagramVectorizer):
    """Normalised 2D persistence histograms, one channel per homology dimension.

    ``transform(diagrams, n_atoms=None)``: ``diagrams`` is a list of ``{dim: (k, 2) array}``;
    ``n_atoms`` (array, one per diagram) is needed for ``normalize="per_atom"``.
    """

    def __init__(self, dims=(0, 1, 2), bins: int = 32, range=(0.0, 8.0), normalize: str = "per_atom",
                 axes: str = "birth_death", persistence_range=None):
        self.dims = dims
        self.bins = bins
        self.range = range
        self.normalize = normalize
        self.axes = axes
        self.persistence_range = persistence_range

    def _image(self, pairs):
        h, _, _ = np.histogram2d(pairs[:, 0], pairs[:, 1], bins=[self.x_edges_, self.y_edges_])
        return h


class PersistenceImage(_DiagramVectorizer):
    """Persistence images: pixel-integrated Gaussians (standard deviation ``sigma``) times a weight.

    The same (dims, bins, range, axes, normalize) grid as ``PersistenceHistogram``; for each pair
    (x, y) the pixel [x_i, x_i+1] x [y_j, y_j+1] receives
    w(pair) (Φ((x_i+1 - x)/σ) - Φ((x_i - x)/σ)) (Φ((y_j+1 - y)/σ) - Φ((y_j - y)/σ)).
    """

    def __init__(self, dims=(0, 1, 2), bins: int = 32, range=(0.0, 8.0), sigma: float = 0.1,
                 weight: str = "none", weight_a: float = 1.0, weight_c: float = 1.0, weight_p: float = 1.0,
                 normalize: str = "per_atom", axes: str = "birth_death", persistence_range=None):
        self.dims = dims
        self.bins = bins
        self.range = range
        self.sigma = sigma
        self.weight = weight
        self.weight_a = weight_a
        self.weight_c = weight_c
        self.weight_p = weight_p
        self.normalize = normalize
        self.axes = axes
        self.persistence_range = persistence_range

    def _check(self):
        super()._check()
        if self.weight not in WEIGHTS:
            raise ValueError(f"weight must be one of {WEIGHTS}, not {self.weight!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")

    def weights(self, birth, persistence) -> np.ndarray:
        """HomCloud's weight functions of (birth, persistence = death - birth)."""
        persistence = np.asarray(persistence, dtype=float)
        if self.weight == "none":
            return np.ones_like(persistence)
        if self.weight == "linear":
            return self.weight_a * persistence
        return np.arctan(self.weight_c * np.abs(persistence) ** self.weight_p)

    def _image(self, pairs):
        x, y = pairs[:, 0], pairs[:, 1]
        pers = y if self.axes == "birth_persistence" else y - x
        w = self.weights(x, pers)
        cx = np.diff(ndtr((self.x_edges_[None, :] - x[:, None]) / self.sigma), axis=1)  # (k, bins)
        cy = np.diff(ndtr((self.y_edges_[None, :] - y[:, None]) / self.sigma), axis=1)
        return (cx * w[:, None]).T @ cy


VECTORIZERS = {"histogram": PersistenceHistogram, "image": PersistenceImage}


def make_vectorizer(params: dict) -> _DiagramVectorizer:
    """The vectoriser a ``descriptors`` config block describes: the keys its class takes (defaults are the
    class's own; a histogram ignores the image-only keys)."""
    kind = params.get("kind", "histogram")
    if kind not in VECTORIZERS:
        raise ValueError(f"unknown descriptors.kind {kind!r}")
    cls = VECTORIZERS[kind]
    kw = {k: params[k] for k in cls._get_param_names() if params.get(k) is not None}
    for k in ("dims", "range", "persistence_range"):
        if k in kw:
            kw[k] = tuple(kw[k])
    return cls(**kw)


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
    vec = make_vectorizer(params).fit()
    n_complex = cols["n_atoms"] * cols["replicas"]
    X = vec.transform(diagrams, n_atoms=n_complex)
    y = cols["energy"] / cols["n_atoms"]
    outside = vec.out_of_range_fraction(diagrams)
    if outside > 0.01:
        log.warning("%.1f%% of finite pairs fall outside descriptors.range %s %s: widen it", 100 * outside,
                    params["range"], units)
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(format=DATASET_FORMAT, version=__version__, kind=params.get("kind", "histogram"),
                       dims=list(params["dims"]), bins=params["bins"], range=list(params["range"]), units=units,
                       axes=vec.axes, y_range=[float(vec.y_edges_[0]), float(vec.y_edges_[-1])],
                       params=json.dumps(params, sort_keys=True),
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
