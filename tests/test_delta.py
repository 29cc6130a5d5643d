"""Δ-learning (``train.delta``): the engine's energy of every dataset row, models trained on what the engine
misses, and every surface (predict, apply, energy_and_forces, the ASE calculator, explain) adding the engine back.
The engine here is LAMMPS/Tersoff (milliseconds per frame); the reference is Tersoff plus a known correction."""

import csv

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from test_potential import DESCRIPTORS, _fd_check

from topoamorph import engines, load_model
from topoamorph.calculator import TopoamorphCalculator
from topoamorph.errors import InputFileError
from topoamorph.formats.dataset import Dataset
from topoamorph.formats.delta import read_delta_energies
from topoamorph.provenance import skip_comments
from topoamorph.settings import defaults
from topoamorph.trained import FrameSet

from conftest import ROOT

GAP = ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz"
TERSOFF = {"name": "lammps", "potential": "tersoff"}


def tersoff(frames):
    calc = engines.calculator(TERSOFF, "C")
    out = []
    for a in frames:
        b = a.copy()
        b.calc = calc
        out.append((b.get_potential_energy(), b.get_forces()))
    return out


def correction(atoms):
    """A known correction per atom the PH model can learn: linear in the density (eV/atom)."""
    return 0.3 - 0.1 * len(atoms) / atoms.get_volume()


@pytest.fixture(scope="module")
def delta_models(tmp_path_factory):
    """One dataset of 24 GAP-20 frames relabelled Tersoff + correction; ridge and CNN trained with train.delta =
    Tersoff, and ridge without Δ on the same split (in ``plain``)."""
    from topoamorph import distribute
    from topoamorph.settings import HomologySettings
    from topoamorph.stages import descriptors as sd
    from topoamorph.stages import train

    d = defaults()
    res = tmp_path_factory.mktemp("delta")
    frames = read(GAP, "24:48")  # 16 frames of 216 atoms, 8 of 72
    for a, (e, _) in zip(frames, tersoff(frames)):
        a.calc = SinglePointCalculator(a, energy=e + correction(a) * len(a))
    write(res / "labelled.extxyz", frames)
    hom = HomologySettings.from_config({})
    assert distribute.run([str(res / "labelled.extxyz")], str(res / "batch0000.h5"), hom, energy_key="energy") == 0
    dataset = str(res / "descriptors.h5")
    sd.descriptors(diagrams=[str(res / "batch0000.h5")], dataset=dataset, descriptors=DESCRIPTORS)
    sd.delta_energies(
        dataset=dataset,
        frames=[str(res / "labelled.extxyz")],
        energies=str(res / "delta.h5"),
        engine=TERSOFF,
        element="C",
        workdir=str(res / "work"),
    )
    train.split(
        dataset=dataset,
        split=str(res / "split.json"),
        settings={"by": "frame", "test_fraction": 0.25, "validation_fraction": 0.2},
        seed=3,
    )
    unc = dict(d["train"]["uncertainty"], bootstrap=4, cnn_members=2)
    common = dict(
        dataset=dataset,
        split=str(res / "split.json"),
        seed=3,
        species=["C"],
        uncertainty=unc,
        homology=hom.compute_options(),
    )
    plain = res / "plain"
    plain.mkdir()
    train.train_ridge(
        **common,
        metrics=str(plain / "ridge.json"),
        predictions=str(plain / "ridge.csv"),
        model=str(plain / "ridge.npz"),
        ridge=d["train"]["ridge"],
    )
    delta = dict(delta=str(res / "delta.h5"), delta_engine=TERSOFF)
    train.train_ridge(
        **common,
        **delta,
        metrics=str(res / "ridge.json"),
        predictions=str(res / "ridge.csv"),
        model=str(res / "ridge.npz"),
        ridge=d["train"]["ridge"],
    )
    train.train_cnn(
        **common,
        **delta,
        metrics=str(res / "cnn.json"),
        predictions=str(res / "cnn.csv"),
        model=str(res / "cnn.pt"),
        cnn=dict(d["train"]["cnn"], epochs=3, patience=3, channels=[4, 8], hidden=8, device="cpu"),
    )
    return res, plain, frames


def test_delta_energies_are_the_engines_and_checked_against_the_dataset(delta_models):
    res, _, frames = delta_models
    with Dataset(res / "descriptors.h5") as ds:
        meta = {k: v.copy() for k, v in ds.meta.items()}
    energy, described = read_delta_energies(res / "delta.h5", meta, TERSOFF)
    want = np.array([e / len(a) for a, (e, _) in zip(frames, tersoff(frames))])
    np.testing.assert_allclose(energy, want, rtol=0, atol=1e-12)
    assert described.startswith("lammps ") and "tersoff" in described
    with pytest.raises(InputFileError, match=r"delta\.h5: computed with .*tersoff.*delete it and rerun"):
        read_delta_energies(res / "delta.h5", meta, {"name": "lammps", "potential": "rebo"})
    with pytest.raises(InputFileError, match="rows do not match the dataset's frames"):
        read_delta_energies(res / "delta.h5", dict(meta, index=meta["index"][::-1]))


