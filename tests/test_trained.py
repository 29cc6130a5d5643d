"""Trained models as a product: model files, load_model, predict, the ASE calculator, uncertainty and the
applicability domain, on a small campaign of real DFT frames (GAP-20 low-density carbon) built stage by stage."""

import csv
import json
import re
import shutil

import numpy as np
import pytest

from topoamorph import load_model
from topoamorph.errors import InputFileError, TopoamorphError
from topoamorph.formats.frames import read_rows
from topoamorph.formats.predictions import read_applied
from topoamorph.provenance import skip_comments
from topoamorph.settings import defaults
from topoamorph.trained import FrameSet

from conftest import BIN, ROOT, run, train_ph_models, venv_tool

GAP = ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz"
NAMES = ("ridge", "cnn", "mean", "density", "soap", "rdf")


def model_path(res, name):
    return res / f"{name}.{'pt' if name == 'cnn' else 'npz'}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from topoamorph.stages import descriptors as sd
    from topoamorph.stages import train

    d = defaults()
    res = tmp_path_factory.mktemp("trained")
    frames = res / "gap20.extxyz"
    shutil.copy(GAP, frames)
    unc = dict(d["train"]["uncertainty"], cnn_members=2)
    common = train_ph_models(
        res,
        frames,
        dict(d["descriptors"], bins=12),
        unc,
        cnn=dict(d["train"]["cnn"], epochs=4, patience=4, channels=[4, 8], hidden=8, device="cpu"),
    )
    base = {"soap": {"r_cut": 4.0, "n_max": 3, "l_max": 2, "sigma": 0.5}, "rdf": {"r_max": 5.0, "bins": 20}}
    sd.structure_features(
        dataset=str(res / "descriptors.h5"),
        frames=[str(frames)],
        features=str(res / "features.h5"),
        baselines=base,
        species=["C"],
    )
    names = ["mean", "density", "soap", "rdf"]
    train.train_baselines(
        **common,
        features=str(res / "features.h5"),
        metrics=[str(res / f"{n}.json") for n in names],
        predictions=[str(res / f"{n}.csv") for n in names],
        model_files=[str(model_path(res, n)) for n in names],
        names=names,
        baselines=base,
    )
    return res, frames


def workflow_predictions(res, name, part="test"):
    rows = [r for r in csv.DictReader(skip_comments(open(res / f"{name}.csv"))) if r["part"] == part]
    return rows, np.array([float(r["y_pred_ev_per_atom"]) for r in rows])


