"""Uncertainty and applicability domain of trained models.

- ``bootstrap_indices``: the resamples of a bootstrap ensemble (ridge and the baselines refit on each).
- ``Calibration``: turns an ensemble's spread and a frame's distance from the training descriptors into a
  predictive standard deviation, σ² = (scale · σ_ensemble)² + floor² + (distance_scale · excess)², with
  excess = max(0, d / d_ref - 1), d the frame's nearest-neighbour distance to the training descriptors and d_ref
  the training frames' median one. Scale and floor are fitted on the validation part by Gaussian maximum
  likelihood; distance_scale on held-out groups of the training part (whole densities, or runs), each
  predicted by the model refitted without it (``fit_distance``): the validation part is drawn like the
  training part, so only held-out groups show how the error grows off the training data. An ensemble's
  spread measures only how much the fit depends on the training sample; the floor carries what no member
  captures (noise of the reference energies, the descriptor's blind spots). ``coverage`` gives the fraction
  of frames whose error lies within 1σ and 2σ (0.68 and 0.95 when calibrated) and the rank correlation of σ
  with |error|.
- ``ApplicabilityDomain``: a frame is out of domain when its density or atom count lies outside the
  training frames' range, or its descriptor lies farther from the training descriptors than the training
  frames themselves do (nearest-neighbour distance in the leading principal components, or distance from
  that subspace, beyond the training set's ``percentile``).
All energies in eV/atom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bootstrap_indices(n: int, size: int, seed: int) -> list[np.ndarray]:
    """``size`` resamples with replacement of ``range(n)``."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, n) for _ in range(int(size))]


def coverage(errors, sigma) -> dict:
    """Fraction of |error| within 1σ and 2σ (ideal 0.683 and 0.954), and whether σ ranks the errors: Spearman's
    rank correlation of σ with |error| (``spearman_sigma_abs_error``; None where σ or the errors are constant or
    fewer than 3 frames: a constant σ ranks nothing, whatever its coverage)."""
    e, s = np.abs(np.asarray(errors, float)), np.asarray(sigma, float)
    if not len(e):
        return {"n": 0, "within_1sigma": None, "within_2sigma": None, "spearman_sigma_abs_error": None}
    return {
        "n": int(len(e)),
        "within_1sigma": float(np.mean(e <= s)),
        "within_2sigma": float(np.mean(e <= 2 * s)),
        "spearman_sigma_abs_error": spearman(s, e),
    }


