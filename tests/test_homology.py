import math
import os

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topoamorph import alpha_fast, homology
from topoamorph.errors import HomologyError

from conftest import random_cell

ESSENTIAL = {0: 1, 1: 3, 2: 3}  # Betti numbers of the 3-torus


def finite(p):
    return p[np.isfinite(p[:, 1])]


def essential(p):
    return p[~np.isfinite(p[:, 1])]


def assert_same(a, b, tol=1e-9):
    for d in a:
        assert a[d].shape == b[d].shape, d
        fa, fb = finite(a[d]), finite(b[d])
        np.testing.assert_allclose(np.sort(fa, axis=0), np.sort(fb, axis=0), atol=tol)
        np.testing.assert_allclose(np.sort(essential(a[d])[:, 0]), np.sort(essential(b[d])[:, 0]), atol=tol)


def simple_cubic(n, a):
    g = np.arange(n) * a
    pos = np.array(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1).T
    return Atoms(f"C{n**3}", positions=pos, cell=[n * a] * 3, pbc=True)


@pytest.mark.parametrize("n, a", [(4, 1.5), (5, 1.3)])
def test_simple_cubic_lattice_has_its_analytic_diagram(n, a):
    N = n**3
    dg = homology.persistence_diagrams(simple_cubic(n, a), diagram="torus")
    # edges at a²/4 connect everything; squares fill at a²/2; cubes at 3a²/4
    assert np.allclose(finite(dg[0]), [0, a * a / 4]) and len(finite(dg[0])) == N - 1
    assert np.allclose(finite(dg[1]), [a * a / 4, a * a / 2]) and len(finite(dg[1])) == 2 * N - 2
    assert np.allclose(finite(dg[2]), [a * a / 2, 3 * a * a / 4]) and len(finite(dg[2])) == N - 1
    for d, k in ESSENTIAL.items():
        assert len(essential(dg[d])) == k


def test_values_are_squared_radii_in_angstrom2():
    # two atoms 1.0 Å apart along x in a big cell: the H0 pair dies at (1.0/2)^2
    atoms = Atoms("C2", positions=[[2, 2, 2], [3, 2, 2]], cell=[6, 6, 6], pbc=True)
    dg = homology.persistence_diagrams(atoms, maxdim=0)
    assert finite(dg[0])[0, 1] == pytest.approx(0.25)


@pytest.mark.parametrize("n, density", [(64, 2.0), (64, 3.5), (100, 2.6)])
def test_amorphous_like_cells_pd0_and_essential_counts(n, density):
    res = homology.compute(random_cell(n, density, seed=n), diagram="torus")
    dg = res.diagrams
    assert len(finite(dg[0])) == n * res.replicas - 1
    assert np.all(finite(dg[0])[:, 0] == 0)
    for d, k in ESSENTIAL.items():
        assert len(essential(dg[d])) == k
    for d in dg:
        f = finite(dg[d])
        assert np.all(f[:, 1] - f[:, 0] > homology.ZERO_PERSISTENCE)


def test_small_cells_are_replicated_and_recorded():
    diamond = bulk("C", "diamond", a=3.567, cubic=True)  # 8 atoms: too small for its own quotient
    res = homology.compute(diamond, diagram="torus")
    assert res.replicas == 8
    assert len(finite(res.diagrams[0])) == 8 * 8 - 1
    # finite features of a crystal repeat: every diamond H0 death is the bond midpoint, (1.5445/2)^2
    assert np.allclose(finite(res.diagrams[0])[:, 1], (3.567 * np.sqrt(3) / 8) ** 2, atol=1e-6)
    # a single atom in a cube is a simple cubic lattice once replicated
    one = homology.compute(Atoms("C", positions=[[0.3, 0.2, 0.1]], cell=[2.0] * 3, pbc=True), diagram="torus")
    assert one.replicas == 27 and np.allclose(finite(one.diagrams[1]), [1.0, 2.0])


def test_larger_cell_needs_no_replication():
    assert homology.compute(random_cell(64, 3.0, seed=1)).replicas == 1


def test_bad_structures_are_refused():
    with pytest.raises(HomologyError, match="periodic"):
        homology.compute(Atoms("C2", positions=[[0, 0, 0], [1, 0, 0]], cell=[5, 5, 5], pbc=False))
    bad = random_cell(10, 2.0, 0)
    bad.positions[3, 1] = np.nan
    with pytest.raises(HomologyError, match="NaN"):
        homology.compute(bad)
    with pytest.raises(HomologyError, match="backend"):
        homology.compute(random_cell(10, 2.0, 0), backend="cech")


