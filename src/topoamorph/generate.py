"""Melt-quench molecular dynamics with ASE: the generate stage.

A run starts from a (rattled) simple cubic lattice at the requested density, follows the schedule's
segments (linear temperature ramps under an NVT thermostat) and samples frames within each segment.
Frames carry the potential energy (eV, per cell) and, in ``atoms.info``: density (g/cm³), stage,
temperature_K (target), kinetic_temperature_K, time_ps, step, run, seed, engine.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixCom

from . import engines
from .errors import ConfigError
from .io import atomic_path
from .plan import Schedule
from .units import volume_for_density

log = logging.getLogger(__name__)


def initial_structure(element: str, natoms: int, density: float, rng: np.random.Generator,
                      rattle: float = 0.05) -> Atoms:
    """``natoms`` atoms on a simple cubic lattice in a cubic cell of the given density (g/cm³).

    If ``natoms`` is not a perfect cube, the first ``natoms`` sites of the smallest lattice that holds
    them are used (in a random order drawn from ``rng``).
    """
    length = volume_for_density(element, natoms, density) ** (1.0 / 3.0)
    m = int(math.ceil(round(natoms ** (1.0 / 3.0), 9)))
    grid = (np.arange(m) + 0.5) * (length / m)
    sites = np.array(np.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1).T
    if len(sites) > natoms:
        sites = sites[np.sort(rng.choice(len(sites), natoms, replace=False))]
    positions = sites + rng.normal(0.0, rattle, sites.shape) if rattle > 0 else sites
    atoms = Atoms(f"{element}{natoms}", positions=positions, cell=[length] * 3, pbc=True)
    atoms.wrap()
    return atoms


def _thermostat(atoms: Atoms, protocol: dict, temperature_K: float, rng: np.random.Generator):
    th = protocol["thermostat"]
    dt = protocol["timestep_fs"] * units.fs
    if th["name"] == "langevin":
        from ase.md.langevin import Langevin

        friction = th.get("friction_per_ps", 10.0) / (1000.0 * units.fs)
        dyn = Langevin(atoms, dt, temperature_K=temperature_K, friction=friction, fixcm=False, rng=rng)

        def set_t(t):
            dyn.set_temperature(temperature_K=t)

    elif th["name"] == "bussi":
        from ase.md.bussi import Bussi

        dyn = Bussi(atoms, dt, temperature_K=temperature_K, taut=th.get("taut_fs", 100.0) * units.fs, rng=rng)

        def set_t(t):
            dyn.temp = t * units.kB
            dyn.target_kinetic_energy = 0.5 * dyn.temp * dyn.ndof

    else:  # the schema already restricts the names
        raise ConfigError("structures.protocol.thermostat.name", f"unknown thermostat {th['name']!r}")
    return dyn, set_t


def melt_quench(structures: dict, sched: Schedule, density: float, run: int, seed: int) -> list[Atoms]:
    """Run one melt-quench trajectory and return its sampled frames (in order)."""
    rng = np.random.default_rng(seed)
    protocol = structures["protocol"]
    element = structures["element"]
    atoms = initial_structure(element, structures["natoms"], density, rng, structures.get("rattle_angstrom", 0.05))
    atoms.set_constraint(FixCom())
    atoms.calc = engines.calculator(structures["engine"], element)
    engine_name = engines.describe(structures["engine"])

    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    t0 = protocol.get("initial_temperature_K", sched.segments[0].t_start_K)
    thermalize_momenta(atoms, temperature_K=t0, rng=rng)
    Stationary(atoms)
    dyn, set_temperature = _thermostat(atoms, protocol, t0, rng)

    every = int(protocol.get("log_every_steps", 500))
    total, done, frames = sched.total_steps, 0, []
    clock = time.perf_counter()
    log.info("melt-quench rho=%.3f g/cm3 run=%d seed=%d engine=%s: %d steps, %d frames",
             density, run, seed, engine_name, total, sched.frames)
    for seg in sched.segments:
        wanted = set(seg.sample_steps)
        for k in range(1, seg.steps + 1):
            set_temperature(seg.temperature_at(k))
            dyn.run(1)
            done += 1
            if k in wanted:
                frames.append(_frame(atoms, seg, k, done, sched, density, run, seed, engine_name))
            if done % every == 0 or done == total:
                elapsed = time.perf_counter() - clock
                epot = atoms.get_potential_energy() / len(atoms)
                log.info("step %d/%d t=%.3f ps stage=%s T=%.0f K (target %.0f) Epot=%.4f eV/atom frames=%d "
                         "eta=%.0f s", done, total, done * sched.timestep_fs / 1000, seg.name,
                         atoms.get_temperature(), seg.temperature_at(k), epot, len(frames),
                         elapsed / done * (total - done))
                if not np.isfinite(epot):
                    raise RuntimeError(f"energy became non-finite at step {done} (rho={density}, run={run})")
    return frames


def _frame(atoms, seg, k, step, sched, density, run, seed, engine_name) -> Atoms:
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces().copy()
    frame = Atoms(atoms.get_chemical_symbols(), positions=atoms.get_positions(wrap=True),
                  cell=atoms.cell, pbc=True)
    frame.info.update(
        density=float(density),
        stage=seg.name,
        temperature_K=float(seg.temperature_at(k)),
        kinetic_temperature_K=float(atoms.get_temperature()),
        time_ps=step * sched.timestep_fs / 1000.0,
        step=int(step),
        run=int(run),
        seed=int(seed),
        engine=engine_name,
    )
    frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces)
    return frame


def write_frames(path, frames) -> None:
    """Write frames as extxyz, atomically."""
    from ase.io import write

    with atomic_path(path) as tmp:
        write(tmp, frames, format="extxyz")
