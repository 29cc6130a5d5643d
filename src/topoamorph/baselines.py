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
_ELEMENT = defaults()["structures"]["element"]


class SOAPAverage(TransformerMixin, BaseEstimator):
    def __init__(
        self,
        species=(_ELEMENT,),
        r_cut: float = _SOAP["r_cut"],
        n_max: int = _SOAP["n_max"],
        l_max: int = _SOAP["l_max"],
        sigma: float = _SOAP["sigma"],
        n_jobs: int = 1,
    ):
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.n_jobs = n_jobs

    def fit(self, frames=None, y=None):
        from dscribe.descriptors import SOAP

        self.soap_ = SOAP(
            species=sorted(set(self.species)),
            r_cut=self.r_cut,
            n_max=self.n_max,
            l_max=self.l_max,
            sigma=self.sigma,
            periodic=True,
            average="inner",
            sparse=False,
        )
        return self

    def transform(self, frames):
        check_is_fitted(self, "soap_")
        frames = list(frames)
        if not frames:
            return np.zeros((0, self.soap_.get_number_of_features()))
        X = self.soap_.create(frames, n_jobs=max(1, int(self.n_jobs)))
        return np.asarray(X, dtype=float).reshape(len(frames), -1)


class RDFHistogram(TransformerMixin, BaseEstimator):
    def __init__(self, r_max: float = _RDF["r_max"], bins: int = _RDF["bins"], n_jobs: int = 1):
        self.r_max = r_max
        self.bins = bins
        self.n_jobs = n_jobs

    def fit(self, frames=None, y=None):
        if not self.r_max > 0 or int(self.bins) < 1:
            raise ValueError(f"r_max must be positive and bins at least 1 (got {self.r_max}, {self.bins})")
        self.n_features_out_ = int(self.bins)
        return self

    def transform(self, frames):
        check_is_fitted(self, "n_features_out_")
        frames = list(frames)
        jobs = max(1, min(int(self.n_jobs), len(frames)))
        if jobs == 1:
            rows = _histograms(frames, self.r_max, int(self.bins))
        else:  # frames in contiguous chunks, one process each (joblib, as dscribe does for SOAP)
            from joblib import Parallel, delayed

            chunks = np.array_split(np.arange(len(frames)), jobs)
            parts = Parallel(n_jobs=jobs)(
                delayed(_histograms)([frames[i] for i in c], self.r_max, int(self.bins)) for c in chunks
            )
            rows = [r for part in parts for r in part]
        return np.array(rows, dtype=float).reshape(-1, int(self.bins))


def _histograms(frames, r_max: float, bins: int) -> list:
    from .structure import neighbour_histogram

    return [neighbour_histogram(a, r_max, bins)[1] for a in frames]


def make_featurizer(kind: str, params: dict, species, n_jobs: int = 1):
    if kind == "soap":
        return SOAPAverage(species=tuple(species), n_jobs=n_jobs, **params)
    if kind == "rdf":
        return RDFHistogram(n_jobs=n_jobs, **params)
    raise ValueError(f"unknown baseline descriptor {kind!r}")
