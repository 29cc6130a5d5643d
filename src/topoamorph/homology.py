"""Periodic persistent homology of atomic structures.

Backend ``alpha``: the periodic alpha filtration of the cell (HomCloud's ``periodicity=`` convention).
Filtration values are squared radii in Å². Diagrams are ``{dim: (k, 2) float64 array}`` of
(birth, death) pairs; essential classes of the 3-torus (1 in H0, 3 in H1, 3 in H2) have death = inf.
Zero-persistence pairs are dropped.

``diagram`` (alpha only): ``crystal`` (the default) gives the infinite crystal's diagram per cell, the periodic
filtration with generic twisted coefficients (``topoamorph.crystal``): no essential class, and the same
diagram per atom for a cell and any supercell of it; ``torus`` gives the cell's own diagrams on the 3-torus,
equal to HomCloud's (``periodicity=``), with the 7 essential classes.

Construction: the alpha complex (gudhi/CGAL) of the cell's atoms plus their periodic images within a
margin, keeping each periodic simplex once (the translate whose lowest-index atom lies in the central
cell), relabelled modulo N. The quotient is certified to be the periodic Delaunay complex: Euler
characteristic 0, #triangles = 2 #tetrahedra, no two kept simplices merged by the relabelling, and
margin >= 2 x the largest circumradius (so every kept simplex saw all atoms that could violate its
empty sphere). If the margin is too small it is enlarged; if simplices merge (a cell too small or too
sparse for its own periodic triangulation to be simplicial) the cell is replicated 2x2x2 and the
diagram of the supercell is returned with ``replicas = 8`` recorded, so per-atom normalisation keeps
finite features comparable.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from .alpha_fast import unique_rows
from .errors import HomologyError
from .formats.frames import cell_heights, cell_problem
from .persistence import PersistenceResult, split_essential  # noqa: F401 (split_essential: public here too)
from .settings import HomologySettings
from .units import ALPHA_UNIT, LENGTH

log = logging.getLogger(__name__)

UNITS = {"alpha": f"{ALPHA_UNIT} (squared radius)", "rips": f"{LENGTH} (edge length)"}
ZERO_PERSISTENCE = 1e-9  # Å²: pairs closer than this to the diagonal are dropped
#: Coordinates go onto an integer grid of this spacing (Å), cell vectors too, so that every periodic
#: translate of an atom is bit-exact and CGAL's exact predicates (with their symbolic perturbation)
#: triangulate all translates of a degenerate (crystalline) configuration identically.
GRID = 2.0**-40
BACKENDS = ("alpha", "rips")
#: what the alpha backend's diagrams are of: the infinite crystal per cell (twisted coefficients) or the torus
DIAGRAMS = ("crystal", "torus")
#: First margin of the fast path, in mean atomic spacings ((V/N)^(1/3)). The certificate needs every
#: circumsphere of a tetrahedron touching the cell inside the margin: on 216-atom a-C frames of the
#: paper-shaped campaign (1.5-3.5 g/cm³, 9000-300 K) that takes 1.9 spacings at the median, 2.4 at the 90th
#: percentile and 2.8 at the 99th; a margin too small costs a second Delaunay triangulation. docs/homology.md
FAST_MARGIN = 2.4
#: ``PersistenceResult.info["path"]`` of the fast path, by Delaunay backend (``alpha_fast.DELAUNAY``); the exact
#: path (gudhi's alpha complex, for degenerate input) is ``"cgal"``, the Rips backend ``"ripser"``.
FAST_PATHS = {"cgal": "cgal-delaunay", "qhull": "qhull"}


def persistence_diagrams(
    atoms,
    backend: str | None = None,
    maxdim: int | None = None,
    precision: str | None = None,
    threshold: float | None = None,
    diagram: str | None = None,
) -> dict:
    """Persistence diagrams ``{dim: (k, 2) array}`` (essential classes, of ``diagram: torus``, with death = inf).

    ``backend="alpha"``: values are squared radii (Å²). ``backend="rips"``: values are edge lengths (Å),
    up to ``threshold``; classes still alive at the threshold have death = inf. See :func:`compute` for
    the replication record that goes with a diagram.
    """
    return compute(
        atoms, backend=backend, maxdim=maxdim, precision=precision, threshold=threshold, diagram=diagram
    ).diagrams


def compute(
    atoms,
    backend: str | None = None,
    maxdim: int | None = None,
    precision: str | None = None,
    threshold: float | None = None,
    keep_simplices: bool = False,
    delaunay: str | None = None,
    diagram: str | None = None,
) -> PersistenceResult:
    """The diagrams of one structure with its atom count, replication and units. Options left unset take
    the campaign defaults (``homology`` in ``topoamorph.settings.defaults()``; ``threshold`` is
    ``homology.rips_threshold``). ``keep_simplices`` (alpha only): also the birth and death simplices of
    every finite pair and their critical simplices, in ``result.pairs`` (``topoamorph.inverse``).
    ``delaunay`` (alpha only): the fast path's Delaunay backend, ``cgal`` or ``qhull`` (default: CGAL where
    its extension is built); the diagrams do not depend on it, only the time does. ``diagram`` (alpha only;
    default ``homology.diagram``): ``crystal``, the infinite crystal's diagram per cell, the same per atom in
    every supercell; ``torus``, the cell's own (HomCloud's) with its essential classes."""
    given = {
        "backend": backend,
        "maxdim": maxdim,
        "precision": precision,
        "rips_threshold": threshold,
        "diagram": diagram,
    }
    opts = HomologySettings.from_config({k: v for k, v in given.items() if v is not None})
    backend, maxdim = opts.backend, opts.maxdim
    if backend not in BACKENDS:
        raise HomologyError(f"unknown homology backend {backend!r} (known: {', '.join(BACKENDS)})")
    if not 0 <= maxdim <= 2:
        raise HomologyError(f"maxdim must be 0, 1 or 2, not {maxdim}")
    if opts.diagram not in DIAGRAMS:
        raise HomologyError(f"unknown diagram {opts.diagram!r} (known: {', '.join(DIAGRAMS)})")
    positions = np.asarray(atoms.get_positions(), dtype=float)
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not all(atoms.pbc):
        raise HomologyError("the periodic alpha filtration needs a periodic cell (pbc=True on all axes)")
    if not np.all(np.isfinite(positions)):
        raise HomologyError("positions contain NaN or infinite values")
    problem = cell_problem(cell)
    if problem:
        raise HomologyError(problem.replace("frame has no cell (zero volume)", "the cell has zero volume"))
    if backend == "rips":
        if keep_simplices:
            raise HomologyError("the birth and death simplices are kept for the alpha filtration only")
        result = periodic_rips(positions, cell, maxdim=maxdim, threshold=opts.rips_threshold)
    else:
        result = periodic_alpha(
            positions,
            cell,
            maxdim=maxdim,
            precision=opts.precision,
            keep_simplices=keep_simplices,
            delaunay=delaunay,
            diagram=opts.diagram,
        )
    result.n_atoms, result.units = len(positions), UNITS[backend]
    return result


def rips_replication(cell, threshold: float) -> int:
    """Smallest k such that the threshold stays below a third of every height of the k x k x k cell.

    Three edges shorter than L/3 cannot close a loop around the torus, so below that the Rips complex
    of minimum-image distances has no wrap-around simplices; beyond it the diagram is wrong.
    """
    hmin = cell_heights(np.asarray(cell, dtype=float)).min()
    return int(np.floor(3.0 * threshold / hmin * (1.0 + 1e-12))) + 1


def periodic_rips(positions, cell, maxdim: int, threshold: float, replicas: int | None = None) -> PersistenceResult:
    """Vietoris-Rips persistence (ripser) of periodic minimum-image distances up to ``threshold`` (Å).

    The cell is replicated k x k x k (``rips_replication``) so the threshold stays below a third of the
    cell; ``replicas = k**3`` is recorded.
    """
    from ase import Atoms
    from ase.neighborlist import neighbor_list
    from ripser import ripser
    from scipy.sparse import coo_matrix

    if threshold <= 0:
        raise HomologyError(f"the Rips threshold must be positive, not {threshold}")
    cell = np.asarray(cell, dtype=float)
    k = replicas or rips_replication(cell, threshold)
    pos, sup = replicate(np.asarray(positions, dtype=float), cell, k)
    atoms = Atoms(numbers=np.zeros(len(pos), dtype=int), positions=pos, cell=sup, pbc=True)
    i, j, d = neighbor_list("ijd", atoms, threshold)
    n = len(pos)
    # symmetric: ripser's sparse path aborts the process on a triangular matrix of this size
    dm = coo_matrix((d, (i, j)), shape=(n, n)).tocsr()
    dgms = ripser(dm, distance_matrix=True, maxdim=maxdim, thresh=threshold)["dgms"]
    out = {dim: _canonical_pairs(dgms[dim]) for dim in range(maxdim + 1)}
    return PersistenceResult(out, replicas=k**3, info={"path": "ripser", "threshold": threshold})


REPLICATIONS = (1, 2, 3)  # k: try the cell, then k x k x k supercells
#: a cell whose periodic images within the complex's margin exceed this many points would grow memory without bound
#: (the cell's own bounds, MIN_CELL_HEIGHT and MAX_CELL_HEIGHT, are checked with every frame: formats.frames)
MAX_PADDED_POINTS = 5_000_000


def periodic_alpha(
    positions,
    cell,
    maxdim: int,
    precision: str,
    keep_simplices: bool = False,
    delaunay: str | None = None,
    diagram: str = "torus",
) -> PersistenceResult:
    """The periodic alpha diagrams of one cell: of the torus, or of the infinite crystal per cell (``diagram``,
    see the module). ``delaunay``: the fast path's Delaunay backend (``alpha_fast.DELAUNAY``; default
    ``alpha_fast.default_delaunay()``); the diagrams do not depend on it."""
    n = len(positions)
    if n < 1:
        raise HomologyError("no atoms")
    positions, cell = np.asarray(positions, dtype=float), np.asarray(cell, dtype=float)
    for k in REPLICATIONS:
        pos_k, cell_k = replicate(positions, cell, k)
        result = _periodic_alpha_once(pos_k, cell_k, maxdim, precision, keep_simplices, delaunay, diagram)
        if result is not MERGED:
            result.replicas = k**3
            result.info["diagram"] = diagram
            if keep_simplices:
                result.pairs = _to_input_atoms(result.pairs, positions, cell)
            if k > 1:
                log.info(
                    "cell of %d atoms too small or sparse for its periodic complex: replicated %dx%dx%d", n, k, k, k
                )
            return result
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", Atoms(positions=positions, cell=cell, pbc=True), 1e-3)
    if len(d):  # the true cause, not "too sparse": two atoms at one place have no Delaunay complex
        k = int(np.argmin(d))
        raise HomologyError(
            f"atoms {min(i[k], j[k])} and {max(i[k], j[k])} coincide ({d[k]:.1e} Å apart): no Delaunay complex exists"
        )
    raise HomologyError(
        f"cannot build the periodic Delaunay complex of this cell of {n} atoms even replicated "
        f"{REPLICATIONS[-1]}x{REPLICATIONS[-1]}x{REPLICATIONS[-1]}: it is too small or too sparse"
    )


def _diagrams_of(simplices, filtrations, shifts, n, maxdim, diagram, keep_pairs):
    """(diagrams, pair rows or None) of the kept complex, or None when its essential classes are not what
    they must be (torus: 1, 3, 3; crystal: none)."""
    if diagram == "crystal":
        from .crystal import twisted_diagrams

        diagrams, rows, essential = twisted_diagrams(simplices, shifts, filtrations, n, maxdim, ZERO_PERSISTENCE)
        if essential:
            return None
        return {d: _canonical_pairs(p) for d, p in diagrams.items()}, rows if keep_pairs else None
    st = _simplex_tree(simplices, filtrations)
    diagrams = _diagrams(st, maxdim)
    if not _torus_classes_ok(diagrams):
        return None
    return diagrams, _pair_rows(st, maxdim) if keep_pairs else None


def _periodic_alpha_once(positions, cell, maxdim, precision, keep_simplices=False, delaunay=None, diagram="torus"):
    from .alpha_fast import default_delaunay

    delaunay = delaunay or default_delaunay()
    n = len(positions)
    sink = {} if keep_simplices else None
    frac = positions @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    heights = cell_heights(cell)
    spacing = (abs(np.linalg.det(cell)) / n) ** (1.0 / 3.0)
    # fast path: a Delaunay triangulation (CGAL or Qhull) + NumPy, certified; the margin grows to what the
    # certificate asks
    margin = FAST_MARGIN * spacing
    for _attempt in range(4):
        out = _quotient_fast(frac, cell, heights, margin, sink, delaunay)
        if out is MERGED:
            return MERGED
        if out is DEGENERATE:
            break
        if out is None:  # a periodic tetrahedron reaches beyond the images: look further
            margin *= 1.3
            continue
        simplices, filtrations, shifts, excess = out
        if excess <= 0:
            got = _diagrams_of(simplices, filtrations, shifts, n, maxdim, diagram, sink is not None)
            if got is not None:
                diagrams, rows = got
                return PersistenceResult(
                    diagrams,
                    margin=margin,
                    info={"path": FAST_PATHS[delaunay]},
                    pairs=_pair_simplices(rows, sink, diagrams) if sink is not None else None,
                )
            break
        margin += excess * 1.05 + 1e-6
    # exact path: CGAL through gudhi
    margin = 2.5 * spacing
    for _attempt in range(4):
        out = _quotient(frac, cell, heights, margin, precision, sink)
        if out is MERGED:
            return MERGED
        if out is not None:
            simplices, filtrations, shifts = out
            needed = 2.0 * np.sqrt(filtrations[3].max())
            if needed <= margin:
                got = _diagrams_of(simplices, filtrations, shifts, n, maxdim, diagram, sink is not None)
                if got is None:
                    raise HomologyError(
                        f"the periodic complex does not have the {diagram}'s essential classes; "
                        "refusing a wrong diagram"
                    )
                diagrams, rows = got
                return PersistenceResult(
                    diagrams,
                    margin=margin,
                    info={"path": "cgal"},
                    pairs=_pair_simplices(rows, sink, diagrams) if sink is not None else None,
                )
            margin = 1.05 * needed
        else:  # the kept simplices do not triangulate the torus yet: look further
            margin *= 1.3
    return MERGED


TORUS_BETTI = (1, 3, 3)


def _essential_counts(diagrams) -> dict[int, int]:
    return {d: int(np.sum(~np.isfinite(p[:, 1]))) for d, p in diagrams.items()}


def _torus_classes_ok(diagrams) -> bool:
    """The essential classes of a periodic alpha filtration are those of the 3-torus: 1, 3, 3."""
    return all(count == TORUS_BETTI[d] for d, count in _essential_counts(diagrams).items())


def replicate(positions, cell, k: int = 2):
    """Positions and cell of the k x k x k supercell (k = 1 returns the input)."""
    if k == 1:
        return np.asarray(positions, dtype=float), np.asarray(cell, dtype=float)
    shifts = np.array(list(itertools.product(range(k), repeat=3)), dtype=float) @ cell
    pos = (positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    return pos, cell * k


MERGED = "merged"
DEGENERATE = "degenerate"


def _padded(frac, cell, heights, margin):
    """Atoms plus periodic images within ``margin`` (Å) of the cell, on the exact grid.

    Returns points (Å), original index and image shift per point, whether each point is in the central
    cell, the margin in fractional units per axis, and each point's lattice shift (integers).
    """
    mfrac = margin / heights
    reach = np.ceil(mfrac).astype(int)
    images = int(np.prod(2 * reach + 1))
    if images * len(frac) > MAX_PADDED_POINTS:
        raise HomologyError(
            f"{len(frac)} atoms in a cell {heights.min():.3g} Å thick need {images} periodic images "
            f"for the complex (over {MAX_PADDED_POINTS} points): the cell is far too thin for its "
            "density, or the density far too low"
        )
    shifts = np.array(list(itertools.product(*[range(-r, r + 1) for r in reach])), dtype=np.int64)
    # central cell first, so that padded indices 0..n-1 are the original atoms
    shifts = shifts[np.argsort(np.abs(shifts).sum(axis=1), kind="stable")]
    cell_grid = np.round(cell / GRID)
    pos_grid = np.round((frac @ cell) / GRID)
    pts, orig, img = [], [], []
    for s in shifts:
        f = frac + s
        keep = np.all((f >= -mfrac) & (f < 1.0 + mfrac), axis=1)
        idx = np.nonzero(keep)[0]
        pts.append(pos_grid[idx] + s @ cell_grid)  # exact: integers below 2**53
        orig.append(idx)
        img.append(np.repeat(s[None, :], len(idx), axis=0))
    orig = np.concatenate(orig)
    img = np.concatenate(img)
    return np.concatenate(pts), orig, np.all(img == 0, axis=1), mfrac, img


def _anchored(simplices, orig, central) -> np.ndarray:
    """Mask of the simplices kept for the quotient: the translate whose lowest-index atom is central."""
    return central[simplices[np.arange(len(simplices)), np.argmin(orig[simplices], axis=1)]]


def _canonical(simplices_by_dim, filtrations_by_dim, orig, central, n, img):
    """Keep each periodic simplex once and relabel modulo N; MERGED or None as in :func:`_quotient`. Returns
    (simplices, filtrations, shifts): rows of atoms sorted, and each vertex's lattice shift in the kept
    translate (vertex 0, the lowest atom, is in the central cell: shift 0)."""
    simplices, filtrations, shifts = {}, {}, {}
    for d in range(4):
        s = simplices_by_dim[d]
        f = filtrations_by_dim[d]
        if len(s) == 0:
            simplices[d], filtrations[d] = np.zeros((0, d + 1), dtype=np.int64), np.zeros(0)
            shifts[d] = np.zeros((0, d + 1, 3), dtype=np.int64)
            continue
        keep = _anchored(s, orig, central)
        o = orig[s][keep]
        by_atom = np.argsort(o, axis=1, kind="stable")
        o, f = np.take_along_axis(o, by_atom, axis=1), f[keep]
        if d > 0 and (np.any(o[:, 1:] == o[:, :-1]) or len(unique_rows(o, n)[0]) != len(o)):
            return MERGED
        simplices[d], filtrations[d] = o, f
        shifts[d] = np.take_along_axis(img[s[keep]], by_atom[:, :, None], axis=1)
    counts = [len(simplices[d]) for d in range(4)]
    if (
        counts[0] != n
        or counts[3] == 0
        or counts[0] - counts[1] + counts[2] - counts[3] != 0
        or counts[2] != 2 * counts[3]
    ):
        return None
    return simplices, filtrations, shifts


def _quotient(frac, cell, heights, margin, precision, sink=None):
    """Kept simplices (relabelled mod N) and their filtration values per dimension (CGAL, exact).

    Returns MERGED if two kept simplices fall onto one (the quotient is not simplicial) and None if
    the kept simplices do not triangulate the torus (Euler characteristic, faces = 2 x tetrahedra).
    ``sink``: a dict that receives the padded complex (for ``_pair_simplices``).
    """
    import gudhi

    pts, orig, central, _, img = _padded(frac, cell, heights, margin)
    st = gudhi.AlphaComplex(points=pts, precision=precision).create_simplex_tree()
    by_dim: dict[int, tuple[list, list]] = {d: ([], []) for d in range(4)}
    for simplex, filt in st.get_simplices():
        by_dim[len(simplex) - 1][0].append(simplex)
        by_dim[len(simplex) - 1][1].append(filt)
    simplices = {d: np.asarray(sl, dtype=np.int64).reshape(-1, d + 1) for d, (sl, _) in by_dim.items()}
    values = {d: np.asarray(fl, dtype=float) * GRID**2 for d, (_, fl) in by_dim.items()}
    if sink is not None:
        sink.update(points=pts * GRID, orig=orig, central=central, simplices=simplices, values=values)
    return _canonical(simplices, values, orig, central, len(frac), img)


def _quotient_fast(frac, cell, heights, margin, sink=None, delaunay=None):
    """As :func:`_quotient` with a Delaunay backend and NumPy (see :mod:`topoamorph.alpha_fast`).

    Returns (simplices, filtrations, shifts, extra margin needed in Å), MERGED, None (look further), or
    DEGENERATE when the input is degenerate (flat tetrahedra or five cospherical atoms), which sends the
    caller to the exact path.
    """
    from .alpha_fast import alpha_filtration

    pts, orig, central, mfrac, img = _padded(frac, cell, heights, margin)
    pts = pts * GRID
    out = alpha_filtration(pts, central, delaunay)
    if out is None:
        return DEGENERATE
    simplices, values, centre, r2, volume = out
    if sink is not None:
        sink.update(points=pts, orig=orig, central=central, simplices=simplices, values=values)
    kept = _canonical(simplices, values, orig, central, len(frac), img)
    if kept is None or kept is MERGED:
        return kept
    # the kept tetrahedra must tile the torus: no overlap, no gap (Qhull is not exact on degenerate input)
    cell_volume = abs(np.linalg.det(cell))
    if abs(volume[_anchored(simplices[3], orig, central)].sum() - cell_volume) > 1e-9 * cell_volume:
        return DEGENERATE
    # every tetrahedron touching the central cell must have its circumsphere inside the padded region
    c = centre @ np.linalg.inv(cell)
    r = np.sqrt(r2)[:, None] / heights[None, :]
    excess = np.maximum((c + r) - (1.0 + mfrac), -mfrac - (c - r)).max()
    return kept[0], kept[1], kept[2], float(excess * heights.max())


def _simplex_tree(simplices, filtrations):
    import gudhi

    st = gudhi.SimplexTree()
    for d in range(4):
        if len(simplices[d]):
            st.insert_batch(np.ascontiguousarray(simplices[d].T), filtrations[d])
    return st


def _canonical_pairs(pairs) -> np.ndarray:
    """Drop zero-persistence pairs; order finite pairs by (birth, death), then essential ones by birth."""
    pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
    finite = np.isfinite(pairs[:, 1])
    pairs = pairs[~finite | (pairs[:, 1] - pairs[:, 0] > ZERO_PERSISTENCE)]
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0], ~np.isfinite(pairs[:, 1])))]


def _diagrams(st, maxdim: int) -> dict[int, np.ndarray]:
    st.compute_persistence(homology_coeff_field=2, persistence_dim_max=False)
    return {d: _canonical_pairs(st.persistence_intervals_in_dimension(d)) for d in range(maxdim + 1)}


def _pair_rows(st, maxdim: int) -> dict:
    """{dim: [(birth, death, birth simplex, death simplex)]} of the finite pairs of a gudhi simplex tree."""
    rows = {d: [] for d in range(maxdim + 1)}
    for b, dth in st.persistence_pairs():
        dim = len(b) - 1
        if not dth or dim > maxdim:
            continue
        bv, dv = st.filtration(b), st.filtration(dth)
        if dv - bv > ZERO_PERSISTENCE:
            rows[dim].append((bv, dv, sorted(b), sorted(dth)))
    return rows


def _pair_simplices(rows: dict, sink: dict, diagrams: dict) -> dict:
    """Per dimension, the birth/death simplices of the finite pairs ``rows`` (``_pair_rows``, or the crystal's)
    in the diagram's order and their critical simplices as padded points; atoms are those of the complex's
    cell (see ``_to_input_atoms``)."""
    from .inverse import critical_simplices

    pts, orig, central, S, V = (sink[k] for k in ("points", "orig", "central", "simplices", "values"))
    crit = critical_simplices(pts, S, V)
    lookup = {0: None}
    for d in (1, 2, 3):
        keep = _anchored(S[d], orig, central)
        atoms = np.sort(orig[S[d][keep]], axis=1)
        lookup[d] = dict(zip(map(tuple, atoms.tolist()), crit[d][keep]))

    def critical(simplex):
        if len(simplex) == 1:  # a vertex: padded index = atom (the central cell comes first)
            return np.array([simplex[0], -1, -1, -1])
        return lookup[len(simplex) - 1][tuple(sorted(simplex))]

    out = {}
    for dim, r in rows.items():
        r.sort(key=lambda t: (t[0], t[1]))
        k = len(r)
        pad = np.full((k, 4), -1, dtype=np.int64)
        birth, death, bc, dc = pad.copy(), pad.copy(), pad.copy(), pad.copy()
        for i, (_, _, b, dth) in enumerate(r):
            birth[i, : len(b)], death[i, : len(dth)] = b, dth
            bc[i], dc[i] = critical(b), critical(dth)
        finite = diagrams[dim][np.isfinite(diagrams[dim][:, 1])]
        if k != len(finite) or (k and not np.array_equal(np.array([t[:2] for t in r]), finite)):
            raise HomologyError(f"persistence pairs of dimension {dim} do not match the diagram")
        out[dim] = {
            "birth": birth,
            "death": death,
            "birth_points": np.where(bc[..., None] >= 0, pts[np.maximum(bc, 0)], np.nan),
            "birth_atoms": np.where(bc >= 0, orig[np.maximum(bc, 0)], -1),
            "death_points": np.where(dc[..., None] >= 0, pts[np.maximum(dc, 0)], np.nan),
            "death_atoms": np.where(dc >= 0, orig[np.maximum(dc, 0)], -1),
        }
    return out


def _to_input_atoms(pairs: dict, positions, cell) -> dict:
    """``PairSimplices`` with atoms of the input cell (a replicated cell's copies map back, index mod n) and
    the critical vertices as lattice images of those atoms."""
    from .inverse import PairSimplices

    n, inv = len(positions), np.linalg.inv(cell)

    def images(atoms, points):
        a = np.where(atoms >= 0, atoms % n, -1)
        shift = np.where(a[..., None] >= 0, points - positions[np.maximum(a, 0)], 0.0)
        return a, np.round(shift @ inv) @ cell

    out = {}
    for dim, p in pairs.items():
        ba, bs = images(p["birth_atoms"], p["birth_points"])
        da, ds = images(p["death_atoms"], p["death_points"])
        out[dim] = PairSimplices(
            birth=np.where(p["birth"] >= 0, p["birth"] % n, -1),
            death=np.where(p["death"] >= 0, p["death"] % n, -1),
            birth_critical=ba,
            birth_shift=bs,
            death_critical=da,
            death_shift=ds,
        )
    return out