@pytest.mark.parametrize("name", NAMES)
def test_predict_reproduces_the_workflow_predictions_and_save_load_round_trips(trained, name, tmp_path):
    res, _ = trained
    rows, want = workflow_predictions(res, name)
    fs = FrameSet(
        read_rows([r["source"] for r in rows], [int(r["frame"]) for r in rows]),
        [r["source"] for r in rows],
        [int(r["frame"]) for r in rows],
    )
    model = load_model(model_path(res, name))
    got = model.predict(fs)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    copy = tmp_path / model_path(res, name).name
    model.save(copy)
    again, sigma = load_model(copy).predict_with_uncertainty(fs)
    np.testing.assert_array_equal(again, got)
    assert np.all(np.isfinite(sigma)) and np.all(sigma > 0)
    # the same sigma as the workflow's (its distance term included): one calibration, one domain
    np.testing.assert_allclose(sigma, [float(r["y_sigma_ev_per_atom"]) for r in rows], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_calibration_is_recorded_in_the_metrics(trained, name):
    res, _ = trained
    cal = json.loads((res / f"{name}.json").read_text())["calibration"]
    for part in ("validation", "test"):
        assert 0 <= cal[part]["within_1sigma"] <= cal[part]["within_2sigma"] <= 1
    assert cal["scale"] >= 0 and cal["floor_ev_per_atom"] >= 0 and cal["members"] >= 2
    # sigma's distance term: fitted on contiguous density ranges held out of the train part (PH and structure
    # models), absent for the models without a descriptor
    if name in ("density", "mean"):
        assert cal["shift"]["by"] == "none" and cal["distance_scale_ev_per_atom"] == 0
    else:
        assert cal["shift"]["by"] == "density" and len(cal["shift"]["groups"]) == 5
        assert cal["distance_reference"] > 0 and cal["distance_scale_ev_per_atom"] >= 0
    assert "spearman_sigma_abs_error" in cal["test"]
    # the ensemble's sigma is recorded with every workflow prediction
    rows = list(csv.DictReader(skip_comments(open(res / f"{name}.csv"))))
    assert all(float(r["y_sigma_ev_per_atom"]) > 0 for r in rows)


def test_calculator_energy_is_predict_times_atoms_and_baselines_refuse_forces(trained):
    from ase.calculators.calculator import PropertyNotImplementedError
    from ase.io import read

    from topoamorph.calculator import TopoamorphCalculator

    res, frames = trained
    atoms = read(frames, 5)
    calc = TopoamorphCalculator(model_path(res, "ridge"))
    atoms.calc = calc
    e = atoms.get_potential_energy()  # float64 descriptors (the forces' energy); predict sees float32 ones
    assert e == pytest.approx(load_model(model_path(res, "ridge")).predict([atoms])[0] * len(atoms), rel=1e-6)
    assert calc.results["energy_sigma"] > 0 and isinstance(calc.results["in_domain"], bool)
    assert atoms.get_forces().shape == (len(atoms), 3)  # tests/test_potential.py checks them
    soap = TopoamorphCalculator(model_path(res, "soap"))
    soap_e = soap.get_potential_energy(atoms)
    assert soap_e == pytest.approx(load_model(model_path(res, "soap")).predict([atoms])[0] * len(atoms), abs=1e-9)
    with pytest.raises(PropertyNotImplementedError, match="forces: .* takes soap inputs"):
        soap.get_forces(atoms)
    atoms.positions[0] += 0.1  # a change is seen: recomputed
    assert atoms.get_potential_energy() != e


def test_applicability_domain_flags_density_atom_count_and_descriptor(trained):
    from ase.io import read

    res, frames = trained
    model = load_model(model_path(res, "ridge"))
    inside = read(frames, 3)
    squeezed = inside.copy()
    squeezed.set_cell(inside.cell * 0.6, scale_atoms=True)  # 4.6x the density: outside the training range
    bigger = inside.repeat((2, 1, 1))  # twice the atoms of any training frame, same structure
    out = model.apply([inside, squeezed, bigger])
    assert out["in_domain"].tolist() == [True, False, False]
    assert "density" in out["reasons"][1] and out["reasons"][2] == "n_atoms"
    # off the training data sigma grows (the squeezed cell's descriptor is far from every training one); a
    # supercell has the cell's descriptor, hence its sigma
    assert out["sigma"][1] > 1.5 * out["sigma"][0]
    assert out["sigma"][2] == pytest.approx(out["sigma"][0], rel=1e-6)
    # size consistency: a supercell has the crystal's diagram k times over, the same per-atom image, hence the same
    # energy per atom from every PH model (to float32 rounding of the descriptor)
    assert out["energy_per_atom"][2] == pytest.approx(out["energy_per_atom"][0], abs=1e-9)
    cnn = load_model(model_path(res, "cnn"))
    e = cnn.predict([inside.repeat(r) for r in ((1, 1, 1), (2, 1, 1), (2, 2, 2))])
    assert np.ptp(e) < 1e-6


def test_cli_predict_writes_every_column_and_equals_the_workflow(trained, tmp_path):
    res, frames = trained
    rows, want = workflow_predictions(res, "ridge")
    out = tmp_path / "pred.csv"
    p = run([BIN / "topoamorph", "predict", model_path(res, "ridge"), f"{frames}@0:80", "--output", out])
    got = read_applied(out)
    assert len(got["frame"]) == 80 and "out of the training domain" in p.stderr
    by_frame = dict(zip(got["frame"].tolist(), got["energy_per_atom_ev"]))
    np.testing.assert_allclose([by_frame[int(r["frame"])] for r in rows], want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got["energy_ev"], got["energy_per_atom_ev"] * got["n_atoms"], rtol=1e-9)
    assert np.all(np.isfinite(got["reference_energy_per_atom_ev"])) and np.all(got["sigma_ev_per_atom"] > 0)
    np.testing.assert_allclose(
        got["error_mev_per_atom"], 1000 * (got["energy_per_atom_ev"] - got["reference_energy_per_atom_ev"]), atol=1e-3
    )


def test_cli_select_picks_the_most_uncertain_distinct_frames(trained, tmp_path):
    from ase.io import read

    res, frames = trained
    out, table = tmp_path / "picked.extxyz", tmp_path / "pool.csv"
    run(
        [
            BIN / "topoamorph",
            "select",
            model_path(res, "ridge"),
            f"{frames}@0:24",
            "--n",
            5,
            "--output",
            out,
            "--table",
            table,
        ]
    )
    picked = read(out, ":")
    assert len(picked) == 5 and [a.info["selected_rank"] for a in picked] == list(range(5))
    model = load_model(model_path(res, "ridge"))
    pool = FrameSet.read([f"{frames}@0:24"])
    sigma = model.apply(pool)["sigma"]
    assert picked[0].info["sigma_ev_per_atom"] == pytest.approx(sigma.max())  # the most uncertain comes first
    assert len({a.info["selected_frame"] for a in picked}) == 5
    for a in picked:  # each picked frame is the pool's frame, positions and all
        np.testing.assert_allclose(a.positions, pool.atoms[a.info["selected_frame"]].positions)
    rows = list(csv.DictReader(skip_comments(open(table))))
    assert len(rows) == 24 and sum(r["selected_rank"] != "" for r in rows) == 5
    # an output that is an input is refused before any work, naming it
    from topoamorph.stages.evaluate import select

    with pytest.raises(InputFileError, match="it would be overwritten"):
        select(model=str(model_path(res, "ridge")), frames=[str(frames)], n=2, output=str(frames))
    with pytest.raises(InputFileError, match="same file"):
        select(model=str(model_path(res, "ridge")), frames=[str(frames)], n=2, output=str(out), table=str(out))


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["cnn", "soap"])
def test_cli_predict_under_mpi_equals_serial(trained, tmp_path, name):
    """Homology spread over the ranks (PH models); rank 0 alone predicts and writes, for every model."""
    res, frames = trained
    serial, parallel = tmp_path / "serial.csv", tmp_path / "mpi.csv"
    run([BIN / "topoamorph", "predict", model_path(res, name), f"{frames}@60:80", "--output", serial])
    p = run(
        [
            venv_tool("mpiexec"),
            "-n",
            2,
            BIN / "topoamorph",
            "predict",
            model_path(res, name),
            f"{frames}@60:80",
            "--output",
            parallel,
        ]
    )
    strip = lambda p: p.read_text().split("\n", 1)[1]  # noqa: E731 (the provenance line differs)
    assert strip(serial) == strip(parallel)
    assert p.stderr.count("frames predicted by") == 1


