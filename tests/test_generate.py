import numpy as np
import pytest
from ase.io import read

from topoamorph import engines, generate, plan, thermostats
from topoamorph.errors import ConfigError, MDError
from topoamorph.formats.frames import write_frames
from topoamorph.units import density_of


@pytest.mark.parametrize("natoms, density", [(64, 1.5), (216, 3.5), (50, 2.0)])
def test_initial_structure_density_and_lattice(natoms, density):
    atoms = generate.initial_structure("C", natoms, density, np.random.default_rng(0), rattle=0.0)
    assert len(atoms) == natoms
    assert density_of(atoms) == pytest.approx(density, rel=1e-10)
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    m = round(natoms ** (1 / 3) + 0.4999)
    assert d.min() == pytest.approx(atoms.cell[0, 0] / m)


def test_engine_registry_and_errors():
    assert "lammps" in engines.REGISTRY
    with pytest.raises(ConfigError, match="structures.engine.name"):
        engines.get("siesta")
    calc = engines.calculator({"name": "lammps", "potential": "tersoff"}, "C")
    atoms = generate.initial_structure("C", 64, 3.5, np.random.default_rng(0))
    atoms.calc = calc
    e = atoms.get_potential_energy()
    assert np.isfinite(e) and atoms.get_forces().shape == (64, 3)


def test_short_melt_quench_writes_frames_with_metadata(tmp_path):
    structures = {
        "element": "C",
        "natoms": 64,
        "rattle_angstrom": 0.05,
        "engine": {"name": "lammps", "potential": "tersoff"},
        "protocol": {
            "timestep_fs": 1.0,
            "thermostat": {"name": "langevin", "friction_per_ps": 20.0},
            "segments": [
                {"name": "heat", "t_start_K": 300, "t_end_K": 3000, "duration_ps": 0.05, "frames": 2},
                {"name": "cool", "t_start_K": 3000, "t_end_K": 300, "duration_ps": 0.05, "frames": 3},
            ],
            "log_every_steps": 10,
        },
    }
    sched = plan.schedule(structures["protocol"])
    res = generate.melt_quench(structures, sched, 3.0, 1, 42)
    frames = res.frames
    assert [r[0] for r in res.trace] == list(range(10, 101, 10))  # trace every 10 steps by default
    out = tmp_path / "run1.extxyz"
    write_frames(out, frames)
    back = read(out, ":")
    assert len(back) == 5 == sched.frames
    assert [f.info["stage"] for f in back] == ["heat"] * 2 + ["cool"] * 3
    assert [f.info["step"] for f in back] == [25, 50, 67, 83, 100]
    f = back[-1]
    assert f.info["density"] == 3.0 and f.info["run"] == 1 and f.info["seed"] == 42
    assert f.info["temperature_K"] == pytest.approx(300) and f.info["time_ps"] == pytest.approx(0.1)
    assert "lammps" in f.info["engine"] and "tersoff" in f.info["engine"]
    assert f.get_potential_energy() == pytest.approx(frames[-1].get_potential_energy())
    assert density_of(f) == pytest.approx(3.0)
    # same seed, same trajectory (deterministic engine and thermostat)
    again = generate.melt_quench(structures, sched, 3.0, 1, 42).frames
    np.testing.assert_array_equal(again[-1].positions, frames[-1].positions)


def test_a_runaway_trajectory_stops_with_one_line_and_no_frames():
    """Tersoff at 3.5 g/cm³ with 6 fs steps loses energy conservation and heats without bound: the run stops
    naming the density, run, step and the key to change, instead of writing frames of a 1e12 K 'liquid'."""
    structures = {
        "element": "C",
        "natoms": 64,
        "rattle_angstrom": 0.05,
        "engine": {"name": "lammps", "potential": "tersoff"},
        "protocol": {
            "timestep_fs": 6.0,
            "thermostat": {"name": "langevin", "friction_per_ps": 1.0},
            "segments": [{"name": "hold", "t_start_K": 3000, "t_end_K": 3000, "duration_ps": 3.0, "frames": 2}],
        },
    }
    with pytest.raises(
        MDError,
        match=r"rho=3.50 run 1, step \d+: .*K against a target of 3000 K.*"
        r"structures.protocol.timestep_fs \(now 6.0 fs\)",
    ) as err:
        generate.melt_quench(structures, plan.schedule(structures["protocol"]), 3.5, 1, 7)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "thermostat",
    [
        {"name": "bussi", "taut_fs": 20.0},
        {"name": "langevin", "friction_per_ps": 20.0},
        {"name": "nose_hoover_chain", "tdamp_fs": 20.0},
    ],
)
def test_thermostats_hold_and_follow_the_target(thermostat):
    from ase.build import bulk
    from ase.md.velocitydistribution import thermalize_momenta

    atoms = bulk("C", "diamond", a=3.567, cubic=True).repeat(2)
    atoms.calc = engines.calculator({"name": "lammps", "potential": "tersoff"}, "C")
    rng = np.random.default_rng(3)
    thermalize_momenta(atoms, temperature_K=2000, rng=rng)
    th = thermostats.thermostat(atoms, thermostat, 1.0, 2000, rng)
    dyn, set_t = th.dyn, th.set_temperature
    temps = []
    for target in (2000, 800):
        set_t(target)
        seen = []
        for _ in range(300):
            dyn.run(1)
            seen.append(atoms.get_temperature())
        temps.append(np.mean(seen[150:]))
    assert 1600 < temps[0] < 2400 and 550 < temps[1] < 1050


def test_thermostats_and_engines_declare_their_defaults_once():
    from ase.build import bulk

    atoms = bulk("C", "diamond", a=3.567, cubic=True)
    rng = np.random.default_rng(0)
    nhc = thermostats.thermostat(atoms, {"name": "nose_hoover_chain"}, 0.5, 1000, rng)
    assert nhc.parameters == {"tdamp_fs": None, "chain_length": 3} and nhc.tdamp == pytest.approx(
        50 * 0.0982269, rel=1e-4
    )
    with pytest.raises(ConfigError, match="thermostat.friction_per_ps"):
        thermostats.thermostat(atoms, {"name": "langevin"}, 1.0, 1000, rng)
    with pytest.raises(ConfigError, match="thermostat.name"):
        thermostats.thermostat(atoms, {"name": "berendsen"}, 1.0, 1000, rng)
    gpaw = engines.engine({"name": "gpaw", "ecut_eV": 300})
    assert gpaw.parameters["ecut_eV"] == 300 and gpaw.parameters["xc"] == "LDA" and gpaw.ranks == 1
    assert gpaw.cost.seconds_64 > engines.engine({"name": "lammps"}).cost.seconds_64
    assert engines.engine({"name": "lammps"}).deterministic and not gpaw.deterministic
    for cls in engines.REGISTRY.values():  # every option an engine reads has its default in the class
        assert set(cls.common_parameters) == {"mpi_ranks", "launcher", "check_install"} and cls.name and cls.description
