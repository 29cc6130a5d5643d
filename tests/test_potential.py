"""From persistence pairs back to atoms: birth/death simplices, per-atom explanations that sum to the
prediction, analytic forces against finite differences (real GAP-20 DFT frames, and a property test over
random cells), the calculator's forces, `topoamorph explain` and `predict --forces`."""

import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.io import read
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from topoamorph import load_model
from topoamorph.errors import InputFileError
from topoamorph.homology import FAST_PATHS, compute
from topoamorph.inverse import value_gradients
from topoamorph.settings import HomologySettings, defaults
from topoamorph.trained import TrainedModel

from conftest import ROOT, run, train_ph_models, venv_tool

GAP = ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz"
#: a continuous vectoriser (weights vanish at the diagonal), small grid for speed
DESCRIPTORS = dict(defaults()["descriptors"], bins=12, weight="atan", weight_c=2.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = defaults()
    res = tmp_path_factory.mktemp("potential")
    frames = res / "gap20.extxyz"
    shutil.copy(GAP, frames)
    train_ph_models(
        res,
        frames,
        DESCRIPTORS,
        dict(d["train"]["uncertainty"], bootstrap=4, cnn_members=2),
        cnn=dict(d["train"]["cnn"], epochs=3, patience=3, channels=[4, 8], hidden=8, device="cpu"),
    )
    return res, frames


def _fd_check(model, atoms, directions=3, h=1e-5, seed=0):
    """(analytic, central finite difference) of dE along random unit displacements of all atoms."""
    energy, forces = model.energy_and_forces(atoms)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(directions):
        u = rng.normal(size=forces.shape)
        u /= np.linalg.norm(u)
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions += h * u
        minus.positions -= h * u
        fd = (model.energy_and_forces(plus)[0] - model.energy_and_forces(minus)[0]) / (2 * h)
        out.append((float(-(forces * u).sum()), fd))
    return energy, forces, out


def test_pair_simplices_give_back_every_birth_and_death():
    """The critical simplex of each pair's birth and death, with its lattice images, has exactly the
    diagram's value as squared circumradius: 216-atom a-C and an 8-atom cell computed replicated."""
    for index in (0, 70):
        atoms = read(GAP, index)
        res = compute(atoms, keep_simplices=True)
        for dim, ps in res.pairs.items():
            finite = res.diagrams[dim][np.isfinite(res.diagrams[dim][:, 1])]
            assert len(ps) == len(finite) > 0
            vb, _ = value_gradients(atoms.positions, ps.birth_critical, ps.birth_shift)
            vd, _ = value_gradients(atoms.positions, ps.death_critical, ps.death_shift)
            np.testing.assert_allclose(vb, finite[:, 0], atol=1e-9)
            np.testing.assert_allclose(vd, finite[:, 1], atol=1e-9)
            assert ps.birth.max() < len(atoms) and ps.death.max() < len(atoms)
            assert (ps.birth[:, : dim + 1] >= 0).all() and (ps.death[:, : dim + 2] >= 0).all()
        assert (res.replicas == 1) is (index == 0)  # the 8-atom cell is computed replicated (3x3x3)
    with pytest.raises(Exception, match="alpha filtration only"):
        compute(read(GAP, 0), backend="rips", keep_simplices=True)


def test_ridge_contributions_sum_to_its_prediction(models):
    res, frames = models
    model = load_model(res / "ridge.npz")
    atoms = read(frames, 3)
    ex = model.explain(atoms)
    assert ex["complete"] and abs(ex["baseline"] + ex["contribution"].sum() - ex["energy"]) < 1e-8
    assert abs(ex["residual"]) < 1e-8
    np.testing.assert_allclose(sum(ex["by_dim"].values()), ex["contribution"], atol=1e-12)
    # the float64 energy is the model's prediction (which sees float32 descriptors) up to float32 rounding
    assert ex["energy"] == pytest.approx(model.predict(atoms)[0] * len(atoms), rel=1e-6)
    assert sum(p["contribution_eV"] for p in ex["pairs"]) == pytest.approx(ex["contribution"].sum(), abs=1e-9)
    cnn = load_model(res / "cnn.pt").explain(atoms)
    assert not cnn["complete"] and np.isfinite(cnn["residual"])
    assert cnn["baseline"] + cnn["contribution"].sum() + cnn["residual"] == pytest.approx(cnn["energy"], abs=1e-8)


@pytest.mark.parametrize("name", ["ridge.npz", "cnn.pt"])
def test_forces_are_the_derivative_of_the_energy(models, name):
    res, frames = models
    model = load_model(res / name)
    atoms = read(frames, 36)  # 72 atoms of amorphous carbon, 2.0 g/cm3
    assert len(atoms) == 72
    # its atoms sit exactly on common circumspheres (ties of alpha values, where the energy has only one-sided
    # derivatives; the homology takes the exact path): 0.01 Å of noise makes it generic, as MD cells are
    atoms.rattle(0.01, seed=1)
    assert compute(atoms).info["path"] in FAST_PATHS.values()
    _, forces, checks = _fd_check(model, atoms)
    assert np.abs(forces).max() > 0
    for analytic, fd in checks:
        assert abs(analytic - fd) <= 1e-5 * abs(analytic), (analytic, fd)


def _random_cell(n, density, seed):
    rng = np.random.default_rng(seed)
    side = (n * 12.011 / 0.6022 / density) ** (1 / 3)
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, side, 3)
        d = np.array(pos) - p if pos else np.zeros((0, 3))
        d -= side * np.round(d / side)
        if not len(d) or np.min(np.linalg.norm(d, axis=1)) > 1.1:
            pos.append(p)
    return Atoms("C" * n, positions=pos, cell=[side] * 3, pbc=True)


