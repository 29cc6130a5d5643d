"""NVT thermostats of the melt-quench, one class each, declaring its defaults once.

A thermostat block is ``{name: langevin|bussi|nose_hoover_chain, <its options>}``. Each class builds the
ASE dynamics object for the atoms, retargets it along a temperature ramp (``set_temperature``), and
hands its own state to a checkpoint and back (``state`` / ``restore``), so that a resumed run continues
bit for bit.
"""

from __future__ import annotations

from typing import ClassVar

from ase import units

from .errors import ConfigError


class Thermostat:
    name: ClassVar[str]
    default_parameters: ClassVar[dict] = {}
    required: ClassVar[tuple] = ()

    def __init__(self, atoms, block: dict, timestep_fs: float, temperature_K: float, rng):
        given = {k: v for k, v in block.items() if k != "name"}
        self.parameters = {**self.default_parameters, **given}
        for key in self.required:
            if self.parameters.get(key) is None:
                raise ConfigError(
                    f"structures.protocol.thermostat.{key}", f"missing (the {self.name} thermostat needs it)"
                )
        self.timestep_fs = float(timestep_fs)
        self.dyn = self._dynamics(atoms, self.timestep_fs * units.fs, temperature_K, rng)

    def _dynamics(self, atoms, dt, temperature_K, rng):
        raise NotImplementedError

    def set_temperature(self, temperature_K: float) -> None:
        raise NotImplementedError

    def state(self) -> dict:
        """Arrays a checkpoint must keep beyond positions, momenta and the random generator."""
        return {}

    def restore(self, arrays: dict) -> None:
        pass


class Langevin(Thermostat):
    name = "langevin"
    required = ("friction_per_ps",)  # the campaign default is in the defaults file

    def _dynamics(self, atoms, dt, temperature_K, rng):
        from ase.md.langevin import Langevin as _Langevin

        friction = self.parameters["friction_per_ps"] / (1000.0 * units.fs)
        return _Langevin(atoms, dt, temperature_K=temperature_K, friction=friction, fixcm=False, rng=rng)

    def set_temperature(self, temperature_K: float) -> None:
        self.dyn.set_temperature(temperature_K=temperature_K)


class Bussi(Thermostat):
    name = "bussi"
    default_parameters = {"taut_fs": 100.0}

    def _dynamics(self, atoms, dt, temperature_K, rng):
        from ase.md.bussi import Bussi as _Bussi

        return _Bussi(atoms, dt, temperature_K=temperature_K, taut=self.parameters["taut_fs"] * units.fs, rng=rng)

    def set_temperature(self, temperature_K: float) -> None:
        self.dyn.temp = temperature_K * units.kB
        self.dyn.target_kinetic_energy = 0.5 * self.dyn.temp * self.dyn.ndof


class NoseHooverChain(Thermostat):
    name = "nose_hoover_chain"
    #: tdamp_fs None: 100 time steps
    default_parameters = {"tdamp_fs": None, "chain_length": 3}
    TDAMP_STEPS = 100.0

    def _dynamics(self, atoms, dt, temperature_K, rng):
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        tdamp_fs = self.parameters["tdamp_fs"] or self.TDAMP_STEPS * self.timestep_fs
        self.tdamp = tdamp_fs * units.fs
        dyn = NoseHooverChainNVT(
            atoms, dt, temperature_K=temperature_K, tdamp=self.tdamp, tchain=int(self.parameters["chain_length"])
        )
        self.nhc = dyn._thermostat
        return dyn

    def set_temperature(self, temperature_K: float) -> None:
        # the chain's masses follow the target temperature (Q = 3N kT tdamp², kT tdamp²)
        kT = units.kB * temperature_K
        nhc = self.nhc
        nhc._kT = kT
        nhc._Q[0] = 3 * nhc._num_atoms_global * kT * self.tdamp**2
        nhc._Q[1:] = kT * self.tdamp**2

    def state(self) -> dict:
        return {"nhc_q": self.dyn._q, "nhc_p": self.dyn._p, "nhc_eta": self.nhc._eta, "nhc_p_eta": self.nhc._p_eta}

    def restore(self, arrays: dict) -> None:
        self.dyn._q, self.dyn._p = arrays["nhc_q"].copy(), arrays["nhc_p"].copy()
        self.nhc._eta, self.nhc._p_eta = arrays["nhc_eta"].copy(), arrays["nhc_p_eta"].copy()


REGISTRY: dict[str, type[Thermostat]] = {c.name: c for c in (Langevin, Bussi, NoseHooverChain)}


def thermostat(atoms, block: dict, timestep_fs: float, temperature_K: float, rng) -> Thermostat:
    try:
        cls = REGISTRY[block["name"]]
    except KeyError:
        raise ConfigError("structures.protocol.thermostat.name", f"unknown thermostat {block['name']!r}") from None
    return cls(atoms, block, timestep_fs, temperature_K, rng)