def test_bad_model_files_and_frames_are_one_clear_line(trained, tmp_path):
    from ase import Atoms

    res, frames = trained
    good = model_path(res, "ridge")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputFileError, match=r"truncated\.npz: unreadable model file, truncated or corrupt"):
        load_model(truncated)
    cnn_cut = tmp_path / "cnn.pt"
    cnn_cut.write_bytes(model_path(res, "cnn").read_bytes()[:3000])
    with pytest.raises(InputFileError, match="cnn.pt: unreadable model file"):
        load_model(cnn_cut)
    from topoamorph.formats.model import read_model, write_model

    header, arrays = read_model(good)
    header["format_version"] = 99
    newer = tmp_path / "newer.npz"
    np.savez(newer, __header__=np.array(json.dumps(header)), **arrays)
    with pytest.raises(InputFileError, match=r"newer\.npz: model format version 99 .* retrain"):
        load_model(newer)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, coef=np.zeros(3))
    with pytest.raises(InputFileError, match="not a topoamorph model file"):
        load_model(foreign)
    with pytest.raises(InputFileError, match="model file not found"):
        load_model(tmp_path / "absent.npz")
    write_model(tmp_path / "ok.npz", dict(header, format_version=1), arrays)  # the writer sets the version
    assert load_model(tmp_path / "ok.npz").header["format_version"] == 2
    # a model of format 1 was trained on the torus's diagrams, not the crystal's: refused, one line, retrain
    header["format_version"] = 1
    old = tmp_path / "old.npz"
    np.savez(old, __header__=np.array(json.dumps(header)), **arrays)
    with pytest.raises(InputFileError, match=r"old\.npz: model format version 1: .*supercell.*: retrain") as err:
        load_model(old)
    assert "\n" not in str(err.value)
    model = load_model(good)
    si = Atoms("Si8", positions=np.random.default_rng(0).uniform(0, 5, (8, 3)), cell=[5, 5, 5], pbc=True)
    with pytest.raises(InputFileError, match=r"species \['Si'\] not in model .*trained on \['C'\]"):
        model.predict([si])
    slab = Atoms("C8", positions=np.random.default_rng(0).uniform(0, 5, (8, 3)), cell=[5, 5, 5], pbc=[1, 1, 0])
    with pytest.raises(InputFileError, match="not periodic in all three directions"):
        model.predict([slab])
    p = run([BIN / "topoamorph", "predict", truncated, frames, "--output", tmp_path / "x.csv"], check=False)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "truncated.npz" in p.stderr


