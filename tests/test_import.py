"""Importing existing DFT data: validation that names the file and frame, and the workflow on real DFT frames."""

import json

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from topoamorph import config, importer, plan
from topoamorph.errors import ConfigError, InputFileError
from topoamorph.formats.frames import count_frames, read_atoms, read_spec
from topoamorph.stages.generate import validate_import

from conftest import ROOT, snakemake

GAP = ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz"


def good_frames(n=3, natoms=8, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        grid = (np.indices((2, 2, 2)).reshape(3, -1).T + 0.5) * 1.8
        a = Atoms(f"C{natoms}", positions=grid[:natoms] + rng.normal(0, 0.05, (natoms, 3)), cell=[3.6] * 3, pbc=True)
        a.calc = SinglePointCalculator(a, energy=-9.0 * natoms + 0.1 * i)
        out.append(a)
    return out


def write_file(path, frames):
    write(path, frames, format="extxyz")
    return path


def test_count_frames_matches_ase_and_the_real_data():
    assert count_frames(GAP) == len(read(GAP, ":")) == 80
    # one frame, or a range, is parsed alone and equals ASE's reading of the whole file
    whole = read(GAP, ":")
    for i in (0, 41, 79):
        one = read_atoms(GAP, i, i + 1)[0]
        np.testing.assert_array_equal(one.positions, whole[i].positions)
        assert (
            sorted(one.info) == sorted(whole[i].info) and one.get_potential_energy() == whole[i].get_potential_energy()
        )


def test_validate_writes_a_manifest_of_the_real_data(tmp_path):
    m = validate_import(
        frames=[str(GAP)],
        manifest=str(tmp_path / "manifest.json"),
        source={"kind": "import", "file": str(GAP)},
        species=["C"],
    )
    f = m["files"]["all"]
    assert f["frames"] == 80 and f["atoms"] == [8, 72, 216]
    assert -10.6 < f["energy_per_atom_eV"][0] < f["energy_per_atom_eV"][1] < -7.0
    assert json.loads((tmp_path / "manifest.json").read_text()) == m


def _bad(tmp_path, name, mutate):
    """A file of three good frames, then ``mutate(frames, path)`` breaks it."""
    path = tmp_path / f"{name}.extxyz"
    frames = good_frames()
    mutate(frames, path)
    if not path.exists():
        write_file(path, frames)
    return path


def _truncate(frames, path):
    write_file(path, frames)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-3]))


def _no_cell(frames, path):
    frames[1].cell = None
    frames[1].pbc = False


def _no_pbc(frames, path):
    frames[2].pbc = [True, True, False]


def _nan(frames, path):
    frames[1].positions[3, 0] = np.nan


def _inf(frames, path):
    frames[0].positions[0, 2] = np.inf


def _no_energy(frames, path):
    frames[2].calc = None


def _overlap(frames, path):
    frames[1].positions[5] = frames[1].positions[4] + [0.1, 0.0, 0.0]


def _silicon(frames, path):
    frames[2].symbols[0] = "Si"


def _garbage(frames, path):
    path.write_text("this is not\nan extxyz file\n")


def _empty(frames, path):
    path.write_text("")


def _nan_energy(frames, path):
    frames[1].calc = SinglePointCalculator(frames[1], energy=float("nan"))


@pytest.mark.parametrize(
    "name, mutate, frame, message",
    [
        ("truncated", _truncate, 2, "truncated"),
        ("nocell", _no_cell, 1, "pbc"),
        ("nopbc", _no_pbc, 2, "pbc"),
        ("nan", _nan, 1, "NaN or infinite"),
        ("inf", _inf, 0, "NaN or infinite"),
        ("noenergy", _no_energy, 2, "no energy under key 'energy'"),
        ("nanenergy", _nan_energy, 1, "not finite"),
        ("overlap", _overlap, 1, "overlap"),
        ("silicon", _silicon, 2, "species ['Si'] not supported"),
        ("garbage", _garbage, 0, "expected an atom count"),
        ("empty", _empty, None, "empty"),
    ],
)
def test_bad_import_file_is_named_with_its_frame(tmp_path, name, mutate, frame, message):
    path = _bad(tmp_path, name, mutate)
    with pytest.raises(InputFileError) as exc:
        importer.validate({"kind": "import", "file": str(path)}, ["C"])
    text = str(exc.value)
    assert str(path) in text and message in text, text
    if frame is not None:
        assert f"frame {frame}" in text, text
    assert "\n" not in text  # one line


