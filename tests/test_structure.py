import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, graphene

from topoamorph import structure


def test_diamond_is_all_sp3_with_first_rdf_peak_at_the_bond():
    d = bulk("C", "diamond", a=3.567, cubic=True).repeat(2)
    h = structure.hybridisation(d)
    assert h["sp3"] == 1.0 and h["mean_coordination"] == 4.0
    r, g = structure.rdf(d, rmax=3.0, nbins=300)
    assert r[np.nonzero(g)[0][0]] == pytest.approx(3.567 * np.sqrt(3) / 4, abs=0.01)  # first shell: the bond


def test_graphite_layers_are_sp2_and_chains_sp():
    g = graphene(a=2.46, vacuum=0.0)
    g.cell[2, 2] = 3.35  # stacked layers, 3.35 Å apart: beyond the bond cutoff
    g.pbc = True
    g = g.repeat((3, 3, 2))
    assert structure.hybridisation(g)["sp2"] == 1.0
    chain = Atoms("C4", positions=[[0, 0, 0], [1.3, 0, 0], [2.6, 0, 0], [3.9, 0, 0]], cell=[5.2, 8, 8], pbc=True)
    assert structure.hybridisation(chain)["sp"] == 1.0


def test_ideal_gas_rdf_is_about_one():
    rng = np.random.default_rng(0)
    gas = Atoms("C2000", positions=rng.uniform(0, 30, (2000, 3)), cell=[30] * 3, pbc=True)
    r, g = structure.rdf(gas, rmax=6.0, nbins=12)
    assert np.all(np.abs(g[4:] - 1) < 0.15)


def test_report_analyses_evenly_spaced_frames_of_each_file(tmp_path):
    from ase.io import write

    from topoamorph.stages.report import sampled_frames

    d = bulk("C", "diamond", a=3.567, cubic=True)
    frames = []
    for i in range(10):
        a = d.copy()
        a.info["step"] = i
        frames.append(a)
    path = tmp_path / "run1.extxyz"
    write(path, frames, format="extxyz")
    got = sampled_frames(str(path), 4)
    assert [f.index for f in got] == [0, 3, 6, 9] and [f.atoms.info["step"] for f in got] == [0, 3, 6, 9]
    assert [f.index for f in sampled_frames(f"{path}@2:8", 4)] == [2, 4, 5, 7]
    assert [f.index for f in sampled_frames(str(path), 64)] == list(range(10))


def test_environments_and_hybridisation_share_one_classification():
    from ase.build import bulk

    from topoamorph import report, structure

    assert structure.environment_of([0, 1, 2, 3, 4, 5]).tolist() == ["sp", "sp", "sp", "sp2", "sp3", "sp3"]
    diamond = bulk("C", "diamond", a=3.567, cubic=True)
    assert set(report.environments(diamond)) == {"sp3"}
    h = structure.hybridisation(diamond)
    assert (h["sp"], h["sp2"], h["sp3"], h["mean_coordination"]) == (0.0, 0.0, 1.0, 4.0)