def _linear_model(seed):
    """A linear model on persistence images with random coefficients: the force path of any ridge."""
    rng = np.random.default_rng(seed)
    bins = DESCRIPTORS["bins"]
    size = len(DESCRIPTORS["dims"]) * bins * bins
    from topoamorph.uncertainty import ApplicabilityDomain, Calibration

    ad = ApplicabilityDomain(components=2).fit(rng.random((8, size)), np.linspace(1.5, 3.5, 8), np.full(8, 24))
    header = {
        "name": "random",
        "estimator": "linear",
        "calibration": Calibration().to_dict(),
        "domain": ad.to_header(),
        "inputs": {
            "kind": "persistence",
            "homology": HomologySettings.from_config({}).compute_options(),
            "descriptors": DESCRIPTORS,
            "units": "angstrom^2 (squared radius)",
            "species": ["C"],
        },
    }
    return TrainedModel(header, {"coef": rng.normal(size=size), "intercept": np.array(-7.0), **ad.to_arrays()})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(10, 28), density=st.floats(1.5, 3.2), seed=st.integers(0, 10**6))
def test_forces_match_finite_differences_on_random_cells(n, density, seed):
    atoms = _random_cell(n, density, seed)
    model = _linear_model(seed)
    _, _, coarse = _fd_check(model, atoms, directions=1, h=1e-5, seed=seed)
    _, _, fine = _fd_check(model, atoms, directions=1, h=4e-6, seed=seed)
    (analytic, fd1), (_, fd2) = coarse[0], fine[0]
    assume(abs(fd1 - fd2) <= 1e-6 * max(abs(fd1), 1e-3))  # no Delaunay flip or tie within the step
    assert abs(analytic - fd1) <= 1e-5 * max(abs(analytic), 1e-6)


def test_explain_from_stored_simplices_equals_the_recomputed_one(tmp_path):
    """A diagram file written with homology.keep_simplices: true gives the same explanation, bit for bit, as
    the simplices computed on demand (a cell computed replicated included)."""
    from topoamorph.formats.diagrams import read_diagrams, write_diagrams
    from topoamorph.homology import UNITS
    from topoamorph.potential import explain

    model = _linear_model(5)
    cells = [_random_cell(n, 2.5, seed) for n, seed in ((24, 1), (10, 2))]
    recs = []
    for k, atoms in enumerate(cells):
        res = compute(atoms, keep_simplices=True, **model.inputs["homology"])
        recs.append(
            {
                "source": "x.extxyz",
                "index": k,
                "n_atoms": len(atoms),
                "energy": 0.0,
                "density": 2.5,
                "stage": "",
                "run": -1,
                "info": {},
                "replicas": res.replicas,
                "diagrams": res.diagrams,
                "pairs": res.pairs,
                "cell": atoms.cell[:],
            }
        )
    write_diagrams(tmp_path / "d.h5", recs, "alpha", 2, UNITS["alpha"], {})
    stored = read_diagrams(tmp_path / "d.h5")["results"]
    assert stored[1].replicas > 1
    for atoms, res in zip(cells, stored):
        got, want = explain(model, atoms, result=res), explain(model, atoms)
        np.testing.assert_array_equal(got["contribution"], want["contribution"])
        assert got["energy"] == want["energy"] and got["pairs"] == want["pairs"]
    # a stored result of another frame of the same size is refused, not explained onto the wrong atoms
    other = _random_cell(24, 2.5, 99)
    with pytest.raises(ValueError, match="not this frame's"):
        explain(model, other, result=stored[0])
    res.pairs = None
    with pytest.raises(ValueError, match="keep_simplices"):
        explain(model, cells[1], result=res)


