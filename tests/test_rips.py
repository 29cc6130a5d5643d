import numpy as np
import pytest

from topoamorph import homology
from topoamorph.errors import HomologyError

from conftest import random_cell


def finite(p):
    return p[np.isfinite(p[:, 1])]


def test_replication_keeps_the_threshold_below_a_third_of_the_cell():
    cell = np.diag([12.0, 12.0, 12.0])
    assert homology.rips_replication(cell, 3.9) == 1
    assert homology.rips_replication(cell, 4.0) == 2  # at L/3 wrap-around triangles appear
    assert homology.rips_replication(cell, 8.1) == 3
    atoms = random_cell(64, 2.0, seed=3)  # L = 7.3 Å
    res = homology.compute(atoms, backend="rips", threshold=3.0, maxdim=1)
    assert res.replicas == 8 and len(finite(res.diagrams[0])) == 8 * 64 - 1


def test_rips_h0_is_twice_the_square_root_of_alpha_h0():
    atoms = random_cell(216, 2.0, seed=5)  # L = 13.7 Å, threshold 4 < L/3
    rips = homology.compute(atoms, backend="rips", threshold=4.0)
    alpha = homology.compute(atoms, diagram="torus")
    assert rips.replicas == 1
    np.testing.assert_allclose(
        np.sort(finite(rips.diagrams[0])[:, 1]), np.sort(2 * np.sqrt(finite(alpha.diagrams[0])[:, 1])), atol=1e-5
    )
    assert np.all(finite(rips.diagrams[1])[:, 1] <= 4.0 + 1e-6)


def test_local_features_repeat_exactly_in_a_supercell():
    atoms = random_cell(216, 2.0, seed=7)
    one = homology.periodic_rips(atoms.get_positions(), atoms.cell[:], maxdim=2, threshold=3.5, replicas=1)
    two = homology.periodic_rips(atoms.get_positions(), atoms.cell[:], maxdim=2, threshold=3.5, replicas=2)
    assert two.replicas == 8
    # voids (H2) cannot wind around the torus: the 2x2x2 cover has each of them 8 times
    np.testing.assert_allclose(
        np.sort(np.repeat(finite(one.diagrams[2]), 8, axis=0), axis=0),
        np.sort(finite(two.diagrams[2]), axis=0),
        atol=1e-6,
    )


def test_rips_values_are_lengths_and_errors_are_clear():
    assert homology.UNITS["rips"].startswith("angstrom ")
    with pytest.raises(HomologyError, match="threshold"):
        homology.compute(random_cell(20, 2.0, 0), backend="rips", threshold=-1.0)