def spearman(a, b) -> float | None:
    """Spearman's rank correlation, None where it is undefined (fewer than 3 values, or one side constant)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.ptp(a) <= 1e-12 * max(np.abs(a).max(), 1e-300) or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


@dataclass
class Calibration:
    scale: float = 1.0
    floor: float = 0.0  # eV/atom
    fitted_on: str = "none"
    distance_scale: float = 0.0  # eV/atom per unit of excess distance
    distance_reference: float = 0.0  # d_ref, descriptor distance (principal-component space); 0: no distance term
    distance_fitted_on: str = "none"

    @classmethod
    def fit(cls, spread, errors) -> Calibration:
        """Maximum-likelihood (scale, floor) for errors ~ N(0, (scale·spread)² + floor²)."""
        s, r = np.asarray(spread, float), np.asarray(errors, float)
        if len(r) < 2:
            return cls()
        rms = float(np.sqrt(np.mean(r**2))) or 1e-12
        if not np.any(s > 0):
            return cls(scale=0.0, floor=rms, fitted_on="validation")
        from scipy.optimize import minimize

        def nll(p):
            var = (np.exp(p[0]) * s) ** 2 + np.exp(p[1]) ** 2
            return float(np.sum(np.log(var) + r**2 / var))

        s_rms = float(np.sqrt(np.mean(s**2)))
        best = min(
            (
                minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
                for x0 in ([np.log(rms / s_rms), np.log(rms / 10)], [np.log(rms / s_rms / 10), np.log(rms)])
            ),
            key=lambda res: res.fun,
        )
        return cls(scale=float(np.exp(best.x[0])), floor=float(np.exp(best.x[1])), fitted_on="validation")

    def fit_distance(self, distance, errors, reference: float, fitted_on: str) -> Calibration:
        """This calibration with ``distance_scale`` fitted by maximum likelihood to the ``errors`` of frames held
        out of the fit at descriptor ``distance`` from the frames it kept (σ² = floor² + (distance_scale ·
        excess)² there: their ensemble spread belongs to the full model, not to the refit)."""
        from dataclasses import replace

        d, r = np.asarray(distance, float), np.asarray(errors, float)
        ok = np.isfinite(d) & np.isfinite(r)
        d, r = d[ok], r[ok]
        if len(r) < 2 or not reference > 0:
            return replace(self, distance_scale=0.0, distance_reference=0.0, distance_fitted_on="none")
        e = np.maximum(0.0, d / reference - 1.0)
        floor2 = max(self.floor**2, 1e-12)
        if not np.any(e > 0):
            return replace(self, distance_scale=0.0, distance_reference=float(reference), distance_fitted_on=fitted_on)
        from scipy.optimize import minimize_scalar

        def nll(log_b):
            var = floor2 + (np.exp(log_b) * e) ** 2
            return float(np.sum(np.log(var) + r**2 / var))

        rms = float(np.sqrt(np.mean(r**2))) or 1e-6
        res = minimize_scalar(nll, bounds=(np.log(rms) - 25.0, np.log(rms) + 10.0), method="bounded")
        return replace(
            self, distance_scale=float(np.exp(res.x)), distance_reference=float(reference), distance_fitted_on=fitted_on
        )

    def excess(self, distance) -> np.ndarray:
        """max(0, d / d_ref - 1): how much farther from the training descriptors than they are from each other."""
        d = np.asarray(distance, float)
        if not self.distance_reference > 0:
            return np.zeros_like(d)
        return np.maximum(0.0, d / self.distance_reference - 1.0)

    def sigma(self, spread, distance=None) -> np.ndarray:
        """σ (eV/atom) of predictions with ensemble ``spread`` at descriptor ``distance`` (None: no distance term)."""
        var = (self.scale * np.asarray(spread, float)) ** 2 + self.floor**2
        if distance is not None and self.distance_scale > 0:
            var = var + (self.distance_scale * self.excess(distance)) ** 2
        return np.sqrt(var)

    def to_dict(self) -> dict:
        return {
            "scale": self.scale,
            "floor_ev_per_atom": self.floor,
            "fitted_on": self.fitted_on,
            "distance_scale_ev_per_atom": self.distance_scale,
            "distance_reference": self.distance_reference,
            "distance_fitted_on": self.distance_fitted_on,
            "model": "sigma^2 = (scale * ensemble_std)^2 + floor^2 + (distance_scale * max(0, d / "
            "distance_reference - 1))^2, d: nearest training descriptor (domain components)",
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(
            scale=float(d["scale"]),
            floor=float(d["floor_ev_per_atom"]),
            fitted_on=str(d["fitted_on"]),
            distance_scale=float(d.get("distance_scale_ev_per_atom", 0.0)),
            distance_reference=float(d.get("distance_reference", 0.0)),
            distance_fitted_on=str(d.get("distance_fitted_on", "none")),
        )


#: residuals below this fraction of a typical training descriptor's norm (in the components' span) are rounding
#: noise, not distance from the training data
RESIDUAL_NOISE = 1e-8

#: ``ApplicabilityDomain.fit_blocks`` gathers and decomposes exactly up to this many training values (rows x
#: features), and streams a randomized SVD above
EXACT_ELEMENTS = 5 * 10**7


class ApplicabilityDomain:
    """Where a model was trained: density and atom-count ranges, and the training descriptors' neighbourhood.

    ``fit(X, density, n_atoms)``; ``check(X, density, n_atoms)`` returns per-frame ``in_domain``, the
    ``reasons`` a frame is out ('density', 'n_atoms', 'descriptor'), the ``descriptor_distance`` to the nearest
    training frame and the frame's coordinates in the components (``components``). ``X`` may have no columns (models
    without a descriptor: the mean and density baselines).
    """

    def __init__(self, percentile: float = 99.0, components: int = 16, density_margin: float = 0.02):
        self.percentile, self.components, self.density_margin = percentile, components, density_margin

    def fit(self, X, density, n_atoms):

        X = np.asarray(X, float).reshape(len(density), -1)
        self._set_ranges(density, n_atoms)
        self.mean_ = X.mean(axis=0) if X.shape[1] else np.zeros(0)
        if X.shape[1] and len(X) > 2:
            _, sv, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
            k = int(min(self.components, np.sum(sv > 1e-10 * sv[0]) if sv[0] > 0 else 0))
            self.basis_ = vt[:k]
            self.train_ = (X - self.mean_) @ self.basis_.T
            self._set_thresholds(self._residual(X))
        else:
            self.basis_, self.train_ = np.zeros((0, X.shape[1])), np.zeros((len(X), 0))
            self.distance_threshold_ = self.residual_threshold_ = np.inf
            self.reference_distance_ = 0.0
        return self

    def fit_blocks(self, blocks, n_features: int, density, n_atoms, seed: int = 0, power_iterations: int = 2):
        """``fit`` for training descriptors too large to hold: ``blocks()`` yields (positions, rows) of them
        (flattened, float) and is called once per pass. Small sets are gathered and fitted exactly (``fit``);
        large ones get the leading components from a streamed randomized SVD (Halko, Martinsson & Tropp 2011:
        a random range, ``power_iterations`` power passes, then the exact SVD of the projection), 6-8 passes."""
        n = len(density)
        if n * n_features <= EXACT_ELEMENTS:
            X = np.zeros((n, n_features))
            for pos, b in blocks():
                X[pos] = b
            return self.fit(X, density, n_atoms)

        self._set_ranges(density, n_atoms)
        mean = np.zeros(n_features)
        for _, b in blocks():
            mean += b.sum(axis=0)
        self.mean_ = mean / n
        width = min(n, n_features, self.components + 10)
        Y = self._project(blocks, np.random.default_rng(seed).standard_normal((n_features, width)), n)
        for _ in range(power_iterations):
            Z = self._back(blocks, np.linalg.qr(Y)[0])
            Y = self._project(blocks, np.linalg.qr(Z)[0], n)
        Q = np.linalg.qr(Y)[0]
        _, sv, vt = np.linalg.svd(self._back(blocks, Q).T, full_matrices=False)
        k = int(min(self.components, np.sum(sv > 1e-10 * sv[0]) if sv[0] > 0 else 0))
        self.basis_ = vt[:k]
        self.train_, residual = np.zeros((n, k)), np.zeros(n)
        for pos, b in blocks():
            c = b - self.mean_
            self.train_[pos] = c @ self.basis_.T
            residual[pos] = np.linalg.norm(c - self.train_[pos] @ self.basis_, axis=1)
        self._set_thresholds(residual)
        return self

    def _set_ranges(self, density, n_atoms):
        d = np.asarray(density, float)
        self.density_range_ = np.array([d.min(), d.max()])
        self.n_atoms_range_ = np.array([int(np.min(n_atoms)), int(np.max(n_atoms))])

    def _set_thresholds(self, residual):
        """The ``percentile`` of the training frames' nearest-neighbour distances (in the component space) and
        of their residuals off it: beyond either, a frame is out of the domain."""
        from scipy.spatial import cKDTree

        k = self.train_.shape[1]
        nn = cKDTree(self.train_).query(self.train_, k=2)[0][:, 1] if k else np.zeros(len(self.train_))
        self.distance_threshold_ = float(np.percentile(nn, self.percentile))
        self.reference_distance_ = float(np.median(nn)) if len(nn) else 0.0
        # descriptors on the components' span leave residuals of rounding noise only: noise never flags a frame
        scale = float(np.median(np.linalg.norm(self.train_, axis=1))) if k else 0.0
        self.residual_threshold_ = max(float(np.percentile(residual, self.percentile)), RESIDUAL_NOISE * scale)

    def _project(self, blocks, V, n):
        """(X - mean) @ V, streamed."""
        out = np.zeros((n, V.shape[1]))
        for pos, b in blocks():
            out[pos] = (b - self.mean_) @ V
        return out

    def _back(self, blocks, Q):
        """(X - mean).T @ Q, streamed."""
        out = np.zeros((len(self.mean_), Q.shape[1]))
        for pos, b in blocks():
            out += (b - self.mean_).T @ Q[pos]
        return out

    def _residual(self, X, projected=None):
        """Distance of each row from the components' span; ``projected``: its coordinates there, when known."""
        c = X - self.mean_
        p = c @ self.basis_.T if projected is None else projected
        return np.linalg.norm(c - p @ self.basis_, axis=1)

    def check(self, X, density, n_atoms) -> dict:
        from scipy.spatial import cKDTree

        d, n = np.asarray(density, float), np.asarray(n_atoms)
        lo, hi = self.density_range_
        pad = self.density_margin * (hi - lo)
        out_density = (d < lo - pad) | (d > hi + pad)
        out_atoms = (n < self.n_atoms_range_[0]) | (n > self.n_atoms_range_[1])
        distance = np.zeros(len(d))
        out_desc = np.zeros(len(d), bool)
        components = np.zeros((len(d), len(self.basis_)))
        if len(self.basis_) and len(d):
            X = np.asarray(X, float).reshape(len(d), -1)
            components = (X - self.mean_) @ self.basis_.T
            distance = cKDTree(self.train_).query(components, k=1)[0]
            out_desc = (distance > self.distance_threshold_) | (
                self._residual(X, components) > self.residual_threshold_
            )
        reasons = [
            ";".join(r for r, bad in (("density", a), ("n_atoms", b), ("descriptor", c)) if bad)
            for a, b, c in zip(out_density, out_atoms, out_desc)
        ]
        return {
            "in_domain": ~(out_density | out_atoms | out_desc),
            "reasons": reasons,
            "descriptor_distance": distance,
            "components": components,
        }

    # ---- storage: a header dict and arrays (formats.model)
    def to_header(self) -> dict:
        return {
            "percentile": self.percentile,
            "components": self.components,
            "density_margin": self.density_margin,
            "density_range": self.density_range_.tolist(),
            "n_atoms_range": self.n_atoms_range_.tolist(),
            # None: no descriptor check (a model without descriptor); JSON has no infinity
            "distance_threshold": None if np.isinf(self.distance_threshold_) else self.distance_threshold_,
            "residual_threshold": None if np.isinf(self.residual_threshold_) else self.residual_threshold_,
            "reference_distance": self.reference_distance_,
        }

    def to_arrays(self) -> dict:
        return {"domain_mean": self.mean_, "domain_basis": self.basis_, "domain_train": self.train_}

    @classmethod
    def load(cls, header: dict, arrays: dict) -> ApplicabilityDomain:
        ad = cls(header["percentile"], header["components"], header["density_margin"])
        ad.density_range_ = np.asarray(header["density_range"], float)
        ad.n_atoms_range_ = np.asarray(header["n_atoms_range"], int)
        ad.distance_threshold_ = np.inf if header["distance_threshold"] is None else float(header["distance_threshold"])
        ad.residual_threshold_ = np.inf if header["residual_threshold"] is None else float(header["residual_threshold"])
        ad.reference_distance_ = float(header.get("reference_distance") or 0.0)
        ad.mean_, ad.basis_, ad.train_ = arrays["domain_mean"], arrays["domain_basis"], arrays["domain_train"]
        return ad

    def distances_between(self, held, kept) -> np.ndarray:
        """Nearest-neighbour distances (component space) of training frames ``held`` (positions in the training
        set) to the training frames ``kept``: where a held-out group lies from the rest."""
        from scipy.spatial import cKDTree

        if not len(self.basis_) or not len(kept):
            return np.full(len(held), np.nan)
        return cKDTree(self.train_[kept]).query(self.train_[held], k=1)[0]