def test_empty_input_damaged_arrays_and_strict_json_headers(trained, tmp_path):
    from topoamorph.formats.model import read_model, write_model

    res, _ = trained
    for name in NAMES:
        model = load_model(model_path(res, name))
        assert model.predict([]).shape == (0,)
        raw = np.load(model_path(res, name), allow_pickle=False)["__header__"] if name != "cnn" else None
        if raw is not None:  # strict JSON: no Infinity/NaN tokens, readable by any JSON parser
            json.loads(str(raw), parse_constant=lambda c, name=name: pytest.fail(f"{name}: {c} in the header"))
    header, arrays = read_model(model_path(res, "ridge"))
    write_model(tmp_path / "broken.npz", header, {k: v for k, v in arrays.items() if k != "coef"})
    with pytest.raises(InputFileError, match=r"broken\.npz: model file lacks \['coef'\]"):
        load_model(tmp_path / "broken.npz")


def test_damaged_or_edited_model_files_are_refused_at_load(trained, tmp_path):
    """Every array finite and shaped as the header says, the header a mapping with what the model needs; a model
    file is recognised by its content, not its suffix."""
    from topoamorph.formats.model import read_model, write_model

    res, _ = trained
    header, arrays = read_model(model_path(res, "ridge"))

    def refused(name, hdr, arr, match):
        write_model(tmp_path / name, hdr, arr)
        with pytest.raises(InputFileError, match=match) as err:
            load_model(tmp_path / name)
        assert "\n" not in str(err.value) and name in str(err.value)

    coef = arrays["coef"].copy()
    coef[3] = np.nan
    refused("nan.npz", header, dict(arrays, coef=coef), "array coef holds NaN or infinite values.*retrain")
    refused("calib.npz", {k: v for k, v in header.items() if k != "domain"}, arrays, "has no domain")
    refused(
        "homology.npz",
        dict(header, inputs={k: v for k, v in header["inputs"].items() if k != "homology"}),
        arrays,
        "no inputs.homology",
    )
    refused("short.npz", header, dict(arrays, coef=arrays["coef"][:-1]), "coef has .* values, the header's image_shape")
    refused("intercept.npz", header, dict(arrays, intercept=np.zeros(2)), "intercept is not one number")
    cnn_header, cnn_arrays = read_model(model_path(res, "cnn"))
    refused(
        "three.pt",
        dict(cnn_header, cnn=dict(cnn_header["cnn"], members="three")),
        cnn_arrays,
        r"cnn.members is 'three', not a positive integer",
    )
    weight = next(k for k in cnn_arrays if ".net." in k)
    bad = cnn_arrays[weight].copy()
    bad.flat[0] = np.inf
    refused("inf.pt", cnn_header, dict(cnn_arrays, **{weight: bad}), f"array {re.escape(weight)} holds NaN")
    for text in ("[1, 2]", "3", '"model"'):
        f = tmp_path / "list.npz"
        np.savez(f, __header__=np.array(text))
        with pytest.raises(InputFileError, match=r"list\.npz: model header is a JSON \w+, not an object"):
            load_model(f)
    # a model is what its content says, whatever its suffix
    for name in ("ridge.pt", "ridge.PT"):
        shutil.copy(model_path(res, "ridge"), tmp_path / name)
        assert load_model(tmp_path / name).name == "ridge"
    shutil.copy(model_path(res, "cnn"), tmp_path / "cnn.npz")
    assert load_model(tmp_path / "cnn.npz").name == "cnn"


def _cli(*args):
    return run([BIN / "topoamorph", *map(str, args)], check=False)