def test_missing_file_and_missing_energy_key(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        importer.validate({"kind": "import", "file": str(tmp_path / "nope.extxyz")}, ["C"])
    with pytest.raises(InputFileError, match="no energy under key 'dft_energy'"):
        importer.validate({"kind": "import", "file": str(GAP), "energy_key": "dft_energy"}, ["C"])


def test_a_path_holding_an_at_sign_is_a_path_and_its_selection_still_parses(tmp_path):
    from topoamorph.formats.frames import parse_spec

    (tmp_path / "run@node1").mkdir()
    a = write_file(tmp_path / "run@node1" / "a.extxyz", good_frames(3))
    b = write_file(tmp_path / "b@2.extxyz", good_frames(3))
    assert parse_spec(str(a)) == (str(a), 0, None)
    assert parse_spec(f"{a}@1:") == (str(a), 1, None)
    assert parse_spec(str(b)) == (str(b), 0, None)
    assert parse_spec(f"{b}@0:2") == (str(b), 0, 2)
    assert len(read_spec(str(a))) == 3 and len(read_spec(f"{b}@1:3")) == 2
    with pytest.raises(InputFileError, match="selection must be path@start:stop"):
        parse_spec(f"{b}@first")  # the file exists: what follows its @ is a (bad) selection
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump({"source": {"kind": "import", "train": str(a), "test": str(b)}, "homology": {"batch_size": 4}})
    )
    loaded = config.load(cfg, defaults=ROOT / "config" / "config.yaml")
    batch_frames = [read_spec(c.spec()) for batch in plan.batches(loaded) for c in batch]
    assert sum(len(f) for f in batch_frames) == 6


@pytest.mark.parametrize(
    "source, key",
    [
        ({"kind": "import"}, "source.train"),
        ({"kind": "import", "train": "a.xyz"}, "source.test"),
        ({"kind": "import", "file": "a.xyz", "train": "b.xyz"}, "source.file"),
        ({"kind": "import", "train": "a.xyz", "test": "b.xyz", "test_fraction": 0.3}, "source.test_fraction"),
        ({"kind": "import", "file": "a.xyz", "test_fraction": 1.2}, "source.test_fraction"),
        ({"kind": "download"}, "source.kind"),
    ],
)
def test_bad_import_config_names_the_key(tmp_path, source, key):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"source": source}))
    with pytest.raises(ConfigError) as exc:
        config.load(f, defaults=ROOT / "config" / "config.yaml")
    assert exc.value.key == key, str(exc.value)


def test_import_plan_batches_span_the_files(tmp_path):
    a = write_file(tmp_path / "a.extxyz", good_frames(5))
    b = write_file(tmp_path / "b.extxyz", good_frames(4, seed=1))
    f = tmp_path / "c.yaml"
    f.write_text(
        yaml.safe_dump({"source": {"kind": "import", "train": str(a), "test": str(b)}, "homology": {"batch_size": 4}})
    )
    cfg = config.load(f, defaults=ROOT / "config" / "config.yaml")
    assert plan.runs(cfg) == []
    assert plan.frame_files(cfg) == [(str(a), 5), (str(b), 4)]
    specs = [[c.spec() for c in batch] for batch in plan.batches(cfg)]
    assert specs == [[f"{a}@0:4"], [f"{a}@4:5", f"{b}@0:3"], [f"{b}@3:4"]]


@pytest.mark.workflow
def test_import_campaign_runs_on_real_dft_frames_with_the_files_split(tmp_path):
    frames = read(GAP, ":")
    train, test = tmp_path / "train.extxyz", tmp_path / "test.extxyz"
    write(train, frames[:64])
    write(test, frames[64:])
    cfg = tmp_path / "imp.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "campaign": "imp",
                "source": {"kind": "import", "train": str(train), "test": str(test)},
                "homology": {"batch_size": 40},
                "descriptors": {"bins": 16},
                "train": {"cnn": {"epochs": 5, "patience": 5, "channels": [4, 8], "hidden": 16}},
            }
        )
    )
    snakemake(["--cores", "2", "--configfile", cfg], tmp_path, timeout=900)
    res = tmp_path / "results" / "imp"
    split = json.loads((res / "dataset" / "split.json").read_text())
    assert split["by"] == "source" and split["test"] == list(range(64, 80))
    ridge = json.loads((res / "metrics" / "ridge.json").read_text())
    mean = json.loads((res / "metrics" / "mean.json").read_text())
    assert ridge["test"]["n"] == 16 and ridge["test"]["mae_mev_per_atom"] < mean["test"]["mae_mev_per_atom"]
    import h5py

    with h5py.File(res / "dataset" / "descriptors.h5") as h:
        y = h["y"][()]
    np.testing.assert_allclose(y[:3], [f.info.get("energy", f.get_potential_energy()) / len(f) for f in frames[:3]])
    assert (res / "report" / "structure.png").stat().st_size > 0
    assert not (res / "report" / "trace.png").exists()


@pytest.mark.workflow
def test_bad_import_file_stops_the_campaign_before_homology(tmp_path):
    bad = _bad(tmp_path, "overlap", _overlap)
    cfg = tmp_path / "imp.yaml"
    cfg.write_text(yaml.safe_dump({"campaign": "bad", "source": {"kind": "import", "file": str(bad)}}))
    p = snakemake(["--cores", "1", "--configfile", cfg], tmp_path, check=False, timeout=300)
    assert p.returncode != 0
    log = (tmp_path / "results" / "bad" / "logs" / "validate_import" / "log").read_text()
    assert f"{bad}" in log and "frame 1" in log and "overlap" in log
    assert not (tmp_path / "results" / "bad" / "diagrams").exists()  # no homology job ran
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({"source": {"kind": "import", "file": str(tmp_path / "gone.extxyz")}}))
    p = snakemake(["-n", "--configfile", missing], tmp_path, check=False)
    assert p.returncode != 0 and "gone.extxyz" in p.stdout + p.stderr and "file not found" in p.stdout + p.stderr