def test_report_explains_three_frames_by_environment(tmp_path):
    """The report's explanations: three final-stage frames (low, middle, high density) of four, read alone;
    per-environment rows whose contributions add up to the prediction; the same numbers from the diagram
    files' stored simplices as recomputed; a histogram model gets a figure saying why there are none."""
    import csv

    from ase.io import write

    from topoamorph import distribute
    from topoamorph.formats.diagrams import read_diagrams
    from topoamorph.provenance import skip_comments
    from topoamorph.stages.report import _explanations

    cells = [_random_cell(24, rho, seed) for seed, rho in enumerate((3.0, 1.8, 3.3, 2.4))]
    for k, a in enumerate(cells):
        a.info.update(energy=-7.0 * len(a) + k, stage="quench2")
    frames = tmp_path / "f.extxyz"
    write(frames, cells, format="extxyz")
    model = _linear_model(3)
    model.save(tmp_path / "ridge.npz")
    tables = []
    for keep in (True, False):
        batch = tmp_path / f"batch-{keep}.h5"
        hs = HomologySettings.from_config({"keep_simplices": keep})
        assert distribute.run([str(frames)], str(batch), hs, energy_key="energy") == 0
        meta = read_diagrams(batch, simplices=False)["frames"]
        png, table = tmp_path / f"ex-{keep}.png", tmp_path / f"ex-{keep}.csv"
        _explanations(str(tmp_path / "ridge.npz"), meta, [str(batch)], [str(frames)], None, png, table, 50)
        assert png.read_bytes()[:4] == b"\x89PNG"
        with open(table) as fh:
            tables.append(list(csv.DictReader(skip_comments(fh))))
    assert tables[0] == tables[1]
    rows = tables[0]
    assert [float(r["density"]) for r in rows if r["environment"] == "all"] == pytest.approx([1.8, 3.0, 3.3], abs=0.01)
    for frame in {r["frame"] for r in rows}:
        mine = {r["environment"]: r for r in rows if r["frame"] == frame}
        assert sum(int(mine[e]["atoms"]) for e in ("sp", "sp2", "sp3")) == int(mine["all"]["atoms"]) == 24
        total = float(mine["all"]["total_contribution_eV"]) + float(mine["all"]["baseline_eV"])
        assert total == pytest.approx(float(mine["all"]["predicted_energy_eV"]), abs=1e-8)
        assert float(mine["all"]["mean_contribution_meV"]) * 24e-3 == pytest.approx(
            float(mine["all"]["total_contribution_eV"]), rel=1e-9
        )
    hist = TrainedModel(
        dict(model.header, inputs=dict(model.inputs, descriptors=dict(DESCRIPTORS, kind="histogram"))), model.arrays
    )
    hist.save(tmp_path / "hist.npz")
    _explanations(
        str(tmp_path / "hist.npz"), meta, [str(batch)], [str(frames)], None, tmp_path / "h.png", tmp_path / "h.csv", 50
    )
    assert (tmp_path / "h.png").stat().st_size > 0
    with open(tmp_path / "h.csv") as fh:
        assert list(csv.DictReader(skip_comments(fh))) == []


def test_weights_vanishing_at_the_diagonal_make_the_energy_continuous():
    from topoamorph.descriptors import make_vectorizer

    G = np.ones((DESCRIPTORS["bins"],) * 2)
    near = np.array([[1.0, 1.0 + 1e-9]])
    for weight, continuous in (("none", False), ("linear", True), ("atan", True)):
        vec = make_vectorizer(dict(DESCRIPTORS, weight=weight)).fit()
        value, _ = vec.pair_terms(near, G)
        assert vec.continuous() is continuous
        assert bool(abs(value[0]) < 1e-8) is continuous  # a pair at the diagonal: nothing, or a whole Gaussian


