"""Structure baselines: SOAP (dscribe) and the RDF histogram, aligned with the dataset rows."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from topoamorph import baselines
from topoamorph.errors import InputFileError
from topoamorph.formats.features import read_features
from topoamorph.formats.frames import read_rows
from topoamorph.io import read_json
from topoamorph.settings import defaults
from topoamorph.stages import train
from topoamorph.stages.descriptors import structure_features
from topoamorph.structure import neighbour_histogram

DATA = Path(__file__).parent / "data" / "gap20" / "gap20_LD_iter1.extxyz"


def test_neighbour_histogram_equals_ase_for_small_and_skewed_cells():
    from ase.io import read

    cells = read(DATA, "::9") + [bulk("C", "diamond", a=3.57), bulk("C", "diamond", a=3.57).repeat((2, 1, 1))]
    skew = bulk("C", "diamond", a=3.57)  # the primitive fcc cell: 2 atoms, strongly non-orthogonal
    skew.rattle(0.05, seed=1)
    cells.append(skew)
    edges = np.linspace(0, 6.0, 61)
    for atoms in cells:
        ref = np.histogram(neighbor_list("d", atoms, 6.0), bins=edges)[0] / len(atoms)
        got = neighbour_histogram(atoms, 6.0, 60)[1]
        np.testing.assert_allclose(got, ref, atol=1e-12)
    d = bulk("C", "diamond", a=3.57)
    _, per_atom = neighbour_histogram(d, 1.6, 16)
    assert per_atom.sum() == pytest.approx(4.0)  # diamond: 4 neighbours at 1.546 Å


def test_soap_average_is_size_and_permutation_invariant():
    d = bulk("C", "diamond", a=3.57, cubic=True)
    big = d.repeat((2, 2, 2))
    perm = big[np.random.default_rng(0).permutation(len(big))]
    X = baselines.SOAPAverage(r_cut=4.0, n_max=4, l_max=3).fit().transform([d, big, perm])
    assert X.shape[0] == 3 and X.shape[1] > 10
    np.testing.assert_allclose(X[1], X[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(X[2], X[0], rtol=1e-6, atol=1e-9)
    R = baselines.RDFHistogram(r_max=3.0, bins=30).fit().transform([d, big])
    np.testing.assert_allclose(R[0], R[1])
    frames = [d, big, perm, d, big]
    serial = baselines.RDFHistogram(r_max=3.0, bins=30).fit().transform(frames)
    np.testing.assert_array_equal(baselines.RDFHistogram(r_max=3.0, bins=30, n_jobs=2).fit().transform(frames), serial)


def _dataset(tmp_path, n=12):
    """A minimal dataset file whose rows point at frames of a real extxyz file."""
    from topoamorph.formats.dataset import FORMAT as DATASET_FORMAT

    path = tmp_path / "ds.h5"
    with h5py.File(path, "w") as h:
        h.attrs["format"] = DATASET_FORMAT
        h["X"] = np.random.default_rng(0).random((n, 1, 4, 4)).astype(np.float32)
        from ase.io import read

        index = np.arange(n)[::-1]  # rows need not follow the file's order
        frames = [read(DATA, f":{n}")[i] for i in index]
        h["y"] = np.array([a.get_potential_energy() / len(a) for a in frames])
        m = h.create_group("meta")
        m.create_dataset("source", data=[str(DATA)] * n, dtype=h5py.string_dtype())
        m["index"] = index
        m["density"] = np.full(n, 2.0)
        m["energy"] = np.array([a.get_potential_energy() for a in frames])
        m.create_dataset("stage", data=["s"] * n, dtype=h5py.string_dtype())
        m["n_atoms"] = np.array([len(a) for a in frames])
    return path


def test_structure_features_follow_dataset_rows(tmp_path):
    from ase.io import read

    ds = _dataset(tmp_path)
    params = {"soap": {"r_cut": 4.0, "n_max": 3, "l_max": 2, "sigma": 0.5}, "rdf": {"r_max": 4.0, "bins": 20}}
    out = tmp_path / "feat.h5"
    structure_features(dataset=str(ds), frames=[str(DATA)], features=str(out), baselines=params, species=["C"])
    from topoamorph.formats.dataset import Dataset

    with Dataset(ds) as d:
        meta = d.meta
    feats = read_features(out, meta)
    frames = read(DATA, ":12")
    np.testing.assert_allclose(feats["rdf"][0], neighbour_histogram(frames[11], 4.0, 20)[1])
    np.testing.assert_allclose(feats["rdf"][11], neighbour_histogram(frames[0], 4.0, 20)[1])
    # a features file for other rows is refused, with its path
    meta2 = dict(meta, index=meta["index"][::-1])
    with pytest.raises(InputFileError, match="feat.h5.*rows"):
        read_features(out, meta2)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[:2000])
    with pytest.raises(InputFileError, match="cut.h5"):
        read_features(cut, meta)


def test_missing_frame_is_named(tmp_path):
    with pytest.raises(InputFileError, match="frame 500"):
        read_rows(np.array([str(DATA)], dtype=object), np.array([500]))


def test_baselines_and_learning_curve_stages(tmp_path):
    ds = _dataset(tmp_path, n=40)
    feat = tmp_path / "feat.h5"
    params = {"soap": {"r_cut": 4.0, "n_max": 3, "l_max": 2, "sigma": 0.5}, "rdf": {"r_max": 5.0, "bins": 25}}
    structure_features(dataset=str(ds), frames=[str(DATA)], features=str(feat), baselines=params, species=["C"])
    split = tmp_path / "split.json"
    train.split(
        dataset=str(ds),
        split=str(split),
        settings={"test_fraction": 0.25, "by": "frame", "validation_fraction": 0.2},
        seed=1,
    )
    outs = {n: (str(tmp_path / f"{n}.json"), str(tmp_path / f"{n}.csv")) for n in ("mean", "density", "soap", "rdf")}
    train.train_baselines(
        dataset=str(ds),
        split=str(split),
        features=str(feat),
        metrics=[m for m, _ in outs.values()],
        predictions=[p for _, p in outs.values()],
        model_files=[str(tmp_path / f"{n}.npz") for n in outs],
        names=list(outs),
        baselines=params,
        uncertainty=defaults()["train"]["uncertainty"],
        species=["C"],
        seed=1,
    )
    for name, (m, _p) in outs.items():
        got = read_json(m)
        assert got["model"] == name and got["validation"]["n"] == 6 and got["test"]["n"] == 10
        assert got["provenance"]["seed"] == 1
    assert read_json(outs["soap"][0])["hyperparameters"]["descriptor"] == params["soap"]
    assert (
        read_json(outs["soap"][0])["test"]["mae_mev_per_atom"] < read_json(outs["mean"][0])["test"]["mae_mev_per_atom"]
    )
    lc = tmp_path / "lc.json"
    curve = train.learning_curve(
        dataset=str(ds),
        split=str(split),
        features=str(feat),
        curve=str(lc),
        settings={"fractions": [0.5, 1.0], "models": ["ridge", "soap"]},
        models_params={"ridge": {"n_alphas": 5}},
        seed=1,
    )
    assert [r["n_train"] for r in curve["models"]["soap"]] == [12, 24]
    assert read_json(lc)["models"]["ridge"][1]["test"]["n"] == 10


def test_learning_curve_cnn_budget_in_optimizer_steps():
    cnn = {"epochs": 10, "patience": 3, "batch_size": 32}
    assert train.cnn_budget(cnn, 12_118, 12_118) == cnn
    small = train.cnn_budget(cnn, 12_118, 606)  # 379 batches per epoch against 19: 19.9x the epochs
    assert small["epochs"] == 200 and small["patience"] == 60 and small["batch_size"] == 32
    assert small["validate_every"] == 20
    assert train.cnn_budget(cnn, 12_118, 606, "epochs") == cnn
    assert train.cnn_budget(cnn, 100, 10)["epochs"] == 40  # 4 batches against 1
    with pytest.raises(ValueError, match="cnn_budget"):
        train.cnn_budget(cnn, 100, 10, "minutes")
    assert defaults()["train"]["learning_curve"]["cnn_budget"] == "steps"


def test_learning_curve_cnn_points_take_the_full_sizes_steps(tmp_path):
    ds = _dataset(tmp_path, n=40)
    split = tmp_path / "split.json"
    train.split(
        dataset=str(ds),
        split=str(split),
        settings={"test_fraction": 0.25, "by": "frame", "validation_fraction": 0.2},
        seed=1,
    )
    cnn = dict(defaults()["train"]["cnn"], epochs=2, patience=2, batch_size=4, channels=[2], hidden=4)
    curve = train.learning_curve(
        dataset=str(ds),
        split=str(split),
        features="",
        curve=str(tmp_path / "lc.json"),
        settings={"fractions": [0.25, 1.0], "models": ["cnn"], "cnn_budget": "steps"},
        models_params={"cnn": cnn},
        seed=1,
    )
    small, full = curve["models"]["cnn"]
    assert (small["n_train"], full["n_train"]) == (6, 24)
    assert (small["epochs"], full["epochs"]) == (6, 2)  # 6 batches per epoch at full size, 2 at 6 frames
    assert 1 <= small["epochs_run"] <= 6 and full["epochs_run"] <= 2
    assert (small["validate_every"], full["validate_every"]) == (3, 1)