def _predictions(path):
    rows = list(csv.DictReader(skip_comments(open(path))))
    return (
        rows,
        np.array([float(r["y_true_ev_per_atom"]) for r in rows]),
        np.array([float(r["y_pred_ev_per_atom"]) for r in rows]),
    )


def test_the_models_learn_the_correction_and_report_the_energy(delta_models):
    res, plain, frames = delta_models
    rows, y, pred = _predictions(res / "ridge.csv")
    # the reported target is the reference energy, not the correction
    ref = {i: a.get_potential_energy() / len(a) for i, a in enumerate(frames)}
    np.testing.assert_allclose(y, [ref[int(r["frame"])] for r in rows], atol=1e-9)
    test = np.array([r["part"] == "test" for r in rows])
    delta_mae = 1000 * np.mean(np.abs(pred - y)[test])
    _, y0, pred0 = _predictions(plain / "ridge.csv")
    plain_mae = 1000 * np.mean(np.abs(pred0 - y0)[test])
    # the correction is linear in the density, which the images carry: Δ-ridge is near exact, plain ridge is not
    assert delta_mae < 5.0 and plain_mae > 10 * delta_mae, (delta_mae, plain_mae)
    model = load_model(res / "ridge.npz")
    assert model.delta["engine"] == TERSOFF and "tersoff" in model.delta["described"]


@pytest.mark.parametrize("name", ["ridge", "cnn"])
def test_predict_apply_and_calculator_add_the_engine_back(delta_models, name):
    res, _, frames = delta_models
    ext = "pt" if name == "cnn" else "npz"
    rows, _, want = _predictions(res / f"{name}.csv")
    model = load_model(res / f"{name}.{ext}")
    idx = [int(r["frame"]) for r in rows]
    fs = FrameSet([frames[i] for i in idx], [str(res / "labelled.extxyz")] * len(idx), idx)
    got = model.predict(fs)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)  # the workflow's predictions, engine included
    out = model.apply(fs)
    np.testing.assert_allclose(out["energy_per_atom"], out["engine_energy_per_atom"] + out["correction_per_atom"])
    np.testing.assert_allclose(
        out["engine_energy_per_atom"],
        [tersoff([frames[i]])[0][0] / len(frames[i]) for i in idx[:1]] + list(out["engine_energy_per_atom"][1:]),
    )
    atoms = min((frames[i] for i in idx), key=len).copy()  # the smallest test frame: the CNN's autograd is per atom
    atoms.calc = TopoamorphCalculator(model)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    e_t, f_t = tersoff([atoms])[0]
    # the calculator's energy is the engine's plus the correction, its forces the engine's plus the model's
    assert abs(e / len(atoms) - model.predict([atoms])[0]) < 1e-5
    corr_e, corr_f = model.energy_and_forces(atoms)
    np.testing.assert_allclose(corr_f, f, atol=1e-9)
    assert abs(corr_e - e) < 1e-9
    from topoamorph.potential import energy_and_forces as correction_only

    e_ph, f_ph, _ = correction_only(model, atoms)  # the PH model alone: the correction and its forces
    np.testing.assert_allclose(f, f_t + f_ph, atol=1e-8)
    assert abs(e - (e_t + e_ph)) < 1e-8 and np.abs(f_ph).max() > 0


def test_delta_forces_are_the_derivative_of_the_total_energy(delta_models):
    res, _, frames = delta_models
    model = load_model(res / "ridge.npz")
    small = min(frames, key=len).copy()  # an ideal crystal: rattled off its degenerate (one-sided) point
    small.rattle(0.02, seed=1)
    _, _, pairs = _fd_check(model, small, directions=2, h=1e-5)
    for analytic, fd in pairs:
        assert abs(analytic - fd) < 1e-3 * max(1.0, abs(fd)), (analytic, fd)


def test_explain_says_it_explains_the_correction(delta_models, tmp_path):
    from topoamorph.stages.evaluate import explain

    res, _, frames = delta_models
    write(tmp_path / "one.extxyz", frames[0])
    explain(model=str(res / "ridge.npz"), frames=[str(tmp_path / "one.extxyz")], output=str(tmp_path / "ex.extxyz"))
    a = read(tmp_path / "ex.extxyz")
    assert a.info["explained"] == "correction to the engine" and "tersoff" in a.info["delta_engine"]
    e_t = tersoff([frames[0]])[0][0]
    assert abs(a.info["engine_energy"] - e_t) < 1e-6
    assert abs(a.info["predicted_total_energy"] - (e_t + a.info["predicted_energy"])) < 1e-6