def test_calculator_gives_forces_and_refuses_them_for_baselines(models, tmp_path, caplog):
    from ase.calculators.calculator import PropertyNotImplementedError

    from topoamorph.calculator import TopoamorphCalculator

    res, frames = models
    atoms = read(frames, 36)
    model = load_model(res / "ridge.npz")
    atoms.calc = TopoamorphCalculator(model)
    e, f = model.energy_and_forces(atoms)
    np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-12)
    assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-10)
    assert atoms.calc.results["energy_sigma"] > 0
    # a model trained with weight none: forces given, with a warning that the energy is not continuous
    none = TrainedModel(
        {**model.header, "inputs": {**model.inputs, "descriptors": dict(DESCRIPTORS, weight="none")}}, model.arrays
    )
    atoms.calc = TopoamorphCalculator(none)
    atoms.get_forces()
    assert "jumps when a persistence pair appears" in caplog.text
    mean = TrainedModel(
        {"name": "mean", "estimator": "linear", "inputs": {"kind": "none", "species": ["C"]}},
        {"coef": np.zeros(0), "intercept": np.array(-7.0)},
    )
    atoms.calc = TopoamorphCalculator(mean)
    assert atoms.get_potential_energy() == pytest.approx(-7.0 * len(atoms))
    with pytest.raises(PropertyNotImplementedError, match="forces: .* takes none inputs"):
        atoms.get_forces()


def test_explain_and_predict_forces_on_the_command_line(models, tmp_path):
    from topoamorph.formats.predictions import read_pairs

    res, frames = models
    out, pairs = tmp_path / "explained.extxyz", tmp_path / "pairs.csv"
    run([venv_tool("topoamorph"), "explain", res / "ridge.npz", f"{frames}@35:37", "--output", out, "--pairs", pairs])
    explained = read(out, ":")
    assert len(explained) == 2
    for a in explained:  # extxyz keeps 8 decimals per atom
        assert a.info["baseline_energy"] + a.arrays["contribution"].sum() == pytest.approx(
            a.info["predicted_energy"], abs=len(a) * 1e-8
        )
        assert a.info["attribution"].startswith("exact")
    rows = read_pairs(pairs)
    assert {r["frame"] for r in rows} == {35, 36} and {r["dim"] for r in rows} == {0, 1, 2}
    assert sum(r["contribution_ev"] for r in rows if r["frame"] == 36) == pytest.approx(
        explained[1].arrays["contribution"].sum(), abs=len(explained[1]) * 1e-8
    )
    forces = tmp_path / "forces.extxyz"
    run(
        [
            venv_tool("topoamorph"),
            "predict",
            res / "cnn.pt",
            f"{frames}@36:37",
            "--output",
            tmp_path / "p.csv",
            "--forces",
            forces,
        ]
    )
    a = read(forces)
    e, f = load_model(res / "cnn.pt").energy_and_forces(read(frames, 36))
    np.testing.assert_allclose(a.arrays["model_forces"], f, atol=1e-6)
    assert a.info["model_energy"] == pytest.approx(e, abs=1e-6)
    # the model's results never read as a reference: predicting on the forces file scores nothing
    assert a.calc is None and "energy" not in a.info and "forces" not in a.arrays
    run([venv_tool("topoamorph"), "predict", res / "cnn.pt", forces, "--output", tmp_path / "again.csv"])
    from topoamorph.formats.predictions import read_applied

    assert np.isnan(read_applied(tmp_path / "again.csv")["reference_energy_per_atom_ev"]).all()
    p = run(
        [
            venv_tool("topoamorph"),
            "predict",
            ROOT / "tests" / "data" / "nope.npz",
            f"{frames}@0:1",
            "--output",
            tmp_path / "q.csv",
            "--forces",
            forces,
        ],
        check=False,
    )
    assert p.returncode != 0
    with pytest.raises(InputFileError, match="persistence histogram is piecewise constant"):
        from topoamorph.potential import vectorizer

        m = load_model(res / "ridge.npz")
        vectorizer(
            TrainedModel(
                {**m.header, "inputs": {**m.inputs, "descriptors": dict(DESCRIPTORS, kind="histogram")}}, m.arrays
            )
        )