# ---------------------------------------------------------------- invariants (hypothesis)
cells = st.tuples(st.integers(20, 48), st.floats(1.8, 3.4), st.integers(0, 10**6))
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cells, st.tuples(st.floats(-20, 20), st.floats(-20, 20), st.floats(-20, 20)))
def test_translation_invariance(cell, shift):
    atoms = random_cell(*cell)
    moved = atoms.copy()
    moved.translate(shift)
    assert_same(homology.persistence_diagrams(atoms), homology.persistence_diagrams(moved), tol=1e-7)


@SETTINGS
@given(cells, st.randoms(use_true_random=False))
def test_permutation_invariance(cell, rnd):
    atoms = random_cell(*cell)
    order = list(range(len(atoms)))
    rnd.shuffle(order)
    assert_same(homology.persistence_diagrams(atoms), homology.persistence_diagrams(atoms[order]))


@SETTINGS
@given(cells, st.integers(-3, 3), st.integers(-3, 3))
def test_wrapping_invariance(cell, i, j):
    atoms = random_cell(*cell)
    unwrapped = atoms.copy()
    pos = unwrapped.get_positions()
    pos[::2] += i * atoms.cell[0] + j * atoms.cell[2]
    unwrapped.set_positions(pos)
    assert_same(homology.persistence_diagrams(atoms), homology.persistence_diagrams(unwrapped), tol=1e-7)


@SETTINGS
@given(cells)
def test_euler_characteristic_of_the_torus_in_the_diagrams(cell):
    # at a filtration value beyond every death, Betti numbers are those of the torus: 1, 3, 3
    dg = homology.persistence_diagrams(random_cell(*cell), diagram="torus")
    top = max(finite(dg[d])[:, 1].max() for d in dg if len(finite(dg[d])))
    for d, k in ESSENTIAL.items():
        alive = np.sum((dg[d][:, 0] <= top) & (dg[d][:, 1] > top))
        assert alive == k


# ---------------------------------------------------------------- Delaunay backends (CGAL extension, Qhull)
HAVE_CGAL = alpha_fast.default_delaunay() == "cgal"
# `make test` sets TOPOAMORPH_REQUIRE_CGAL=1: there a missing extension fails the suite instead of skipping
needs_cgal = pytest.mark.skipif(
    not HAVE_CGAL and os.environ.get("TOPOAMORPH_REQUIRE_CGAL") != "1",
    reason="topoamorph._delaunay not built (needs CGAL's headers: apt-get install libcgal-dev)",
)


@needs_cgal
def test_the_cgal_extension_is_built_and_is_the_default():
    assert HAVE_CGAL, "topoamorph._delaunay is not importable: reinstall with CGAL's headers (make venv)"


@needs_cgal
@settings(max_examples=25, deadline=None)
@given(st.integers(5, 400), st.integers(0, 10**6), st.floats(1e-3, 1e3))
def test_cgal_and_qhull_give_the_same_delaunay_tetrahedra(n, seed, scale):
    pts = np.random.default_rng(seed).uniform(-scale, scale, (n, 3))
    a = alpha_fast.delaunay_tetrahedra(pts, "cgal")
    b = alpha_fast.delaunay_tetrahedra(pts, "qhull")
    assert a.dtype == np.int64 and a.shape[1] == 4
    assert np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0))
    assert np.all(a[:, :-1] < a[:, 1:])  # rows sorted


@needs_cgal
@SETTINGS
@given(cells)
def test_diagrams_do_not_depend_on_the_delaunay_backend(cell):
    atoms = random_cell(*cell)
    pos, box = atoms.get_positions(), atoms.cell[:]
    q = homology.periodic_alpha(pos, box, maxdim=2, precision="safe", delaunay="qhull")
    c = homology.periodic_alpha(pos, box, maxdim=2, precision="safe", delaunay="cgal")
    assert q.info["path"] in ("qhull", "cgal") and c.info["path"] in ("cgal-delaunay", "cgal")
    for d in range(3):  # bit for bit: the same simplices, the same NumPy arithmetic
        assert np.array_equal(q.diagrams[d], c.diagrams[d])


