"""A persistence-image model as a potential: per-atom contributions and analytic forces.

A model on persistence images predicts E = n · f(X) (eV; n atoms, f in eV/atom) where the image
X = s · Σ_pairs img(birth, death) is a sum over the finite pairs of the diagram (s = 1 / atoms of the
complex for ``normalize: per_atom``). With G = ∂E/∂(one pair's image) = n · s · ∂f/∂X (``image_weights``):

- **explain**: pair p contributes v_p = G · img(b_p, d_p) (eV), shared equally by the distinct atoms of its
  birth and death simplices (``topoamorph.inverse``). For a linear model (ridge) f is affine, so
  E = baseline + Σ_p v_p exactly (baseline: n times the intercept in image space). For the CNN, G is the
  gradient at X and v_p is the gradient-times-input attribution: Σ_p v_p = G · X / s is the first-order
  term only; ``residual`` = E − baseline − Σ_p v_p (baseline: the network at a blank image) says how far
  from complete it is.
- **forces**: F = −∂E/∂x = −Σ_p (∂(G·img)/∂b_p · ∂b_p/∂x + ∂(G·img)/∂d_p · ∂d_p/∂x), with ∂b/∂x, ∂d/∂x the
  derivatives of the squared circumradii of the pairs' critical simplices. Exact almost everywhere: the
  energy is continuous only if pairs appearing or vanishing at the diagonal carry no weight
  (``descriptors.weight: linear`` or ``atan``); with ``weight: none`` a pair born at the diagonal adds a
  whole Gaussian at once (docs/models.md).

Everything here runs in float64 (the CNN on a float64 copy of its networks), so energies and forces are
one smooth function; ``TrainedModel.predict`` feeds the models the float32 descriptors the dataset holds,
which differs by float32 rounding (~1e-7 relative).
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from .errors import InputFileError
from .inverse import accumulate, value_gradients

log = logging.getLogger(__name__)


def vectorizer(model):
    """The model's persistence-image vectoriser; refuses models these analyses do not apply to."""
    from .descriptors import PersistenceImage, make_vectorizer

    if model.inputs["kind"] != "persistence":
        raise InputFileError(
            model.path,
            f"model {model.name!r} takes {model.inputs['kind']} inputs: explanations "
            "and forces need a model on persistence images (ridge, cnn)",
        )
    if model.inputs["homology"].get("backend", "alpha") != "alpha":
        raise InputFileError(model.path, "explanations and forces need the alpha filtration (homology.backend: alpha)")
    vec = make_vectorizer(model.inputs["descriptors"]).fit()
    if not isinstance(vec, PersistenceImage):
        raise InputFileError(
            model.path,
            "a persistence histogram is piecewise constant in the atom positions: no "
            "forces and no per-pair attribution; train on descriptors.kind: image",
        )
    return vec


def _double_networks(model):
    if getattr(model, "_nets64", None) is None:
        model._nets64 = [(copy.deepcopy(net).double().eval(), xs, ym, ys) for net, xs, ym, ys in model._networks()]
    return model._nets64


def _cnn_energy(model, X, grad: bool):
    """(f(X) eV/atom, ∂f/∂X or None) of the ensemble mean, float64."""
    import torch

    Xt = torch.tensor(X[None], dtype=torch.float64, requires_grad=grad)
    if not grad:
        with torch.no_grad():
            return float(_cnn_mean(model, Xt)), None
    f = _cnn_mean(model, Xt)
    f.backward()
    return float(f.detach()), Xt.grad[0].numpy().copy()


def _cnn_mean(model, Xt):
    import torch

    total = 0.0
    nets = _double_networks(model)
    for net, xs, ym, ys in nets:
        scale = torch.as_tensor(np.asarray(xs, dtype=float))[None, :, None, None]
        total = total + (net(Xt / scale).squeeze() * ys + ym)
    return total / len(nets)


def image_weights(model, X: np.ndarray, n_atoms: int, scale: float):
    """(E eV, G (channels, bins, bins) = ∂E/∂(one pair's image), baseline eV) for one frame's float64
    image ``X`` (channels, bins, bins) of ``n_atoms`` atoms with per-atom scale ``scale``."""
    if model.header["estimator"] == "linear":
        c = np.asarray(model.arrays["coef"], dtype=float)
        mean = np.zeros_like(c)
        if "x_mean" in model.arrays:
            c = c / model.arrays["x_scale"]
            mean = np.asarray(model.arrays["x_mean"], dtype=float)
        b = float(model.arrays["intercept"]) - float(c @ mean)
        f = float(c @ X.ravel()) + b
        return n_atoms * f, n_atoms * scale * c.reshape(X.shape), n_atoms * b
    f, grad = _cnn_energy(model, X, grad=True)
    f0, _ = _cnn_energy(model, np.zeros_like(X), grad=False)
    return n_atoms * f, n_atoms * scale * grad, n_atoms * f0


