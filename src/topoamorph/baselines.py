"""Structure descriptors of the baselines every PH model is compared with, on the same split.

Transformers (scikit-learn style) from a list of ASE ``Atoms`` to one feature row per frame:

- ``SOAPAverage``: SOAP power spectrum (dscribe) averaged over the atoms of the cell ("inner"
  average), periodic. ``r_cut`` (Å), ``n_max``, ``l_max``, ``sigma`` (Å, atomic Gaussian width).
- ``RDFHistogram``: neighbours per atom in ``bins`` distance shells up to ``r_max`` (Å), i.e. the
  radial distribution function before its ideal-gas normalisation, so it also carries the density.

``structure_features`` computes both for every row of a campaign's dataset, aligned by (source
file, frame index), into one HDF5 file that the baseline models read.
"""

from __future__ import annotations

import json
import logging
import time

import h5py
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .errors import InputFileError
from .io import atomic_path

log = logging.getLogger(__name__)

FEATURES_FORMAT = "topoamorph-structure-features/1"
KINDS = ("soap", "rdf")


class SOAPAverage(TransformerMixin, BaseEstimator):
    def __init__(self, species=("C",), r_cut: float = 5.0, n_max: int = 8, l_max: int = 6, sigma: float = 0.5,
                 n_jobs: int = 1):
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.n_jobs = n_jobs

    def fit(self, frames=None, y=None):
        from dscribe.descriptors import SOAP

        self.soap_ = SOAP(species=sorted(set(self.species)), r_cut=self.r_cut, n_max=self.n_max, l_max=self.l_max,
                          sigma=self.sigma, periodic=True, average="inner", sparse=False)
        return self

    def transform(self, frames):
        if not hasattr(self, "soap_"):
            self.fit()
        frames = list(frames)
        if not frames:
            return np.zeros((0, self.soap_.get_number_of_features()))
        X = self.soap_.create(frames, n_jobs=max(1, int(self.n_jobs)))
        return np.asarray(X, dtype=float).reshape(len(frames), -1)


class RDFHistogram(TransformerMixin, BaseEstimator):
    def __init__(self, r_max: float = 6.0, bins: int = 60):
        self.r_max = r_max
        self.bins = bins

    def fit(self, frames=None, y=None):
        if not self.r_max > 0 or int(self.bins) < 1:
            raise ValueError(f"r_max must be positive and bins at least 1 (got {self.r_max}, {self.bins})")
        return self

    def transform(self, frames):
        from .structure import neighbour_histogram

        return np.array([neighbour_histogram(a, self.r_max, int(self.bins))[1] for a in frames],
                        dtype=float).reshape(-1, int(self.bins))


def make_featurizer(kind: str, params: dict, species=("C",), n_jobs: int = 1):
    if kind == "soap":
        return SOAPAverage(species=tuple(species), n_jobs=n_jobs, **params)
    if kind == "rdf":
        return RDFHistogram(**params)
    raise ValueError(f"unknown baseline descriptor {kind!r}")


def frames_of(meta: dict) -> list:
    """The ``Atoms`` of every dataset row, read from the row's source file at its frame index."""
    from ase.io import iread

    sources = [str(s) for s in meta["source"]]
    index = np.asarray(meta["index"], dtype=np.int64)
    out: list = [None] * len(sources)
    wanted: dict[str, dict[int, list[int]]] = {}
    for row, (src, i) in enumerate(zip(sources, index)):
        wanted.setdefault(src, {}).setdefault(int(i), []).append(row)
    for src, rows_of in wanted.items():
        try:
            for i, atoms in enumerate(iread(src, index=":", format="extxyz")):
                for row in rows_of.get(i, ()):
                    out[row] = atoms
        except (OSError, ValueError, StopIteration) as exc:
            raise InputFileError(src, f"cannot read frames for the baseline descriptors ({exc})") from None
        missing = [i for i in rows_of if out[rows_of[i][0]] is None]
        if missing:
            raise InputFileError(src, f"frame {missing[0]} of the dataset is not in the file (it has fewer frames)")
    return out


def structure_features(dataset: str, params: dict, species, output: str, n_jobs: int = 1,
                       provenance: dict | None = None) -> dict:
    """SOAP and RDF features of every dataset row, in the dataset's row order."""
    from .descriptors import Dataset

    with Dataset(dataset) as ds:
        meta = {k: v.copy() for k, v in ds.meta.items()}
    frames = frames_of(meta)
    feats = {}
    for kind in KINDS:
        t0 = time.perf_counter()
        feats[kind] = make_featurizer(kind, params.get(kind, {}), species, n_jobs).fit().transform(frames)
        log.info("%s: %d frames x %d features in %.1f s", kind, *feats[kind].shape, time.perf_counter() - t0)
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(format=FEATURES_FORMAT, params=json.dumps(params, sort_keys=True),
                       species=json.dumps(sorted(set(species))), provenance=json.dumps(provenance or {}, sort_keys=True))
        for kind, X in feats.items():
            h.create_dataset(kind, data=X, compression="gzip")
        h.create_dataset("source", data=[str(s) for s in meta["source"]], dtype=h5py.string_dtype())
        h.create_dataset("index", data=np.asarray(meta["index"], dtype=np.int64))
    return {k: list(v.shape) for k, v in feats.items()}


def read_features(path, meta: dict) -> dict:
    """The feature matrices of ``path``, checked to be aligned with the dataset rows in ``meta``."""
    try:
        with h5py.File(path, "r") as h:
            if h.attrs.get("format") != FEATURES_FORMAT:
                raise InputFileError(path, "not a topoamorph structure-features file")
            out = {k: h[k][()] for k in KINDS}
            src = [s.decode() if isinstance(s, bytes) else str(s) for s in h["source"][()]]
            idx = h["index"][()]
    except InputFileError:
        raise
    except (OSError, KeyError) as exc:
        raise InputFileError(path, f"unreadable structure-features file ({type(exc).__name__}: {exc})") from None
    if src != [str(s) for s in meta["source"]] or not np.array_equal(idx, np.asarray(meta["index"])):
        raise InputFileError(path, "rows do not match the dataset's frames: rebuild it (delete it and rerun)")
    for k, X in out.items():
        if len(X) != len(src) or not np.all(np.isfinite(X)):
            raise InputFileError(path, f"{k} features are truncated or not finite")
    return out
