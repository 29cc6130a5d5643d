"""Models predicting energy per atom (eV/atom) from descriptors, evaluated on one shared split.

- ``split``: train/test indices, by frame (random, the paper's choice) or by run (whole trajectories).
- ``RidgeModel``: ridge regression, regularisation chosen by k-fold cross-validation.
- ``CNNModel``: a small convolutional network on the histogram images (PyTorch; CUDA with mixed
  precision when available, else CPU, deterministic there).
- Baselines on the same split: ``mean`` (the training mean), ``density`` (a cubic polynomial of the
  mass density, ridge): a PH model is only worth something if it beats what density alone explains;
  and ``soap`` / ``rdf`` (``ScaledRidge`` on the structure descriptors of ``baselines``).
Errors are reported in meV/atom.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from .formats.dataset import row_source
from .settings import SplitSettings, defaults
from .units import ev_to_mev

log = logging.getLogger(__name__)
#: the CNN's shuffle buffer (bytes of float32 rows; whole training sets below it are permuted as one) and the rows
#: per block when predicting: what bounds its memory, whatever the number of frames
BUFFER_BYTES = 2**28
PREDICT_ROWS = 512
#: ridge with ``solver: auto`` works on the Gram matrix above this many training values (rows x features)
GRAM_ELEMENTS = 5 * 10**7
#: the defaults of the models' parameters: ``train.ridge`` and ``train.cnn`` of the campaign defaults
_RIDGE, _CNN = defaults()["train"]["ridge"], defaults()["train"]["cnn"]


# ---------------------------------------------------------------- split and metrics
def _pick(rng, candidates, groups, fraction):
    """A random ``fraction`` of ``candidates``: whole groups when ``groups`` is given, else single frames."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if groups is None:
        n_pick = max(1, int(round(fraction * len(candidates))))
        return np.sort(rng.permutation(candidates)[:n_pick])
    uniq = sorted({groups[i] for i in candidates})
    n_pick = max(1, int(round(fraction * len(uniq))))
    chosen = set(rng.permutation(uniq)[:n_pick].tolist())
    return np.array([i for i in candidates if groups[i] in chosen], dtype=np.int64)


def split(meta: dict, settings: SplitSettings, seed: int) -> dict:
    """Train/validation/test indices: random frames (``frame``), whole runs/files (``run``), or the
    frames of ``test_source`` (``source``: imported train and test files) as test.

    The validation part (``validation_fraction`` of what is not test, picked the same way; random
    frames for ``source``) is held out of every model's fit: the CNN stops early on it, and every
    model reports its error there.
    """
    by, test_fraction, validation_fraction = settings.by, settings.test_fraction, settings.validation_fraction
    test_source = settings.test_source
    n = len(meta["energy"])
    rng = np.random.default_rng(seed)
    groups = [str(s) for s in meta["source"]] if by == "run" else None
    if by == "density":
        dens = np.asarray(meta["density"], float)
        test = np.nonzero(settings.held_out(dens))[0]
        if len(test) == 0 or len(test) == n:
            raise ValueError(
                f"train.split.test_densities {list(settings.test_densities)} select "
                f"{'no' if len(test) == 0 else 'every'} frame (densities present: "
                f"{sorted({round(float(x), 3) for x in dens})})"
            )
    elif by == "source":
        sources = [str(s) for s in meta["source"]]
        test = np.array([i for i, s in enumerate(sources) if s == str(test_source)], dtype=np.int64)
        if len(test) == 0:
            raise ValueError(f"no frame of the dataset comes from the test file {test_source}")
    elif by in ("frame", "run"):
        test = _pick(rng, np.arange(n), groups, test_fraction)
    else:
        raise ValueError(f"unknown split kind {by!r}")
    rest = np.setdiff1d(np.arange(n), test)
    validation = np.zeros(0, dtype=np.int64)
    if validation_fraction > 0 and len(rest) > 2:
        if groups is not None and len({groups[i] for i in rest}) < 2:
            groups = None  # one run left: validation frames come from it
        validation = _pick(rng, rest, groups, validation_fraction)
    train = np.setdiff1d(rest, validation)
    if len(train) < 2:
        raise ValueError(
            f"only {len(train)} training frames after the split: lower train.split.test_fraction "
            "or train.split.validation_fraction"
        )
    out = {
        "train": train.tolist(),
        "validation": validation.tolist(),
        "test": test.tolist(),
        "by": by,
        "seed": int(seed),
        "test_fraction": float(test_fraction) if by in ("frame", "run") else len(test) / n,
        "validation_fraction": float(validation_fraction),
    }
    if by == "density":
        out["test_densities"] = list(settings.test_densities)
    return out