def _frame(model, vec, atoms, result=None):
    from .homology import compute

    model.check_frames([atoms])
    if result is None:
        res = compute(atoms, keep_simplices=True, **model.inputs["homology"])
    elif result.pairs is None or result.n_atoms != len(atoms):
        raise ValueError("a stored result must hold this frame's pairs' simplices (homology.keep_simplices: true)")
    else:
        _check_result_of(result, atoms)
        res = result
    X = vec.images([res])[0]
    return res, X, float(vec._scale([res])[0])


def _check_result_of(result, atoms, tol: float = 1e-6) -> None:
    """A stored result belongs to ``atoms``: every finite pair's birth and death are the squared circumradii of
    its critical simplices at these positions (a result of another frame of the same size would put the
    contributions on the wrong atoms)."""
    pos = atoms.get_positions()
    for dim, ps in result.pairs.items():
        pairs = _finite(result.diagrams[dim])
        for atoms_k, shift_k, col in ((ps.birth_critical, ps.birth_shift, 0), (ps.death_critical, ps.death_shift, 1)):
            values, _ = value_gradients(pos, atoms_k, shift_k)
            if len(values) and np.max(np.abs(values - pairs[:, col])) > tol * max(1.0, float(np.abs(pairs).max())):
                raise ValueError(
                    "the stored result is not this frame's: its pairs' values differ from the circumradii "
                    "at these positions (another frame, or moved atoms)"
                )


def _finite(diagram):
    return diagram[np.isfinite(diagram[:, 1])]


def energy_and_forces(model, atoms):
    """(E eV, forces (n, 3) eV/Å, the frame's ``PersistenceResult``) of one structure."""
    vec = vectorizer(model)
    res, X, scale = _frame(model, vec, atoms)
    if res.info.get("path") == "cgal":
        log.warning(
            "degenerate configuration (atoms on common circumspheres, e.g. an ideal crystal or exactly "
            "planar rings): the energy has one-sided derivatives here; the forces are those of one side"
        )
    n = len(atoms)
    energy, G, _ = image_weights(model, X, n, scale)
    grad = np.zeros((n, 3))
    pos = atoms.get_positions()
    for c, dim in enumerate(vec.dims):
        pairs = _finite(res.diagrams[dim])
        if not len(pairs):
            continue
        _, dbd = vec.pair_terms(pairs, G[c])
        ps = res.pairs[dim]
        for atoms_k, shift_k, col in ((ps.birth_critical, ps.birth_shift, 0), (ps.death_critical, ps.death_shift, 1)):
            _, g = value_gradients(pos, atoms_k, shift_k)
            grad += accumulate(n, atoms_k, g, dbd[:, col])
    return energy, -grad, res


def explain(model, atoms, result=None) -> dict:
    """Per-atom contributions of one structure: ``contribution`` (n,) eV, per homology dimension
    ``by_dim`` {dim: (n,)}, the pairs (``pairs``: dim, birth, death, contribution, atoms of the birth and death
    simplices), ``energy`` (eV, float64), ``baseline`` and ``residual`` (eV; zero for linear models up to
    rounding), and whether the attribution is exact (``complete``). ``result``: the frame's
    ``PersistenceResult`` with its pairs' simplices, read from a diagram file written with
    ``homology.keep_simplices: true`` under the model's homology settings (default: computed here)."""
    vec = vectorizer(model)
    res, X, scale = _frame(model, vec, atoms, result)
    n = len(atoms)
    energy, G, baseline = image_weights(model, X, n, scale)
    per_atom, by_dim, rows = np.zeros(n), {}, []
    for c, dim in enumerate(vec.dims):
        by_dim[dim] = np.zeros(n)
        pairs = _finite(res.diagrams[dim])
        if not len(pairs):
            continue
        v, _ = vec.pair_terms(pairs, G[c])
        ps = res.pairs[dim]
        for k in range(len(pairs)):
            a = ps.atoms_of(k)
            np.add.at(by_dim[dim], a, v[k] / len(a))
            rows.append(
                {
                    "dim": dim,
                    "birth": float(pairs[k, 0]),
                    "death": float(pairs[k, 1]),
                    "contribution_eV": float(v[k]),
                    "birth_atoms": ps.birth[k][ps.birth[k] >= 0].tolist(),
                    "death_atoms": ps.death[k][ps.death[k] >= 0].tolist(),
                }
            )
        per_atom += by_dim[dim]
    linear = model.header["estimator"] == "linear"
    return {
        "contribution": per_atom,
        "by_dim": by_dim,
        "pairs": rows,
        "energy": energy,
        "baseline": baseline,
        "residual": energy - baseline - float(per_atom.sum()),
        "complete": linear,
        "units": model.inputs["units"],
        "replicas": res.replicas,
    }
