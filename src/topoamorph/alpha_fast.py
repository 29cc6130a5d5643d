"""Vectorised periodic alpha filtration: a Delaunay triangulation (CGAL's, or SciPy's Qhull) and the alpha
radius function in NumPy.

The alpha value of a simplex (gudhi's and HomCloud's convention, squared radii) is
  f(tetrahedron) = its squared circumradius;
  f(face)        = its squared smallest-circumsphere radius if no coface's opposite vertex lies strictly
                   inside that sphere (the face is Gabriel), else the minimum f over its cofaces;
  f(vertex)      = 0.
Everything is computed for the Delaunay triangulation of the padded point set (atoms and images), then
each periodic simplex is kept once (its lowest-index atom in the central cell). The result is certified
as in :mod:`topoamorph.homology`; every tetrahedron touching the central cell must have its circumsphere
inside the padded region, so each kept simplex and all its cofaces are exactly those of the periodic
Delaunay triangulation. Degenerate (crystalline) input, where five atoms share a circumsphere and the
triangulation is not unique, is refused here (flat tetrahedra from Qhull, adjacent tetrahedra with one
circumsphere from CGAL): the caller then takes the exact construction (gudhi's alpha complex), so the fast
path only ever sees input whose Delaunay triangulation is unique, and both backends give the same simplices.

Delaunay backends (:data:`DELAUNAY`): ``cgal``, CGAL's exact-predicate ``Delaunay_triangulation_3`` through
the small extension ``topoamorph._delaunay`` (built at install where CGAL's headers are found, see
setup.py), 2.5-6x faster than Qhull; ``qhull``, SciPy's, always there. :func:`default_delaunay` picks CGAL
when it is built.
"""

from __future__ import annotations

import functools

import numpy as np

FLAT = 1e-10  # relative volume below which a tetrahedron is considered flat (degenerate input)
COSPHERICAL = 1e-9  # circumcentres of adjacent tetrahedra closer than this x their radius: one sphere

DELAUNAY = ("cgal", "qhull")


@functools.cache  # once per process: a failed import is not cached by Python, and this runs twice per frame
def _native():
    try:
        from . import _delaunay
    except ImportError:
        return None
    return _delaunay


def default_delaunay() -> str:
    """``cgal`` when the native extension is built, else ``qhull``."""
    return "cgal" if _native() is not None else "qhull"


def delaunay_tetrahedra(points: np.ndarray, backend: str | None = None) -> np.ndarray:
    """Finite Delaunay tetrahedra of (n, 3) ``points`` as (m, 4) int64 vertex indices, rows sorted."""
    backend = backend or default_delaunay()
    if backend == "cgal":
        native = _native()
        if native is None:
            raise RuntimeError(
                "the CGAL Delaunay backend is not built (topoamorph._delaunay); "
                "install CGAL's headers (apt-get install libcgal-dev) and reinstall topoamorph"
            )
        flat = native.tetrahedra(np.ascontiguousarray(points, dtype=np.float64))
        tets = np.frombuffer(flat, dtype=np.int32).reshape(-1, 4).astype(np.int64)
    elif backend == "qhull":
        from scipy.spatial import Delaunay

        tets = Delaunay(points).simplices.astype(np.int64)
    else:
        raise ValueError(f"unknown Delaunay backend {backend!r}; choose one of {', '.join(DELAUNAY)}")
    return np.sort(tets, axis=1)


def _circumsphere_tets(p):
    """Circumcentres and squared radii of tetrahedra given as (T, 4, 3) coordinates."""
    a = p[:, 0]
    b, c, d = p[:, 1] - a, p[:, 2] - a, p[:, 3] - a
    bb, cc, dd = (b * b).sum(1), (c * c).sum(1), (d * d).sum(1)
    cxd, dxb, bxc = np.cross(c, d), np.cross(d, b), np.cross(b, c)
    det = (b * cxd).sum(1)
    u = (bb[:, None] * cxd + cc[:, None] * dxb + dd[:, None] * bxc) / (2.0 * det[:, None])
    return a + u, (u * u).sum(1), det


def _circumsphere_tris(p):
    """Centres and squared radii of the smallest spheres through triangles (T, 3, 3)."""
    a = p[:, 0]
    b, c = p[:, 1] - a, p[:, 2] - a
    bxc = np.cross(b, c)
    n2 = (bxc * bxc).sum(1)
    u = np.cross((b * b).sum(1)[:, None] * c - (c * c).sum(1)[:, None] * b, bxc) / (2.0 * n2[:, None])
    return a + u, (u * u).sum(1)


def row_keys(rows: np.ndarray, base: int) -> np.ndarray:
    """One int64 per row of small non-negative integers (< base), order-preserving: rows -> keys."""
    keys = np.zeros(len(rows), dtype=np.int64)
    for j in range(rows.shape[1]):
        keys = keys * base + rows[:, j]
    return keys