def errors(y_true, y_pred) -> dict:
    d = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return {
        "mae_mev_per_atom": float(ev_to_mev(np.mean(np.abs(d)))) if len(d) else None,
        "rmse_mev_per_atom": float(ev_to_mev(np.sqrt(np.mean(d**2)))) if len(d) else None,
        "n": int(len(d)),
    }


def per_density(y_true, y_pred, density) -> dict:
    out = {}
    labels = np.round(np.asarray(density, float), 1)
    for lab in np.unique(labels):
        m = labels == lab
        out[f"{lab:.1f}"] = errors(np.asarray(y_true)[m], np.asarray(y_pred)[m])
    return out


def report_metrics(name, y, pred, density, parts: dict, hyper: dict, provenance: dict) -> dict:
    """``parts``: {"train": idx, "validation": idx, "test": idx}."""
    out = {
        "model": name,
        "target": "energy per atom (eV/atom)",
        "error_units": "meV/atom",
        "hyperparameters": hyper,
        "provenance": provenance,
    }
    by_density = {}
    for part, idx in parts.items():
        idx = np.asarray(idx, dtype=np.int64)
        out[part] = errors(y[idx], pred[idx])
        if len(idx):
            by_density[part] = per_density(y[idx], pred[idx], density[idx])
    out["per_density"] = by_density
    return out


# ---------------------------------------------------------------- ridge
def _ridge_svd(X, y):
    """Centred SVD of a training set: everything needed for ridge predictions at any alpha."""
    xm, ym = X.mean(axis=0), y.mean()
    U, sv, Vt = np.linalg.svd(X - xm, full_matrices=False)
    return xm, ym, U, sv, Vt, U.T @ (y - ym)


def _ridge_coef(svd, alpha):
    xm, ym, U, sv, Vt, uty = svd
    coef = Vt.T @ (sv / (sv**2 + alpha) * uty)
    return coef, ym - xm @ coef


