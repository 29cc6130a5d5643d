"""The universal-potential engine (``mlip``): models whose weights ship in their wheels, refusals at planning for
the ones that download, and real SevenNet-0 / CHGNet single points, MD steps and relabelling (marker ``mlip``)."""

import json
import os
from importlib.util import find_spec

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.io import read, write
from test_engines import md_structures, melt_quench_cli

from topoamorph import engines
from topoamorph.errors import ConfigError

from conftest import run, snakemake, venv_tool

HAVE_MLIP = find_spec("sevenn") is not None and find_spec("chgnet") is not None
needs_mlip = pytest.mark.skipif(
    not HAVE_MLIP and not os.environ.get("TOPOAMORPH_REQUIRE_MLIP"),
    reason="sevenn/chgnet not installed (make venv installs them; required by make test)",
)


def test_mlip_is_registered_with_cores_gpus_and_costs():
    assert "mlip" in engines.REGISTRY
    block = {"name": "mlip"}
    assert engines.engine(block).parameters["model"] == "7net-0"
    assert engines.cores(block) == 1 and engines.gpus(block) == 0
    assert engines.cores({**block, "threads": 8}) == 8
    assert engines.gpus({**block, "device": "cuda"}) == 1 and engines.gpus({**block, "device": "auto"}) == 0
    # measured: CHGNet grows faster with size than SevenNet-0 (5.9 vs 3.6 s per 216-atom step)
    seven, chg = (engines.step_seconds({**block, "model": m}, 216) for m in ("7net-0", "chgnet"))
    assert 3.0 < seven < 4.5 and 5.0 < chg < 7.0
    assert engines.step_seconds({**block, "threads": 4}, 64) < engines.step_seconds(block, 64)


@pytest.mark.parametrize(
    "model,why",
    [
        ("7net-omat", "downloads its weights at run time"),
        ("7net-mf-ompa", "downloads its weights at run time"),
        ("mace", "downloads its weights at run time"),
        ("my-potential", "is not known"),
    ],
)
def test_a_model_that_is_not_in_a_wheel_is_refused_in_one_line(model, why):
    for check in (True, False):  # even where the installation is not checked: a download never works
        with pytest.raises(
            ConfigError,
            match=f"'relabel.engine.model': universal potential '{model}' {why}; "
            "the models whose weights ship in their wheels: 7net-0",
        ):
            engines.check_installation({"name": "mlip", "model": model, "check_install": check}, "C", "relabel.engine")
    with pytest.raises(ConfigError, match="'structures.engine.device': unknown device 'gpu'"):
        engines.check_installation({"name": "mlip", "device": "gpu"}, "C")


@needs_mlip
def test_every_listed_model_has_its_weights_in_the_installed_wheel():
    for model in engines.MLIP.MODELS:
        eng = engines.engine({"name": "mlip", "model": model})
        assert eng.installation_problems("C") == [] and eng.weights_file().stat().st_size > 1e5


@pytest.mark.workflow
def test_a_downloading_model_stops_the_dry_run_in_one_line(tmp_path):
    cfg = tmp_path / "mlip.yaml"
    cfg.write_text(yaml.safe_dump({"structures": {"engine": {"name": "mlip", "model": "7net-omat"}}}))
    p = snakemake(["-n", "--configfile", cfg], tmp_path, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "'structures.engine.model': universal potential '7net-omat' downloads" in out
    assert "Traceback" not in out and not (tmp_path / "results").exists()


def diamond8(rattle=0.0, seed=1):
    atoms = bulk("C", "diamond", a=3.567, cubic=True)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


@needs_mlip
@pytest.mark.mlip
def test_sevennet_and_chgnet_single_points_agree_on_diamond():
    script = (
        "import json\nfrom topoamorph import engines\nfrom test_mlip import diamond8\nout = {}\n"
        "for m in ('7net-0', 'chgnet'):\n"
        "    a = diamond8()\n    a.calc = engines.calculator({'name': 'mlip', 'model': m, 'device': 'cpu'}, 'C')\n"
        "    out[m] = [a.get_potential_energy() / len(a), float(abs(a.get_forces()).max()),\n"
        "              engines.describe({'name': 'mlip', 'model': m})]\n"
        "print(json.dumps(out))\n"
    )
    from conftest import ROOT

    p = run([venv_tool("python"), "-c", script], cwd=ROOT / "tests", timeout=600)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for m, (e_atom, fmax, _described) in out.items():
        assert -9.3 < e_atom < -8.7, (m, e_atom)  # PBE-trained (MPtrj): ~ -9.1 eV/atom for diamond
        assert fmax < 1e-3, (m, fmax)  # perfect diamond: no forces by symmetry
    assert abs(out["7net-0"][0] - out["chgnet"][0]) < 0.1
    assert out["7net-0"][2].startswith("mlip 7net-0 (sevenn 0.") and "chgnet 0." in out["chgnet"][2]


@needs_mlip
@pytest.mark.mlip
def test_melt_quench_md_steps_with_sevennet(tmp_path):
    out = tmp_path / "7net.extxyz"
    melt_quench_cli(md_structures({"name": "mlip", "model": "7net-0", "device": "cpu"}), out)
    frames = read(out, ":")
    assert len(frames) == 2 and frames[-1].info["step"] == 4 and "mlip 7net-0" in frames[-1].info["engine"]
    # the simple-cubic start lies ~2.5 eV/atom above diamond (-6.5 eV/atom with SevenNet-0)
    assert all(-9.5 < f.get_potential_energy() / len(f) < -5.5 for f in frames)
    trace = np.genfromtxt(out.with_suffix(".csv"), delimiter=",", names=True, dtype=None, encoding=None, skip_header=1)
    assert len(trace) == 4 and np.ptp(trace["etot_eV_per_atom"]) < 0.05  # energy roughly conserved over 4 fs


@needs_mlip
@pytest.mark.mlip
def test_relabel_with_chgnet_keeps_the_md_energy(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for i in range(2):
        a = diamond8(rattle=0.05, seed=10 + i)
        a.info.update(engine="lammps test", step=i)
        a.calc = SinglePointCalculator(a, energy=-7.0 * len(a) + i, forces=np.zeros((8, 3)))
        frames.append(a)
    src, out = tmp_path / "md.extxyz", tmp_path / "labels.extxyz"
    write(src, frames)
    run(
        [
            venv_tool("topoamorph"),
            "relabel",
            src,
            "--engine",
            json.dumps({"name": "mlip", "model": "chgnet"}),
            "--output",
            out,
            "--checkpoint",
            tmp_path / "ck.npz",
        ],
        timeout=600,
    )
    back = read(out, ":")
    assert [f.info["md_energy"] for f in back] == [-56.0, -55.0]
    assert all("mlip chgnet" in f.info["label_engine"] for f in back)
    assert all(-9.5 < f.get_potential_energy() / 8 < -8.5 for f in back)
    assert np.abs(back[0].get_forces()).max() > 0.1
