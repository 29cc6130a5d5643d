"""Melt-quench molecular dynamics with ASE, resumable across kills: the generate stage.

A run starts from a (rattled) simple cubic lattice at the requested density, follows the schedule's
segments (linear temperature ramps under an NVT thermostat) and samples frames within each segment.
Frames carry the potential energy (eV, per cell) and forces (eV/Å), and in ``atoms.info``: density
(g/cm³), stage, temperature_K (target), kinetic_temperature_K, time_ps, step, run, seed, engine.

Checkpoints: every ``checkpoint_every_steps`` steps (or ``checkpoint_every_s`` seconds of wall time,
whichever comes first) the whole state is written atomically to one file: positions, momenta, the
thermostat's own variables, the random generator's state, the step, the frames sampled so far and the
trace. A killed run rerun with the same checkpoint path continues from there and, for a deterministic
engine, produces bitwise the frames of an uninterrupted run. A checkpoint written for other settings
(config, density, run, seed) is ignored with a warning.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixCom

from . import engines, provenance
from .errors import MDError
from .formats.checkpoint import Checkpoint, settings_key
from .mpi import world
from .plan import Schedule
from .settings import StructuresSettings
from .thermostats import thermostat
from .units import volume_for_density

log = logging.getLogger(__name__)


def initial_structure(
    element: str, natoms: int, density: float, rng: np.random.Generator, rattle: float = 0.05
) -> Atoms:
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


class _FrameStore:
    """Frames of one run as arrays (what a checkpoint stores), rebuilt as ASE Atoms at the end."""

    def __init__(self, symbols, cell):
        self.symbols, self.cell = list(symbols), np.asarray(cell)
        self.positions, self.energies, self.forces, self.info = [], [], [], []

    def add(self, positions, energy, forces, info):
        self.positions.append(np.asarray(positions, dtype=float))
        self.energies.append(float(energy))
        self.forces.append(np.asarray(forces, dtype=float))
        self.info.append(info)

    def __len__(self):
        return len(self.energies)

    def arrays(self) -> dict:
        n = len(self.symbols)
        return {
            "frame_positions": np.array(self.positions).reshape(-1, n, 3),
            "frame_forces": np.array(self.forces).reshape(-1, n, 3),
            "frame_energies": np.array(self.energies, dtype=float),
        }

    def restore(self, arrays: dict, info: list) -> None:
        self.positions = list(arrays["frame_positions"])
        self.forces = list(arrays["frame_forces"])
        self.energies = [float(e) for e in arrays["frame_energies"]]
        self.info = list(info)

    def atoms(self) -> list[Atoms]:
        out = []
        for pos, e, f, info in zip(self.positions, self.energies, self.forces, self.info):
            frame = Atoms(self.symbols, positions=pos, cell=self.cell, pbc=True)
            frame.info.update(info)
            frame.calc = SinglePointCalculator(frame, energy=e, forces=f)
            out.append(frame)
        return out


# --- melt-quench --------------------------------------------------------------------------------


@dataclass
class MDResult:
    frames: list
    trace: list  # rows as in formats.trace.COLUMNS


def melt_quench(
    structures: dict,
    sched: Schedule,
    density: float,
    run: int,
    seed: int,
    checkpoint: str | None = None,
    workdir: str | None = None,
) -> MDResult:
    """Run (or resume) one melt-quench trajectory; return its sampled frames (in order) and its trace."""
    rng = np.random.default_rng(seed)
    settings = StructuresSettings.from_config(structures)
    protocol = settings.protocol
    element = settings.element
    atoms = initial_structure(element, settings.natoms, density, rng, settings.rattle_angstrom)
    atoms.set_constraint(FixCom())
    eng = engines.engine(settings.engine)
    atoms.calc = eng.calculator(element, workdir=workdir, natoms=len(atoms))
    engine_name = eng.describe()
    comm = world()

    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    t0 = protocol.initial_temperature_K
    thermalize_momenta(atoms, temperature_K=t0, rng=rng)
    Stationary(atoms)
    thermo = thermostat(atoms, protocol.thermostat, protocol.timestep_fs, t0, rng)

    ck = Checkpoint(checkpoint, settings_key(structures, float(density), int(run), int(seed)))
    store, trace, done = _FrameStore(atoms.get_chemical_symbols(), atoms.cell), [], 0
    total = sched.total_steps
    saved = ck.load()
    if saved is not None:
        arrays, meta = saved
        atoms.set_positions(arrays["positions"], apply_constraint=False)
        atoms.set_momenta(arrays["momenta"], apply_constraint=False)
        rng.bit_generator.state = meta["rng"]
        thermo.restore(arrays)
        store.restore(arrays, meta["frame_info"])
        trace = [tuple(r) for r in meta["trace"]]
        done = int(meta["step"])
        log.info(
            "resuming from checkpoint %s: step %d/%d, %d frames already sampled", checkpoint, done, total, len(store)
        )

    every_log, every_trace = protocol.log_every_steps, protocol.trace_every_steps
    every_ck, every_ck_s = protocol.checkpoint_every_steps, protocol.checkpoint_every_s
    log.info(
        "melt-quench rho=%.3f g/cm3 run=%d seed=%d engine=%s (%d MPI ranks): %d steps, %d frames",
        density,
        run,
        seed,
        engine_name,
        comm.size,
        total,
        sched.frames,
    )

    def save_checkpoint():
        arrays = {
            "positions": atoms.get_positions(),
            "momenta": atoms.get_momenta(),
            **thermo.state(),
            **store.arrays(),
        }
        meta = {"step": done, "rng": rng.bit_generator.state, "frame_info": store.info, "trace": trace}
        ck.save(arrays, meta)

    hottest = max(max(seg.t_start_K, seg.t_end_K) for seg in sched.segments)
    clock, last_ck, start_step = time.perf_counter(), time.perf_counter(), done
    offset = 0
    for seg in sched.segments:
        if offset + seg.steps <= done:
            offset += seg.steps
            continue
        wanted = set(seg.sample_steps)
        for k in range(done - offset + 1, seg.steps + 1):
            thermo.set_temperature(seg.temperature_at(k))
            thermo.dyn.run(1)
            done += 1
            if k in wanted:
                store.add(
                    atoms.get_positions(wrap=True),
                    atoms.get_potential_energy(),
                    atoms.get_forces(),
                    _frame_info(atoms, seg, k, done, sched, density, run, seed, engine_name),
                )
            if done % every_trace == 0 or done == total:
                epot = atoms.get_potential_energy() / len(atoms)
                ekin = atoms.get_kinetic_energy() / len(atoms)
                trace.append(
                    (
                        done,
                        done * sched.timestep_fs / 1000.0,
                        seg.name,
                        float(seg.temperature_at(k)),
                        float(atoms.get_temperature()),
                        float(epot),
                        float(epot + ekin),
                    )
                )
                _check_stable(atoms, epot, seg.temperature_at(k), hottest, done, density, run, protocol)
            if done % every_log == 0 or done == total:
                elapsed = time.perf_counter() - clock
                eta = elapsed / max(1, done - start_step) * (total - done)
                log.info(
                    "step %d/%d t=%.3f ps stage=%s T=%.0f K (target %.0f) Epot=%.4f eV/atom frames=%d/%d eta=%s",
                    done,
                    total,
                    done * sched.timestep_fs / 1000,
                    seg.name,
                    atoms.get_temperature(),
                    seg.temperature_at(k),
                    atoms.get_potential_energy() / len(atoms),
                    len(store),
                    sched.frames,
                    _hms(eta),
                )
            if checkpoint and done < total and (done % every_ck == 0 or time.perf_counter() - last_ck >= every_ck_s):
                save_checkpoint()
                last_ck = time.perf_counter()
        offset += seg.steps
    return MDResult(store.atoms(), trace)


# A trajectory is refused when its kinetic temperature exceeds this multiple of the protocol's hottest target:
# a thermostat holding 9000 K overshoots to 1.9x at 64 atoms, while an integration that has lost
# energy conservation heats exponentially (REBO-II at 3.5 g/cm³ with 1 fs steps: 9000 K -> 1e12 K in 0.5 ps).
RUNAWAY_FACTOR = 10.0
#: ... and never below this: the first steps from a lattice release its strain as heat (20,000 K for a few fs)
RUNAWAY_FLOOR_K = 1.0e5


def _check_stable(atoms, epot: float, target: float, hottest: float, step: int, density, run, protocol) -> None:
    """Stop a trajectory whose energy is non-finite or whose temperature ran away, with one line saying what to
    change; frames are never written from it."""
    where = f"melt-quench rho={float(density):.2f} run {run}, step {step}"
    if not np.isfinite(epot):
        raise MDError(
            f"{where}: the potential energy became non-finite; no frames were written. Reduce "
            f"structures.protocol.timestep_fs (now {protocol.timestep_fs} fs)"
        )
    temp = float(atoms.get_temperature())
    if not np.isfinite(temp) or temp > max(RUNAWAY_FACTOR * hottest, RUNAWAY_FLOOR_K):
        raise MDError(
            f"{where}: kinetic temperature {temp:.3g} K against a target of {target:.0f} K (more than "
            f"{RUNAWAY_FACTOR:g}x the protocol's hottest {hottest:.0f} K and {RUNAWAY_FLOOR_K:.0f} K): "
            "the integration is unstable; "
            f"no frames were written. Reduce structures.protocol.timestep_fs (now "
            f"{protocol.timestep_fs} fs) or strengthen the thermostat"
        )


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _frame_info(atoms, seg, k, step, sched, density, run, seed, engine_name) -> dict:
    return {
        "density": float(density),
        "stage": seg.name,
        "temperature_K": float(seg.temperature_at(k)),
        "kinetic_temperature_K": float(atoms.get_temperature()),
        "time_ps": step * sched.timestep_fs / 1000.0,
        "step": int(step),
        "run": int(run),
        "seed": int(seed),
        "engine": engine_name,
        **provenance.frame_tags(),
    }


# --- relabel ------------------------------------------------------------------------------------


def relabel(
    frames: list[Atoms],
    engine_cfg: dict,
    element: str,
    checkpoint: str | None = None,
    workdir: str | None = None,
    forces: bool = True,
    source: str = "",
) -> list[Atoms]:
    """Single points of ``frames`` with a second engine. Each output frame keeps the MD energy
    (``md_energy``, eV per cell) and MD engine (``md_engine``); its energy/forces are the new labels
    and ``label_engine`` names their engine. Resumes from ``checkpoint`` frame by frame."""
    key = settings_key(engine_cfg, element, forces, source, len(frames))
    ck = Checkpoint(checkpoint, key)
    energies, forces_done = [], []
    saved = ck.load()
    if saved is not None:
        arrays, meta = saved
        energies = [float(e) for e in arrays["energies"]]
        forces_done = list(arrays["forces"]) if forces else []
        log.info("resuming relabel from checkpoint %s: %d/%d frames done", checkpoint, len(energies), len(frames))
    eng = engines.engine(engine_cfg, key="relabel.engine")
    calc = eng.calculator(element, workdir=workdir, natoms=len(frames[0]) if frames else 0)
    label = eng.describe()
    clock, start, last_ck = time.perf_counter(), len(energies), time.perf_counter()
    for i in range(len(energies), len(frames)):
        atoms = frames[i].copy()
        atoms.calc = calc
        e = atoms.get_potential_energy()
        if not np.isfinite(e):
            raise RuntimeError(f"{source} frame {i}: the label engine returned a non-finite energy")
        energies.append(float(e))
        if forces:
            forces_done.append(atoms.get_forces().copy())
        done = len(energies)
        elapsed = time.perf_counter() - clock
        log.info(
            "relabel frame %d/%d: E=%.4f eV/atom (MD %.4f) eta=%s",
            done,
            len(frames),
            e / len(atoms),
            frames[i].get_potential_energy() / len(atoms),
            _hms(elapsed / (done - start) * (len(frames) - done)),
        )
        if checkpoint and done < len(frames) and time.perf_counter() - last_ck >= 60.0:
            arrays = {"energies": np.array(energies)}
            if forces:
                arrays["forces"] = np.array(forces_done)
            ck.save(arrays, {"done": done})
            last_ck = time.perf_counter()
    out = []
    for i, fr in enumerate(frames):
        new = Atoms(fr.get_chemical_symbols(), positions=fr.get_positions(), cell=fr.cell, pbc=fr.pbc)
        new.info.update(fr.info)
        new.info["md_energy"] = float(fr.get_potential_energy())
        new.info["md_engine"] = fr.info.get("engine", "")
        new.info["label_engine"] = label
        new.info.update(provenance.frame_tags())
        new.calc = SinglePointCalculator(new, energy=energies[i], forces=forces_done[i] if forces else None)
        out.append(new)
    return out