class RidgeModel:
    """Ridge regression on flattened descriptors, the regularisation picked by cross-validation.

    ``solver: primal`` (below ``GRAM_ELEMENTS`` training values with ``auto``): the SVD of the centred training
    matrix, so a whole grid of alphas costs one decomposition per fold of shuffled k-fold CV, exact when
    features outnumber frames or columns are empty. ``solver: gram`` (large image datasets, e.g. 13,000 frames of
    128 x 128 x 3 images): the frames' Gram matrix streamed from the dataset file block by block, one
    eigendecomposition of it, and efficient leave-one-out CV over the alpha grid (as scikit-learn's RidgeCV
    does when features outnumber samples); then the coefficients in one more pass. Same model either way.
    """

    def __init__(
        self,
        alpha_min=_RIDGE["alpha_min"],
        alpha_max=_RIDGE["alpha_max"],
        n_alphas=_RIDGE["n_alphas"],
        cv_folds=_RIDGE["cv_folds"],
        solver=_RIDGE["solver"],
        seed=0,
    ):
        self.alpha_min, self.alpha_max, self.n_alphas, self.cv_folds, self.solver, self.seed = (
            alpha_min,
            alpha_max,
            n_alphas,
            cv_folds,
            solver,
            seed,
        )

    def alphas(self) -> np.ndarray:
        return np.logspace(np.log10(self.alpha_min), np.log10(self.alpha_max), self.n_alphas)

    def uses_gram(self, n_rows: int, n_features: int) -> bool:
        if self.solver not in ("auto", "primal", "gram"):
            raise ValueError(f"train.ridge.solver must be auto, primal or gram, not {self.solver!r}")
        return self.solver == "gram" or (self.solver == "auto" and n_rows * n_features > GRAM_ELEMENTS)

    def fit_gram(self, G, y):
        """Fit from the (uncentred) Gram matrix ``G`` of the training rows: sets ``alpha_``, the dual weights
        ``weights_`` (coef = X_train.T @ weights_) and ``intercept_offset_`` (intercept = that minus
        ``mean_x @ coef``, i.e. ``ȳ - mean(G @ weights_)``); ``coef_``/``intercept_`` once ``set_coef`` is called."""
        y = np.asarray(y, dtype=float)
        alphas = self.alphas()
        lam, Q, yc_q, ym = _gram_eigh(G, y)
        n = len(y)
        loo = np.zeros(len(alphas))
        Q2 = Q**2
        for j, a in enumerate(alphas):
            f = lam / (lam + a)
            fitted = Q @ (f * yc_q)
            h = 1.0 / n + Q2 @ f
            loo[j] = np.mean(((y - ym - fitted) / np.maximum(1.0 - h, 1e-12)) ** 2)
        self.cv_rmse_, self.alphas_, self.cv_folds_used_ = np.sqrt(loo), alphas, "leave-one-out"
        self.alpha_ = float(alphas[int(np.argmin(loo))])
        self.weights_ = Q @ (yc_q / (lam + self.alpha_))
        self.intercept_offset_ = ym - float(np.mean(G @ self.weights_))
        self._log_choice("leave-one-out")
        return self

    def set_coef(self, coef):
        """The coefficients X_train.T @ weights_ (computed in a pass over the dataset) after ``fit_gram``."""
        self.coef_ = np.asarray(coef, dtype=float)
        self.intercept_ = self.intercept_offset_
        return self

    def _log_choice(self, how):
        alphas = self.alphas_
        at_edge = self.alpha_ in (alphas[0], alphas[-1])
        log.info(
            "ridge: alpha=%.3g chosen by %s CV (CV RMSE %.2f meV/atom)%s",
            self.alpha_,
            how,
            1000 * self.cv_rmse_.min(),
            " - at the edge of the grid: widen train.ridge.alpha_min/alpha_max" if at_edge else "",
        )

    def fit(self, X, y):
        X = np.asarray(X, dtype=float).reshape(len(X), -1)
        y = np.asarray(y, dtype=float)
        alphas = self.alphas()
        folds = max(2, min(self.cv_folds, len(y)))
        if folds != self.cv_folds:
            log.warning(
                "ridge: %d cross-validation folds asked for %d training frames: using %d", self.cv_folds, len(y), folds
            )
        self.cv_folds_used_ = folds
        fold_of = np.random.default_rng(self.seed).permutation(len(y)) % folds
        sq = np.zeros(len(alphas))
        for k in range(folds):
            tr, va = fold_of != k, fold_of == k
            svd = _ridge_svd(X[tr], y[tr])
            for j, a in enumerate(alphas):
                coef, b = _ridge_coef(svd, a)
                sq[j] += np.sum((X[va] @ coef + b - y[va]) ** 2)
        self.cv_rmse_ = np.sqrt(sq / len(y))
        self.alphas_ = alphas
        self.alpha_ = float(alphas[int(np.argmin(sq))])
        self.coef_, self.intercept_ = _ridge_coef(_ridge_svd(X, y), self.alpha_)
        self._log_choice(f"{folds}-fold")
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float).reshape(len(X), -1) @ self.coef_ + self.intercept_


