"""From persistence pairs back to atoms: the simplices of each pair, and the derivative of each pair's
birth and death with respect to the atom positions.

In the alpha filtration every simplex enters at the squared radius of one specific sphere: its own
smallest circumsphere when it is Gabriel, else that of the coface it is attached to (recursively, up to
a tetrahedron's circumsphere). Each finite persistence pair is born by one simplex and killed by another
(HomCloud's "birth and death simplices"); its birth and death values are the squared radii of those
simplices' *critical* simplices. So, almost everywhere (away from Delaunay flips and ties), a pair's
birth and death are smooth functions of 1 to 4 atom positions, with the derivative of a squared
circumradius R² of points x_j, circumcentre c = Σ λ_j x_j (Σ λ_j = 1, in their affine hull):

    ∂R²/∂x_j = 2 λ_j (x_j − c).

``PairSimplices`` (one per homology dimension, rows in the order of the diagram's finite pairs) holds,
for every pair, the atoms of its birth and death simplices (indices into the input cell; a replicated
small cell maps its copies back) and the atoms and lattice images of their critical simplices.
``value_gradients`` turns them into per-atom derivatives. ``critical_simplices`` finds the critical
simplex of every simplex of a padded alpha complex (Qhull's or CGAL's).
"""

from __future__ import annotations

import numpy as np

from .alpha_fast import row_keys
from .persistence import PairSimplices  # noqa: F401 (defined with PersistenceResult, which carries it)

RELATIVE_TIE = 1e-9  # a simplex whose value equals its own squared radius to this is Gabriel (critical itself)


def _own_squared_radius(points, simplices) -> np.ndarray:
    """Squared radius of the smallest sphere through each simplex's vertices (edges, triangles)."""
    p = points[simplices]
    if simplices.shape[1] == 2:
        return 0.25 * ((p[:, 0] - p[:, 1]) ** 2).sum(1)
    a = p[:, 0]
    b, c = p[:, 1] - a, p[:, 2] - a
    bxc = np.cross(b, c)
    n2 = (bxc * bxc).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.cross((b * b).sum(1)[:, None] * c - (c * c).sum(1)[:, None] * b, bxc) / (2.0 * n2[:, None])
    return (u * u).sum(1)


def critical_simplices(points, simplices: dict, values: dict) -> dict:
    """{d: (n_d, 4) vertex indices (-1 padded)} of the simplex whose squared circumradius is the alpha
    value of each simplex of dimension d = 1..3 (d = 0: the vertex itself, value 0). ``simplices``: sorted
    vertex rows per dimension of a Delaunay complex, ``values`` their alpha values, ``points`` in the
    units whose squares the values are."""
    base = int(max(simplices[d].max() for d in (1, 2, 3))) + 1
    crit = {3: simplices[3].astype(np.int64)}
    for d in (2, 1):
        s, cof = simplices[d], simplices[d + 1]
        keys = row_keys(s, base)
        order = np.argsort(keys)
        facet_face, facet_owner = [], []
        for drop in range(d + 2):
            fk = row_keys(np.delete(cof, drop, axis=1), base)
            pos = np.clip(np.searchsorted(keys, fk, sorter=order), 0, len(keys) - 1)
            ok = keys[order[pos]] == fk
            facet_face.append(order[pos][ok])
            facet_owner.append(np.nonzero(ok)[0])
        face, owner = np.concatenate(facet_face), np.concatenate(facet_owner)
        best = np.full(len(s), -1, dtype=np.int64)
        srt = np.lexsort((values[d + 1][owner], face))
        first = srt[np.r_[True, face[srt][1:] != face[srt][:-1]]]
        best[face[first]] = owner[first]
        own_r2 = _own_squared_radius(points, s)
        v = values[d]
        is_own = (np.abs(v - own_r2) <= RELATIVE_TIE * np.maximum(np.abs(v), 1e-300)) | (best < 0)
        own = np.full((len(s), 4), -1, dtype=np.int64)
        own[:, : d + 1] = s
        crit[d] = np.where(is_own[:, None], own, crit[d + 1][np.maximum(best, 0)])
    return crit


def circumsphere(points: np.ndarray):
    """(centre, squared radius, barycentric λ of the centre) of the circumsphere of m ≤ 4 points (m, 3) in
    their affine hull."""
    m = len(points)
    if m == 1:
        return points[0], 0.0, np.ones(1)
    e = points[1:] - points[0]
    A = e @ e.T
    mu = np.linalg.solve(A, 0.5 * np.diag(A))
    c = points[0] + mu @ e
    lam = np.concatenate([[1.0 - mu.sum()], mu])
    return c, float(((c - points[0]) ** 2).sum()), lam


def value_gradients(positions: np.ndarray, atoms: np.ndarray, shifts: np.ndarray):
    """(values (k,), gradients (k, 4, 3)): the squared circumradius of each critical simplex (rows of
    ``atoms`` with ``shifts``, as in ``PairSimplices``) at ``positions`` and its derivative with respect to
    each of its atoms' positions (zero rows for padding)."""
    k = len(atoms)
    values, grads = np.zeros(k), np.zeros((k, 4, 3))
    sizes = (atoms >= 0).sum(axis=1)
    for m in (2, 3, 4):  # vertices (m = 1) have value 0 and no derivative
        rows = np.nonzero(sizes == m)[0]
        if not len(rows):
            continue
        pts = positions[atoms[rows, :m]] + shifts[rows, :m]  # (r, m, 3)
        e = pts[:, 1:] - pts[:, :1]  # (r, m-1, 3)
        A = e @ e.transpose(0, 2, 1)
        mu = np.linalg.solve(A, 0.5 * np.diagonal(A, axis1=1, axis2=2)[..., None])[..., 0]
        c = pts[:, 0] + (mu[..., None] * e).sum(1)
        lam = np.concatenate([1.0 - mu.sum(1, keepdims=True), mu], axis=1)
        values[rows] = ((c - pts[:, 0]) ** 2).sum(1)
        grads[rows, :m] = 2.0 * lam[..., None] * (pts - c[:, None])
    return values, grads


def accumulate(n_atoms: int, atoms: np.ndarray, grads: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_pairs weight × ∂value/∂x as an (n_atoms, 3) array (``atoms``/``grads`` from ``value_gradients``)."""
    out = np.zeros((n_atoms, 3))
    valid = atoms >= 0
    contrib = weights[:, None, None] * grads
    np.add.at(out, atoms[valid], contrib[valid])
    return out
