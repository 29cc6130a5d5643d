"""Descriptors: vectorisers of persistence diagrams (scikit-learn transformers) and the dataset file.

Both vectorisers are scikit-learn transformers of a list of ``PersistenceResult`` (what
``topoamorph.homology.compute(atoms)`` returns: diagrams with their atom count and replication), so
``make_pipeline(PersistenceImage(), Ridge()).fit([compute(a) for a in frames], y)`` works as it is.
``transform`` returns the flattened images (n_frames, len(dims) * bins * bins; names from
``get_feature_names_out``), ``images`` the same as (n_frames, len(dims), bins, bins): one channel per
homology dimension, axis 1 of each
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

import numpy as np
from scipy.special import ndtr
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .settings import defaults

AXES = ("birth_death", "birth_persistence")
WEIGHTS = ("none", "linear", "atan")
NORMALIZE = ("per_atom", "none")
#: the defaults of every vectoriser parameter: the ``descriptors`` block of the campaign defaults
_D = defaults()["descriptors"]


class _DiagramVectorizer(TransformerMixin, BaseEstimator):
    """Shared grid, axes and normalisation of the diagram vectorisers."""

    def _check(self):
        """Every parameter check, in one place (called by ``fit``)."""
        if self.normalize not in NORMALIZE:
            raise ValueError(f"normalize must be 'per_atom' or 'none', not {self.normalize!r}")
        if self.axes not in AXES:
            raise ValueError(f"axes must be one of {AXES}, not {self.axes!r}")
        lo, hi = self.range
        if not hi > lo:
            raise ValueError(f"range must be increasing, got {self.range}")
        if int(self.bins) < 1:
            raise ValueError(f"bins must be positive, got {self.bins}")

    def fit(self, X=None, y=None):
        """Check the parameters and lay out the grid (the data are not needed: the grid is fixed)."""
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
        self.n_features_out_ = len(self.dims) * int(self.bins) ** 2
        return self

    def _pairs(self, dgm, d) -> np.ndarray:
        pairs = np.asarray(dgm[d], dtype=float).reshape(-1, 2)
        pairs = pairs[np.isfinite(pairs[:, 1])]
        if self.axes == "birth_persistence":
            pairs = np.column_stack([pairs[:, 0], pairs[:, 1] - pairs[:, 0]])
        return pairs

    def _scale(self, X) -> np.ndarray:
        if self.normalize == "none":
            return np.ones(len(X))
        n = [getattr(r, "n_complex", None) for r in X]
        if any(v is None for v in n):
            raise ValueError(
                "normalize='per_atom' needs n_atoms (atoms in each complex): pass PersistenceResult "
                "objects (topoamorph.homology.compute) rather than bare diagrams"
            )
        return 1.0 / np.asarray(n, dtype=float)

    def images(self, X) -> np.ndarray:
        """(n_frames, len(dims), bins, bins) images of a list of ``PersistenceResult``."""
        check_is_fitted(self, "x_edges_")
        X = list(X)
        scale = self._scale(X)
        out = np.zeros((len(X), len(self.dims), int(self.bins), int(self.bins)))
        for i, res in enumerate(X):
            for c, d in enumerate(self.dims):
                pairs = self._pairs(res, d)
                if len(pairs):
                    out[i, c] = self._image(pairs) * scale[i]
        return out

    def transform(self, X) -> np.ndarray:
        """Flattened images (n_frames, n_features): the scikit-learn view of ``images``."""
        img = self.images(X)
        return img.reshape(len(img), -1)

    def out_of_range_fraction(self, X) -> float:
        """Fraction of finite pairs outside the grid (for images: whose centre is outside)."""
        outside, total = self.out_of_range_counts(X)
        return outside / max(total, 1)

    def out_of_range_counts(self, X) -> tuple[int, int]:
        """Finite pairs outside the grid, and all finite pairs, of a list of diagrams."""
        check_is_fitted(self, "x_edges_")
        diagrams = X
        total = outside = 0
        for dgm in diagrams:
            for d in self.dims:
                p = self._pairs(dgm, d)
                total += len(p)
                outside += int(
                    np.sum(
                        (p[:, 0] < self.x_edges_[0])
                        | (p[:, 0] > self.x_edges_[-1])
                        | (p[:, 1] < self.y_edges_[0])
                        | (p[:, 1] > self.y_edges_[-1])
                    )
                )
        return outside, total

    def get_feature_names_out(self, input_features=None):
        second = "d" if self.axes == "birth_death" else "p"
        return np.array(
            [f"pd{d}_b{i}_{second}{j}" for d in self.dims for i in range(int(self.bins)) for j in range(int(self.bins))]
        )


class PersistenceHistogram(_DiagramVectorizer):
    """Normalised 2D persistence histograms, one channel per homology dimension.

    ``transform(X)``: ``X`` is a list of ``PersistenceResult`` (or, with ``normalize="none"``, of bare
    ``{dim: (k, 2) array}`` diagrams).
    """

    def __init__(
        self,
        dims=tuple(_D["dims"]),
        bins: int = _D["bins"],
        range=tuple(_D["range"]),
        normalize: str = _D["normalize"],
        axes: str = _D["axes"],
        persistence_range=None,
    ):
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

    def __init__(
        self,
        dims=tuple(_D["dims"]),
        bins: int = _D["bins"],
        range=tuple(_D["range"]),
        sigma: float = _D["sigma"],
        weight: str = _D["weight"],
        weight_a: float = _D["weight_a"],
        weight_c: float = _D["weight_c"],
        weight_p: float = _D["weight_p"],
        normalize: str = _D["normalize"],
        axes: str = _D["axes"],
        persistence_range=None,
    ):
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

    # -- pairs back to the image: per-pair values and derivatives (topoamorph.inverse, explain, forces)
    def _weight_derivative(self, pers) -> np.ndarray:
        """dw/d(persistence)."""
        pers = np.asarray(pers, dtype=float)
        if self.weight == "none":
            return np.zeros_like(pers)
        if self.weight == "linear":
            return np.full_like(pers, float(self.weight_a))
        c, q = float(self.weight_c), float(self.weight_p)
        a = np.abs(pers)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = c * q * np.where(a > 0, a ** (q - 1.0), 0.0 if q > 1 else np.inf) * np.sign(pers)
        return d / (1.0 + (c * a**q) ** 2)

    def pair_terms(self, pairs, G):
        """For finite (birth, death) ``pairs`` (k, 2) of one channel and pixel weights ``G`` (bins, bins):
        each pair's Σ G · (its image) (k,) and the derivative of that with respect to its birth and death
        (k, 2). The image of a diagram is the sum of its pairs' images (times the per-atom scale), so a
        linear model's prediction splits exactly over pairs, and its derivative follows each pair."""
        check_is_fitted(self, "x_edges_")
        pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
        b, d = pairs[:, 0], pairs[:, 1]
        x, y = (b, d) if self.axes == "birth_death" else (b, d - b)
        pers = d - b
        w, dw = self.weights(b, pers), self._weight_derivative(pers)
        s = float(self.sigma)
        ux, uy = (self.x_edges_[None, :] - x[:, None]) / s, (self.y_edges_[None, :] - y[:, None]) / s
        cx, cy = np.diff(ndtr(ux), axis=1), np.diff(ndtr(uy), axis=1)
        pdf = lambda u: np.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi)  # noqa: E731
        dcx, dcy = -np.diff(pdf(ux), axis=1) / s, -np.diff(pdf(uy), axis=1) / s
        G = np.asarray(G, dtype=float)
        core = np.einsum("ki,ij,kj->k", cx, G, cy)
        d_x = w * np.einsum("ki,ij,kj->k", dcx, G, cy)
        d_y = w * np.einsum("ki,ij,kj->k", cx, G, dcy)
        # w depends on the persistence d - b; x = b; y = d (birth_death) or d - b (birth_persistence)
        if self.axes == "birth_death":
            d_b, d_d = d_x - dw * core, d_y + dw * core
        else:
            d_b, d_d = d_x - d_y - dw * core, d_y + dw * core
        return w * core, np.column_stack([d_b, d_d])

    def continuous(self) -> bool:
        """Whether the image, as a function of the diagram, is continuous when pairs appear or vanish at
        the diagonal: only weights that vanish there (``linear``; ``atan``) make it so."""
        return self.weight in ("linear", "atan")


VECTORIZERS = {"histogram": PersistenceHistogram, "image": PersistenceImage}


def make_vectorizer(params: dict) -> _DiagramVectorizer:
    """The vectoriser a ``descriptors`` config block describes (``kind`` picks the class; keys the class does
    not take, e.g. a histogram's image-only keys, are ignored; absent keys take the defaults)."""
    params = {**_D, **params}
    kind = params["kind"]
    if kind not in VECTORIZERS:
        raise ValueError(f"unknown descriptors.kind {kind!r}")
    cls = VECTORIZERS[kind]
    kw = {k: params[k] for k in cls._get_param_names() if params.get(k) is not None}
    for k in ("dims", "range", "persistence_range"):
        if k in kw:
            kw[k] = tuple(kw[k])
    return cls(**kw)


def kind_of(vectorizer) -> str:
    """The ``descriptors.kind`` of a vectoriser."""
    return next(k for k, cls in VECTORIZERS.items() if type(vectorizer) is cls)
