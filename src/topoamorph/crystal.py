"""The persistence of the infinite crystal, per cell: the periodic alpha filtration with twisted coefficients.

A cell's own periodic complex lives on the 3-torus T = R³/L. Its diagrams (HomCloud's, ``diagram: torus``) hold
the torus's 7 essential classes, and loops that wrap around the cell are cycles there although they are not
cycles of the crystal the cell stands for: a supercell T_k = R³/kL wraps differently, so the same structure
gets a different diagram per atom in each supercell, converging only slowly (in H1 about as 1/k) to the
infinite crystal's.

The crystal's own measure comes from the covering T_k -> T. Over C, the filtration of T_k splits under its
deck group (Z_k)³ into k³ filtrations of T with twisted coefficients, one per character χ of the lattice: the
boundary of a simplex takes each face with the factor χ(t), t the lattice vector from the face's stored
translate to the one in the boundary. The per-atom diagram of T_k is the average over those k³ characters,
and as k grows it tends to the diagram of a generic character, all but a measure-zero set of characters
giving the same one. ``twisted_diagrams`` computes that diagram directly on the cell: one reduction of the
cell's own boundary matrix, with χ(t) = g1^t1 g2^t2 g3^t3 in the prime field F_p (p = 2^31 - 1, fixed
generators of large order: generic unless a loop's holonomy hits 1, probability ~1e-9 per loop, and the same
answer every run). The twisted homology of the full torus is zero, so the diagram has no essential class:
every class born dies, including those the torus keeps forever (the component that first wraps around the
cell dies then, instead of a wrapping loop being born). A supercell gives exactly k³ copies of the cell's
pairs, i.e. the same per-atom image (``docs/models.md#size-consistency``).

All filtration values are the alpha complex's squared radii (Å²), as for the torus.
"""

from __future__ import annotations

import numpy as np

PRIME = 2147483647  # 2^31 - 1: products of two residues fit in int64
#: the character's values on the three lattice vectors (fixed: the same diagram in every run and on every rank)
GENERATORS = (1234567891, 987654321, 1122334455)


def _njit(f):
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; pure Python still gives the same result
        return f
    return numba.njit(cache=True)(f)


@_njit
def _inverse(a, p):
    """a^(p-2) mod p (Fermat)."""
    result, base, e = 1, a % p, p - 2
    while e > 0:
        if e & 1:
            result = result * base % p
        base = base * base % p
        e >>= 1
    return result


@_njit
def _subtract(r1, c1, r2, c2, f, p):
    """(r1, c1) - f (r2, c2) for sparse columns with sorted rows, zeros dropped."""
    out_r = np.empty(len(r1) + len(r2), np.int64)
    out_c = np.empty(len(r1) + len(r2), np.int64)
    i = j = k = 0
    while i < len(r1) or j < len(r2):
        if j >= len(r2) or (i < len(r1) and r1[i] < r2[j]):
            out_r[k], out_c[k] = r1[i], c1[i]
            i += 1
            k += 1
        elif i >= len(r1) or r2[j] < r1[i]:
            out_r[k], out_c[k] = r2[j], (p - f * c2[j] % p) % p
            j += 1
            k += 1
        else:
            v = (c1[i] - f * c2[j] % p) % p
            if v != 0:
                out_r[k], out_c[k] = r1[i], v
                k += 1
            i += 1
            j += 1
    return out_r[:k], out_c[:k]


@_njit
def _reduce(indptr, rows, coefs, schedule, p):
    """Standard column reduction over F_p with clearing. ``schedule``: the columns in the order they are
    reduced (dimension high to low, each dimension in filtration order). Returns the pivot row (low) of each
    column, -1 for a column that reduces to zero."""
    m = len(indptr) - 1
    low = -np.ones(m, np.int64)
    owner = -np.ones(m, np.int64)  # row -> the reduced column whose pivot it is
    store_r = [np.empty(0, np.int64) for _ in range(m)]
    store_c = [np.empty(0, np.int64) for _ in range(m)]
    for j in schedule:
        if owner[j] >= 0:  # j is the pivot of a higher-dimensional column: its own column reduces to zero
            continue
        r = rows[indptr[j] : indptr[j + 1]].copy()
        c = coefs[indptr[j] : indptr[j + 1]].copy()
        while len(r) > 0:
            k = owner[r[-1]]
            if k < 0:
                break
            f = c[-1] * _inverse(store_c[k][-1], p) % p
            r, c = _subtract(r, c, store_r[k], store_c[k], f, p)
        if len(r) > 0:
            low[j] = r[-1]
            owner[r[-1]] = j
            store_r[j], store_c[j] = r, c
    return low