def select_frames(sigma, coords, n: int, spacing: float, labelled=None) -> np.ndarray:
    """Indices of ``n`` frames to label, most uncertain first, without near-copies: greedily the frame of
    largest σ · min(1, d / ``spacing``), d its distance (``coords``, e.g. the domain's principal components) to
    the frames already picked. A frame closer than ``spacing`` (the training frames' typical nearest-neighbour
    distance) to a picked one counts for that fraction of its σ, so N near-copies of the most uncertain frame
    are not picked while distinct frames of similar σ remain; with ``spacing`` 0 the rule is σ alone.
    ``labelled``: coordinates of frames labelled already, which count as picked."""
    sigma = np.asarray(sigma, float)
    coords = np.asarray(coords, float).reshape(len(sigma), -1)
    n = int(min(n, len(sigma)))
    picked: list[int] = []
    nearest = np.full(len(sigma), np.inf)
    if labelled is not None and len(labelled) and coords.shape[1]:
        from scipy.spatial import cKDTree

        nearest = cKDTree(np.asarray(labelled, float).reshape(len(labelled), -1)).query(coords, k=1)[0]
    available = np.ones(len(sigma), bool)
    for _ in range(n):
        factor = np.ones(len(sigma)) if not spacing > 0 else np.minimum(1.0, nearest / spacing)
        score = np.where(available, sigma * factor, -np.inf)
        # ties (e.g. a constant σ among exact copies) go to the farthest frame, then the first
        k = int(np.lexsort((np.arange(len(sigma)), -np.where(available, nearest, -np.inf), -score))[0])
        picked.append(k)
        available[k] = False
        if coords.shape[1]:
            nearest = np.minimum(nearest, np.linalg.norm(coords - coords[k], axis=1))
        else:
            nearest = np.minimum(nearest, np.where(np.arange(len(sigma)) == k, 0.0, np.inf))
    return np.array(picked, dtype=np.int64)