class ScaledRidge:
    """Features standardised on the training rows (constant columns left at zero), then ``RidgeModel``:
    the regressor of the structure-descriptor baselines (SOAP, RDF)."""

    def __init__(self, seed=0, **ridge):
        self.seed, self.ridge = seed, ridge

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.ridge_ = RidgeModel(**self.ridge, seed=self.seed).fit((X - self.mean_) / self.scale_, y)
        return self

    def predict(self, X):
        return self.ridge_.predict((np.asarray(X, dtype=float) - self.mean_) / self.scale_)


def ridge_members(X, y, alpha: float, resamples) -> tuple[np.ndarray, np.ndarray]:
    """Ridge refits at a fixed ``alpha`` on each resample of the rows (a bootstrap ensemble):
    coefficients (n_resamples, n_features) and intercepts (n_resamples,)."""
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    y = np.asarray(y, dtype=float)
    coefs, icpts = [], []
    for rows in resamples:
        coef, b = _ridge_coef(_ridge_svd(X[rows], y[rows]), alpha)
        coefs.append(coef)
        icpts.append(b)
    return np.array(coefs).reshape(len(coefs), X.shape[1]), np.array(icpts, dtype=float)


def _gram_eigh(G, y):
    """Eigendecomposition of the centred Gram matrix, and the centred targets in its eigenbasis."""
    from scipy.linalg import eigh

    y = np.asarray(y, dtype=float)
    ym = float(y.mean())
    m = G.mean(axis=0)
    Kc = G - m[None, :] - m[:, None] + m.mean()
    lam, Q = eigh(Kc, overwrite_a=True, check_finite=False)
    lam = np.maximum(lam, 0.0)  # a Gram matrix is positive semi-definite: negative values are rounding
    return lam, Q, Q.T @ (y - ym), ym


def gram_matrix(X, rows, block_rows: int = 1024) -> np.ndarray:
    """G[i, j] = x_rows[i] . x_rows[j] (float64) of flattened rows of ``X`` (an array or a dataset file), streamed
    in blocks of ``block_rows``: memory holds G and two blocks."""
    src, rows = row_source(X), np.asarray(rows, dtype=np.int64)
    G = np.zeros((len(rows), len(rows)))
    groups = [np.arange(i, min(i + block_rows, len(rows))) for i in range(0, len(rows), block_rows)]

    def read(pos):
        out = np.zeros((len(pos), int(np.prod(src.X.shape[1:]))))
        for p, b in src.blocks(rows[pos], block_rows):
            out[p] = b.reshape(len(b), -1)
        return out

    for i, gi in enumerate(groups):
        A = read(gi)
        for gj in groups[:i]:
            Gij = A @ read(gj).T
            G[np.ix_(gi, gj)] = Gij
            G[np.ix_(gj, gi)] = Gij.T
        G[np.ix_(gi, gi)] = A @ A.T
    return G