def _character(shifts: np.ndarray) -> np.ndarray:
    """χ(t) mod p of integer lattice vectors (..., 3)."""
    t = np.asarray(shifts, dtype=np.int64)
    out = np.ones(t.shape[:-1], dtype=np.int64)
    for axis, g in enumerate(GENERATORS):
        lo, hi = int(t[..., axis].min(initial=0)), int(t[..., axis].max(initial=0))
        table = np.array([pow(g, e % (PRIME - 1), PRIME) for e in range(lo, hi + 1)], dtype=np.int64)
        out = out * table[t[..., axis] - lo] % PRIME
    return out


def twisted_diagrams(simplices: dict, shifts: dict, values: dict, n_atoms: int, maxdim: int, zero: float):
    """The generic-character persistence of one cell's periodic complex.

    ``simplices``: {d: (m_d, d+1) atom indices, rows sorted, each periodic simplex once}; ``shifts``:
    {d: (m_d, d+1, 3) integer lattice vectors of those vertices (the stored translate's), vertex 0's = 0};
    ``values``: {d: (m_d,)} filtration values. Returns (diagrams {dim: (k, 2) pairs with death - birth >
    ``zero``}, pairs {dim: list of (birth, death, birth simplex row, death simplex row)}, essential: the
    number of classes never killed, 0 for a complex that triangulates the torus).
    """
    from .alpha_fast import row_keys

    sizes = [len(simplices[d]) for d in range(4)]
    start = np.concatenate([[0], np.cumsum(sizes)])
    val = np.concatenate([np.asarray(values[d], float) for d in range(4)])
    dim = np.concatenate([np.full(sizes[d], d) for d in range(4)])
    order = np.lexsort((np.arange(len(val)), dim, val))  # filtration: value, then faces before cofaces
    position = np.empty(len(val), dtype=np.int64)
    position[order] = np.arange(len(val))
    keys = {d: row_keys(np.asarray(simplices[d], np.int64), n_atoms) for d in range(4)}
    sorted_keys = {d: np.argsort(keys[d], kind="stable") for d in range(4)}
    col_rows, col_coefs, col_of = [], [], []
    for d in range(1, 4):
        if not sizes[d]:
            continue
        S, T = np.asarray(simplices[d], np.int64), np.asarray(shifts[d], np.int64)
        for j in range(d + 1):
            keep = [i for i in range(d + 1) if i != j]
            face, t = S[:, keep], T[:, keep[0]]  # the face's stored translate is anchored at its first vertex
            fk = row_keys(face, n_atoms)
            idx = sorted_keys[d - 1][np.searchsorted(keys[d - 1], fk, sorter=sorted_keys[d - 1])]
            if not np.array_equal(keys[d - 1][idx], fk):
                raise ValueError(f"a face of a {d}-simplex is not in the complex")
            coef = _character(t)
            if j % 2:
                coef = (PRIME - coef) % PRIME
            col_rows.append(position[start[d - 1] + idx])
            col_coefs.append(coef)
            col_of.append(position[start[d] + np.arange(len(S))])
    m = len(val)
    if col_rows:
        cols, rows, coefs = (np.concatenate(col_of), np.concatenate(col_rows), np.concatenate(col_coefs))
        # a simplex whose faces coincide (a cell too small for its own complex) would add coefficients here;
        # the caller refuses such complexes (merged) before this point
        o = np.lexsort((rows, cols))
        cols, rows, coefs = cols[o], rows[o], coefs[o]
        indptr = np.searchsorted(cols, np.arange(m + 1))
    else:
        rows, coefs, indptr = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(m + 1, np.int64)
    dim_sorted = dim[order]
    schedule = np.concatenate([np.nonzero(dim_sorted == d)[0] for d in (3, 2, 1, 0)]).astype(np.int64)
    low = _reduce(indptr.astype(np.int64), rows.astype(np.int64), coefs.astype(np.int64), schedule, PRIME)
    v_sorted = val[order]
    births = np.nonzero(low >= 0)[0]
    paired = np.zeros(m, bool)
    paired[births] = True
    paired[low[births]] = True
    essential = int(m - paired.sum())
    diagrams = {d: [] for d in range(maxdim + 1)}
    pairs = {d: [] for d in range(maxdim + 1)}
    for j in births:
        b = low[j]
        d = int(dim_sorted[b])
        if d > maxdim or not v_sorted[j] - v_sorted[b] > zero:
            continue
        gb, gd = order[b], order[j]  # filtration position -> index over all dimensions
        row_b = np.asarray(simplices[d][gb - start[d]]).tolist()
        row_d = np.asarray(simplices[d + 1][gd - start[d + 1]]).tolist()
        diagrams[d].append((v_sorted[b], v_sorted[j]))
        pairs[d].append((float(v_sorted[b]), float(v_sorted[j]), row_b, row_d))
    return {d: np.asarray(p, dtype=float).reshape(-1, 2) for d, p in diagrams.items()}, pairs, essential