@needs_cgal
def test_cospherical_atoms_send_cgal_to_the_exact_path():
    """A simple cubic crystal: eight atoms on each cube's circumsphere. CGAL's triangulation is valid but not
    unique there (no flat tetrahedra to betray it, unlike Qhull's): the fast path refuses it."""
    atoms = simple_cubic(4, 1.5)
    res = homology.periodic_alpha(atoms.get_positions(), atoms.cell[:], maxdim=2, precision="safe", delaunay="cgal")
    assert res.info["path"] == "cgal"
    g = np.arange(4.0)
    pts = np.array(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1).T
    assert alpha_fast.alpha_filtration(pts, np.ones(len(pts), dtype=bool), "cgal") is None


@needs_cgal
def test_the_extension_refuses_bad_input_with_one_line():
    from topoamorph import _delaunay

    with pytest.raises(TypeError, match="float64"):
        _delaunay.tetrahedra(np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="n x 3"):
        _delaunay.tetrahedra(np.zeros(7))
    with pytest.raises(ValueError, match="span only 2 dimension"):
        _delaunay.tetrahedra(np.c_[np.random.default_rng(0).random((10, 2)), np.zeros(10)])


def test_an_unknown_delaunay_backend_is_refused():
    with pytest.raises(ValueError, match="unknown Delaunay backend 'tetgen'"):
        alpha_fast.delaunay_tetrahedra(np.random.default_rng(0).random((10, 3)), "tetgen")


# ---------------------------------------------------------------- the crystal's diagram (twisted coefficients)
@pytest.mark.parametrize("n, a", [(4, 1.5), (5, 1.3)])
def test_simple_cubic_crystal_has_its_analytic_diagram(n, a):
    # per atom of the infinite lattice: 1 vertex, 3 edges at a²/4, 3 squares at a²/2, 1 cube at 3a²/4; every
    # class dies: N components, 2N loops (3N edges - N vertices), N voids (3N squares - 2N loops)
    N = n**3
    dg = homology.persistence_diagrams(simple_cubic(n, a))
    assert all(len(essential(dg[d])) == 0 for d in dg)
    assert np.allclose(dg[0], [0, a * a / 4]) and len(dg[0]) == N
    assert np.allclose(dg[1], [a * a / 4, a * a / 2]) and len(dg[1]) == 2 * N
    assert np.allclose(dg[2], [a * a / 2, 3 * a * a / 4]) and len(dg[2]) == N


@pytest.mark.parametrize("n, density", [(64, 2.0), (64, 3.5), (100, 2.6)])
def test_crystal_diagram_has_no_essential_class_and_every_component_dies(n, density):
    res = homology.compute(random_cell(n, density, seed=n))
    assert res.info["diagram"] == "crystal"
    assert all(np.all(np.isfinite(res.diagrams[d])) for d in res.diagrams)
    assert len(res.diagrams[0]) == n * res.replicas and np.all(res.diagrams[0][:, 0] == 0)


@SETTINGS
@given(cells, st.sampled_from([(2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 2), (3, 1, 2)]))
def test_crystal_diagram_of_a_supercell_is_its_copies(cell, rep):
    # size consistency: a supercell of k cells gives each pair of the cell k times, so the per-atom image is equal
    atoms = random_cell(*cell)
    one, sup = homology.compute(atoms), homology.compute(atoms.repeat(rep))
    # a cell too small for its own complex is replicated: compare per atom of the complexes
    common = math.lcm(one.n_complex, sup.n_complex)
    k_one, k_sup = common // one.n_complex, common // sup.n_complex
    for d in one.diagrams:
        assert k_sup * len(sup.diagrams[d]) == k_one * len(one.diagrams[d])
        for col in (0, 1):
            np.testing.assert_allclose(
                np.sort(np.repeat(sup.diagrams[d][:, col], k_sup)),
                np.sort(np.repeat(one.diagrams[d][:, col], k_one)),
                rtol=0,
                atol=1e-9,
            )


def test_torus_diagram_of_supercells_tends_to_the_crystal_diagram():
    from topoamorph.descriptors import PersistenceImage

    atoms = random_cell(100, 2.4, seed=3)
    vec = PersistenceImage(bins=20).fit()
    crystal = vec.transform([homology.compute(atoms)])[0]
    gaps = [
        np.abs(vec.transform([homology.compute(atoms.repeat(k), diagram="torus")])[0] - crystal).sum()
        for k in (1, 2, 3)
    ]
    assert homology.compute(atoms).replicas == 1
    assert gaps[0] > gaps[1] > gaps[2] > 0


def test_unknown_diagram_is_refused():
    with pytest.raises(HomologyError, match="unknown diagram"):
        homology.compute(random_cell(10, 2.0, 0), diagram="sphere")