def gram_members(G, y, alpha: float, resamples) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap refits at ``alpha`` from the Gram matrix of the training rows: dual weights per training row
    (n_resamples, n_train; coef = weights @ X_train) and intercept offsets (intercept = offset, since the
    weights already carry the resample's mean)."""
    from scipy.linalg import cho_factor, cho_solve

    y = np.asarray(y, dtype=float)
    W, offsets = [], []
    for rows in resamples:
        rows = np.asarray(rows, dtype=np.int64)
        Gb = G[np.ix_(rows, rows)]
        m = Gb.mean(axis=0)
        Gb -= m[None, :]
        Gb -= m[:, None]
        Gb += m.mean()
        Gb[np.diag_indices_from(Gb)] += alpha
        yb = y[rows]
        a = cho_solve(cho_factor(Gb, overwrite_a=True, check_finite=False), yb - yb.mean(), check_finite=False)
        w = np.bincount(rows, weights=a, minlength=len(y))
        counts = np.bincount(rows, minlength=len(y)) / len(rows)
        W.append(w)
        offsets.append(float(yb.mean() - counts @ (G @ w)))
    return np.array(W).reshape(len(W), len(y)), np.array(offsets, dtype=float)


def weighted_rows(X, rows, W, block_rows: int = 1024) -> np.ndarray:
    """W @ X[rows] (flattened), streamed: the coefficients of dual weights ``W`` (k, len(rows))."""
    src = row_source(X)
    out = np.zeros((len(W), int(np.prod(src.X.shape[1:]))))
    for pos, b in src.blocks(np.asarray(rows, dtype=np.int64), block_rows):
        out += W[:, pos] @ b.reshape(len(b), -1).astype(float)
    return out


def density_features(density) -> np.ndarray:
    """(ρ, ρ², ρ³) of the mass density (g/cm³): the density baseline's features."""
    d = np.asarray(density, dtype=float).reshape(-1)
    return np.column_stack([d, d**2, d**3])


class DensityBaseline:
    """Ridge on the standardised (ρ, ρ², ρ³) of the mass density: what density alone explains. After
    ``fit``: ``mean_``, ``scale_`` (the standardisation), ``coef_``, ``intercept_``, ``alpha_``."""

    def fit(self, density, y):
        from sklearn.linear_model import RidgeCV

        Z = density_features(density)
        self.mean_ = Z.mean(axis=0)
        sd = Z.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        r = RidgeCV(alphas=np.logspace(-6, 2, 9)).fit((Z - self.mean_) / self.scale_, y)
        self.coef_, self.intercept_, self.alpha_ = np.asarray(r.coef_, float), float(r.intercept_), float(r.alpha_)
        return self

    def predict(self, density):
        return ((density_features(density) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_


# ------------------------------------------ held-out groups (σ's distance term)
#: at most this many groups are held out (each costs a refit; at paper scale an eigendecomposition of the
#: training Gram matrix): more training densities than this are held out as this many contiguous ranges
SHIFT_BINS = 5


def shift_groups(meta, tr) -> tuple[str, list[np.ndarray]]:
    """The groups of the train part that are held out in turn to calibrate σ off the training data: whole
    densities when there are 3 or more (up to ``SHIFT_BINS`` contiguous ranges of them), else whole runs (source
    files) when there are 3 or more; positions into ``tr``, with what they are."""
    dens = np.round(np.asarray(meta["density"], float)[tr], 3)
    levels = np.unique(dens)
    if len(levels) >= 3:
        return "density", [
            np.nonzero(np.isin(dens, chunk))[0] for chunk in np.array_split(levels, min(len(levels), SHIFT_BINS))
        ]
    src = np.array([str(s) for s in np.asarray(meta["source"])[tr]])
    if len(np.unique(src)) >= 3:
        return "run", [np.nonzero(src == s)[0] for s in np.unique(src)]
    return "none", []


def group_residuals_primal(Z, y, alpha: float, groups) -> list[np.ndarray]:
    """Ridge at ``alpha`` refitted without each group of rows of ``Z`` (the training rows, flattened), the
    group's residuals (prediction - y)."""
    Z, y = np.asarray(Z, float).reshape(len(y), -1), np.asarray(y, float)
    out = []
    for g in groups:
        keep = np.setdiff1d(np.arange(len(y)), g)
        coef, b = _ridge_coef(_ridge_svd(Z[keep], y[keep]), alpha)
        out.append(Z[g] @ coef + b - y[g])
    return out


def group_residuals_gram(G, y, alpha: float, groups) -> list[np.ndarray]:
    """``group_residuals_primal`` from the training rows' Gram matrix (dual form: no pass over the dataset)."""
    y = np.asarray(y, float)
    out = []
    for g in groups:
        keep = np.setdiff1d(np.arange(len(y)), g)
        lam, Q, yc_q, ym = _gram_eigh(G[np.ix_(keep, keep)], y[keep])
        w = Q @ (yc_q / (lam + alpha))
        offset = ym - float(np.mean(G[np.ix_(keep, keep)] @ w))
        out.append(G[np.ix_(g, keep)] @ w + offset - y[g])
    return out


# ---------------------------------------------------------------- CNN
def _torch_device(requested: str):
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.cnn.device is 'cuda' but no CUDA device is available")
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def build_cnn(in_channels: int, bins: int, channels, hidden: int, pool: str):
    import torch.nn as nn

    layers, c, side = [], in_channels, bins
    for ch in channels:
        layers += [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU()]
        if side >= 4:
            layers.append(nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2))
            side //= 2
        c = ch
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class CNNModel:
    """A small CNN regressor on (channels, bins, bins) images, with early stopping on a validation split.

    ``validate_every``: epochs between validations (and the last epoch is always validated); ``patience`` counts
    epochs either way. The learning curve sets it for small subsets, whose many short epochs would otherwise
    spend more time validating than training (``stages.train.cnn_budget``)."""

    def __init__(
        self,
        epochs=_CNN["epochs"],
        batch_size=_CNN["batch_size"],
        learning_rate=_CNN["learning_rate"],
        weight_decay=_CNN["weight_decay"],
        channels=tuple(_CNN["channels"]),
        hidden=_CNN["hidden"],
        validation_fraction=_CNN["validation_fraction"],
        patience=_CNN["patience"],
        device=_CNN["device"],
        pool=_CNN["pool"],
        seed=0,
        validate_every=1,
    ):
        self.epochs, self.batch_size, self.learning_rate, self.weight_decay = (
            epochs,
            batch_size,
            learning_rate,
            weight_decay,
        )
        self.channels, self.hidden, self.validation_fraction = tuple(channels), hidden, validation_fraction
        self.patience, self.device, self.pool, self.seed = patience, device, pool, seed
        self.validate_every = validate_every

    def fit(self, X, y, validation_index=None, train_index=None):
        """Fit on rows ``train_index`` of ``X`` (default: every row not in ``validation_index``), early-stopped on
        ``validation_index`` (default: a random ``validation_fraction``). ``X``: an array (n, channels, bins,
        bins) or a dataset file (``formats.dataset.Dataset``), streamed in shuffled blocks either way, so that
        memory holds a buffer of rows, not the training set; ``y``: one target per row of ``X``."""
        import torch

        torch.manual_seed(self.seed)
        dev = _torch_device(self.device)
        if dev.type == "cpu":
            torch.use_deterministic_algorithms(True)
        self.device_ = str(dev)
        src, y = row_source(X), np.asarray(y, dtype=float)
        n = len(y)
        if validation_index is None:
            rng = np.random.default_rng(self.seed)
            pool = np.arange(n) if train_index is None else np.asarray(train_index, dtype=np.int64)
            validation_index = np.sort(
                rng.permutation(pool)[: max(1, int(round(self.validation_fraction * len(pool))))]
            )
        val = np.asarray(validation_index, dtype=np.int64)
        tr = (
            np.setdiff1d(np.arange(n), val)
            if train_index is None
            else np.setdiff1d(np.asarray(train_index, dtype=np.int64), val)
        )
        self.x_scale_ = np.maximum(_channel_max(src, tr), 1e-12).astype(np.float32)
        self.y_mean_, self.y_std_ = float(y[tr].mean()), float(y[tr].std() or 1.0)
        yt = torch.as_tensor((y - self.y_mean_) / self.y_std_, dtype=torch.float32)
        shape = src.X.shape[1:]
        self.net_ = build_cnn(shape[0], shape[1], self.channels, self.hidden, self.pool).to(dev)
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)
        use_amp = dev.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        order_rng = np.random.default_rng(self.seed)
        buffer_rows = max(self.batch_size, BUFFER_BYTES // (4 * int(np.prod(shape))))
        # a training set that fits the shuffle buffer is read once and kept (learning-curve subsets: many short
        # epochs would otherwise decompress most of the file's chunks for a few rows each, every epoch)
        cache = {} if len(tr) <= buffer_rows else None
        best, best_state, self.history_ = np.inf, None, []
        self.timing_ = {"read_s": 0.0, "step_s": 0.0}
        t0 = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            self.net_.train()
            total = 0.0
            batches = src.shuffled_batches(tr, self.batch_size, order_rng, buffer_rows, cache)
            while True:
                t_read = time.perf_counter()
                try:
                    rows, xb = next(batches)
                except StopIteration:
                    break
                xb = torch.as_tensor(xb / self.x_scale_[None, :, None, None], dtype=torch.float32).to(dev)
                yb = yt[torch.as_tensor(rows)].to(dev)
                t_step = time.perf_counter()
                self.timing_["read_s"] += t_step - t_read
                opt.zero_grad(set_to_none=True)
                with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                    loss = torch.nn.functional.mse_loss(self.net_(xb).squeeze(1), yb)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                total += loss.detach().item() * len(rows)
                self.timing_["step_s"] += time.perf_counter() - t_step
            sched.step()
            if epoch % max(1, int(self.validate_every)) and epoch != self.epochs:
                self.history_.append({"epoch": epoch, "train_mse": total / len(tr), "val_mae_ev": None})
                continue
            val_pred = cnn_predict(self.net_, src, self.x_scale_, self.y_mean_, self.y_std_, rows=val)
            val_mae = float(np.mean(np.abs(val_pred - y[val])))
            self.history_.append({"epoch": epoch, "train_mse": total / len(tr), "val_mae_ev": val_mae})
            if val_mae < best - 1e-12:
                best, best_state, self.best_epoch_ = val_mae, copy.deepcopy(self.net_.state_dict()), epoch
            if epoch % 10 == 0 or epoch == 1:
                log.info(
                    "cnn epoch %d/%d train_mse=%.4f val_mae=%.2f meV/atom (best %.2f at %d) %.1f s (reading "
                    "%.1f s, steps %.1f s)",
                    epoch,
                    self.epochs,
                    total / len(tr),
                    1000 * val_mae,
                    1000 * best,
                    self.best_epoch_,
                    time.perf_counter() - t0,
                    self.timing_["read_s"],
                    self.timing_["step_s"],
                )
            if epoch - self.best_epoch_ >= self.patience:
                log.info("cnn: early stop at epoch %d (no improvement for %d epochs)", epoch, self.patience)
                break
        self.net_.load_state_dict(best_state)
        self.validation_index_, self.train_index_ = val, tr
        return self

    def predict(self, X):
        return cnn_predict(self.net_, X, self.x_scale_, self.y_mean_, self.y_std_)

    def state_arrays(self) -> dict:
        """Everything a saved member needs besides the architecture: weights and scalings, as numpy arrays."""
        out = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        out.update(
            x_scale=np.asarray(self.x_scale_, np.float32),
            y_mean=np.float64(self.y_mean_),
            y_std=np.float64(self.y_std_),
        )
        return out


def cnn_predict(net, X, x_scale, y_mean: float, y_std: float, rows=None) -> np.ndarray:
    """Energies per atom (eV/atom, float64) of a trained network on images ``X`` (n, channels, bins, bins; an
    array or a dataset file, read in blocks), of every row or of ``rows``."""
    import torch

    src = row_source(X)
    rows = np.arange(len(src)) if rows is None else np.asarray(rows, dtype=np.int64)
    dev = next(net.parameters()).device
    scaled = np.zeros(len(rows), np.float32)
    net.eval()
    with torch.no_grad():
        for pos, block in src.blocks(rows, PREDICT_ROWS):
            xb = torch.as_tensor(block / x_scale[None, :, None, None], dtype=torch.float32, device=dev)
            scaled[pos] = net(xb).squeeze(1).float().cpu().numpy()
    return scaled.astype(float) * y_std + y_mean


def _channel_max(src, rows) -> np.ndarray:
    """Per-channel maximum of rows of images, streamed."""
    out = np.zeros(src.X.shape[1], np.float32)
    for _, block in src.blocks(rows, PREDICT_ROWS):
        out = np.maximum(out, block.max(axis=(0, 2, 3)))
    return out
