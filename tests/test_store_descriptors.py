import h5py
import numpy as np
import pytest

from topoamorph import homology
from topoamorph.descriptors import PersistenceHistogram
from topoamorph.errors import InputFileError
from topoamorph.formats.dataset import Dataset
from topoamorph.formats.diagrams import read_diagrams, write_diagrams
from topoamorph.persistence import PersistenceResult
from topoamorph.stages.descriptors import descriptors

from conftest import random_cell


def record(i, atoms, res):
    return {
        "source": "x.extxyz",
        "index": i,
        "n_atoms": len(atoms),
        "energy": -7.0 * len(atoms) - i,
        "density": 2.5,
        "stage": "quench2",
        "run": 1,
        "info": {"seed": 1},
        "replicas": res.replicas,
        "diagrams": res.diagrams,
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "batch0000.h5"
    recs = []
    for i, (n, rho) in enumerate([(40, 2.0), (64, 3.0), (8, 3.5)]):
        atoms = random_cell(n, rho, seed=i)
        recs.append(record(i, atoms, homology.compute(atoms)))
    write_diagrams(path, recs, "alpha", 2, homology.UNITS["alpha"], {"test": True})
    return path, recs


def test_diagrams_round_trip_exactly(batch):
    path, recs = batch
    back = read_diagrams(path)
    assert back["attrs"]["units"].startswith("angstrom^2")
    assert list(back["frames"]["n_atoms"]) == [40, 64, 8]
    assert list(back["frames"]["replicas"]) == [r["replicas"] for r in recs]
    for a, r in zip(back["diagrams"], recs):
        for d in range(3):
            np.testing.assert_array_equal(a[d], r["diagrams"][d])


def test_selected_frames_read_alone_and_across_batches(batch, tmp_path):
    from topoamorph.stages.report import diagrams_of_rows

    path, recs = batch
    part = read_diagrams(path, frames=[2, 0])
    assert list(part["frames"]["index"]) == [2, 0] and [r.n_atoms for r in part["results"]] == [8, 40]
    for got, want in zip(part["diagrams"], [recs[2], recs[0]]):
        for d in range(3):
            np.testing.assert_array_equal(got[d], want["diagrams"][d])
    with pytest.raises(InputFileError, match="holds 3 frames"):
        read_diagrams(path, frames=[3])
    second = tmp_path / "batch0001.h5"
    write_diagrams(second, recs[:2], "alpha", 2, homology.UNITS["alpha"], {"test": True})
    rows = diagrams_of_rows([path, second], [4, 1, 3])  # rows 3, 4 are the second file's frames 0, 1
    for got, want in zip(rows, [recs[1], recs[1], recs[0]]):
        for d in range(3):
            np.testing.assert_array_equal(got[d], want["diagrams"][d])


def test_truncated_or_foreign_files_are_named(batch, tmp_path):
    path, _ = batch
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputFileError, match="cut.h5"):
        read_diagrams(cut)
    forged = tmp_path / "forged.h5"
    forged.write_bytes(path.read_bytes())
    with h5py.File(forged, "a") as h:
        del h["pd1/offsets"]
        h["pd1/offsets"] = np.array([0, 1])
    with pytest.raises(InputFileError, match="forged.h5.*pd1"):
        read_diagrams(forged)
    with pytest.raises(InputFileError, match="missing.h5"):
        read_diagrams(tmp_path / "missing.h5")


PAIR_FIELDS = ("birth", "death", "birth_critical", "death_critical", "birth_shift", "death_shift")


