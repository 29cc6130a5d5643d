"""Structure descriptors of the baselines every PH model is compared with, on the same split.

Transformers (scikit-learn style) from a list of ASE ``Atoms`` to one feature row per frame:

- ``SOAPAverage``: SOAP power spectrum (dscribe) averaged over the atoms of the cell ("inner"
  average), periodic. ``r_cut`` (Å), ``n_max``, ``l_max``, ``sigma`` (Å, atomic Gaussian width).
- ``RDFHistogram``: neighbours per atom in ``bins`` distance shells up to ``r_max`` (Å), i.e. the
  radial distribution function before its ideal-gas normalisation, so it also carries the density.

The ``structure_features`` stage computes both for every row of a campaign's dataset, aligned by
(source file, frame index), into one file (``topoamorph.formats.features``) that the baseline models read.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .settings import defaults

#: the defaults of the featurisers' parameters: ``train.baselines`` of the campaign defaults
_SOAP, _RDF = defaults()["train"]["baselines"]["soap"], defaults()["train"]["baselines"]["rdf"]


class SOAPAverage(TransformerMixin, BaseEstimator):
    def __init__(self, species=(defaults()["structures"]["element"],), r_cut: float = _SOAP["r_cut"],
                 n_max: int = _SOAP["n_max"], l_max: int = _SOAP["l_max"], sigma: float = _SOAP["sigma"],
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
        check_is_fitted(self, "soap_")
        frames = list(frames)
        if not frames:
            return np.zeros((0, self.soap_.get_number_of_features()))
        X = self.soap_.create(frames, n_jobs=max(1, int(self.n_jobs)))
        return np.asarray(X, dtype=float).reshape(len(frames), -1)


class RDFHistogram(TransformerMixin, BaseEstimator):
    def __init__(self, r_max: float = _RDF["r_max"], bins: int = _RDF["bins"]):
        self.r_max = r_max
        self.bins = bins

    def fit(self, frames=None, y=None):
        if not self.r_max > 0 or int(self.bins) < 1:
            raise ValueError(f"r_max must be positive and bins at least 1 (got {self.r_max}, {self.bins})")
        self.n_features_out_ = int(self.bins)
        return self

    def transform(self, frames):
        from .structure import neighbour_histogram

        check_is_fitted(self, "n_features_out_")
        return np.array([neighbour_histogram(a, self.r_max, int(self.bins))[1] for a in frames],
                        dtype=float).reshape(-1, int(self.bins))


def make_featurizer(kind: str, params: dict, species, n_jobs: int = 1):
    if kind == "soap":
        return SOAPAverage(species=tuple(species), n_jobs=n_jobs, **params)
    if kind == "rdf":
        return RDFHistogram(**params)
    raise ValueError(f"unknown baseline descriptor {kind!r}")
