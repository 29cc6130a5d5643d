"""An ASE calculator of a trained topoamorph model.

    from topoamorph.calculator import TopoamorphCalculator
    atoms.calc = TopoamorphCalculator("results/demo/models/ridge.npz")
    atoms.get_potential_energy()          # eV, the model's energy per atom times the atom count
    atoms.calc.results["energy_sigma"]    # eV, calibrated standard deviation of that energy
    atoms.calc.results["in_domain"]       # False when the structure lies outside the training data

Forces and stress are not provided: asking for them raises ASE's ``PropertyNotImplementedError``.
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from .trained import FrameSet, TrainedModel, load_model


class TopoamorphCalculator(Calculator):
    implemented_properties = ["energy", "free_energy"]
    default_parameters: dict = {}
    nolabel = True

    def __init__(self, model, **kwargs):
        """``model``: a model file path or a ``TrainedModel``."""
        super().__init__(**kwargs)
        self.model = model if isinstance(model, TrainedModel) else load_model(model)

    def _refuse(self, names):
        raise PropertyNotImplementedError(f"{', '.join(names)}: not provided by topoamorph model {self.model.path} "
                                          "(energies only; forces are not implemented yet)")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        missing = [p for p in properties if p not in self.implemented_properties]
        if missing:
            self._refuse(missing)
        super().calculate(atoms, properties, system_changes)
        out = self.model.apply(FrameSet([self.atoms]))
        n = len(self.atoms)
        energy = float(out["energy_per_atom"][0]) * n
        self.results = {"energy": energy, "free_energy": energy, "energy_sigma": float(out["sigma"][0]) * n,
                        "in_domain": bool(out["in_domain"][0]), "domain_reasons": out["reasons"][0]}

    def get_property(self, name, atoms=None, allow_calculation=True):
        if name not in self.implemented_properties:
            self._refuse([name])
        return super().get_property(name, atoms, allow_calculation)