def _same_pairs(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for d in want:
        for k in PAIR_FIELDS:
            np.testing.assert_array_equal(getattr(got[d], k), getattr(want[d], k), err_msg=f"pd{d} {k}")


def test_pair_simplices_round_trip_exactly(tmp_path):
    """homology.keep_simplices: every finite pair's birth/death simplices, critical simplices and lattice
    shifts read back bit-equal to the on-demand computation (random cells, two computed replicated), for the
    whole file and a subset of frames; a file without them reads as before."""
    recs, results, cells = [], [], []
    for i, (n, rho) in enumerate([(40, 2.0), (64, 3.0), (8, 3.5), (30, 2.6)]):
        atoms = random_cell(n, rho, seed=10 + i)
        res = homology.compute(atoms, keep_simplices=True)
        results.append(res)
        cells.append(atoms)
        recs.append(dict(record(i, atoms, res), pairs=res.pairs, cell=atoms.cell[:]))
    assert {r.replicas for r in results} == {1, 8}
    path = tmp_path / "kept.h5"
    write_diagrams(path, recs, "alpha", 2, homology.UNITS["alpha"], {"test": True})
    back = read_diagrams(path)
    for got, want in zip(back["results"], results):
        _same_pairs(got.pairs, want.pairs)
        for d in range(3):
            np.testing.assert_array_equal(got.diagrams[d], want.diagrams[d])
    part = read_diagrams(path, frames=[3, 1])
    for got, want in zip(part["results"], [results[3], results[1]]):
        _same_pairs(got.pairs, want.pairs)
    assert "cell" not in back["frames"]  # the per-frame columns (the dataset's metadata) are unchanged
    assert all(r.pairs is None for r in read_diagrams(path, frames=[0], simplices=False)["results"])
    with h5py.File(path) as h:
        assert h["frames/cell"].shape == (4, 3, 3) and h["frames/cell"].dtype == np.float64
        assert h["pd1/birth"].dtype == np.int32 and h["pd1/death_critical"].shape == h["pd1/birth"].shape
        assert h["pd2/death_image"].dtype == np.int8 and h["pd2/death_image"].shape[1:] == (4, 3)
        assert h["pd1/birth"].shape[0] == h["pd1/pairs"].shape[0]
    plain = tmp_path / "plain.h5"
    write_diagrams(
        plain,
        [record(i, a, r) for i, (a, r) in enumerate(zip(cells, results))],
        "alpha",
        2,
        homology.UNITS["alpha"],
        {"test": True},
    )
    back = read_diagrams(plain)
    assert all(r.pairs is None for r in back["results"])
    with h5py.File(plain) as h:
        assert "cell" not in h["frames"] and "birth" not in h["pd1"]
    with pytest.raises(ValueError, match="some frames"):
        write_diagrams(
            tmp_path / "mixed.h5", recs[:1] + [record(1, cells[1], results[1])], "alpha", 2, homology.UNITS["alpha"], {}
        )


def test_homology_stage_keeps_simplices_on_request(tmp_path):
    """``homology.keep_simplices: true`` through the homology stage (``distribute.run``); refused with rips by a
    config-key error, at config validation."""
    from ase.io import read, write

    from topoamorph import config, distribute
    from topoamorph.errors import ConfigError
    from topoamorph.settings import HomologySettings

    cells = [random_cell(24, 2.4, seed=s) for s in range(3)]
    for k, a in enumerate(cells):
        a.info["energy"] = -7.0 * len(a) + k
    frames = tmp_path / "f.extxyz"
    write(frames, cells, format="extxyz")
    out = tmp_path / "batch0000.h5"
    assert (
        distribute.run(
            [f"{frames}@1:3"], str(out), HomologySettings.from_config({"keep_simplices": True}), energy_key="energy"
        )
        == 0
    )
    back = read_diagrams(out)
    assert back["attrs"]["provenance"].count('"keep_simplices": true') == 1
    for got, atoms in zip(back["results"], read(frames, "1:3")):  # as written: extxyz rounds positions
        _same_pairs(got.pairs, homology.compute(atoms, keep_simplices=True).pairs)
    for block in ({"backend": "rips", "keep_simplices": True},):
        with pytest.raises(ConfigError, match="homology.keep_simplices.*alpha filtration only"):
            HomologySettings.from_config(block)
        with pytest.raises(ConfigError, match="homology.keep_simplices"):
            config.load(overrides={"homology": block})
    assert not HomologySettings.from_config({}).keep_simplices


def test_histogram_counts_and_normalisation():
    dg = {0: np.array([[0, 0.5], [0, 0.7], [0, np.inf]]), 1: np.array([[1.0, 2.0], [9.0, 12.0]]), 2: np.zeros((0, 2))}
    vec = PersistenceHistogram(dims=(0, 1, 2), bins=10, range=(0, 10)).fit()
    X = vec.images([PersistenceResult(dg, n_atoms=2)])
    assert X.shape == (1, 3, 10, 10)
    assert X[0, 0].sum() == pytest.approx(1.0)  # two finite H0 pairs / 2 atoms; the essential one excluded
    assert X[0, 1, 1, 2] == pytest.approx(0.5)  # birth bin 1, death bin 2
    assert X[0, 1].sum() == pytest.approx(0.5)  # (9, 12) is out of range
    assert vec.out_of_range_fraction([dg]) == pytest.approx(1 / 4)
    raw = PersistenceHistogram(dims=(1,), bins=10, range=(0, 10), normalize="none").fit_transform([dg])
    assert raw.shape == (1, 100)
    assert raw.sum() == 1.0
    with pytest.raises(ValueError, match="n_atoms"):
        vec.transform([dg])
    assert len(vec.get_feature_names_out()) == 300


def test_replicated_frames_normalise_like_the_original():
    from ase.build import bulk

    small = bulk("C", "diamond", a=3.567, cubic=True)
    rs, r2, r3 = (homology.compute(small.repeat(k)) for k in (1, 2, 3))
    assert (rs.replicas, r2.replicas, r3.replicas) == (8, 1, 1)
    # the replicated 8-atom cell is exactly the explicit 2x2x2 supercell
    for d in range(3):
        np.testing.assert_allclose(rs.diagrams[d], r2.diagrams[d], atol=1e-7)
    # per-atom histograms of different cell sizes agree up to the 1/N effect of the essential classes
    vec = PersistenceHistogram(bins=20, range=(0, 4)).fit()
    assert rs.n_complex == len(small) * rs.replicas and r3.n_complex == 216
    xs, x3 = vec.images([rs, r3])
    for c in range(3):
        assert np.abs(xs[c] - x3[c]).sum() <= 3 * (1 / 64 + 1 / 216) + 1e-12


def test_dataset_file(batch, tmp_path):
    path, recs = batch
    out = tmp_path / "ds.h5"
    info = descriptors(
        diagrams=[str(path)],
        dataset=str(out),
        descriptors={"kind": "histogram", "dims": [0, 1, 2], "bins": 8, "range": [0, 10]},
    )
    assert info["shape"] == [3, 3, 8, 8]
    with Dataset(out) as ds:
        assert len(ds) == 3
        np.testing.assert_allclose(ds.y, [r["energy"] / r["n_atoms"] for r in recs])
        assert ds.attrs["y_units"] == "eV/atom" and list(ds.meta["stage"]) == ["quench2"] * 3
        np.testing.assert_array_equal(ds.rows([2, 0, 2]), ds.X[()][[2, 0, 2]])
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[:1000])
    with pytest.raises(InputFileError, match="cut.h5"):
        Dataset(cut)