def unique_rows(rows: np.ndarray, base: int):
    """np.unique(rows, axis=0, return_inverse=True) for sorted small-integer rows, much faster."""
    if rows.shape[1] * np.log2(max(base, 2)) >= 63:
        u, inv = np.unique(rows, axis=0, return_inverse=True)
        return u, inv.reshape(-1)
    keys = row_keys(rows, base)
    uk, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], inv


def _faces(simplices, values):
    """Unique facets of ``simplices`` (sorted rows): (facets, facet of each (simplex, dropped vertex) row,
    the dropped (opposite) vertex of each row, the simplex of each row, per facet the min value of its
    cofaces)."""
    k = simplices.shape[1]
    parts, opp, owner = [], [], []
    for drop in range(k):
        keep = [j for j in range(k) if j != drop]
        parts.append(simplices[:, keep])
        opp.append(simplices[:, drop])
        owner.append(np.arange(len(simplices)))
    faces = np.concatenate(parts)
    opp = np.concatenate(opp)
    owner = np.concatenate(owner)
    faces, inverse = unique_rows(faces, int(simplices.max()) + 1)
    coface_min = np.full(len(faces), np.inf)
    with np.errstate(invalid="ignore"):  # NaN only from flat slivers far out on the hull
        np.minimum.at(coface_min, inverse, values[owner])
    return faces, inverse, opp, owner, coface_min


def alpha_filtration(points: np.ndarray, relevant: np.ndarray, delaunay: str | None = None):
    """Delaunay simplices of ``points`` and their alpha values, per dimension 0..3.

    ``relevant`` marks the points whose simplices matter (the central cell): returns
    ({d: (n_d, d+1) int array of sorted vertex indices}, {d: (n_d,) values}, tetra circumcentres,
    tetra squared radii, tetra volumes) or None if one of those tetrahedra is flat or shares its
    circumsphere with a neighbour (degenerate input). Only simplices of tetrahedra touching a relevant point
    are returned; values are exact for the simplices with a relevant vertex. Flat slivers far out on the
    hull of the padded set are harmless. ``delaunay``: the backend (:data:`DELAUNAY`), default
    :func:`default_delaunay`.
    """
    tets = delaunay_tetrahedra(points, delaunay)
    # Only tetrahedra touching a relevant point go on: every coface of a simplex with a relevant vertex
    # contains that vertex, so those simplices' values and attachments are exact from these tetrahedra alone,
    # and the others are never kept (3-5x fewer tetrahedra on a padded 216-atom cell).
    tets = tets[relevant[tets].any(axis=1)]
    if not len(tets):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        centre, r2_tet, det = _circumsphere_tets(points[tets])
    if np.any(np.abs(det) <= FLAT * np.abs(det).max()):
        return None
    simplices, values = {3: tets}, {3: r2_tet}
    child_values = r2_tet
    for d in (2, 1):
        faces, inverse, opp, owner, coface_min = _faces(simplices[d + 1], child_values)
        if d == 2 and _cospherical_neighbours(inverse, owner, centre, r2_tet):
            return None
        if d == 2:
            with np.errstate(divide="ignore", invalid="ignore"):
                c, r2 = _circumsphere_tris(points[faces])
        else:
            c = 0.5 * (points[faces[:, 0]] + points[faces[:, 1]])
            r2 = 0.25 * ((points[faces[:, 0]] - points[faces[:, 1]]) ** 2).sum(1)
        # a face is attached if some coface's opposite vertex lies strictly inside its smallest sphere
        dist2 = ((points[opp] - c[inverse]) ** 2).sum(1)
        inside = dist2 < r2[inverse] * (1.0 - 1e-12)
        attached = np.zeros(len(faces), dtype=bool)
        np.logical_or.at(attached, inverse, inside)
        values[d] = np.where(attached, coface_min, r2)
        simplices[d] = faces
        child_values = values[d]
    simplices[0] = np.arange(len(points), dtype=np.int64)[:, None]
    values[0] = np.zeros(len(points))
    return simplices, values, centre, r2_tet, np.abs(det) / 6.0


def _cospherical_neighbours(inverse, owner, centre, r2_tet) -> bool:
    """Whether two tetrahedra sharing a triangle have one circumsphere (five cospherical points: the
    Delaunay triangulation is not unique there). ``inverse``, ``owner``: triangle and tetrahedron of each
    (tetrahedron, dropped vertex) row of :func:`_faces`."""
    order = np.argsort(inverse, kind="stable")
    shared = inverse[order][1:] == inverse[order][:-1]
    a, b = owner[order][:-1][shared], owner[order][1:][shared]
    gap2 = ((centre[a] - centre[b]) ** 2).sum(1)
    return bool(np.any(gap2 <= COSPHERICAL**2 * np.minimum(r2_tet[a], r2_tet[b])))