def test_outputs_never_overwrite_inputs_and_bad_frames_are_one_line(trained, tmp_path):
    """predict/explain/select refuse, before any homology, an output that is an input or another output or cannot
    be written; frames are checked as the workflow checks evaluation files; inputs stay byte-identical."""
    from ase import Atoms
    from ase.io import read, write

    res, frames = trained
    model = model_path(res, "ridge")
    local = tmp_path / "frames.extxyz"
    write(local, read(frames, "0:3"))
    before = {p: p.read_bytes() for p in (local, model)}
    from topoamorph.stages import evaluate

    def stage(command, model, frames, *rest):
        """The command's stage function in this process (the CLI's exit code and one line are checked below)."""
        kw, args = {}, list(rest)
        while args:
            key, value = args.pop(0).lstrip("-").replace("-", "_"), args.pop(0)
            kw[key] = str(value) if key != "n" else int(value)
        return getattr(evaluate, command)(model=str(model), frames=[str(frames)], **kw)

    cases = [
        (["predict", model, local, "--output", local], "--output is the input"),
        (["predict", model, local, "--output", model], "--output is the input"),
        (["predict", model, local, "--output", tmp_path / "p.csv", "--forces", local], "--forces is the input"),
        (
            ["predict", model, local, "--output", tmp_path / "p.csv", "--forces", tmp_path / "p.csv"],
            "are the same file",
        ),
        (
            ["explain", model, local, "--output", tmp_path / "e.extxyz", "--pairs", tmp_path / "e.extxyz"],
            "are the same file",
        ),
        (["explain", model, local, "--output", local], "--output is the input"),
        (["select", model, local, "--n", 1, "--output", local], "--output is the input"),
        (["predict", model, local, "--output", tmp_path / "absent" / "p.csv"], "does not exist"),
        (["predict", model, f"{local}@0:0", "--output", tmp_path / "p.csv"], "no frames selected"),
        (
            ["predict", model, f"{local}@5:2", "--output", tmp_path / "p.csv"],
            "selection stops (2) before it starts (5)",
        ),
        (["predict", model, f"{local}@-1:", "--output", tmp_path / "p.csv"], "no negative indices"),
        (["predict", model, tmp_path, "--output", tmp_path / "p.csv"], "is a directory, not a file of frames"),
        (
            ["predict", model, local, "--output", tmp_path / "p.csv", "--energy-key", "dft_energy"],
            "no frame has an energy under --energy-key 'dft_energy'",
        ),
    ]
    for args, message in cases:
        with pytest.raises(TopoamorphError, match=re.escape(message)):
            stage(*args)
    for args, message in (cases[0], cases[4]):  # the command line: exit code 2 and that one line
        p = _cli(*args)
        assert p.returncode == 2 and message in p.stderr and p.stderr.strip().count("\n") == 0, (args, p.stderr)
    assert all(p.read_bytes() == b for p, b in before.items())
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os

        if os.geteuid() != 0:  # root writes anywhere: the check cannot refuse there
            p = _cli("predict", model, local, "--output", locked / "p.csv")
            assert p.returncode == 2 and "is not writable" in p.stderr
    finally:
        locked.chmod(0o700)
    # frames a model cannot use: coincident atoms, a non-finite or non-numeric energy, degenerate cells
    good = read(frames, 0)
    close = good.copy()
    close.positions[7] = close.positions[3] + [0.01, 0, 0]
    nan = good.copy()
    nan.calc = None
    nan.info["energy"] = float("nan")
    text = good.copy()
    text.calc = None
    text.info["energy"] = "minus seven"
    thin = Atoms("C2", positions=[[0, 0, 0], [1, 1, 0]], cell=[5, 5, 1e-7], pbc=True)
    huge = Atoms("C2", positions=[[0, 0, 0], [1, 1, 1]], cell=[5, 5, 1e12], pbc=True)
    for name, atoms, message in [
        ("close", close, r"frame 0: atoms 3 and 7 overlap \(0.010 Å apart"),
        ("nan", nan, "frame 0: energy"),
        ("text", text, "frame 0: energy"),
        ("thin", thin, "thick across one face"),
        ("huge", huge, "Å across"),
    ]:
        f = tmp_path / f"{name}.extxyz"
        write(f, [good, atoms] if name == "close" else [atoms], format="extxyz")
        if name == "close":
            message = message.replace("frame 0", "frame 1")
        with pytest.raises(TopoamorphError, match=message) as err:
            evaluate.predict(model=str(model), frames=[str(f)], output=str(tmp_path / f"{name}.csv"))
        assert str(f) in str(err.value) and not (tmp_path / f"{name}.csv").exists()
    # the same checks for frames given from Python and to the calculator
    loaded = load_model(model)
    with pytest.raises(InputFileError, match="atoms 3 and 7 overlap"):
        loaded.predict([close])
    from topoamorph.calculator import TopoamorphCalculator

    close.calc = TopoamorphCalculator(loaded)
    with pytest.raises(InputFileError, match="overlap"):
        close.get_potential_energy()
