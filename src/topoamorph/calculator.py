"""An ASE calculator of a trained topoamorph model.

    from topoamorph.calculator import TopoamorphCalculator
    atoms.calc = TopoamorphCalculator("results/demo/models/ridge.npz")
    atoms.get_potential_energy()          # eV, the model's energy per atom times the atom count
    atoms.get_forces()                    # eV/Å, analytic, for models on persistence images (ridge, cnn)
    atoms.calc.results["energy_sigma"]    # eV, calibrated standard deviation of that energy
    atoms.calc.results["in_domain"]       # False when the structure lies outside the training data

Models on persistence images (ridge, cnn) give energy and forces from one float64 function
(``topoamorph.potential``): the energy is the one the forces are the derivative of, and may differ from
``TrainedModel.predict`` (which feeds the float32 descriptors of the dataset) by float32 rounding. With
``descriptors.weight: none`` the energy jumps when a pair appears at the diagonal: a warning says so; for
molecular dynamics train with ``weight: atan`` or ``linear`` (docs/models.md). The baselines (soap, rdf,
density, mean) give energies only; stress is not provided. A Δ-learning model (``train.delta``) adds its
correction to the energy and forces of its engine (e.g. SevenNet-0), which runs once per call.
"""

from __future__ import annotations

import logging

from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from .errors import InputFileError
from .trained import FrameSet, TrainedModel, load_model

log = logging.getLogger(__name__)


class TopoamorphCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces"]
    default_parameters: dict = {}
    nolabel = True

    def __init__(self, model, **kwargs):
        """``model``: a model file path or a ``TrainedModel``."""
        super().__init__(**kwargs)
        self.model = model if isinstance(model, TrainedModel) else load_model(model)
        self._vectorizer, self._why_not = None, None
        try:
            from .potential import vectorizer

            self._vectorizer = vectorizer(self.model)
        except InputFileError as exc:
            self._why_not = str(exc)
        self._warned = False

    @property
    def provides_forces(self) -> bool:
        return self._vectorizer is not None

    def _refuse(self, names):
        why = self._why_not or "not implemented"
        raise PropertyNotImplementedError(
            f"{', '.join(names)}: not provided by topoamorph model {self.model.path} ({why})"
        )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        allowed = self.implemented_properties if self.provides_forces else ["energy", "free_energy"]
        missing = [p for p in properties if p not in allowed]
        if missing:
            self._refuse(missing)
        super().calculate(atoms, properties, system_changes)
        fs = FrameSet([self.atoms])
        n = len(self.atoms)
        forces = None
        if self.provides_forces:
            from .potential import energy_and_forces

            if not self._vectorizer.continuous() and not self._warned:
                log.warning(
                    "model %s uses descriptors.weight: %s: its energy jumps when a persistence pair appears "
                    "or vanishes at the diagonal; for MD train with weight atan or linear",
                    self.model.path,
                    self._vectorizer.weight,
                )
                self._warned = True
            energy, forces, res = energy_and_forces(self.model, self.atoms)
            fs.set_persistence(self.model.inputs["homology"], [res])
            if self.model.delta:  # Δ-learning: the engine's energy and forces plus the model's correction
                e, f = self.model.engine_results(fs)  # kept in fs: apply() below does not run the engine again
                energy, forces = energy + float(e[0]) * n, forces + f[0]
        out = self.model.apply(fs)
        if forces is None:
            energy = float(out["energy_per_atom"][0]) * n
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energy_sigma": float(out["sigma"][0]) * n,
            "in_domain": bool(out["in_domain"][0]),
            "domain_reasons": out["reasons"][0],
        }
        if forces is not None:
            self.results["forces"] = forces

    def get_property(self, name, atoms=None, allow_calculation=True):
        if name not in self.implemented_properties or (name == "forces" and not self.provides_forces):
            self._refuse([name])
        return super().get_property(name, atoms, allow_calculation)
